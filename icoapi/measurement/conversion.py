"""Raw ADC counts to physical values, vectorized over whole batches of frames.

A sensor definition maps a voltage range linearly onto a physical range::

    k = (phys_max - phys_min) / (volt_max - volt_min)
    d = phys_max - k * volt_max
    phys = volts * k + d,          volts = raw * V_ref / 65535

so for one channel ``phys = raw * a + b`` with ``a = V_ref / 65535 * k`` and ``b = d``.

Frame layout (what a streaming frame of the sensor device holds):

* one active channel: 3 consecutive samples of that channel;
* two active channels: 2 values, in channel order (first, second, third) with the
  disabled channel left out;
* three active channels: 3 values, one per channel.

Every active channel is converted with its own sensor, whichever channels are
active (upstream skipped the conversion when the first channel was disabled).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from icoapi.measurement.layout import ChannelLayout
from icoapi.sensors.schemas import sensor_coefficients as sensor_coefficients

ADC_FULL_SCALE = 65535


class SampleConverter:
    """Converts raw uint16 frames of the active channels to float32 physical values.

    Args:
        reference_voltage: ADC reference voltage in volts.
        coefficients: one ``(k, d)`` pair per active channel, in channel order
            (see :func:`sensor_coefficients`).
    """

    def __init__(
        self, reference_voltage: float, coefficients: Sequence[tuple[float, float]]
    ) -> None:
        if not coefficients:
            raise ValueError("one (k, d) pair per active channel is required")
        if reference_voltage <= 0:
            raise ValueError("the reference voltage must be positive")
        self.reference_voltage = float(reference_voltage)
        k = np.array([float(pair[0]) for pair in coefficients], dtype=np.float64)
        d = np.array([float(pair[1]) for pair in coefficients], dtype=np.float64)
        self.a: npt.NDArray[np.float64] = k * (self.reference_voltage / ADC_FULL_SCALE)
        self.b: npt.NDArray[np.float64] = d

    def convert(self, raw: npt.ArrayLike, layout: ChannelLayout) -> npt.NDArray[np.float32]:
        """Convert ``raw`` of shape ``(n_frames, layout.values_per_frame)``.

        :returns: float32 array of the same shape.
        :raises ValueError: on a shape or channel-count mismatch."""
        values = np.asarray(raw)
        if len(layout.channels) != len(self.a):
            raise ValueError(
                f"converter has {len(self.a)} channel(s), layout has {len(layout.channels)}"
            )
        if values.ndim != 2 or values.shape[1] != layout.values_per_frame:
            raise ValueError(
                f"expected raw values of shape (n, {layout.values_per_frame}), got {values.shape}"
            )
        if layout.single:
            a = np.repeat(self.a, layout.values_per_frame)
            b = np.repeat(self.b, layout.values_per_frame)
        else:
            a, b = self.a, self.b
        return (values.astype(np.float64) * a + b).astype(np.float32)
