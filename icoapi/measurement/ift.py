"""IFT value (icolyzer's IFT library) of one channel, computed from the file.

Computed after the measurement from the HDF5 file, in a worker thread, so no
samples are kept in memory while the measurement runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from icoapi.hdf5.reading import read_channel

# The message to the live clients holds at most this many points (every n-th).
IFT_MAX_POINTS = 200_000
MIN_WINDOW_S = 0.005
MAX_WINDOW_S = 1.0


class IFTUnavailableError(Exception):
    """The IFT value cannot be computed for this measurement."""


def compute_ift(
    path: Path, channel: str, sample_rate: float, window_s: float, max_points: int
) -> list[dict[str, float]]:
    """IFT values of ``channel`` as ``[{"x": seconds, "y": ift}, ...]``."""
    from icolyzer.iftlibrary import ift_value

    timestamps, values = read_channel(path, channel)
    if sample_rate < 200:
        raise IFTUnavailableError(f"sample rate {sample_rate:.0f} Hz is below 200 Hz")
    if len(values) < 0.6 * sample_rate:
        raise IFTUnavailableError("the measurement is shorter than the 0.6 s the IFT value needs")
    if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
        raise IFTUnavailableError("the IFT window must be 5 to 1000 ms")
    result = np.asarray(ift_value(values, sample_rate, window_s), dtype=np.float64)
    step = max(1, math.ceil(len(result) / max_points))
    return [
        {"x": x, "y": y}
        for x, y in zip(timestamps[::step].tolist(), result[::step].tolist(), strict=True)
    ]
