"""SampleConverter: numbers for each channel layout against hand-computed values.

Sensors (reference voltage 3.3 V, volts = raw * 3.3 / 65535):
* acc100g_01: ±100 g over 0.33–2.97 V → k = 200/2.64, d = −125, so raw 0 → −125,
  raw 13107 (= 65535/5, i.e. 0.66 V) → −75, raw 65535 (3.3 V) → 125;
* temp_01: −40–125 °C over 0.772–1.267 V → k = 1000/3, d = −297.333…, so raw 13107
  → 220 − 297.333 = −77.333, raw 65535 → 802.667;
* photo_01: 0–1 over 0–3.3 V → raw 13107 → 0.2, raw 65535 → 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from icoapi.measurement.conversion import SampleConverter, sensor_coefficients
from icoapi.measurement.layout import ChannelLayout
from tests.hdf5.helpers import ACC100G, PHOTO, TEMPERATURE


def coefficients(*sensors: dict[str, object]) -> list[tuple[float, float]]:
    return [
        sensor_coefficients(s["phys_min"], s["phys_max"], s["volt_min"], s["volt_max"])  # type: ignore[arg-type]
        for s in sensors
    ]


def test_sensor_coefficients() -> None:
    k, d = sensor_coefficients(-100, 100, 0.33, 2.97)
    assert k == pytest.approx(75.757575757)
    assert d == pytest.approx(-125.0)
    with pytest.raises(ValueError):
        sensor_coefficients(0, 1, 1.0, 1.0)


@pytest.mark.parametrize(
    ("channels", "sensors", "raw", "expected"),
    [
        (["first"], [ACC100G], [[0, 13107, 65535]], [[-125.0, -75.0, 125.0]]),
        (["third"], [PHOTO], [[0, 13107, 65535], [65535, 0, 0]], [[0, 0.2, 1], [1, 0, 0]]),
        # first disabled: still converted (upstream stored raw counts here)
        (["second", "third"], [TEMPERATURE, PHOTO], [[13107, 65535]], [[-77.33333, 1.0]]),
        (["first", "third"], [ACC100G, PHOTO], [[65535, 13107]], [[125.0, 0.2]]),
        (
            ["first", "second", "third"],
            [ACC100G, TEMPERATURE, PHOTO],
            [[0, 65535, 13107], [13107, 13107, 0]],
            [[-125.0, 802.66667, 0.2], [-75.0, -77.33333, 0.0]],
        ),
    ],
)
def test_convert_layouts(
    channels: list[str],
    sensors: list[dict[str, object]],
    raw: list[list[int]],
    expected: list[list[float]],
) -> None:
    converter = SampleConverter(3.3, coefficients(*sensors))
    result = converter.convert(np.array(raw, dtype=np.uint16), ChannelLayout.of(channels))
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, np.array(expected), rtol=1e-5, atol=1e-4)


def test_reference_voltage_scales() -> None:
    converter = SampleConverter(1.65, coefficients(PHOTO))
    result = converter.convert(np.array([[65535, 0, 0]], np.uint16), ChannelLayout.of(["first"]))
    np.testing.assert_allclose(result, [[0.5, 0, 0]], atol=1e-6)


def test_large_batch_is_vectorized() -> None:
    converter = SampleConverter(3.3, coefficients(ACC100G, TEMPERATURE, PHOTO))
    raw = np.full((100_000, 3), 65535, dtype=np.uint16)
    result = converter.convert(raw, ChannelLayout.of(["first", "second", "third"]))
    assert result.shape == (100_000, 3)
    np.testing.assert_allclose(result[-1], [125.0, 802.66667, 1.0], rtol=1e-5)


@pytest.mark.parametrize(
    ("channels", "pairs", "shape"),
    [
        (["first"], 2, (1, 3)),  # coefficient count differs from the channel count
        (["first", "second"], 2, (1, 3)),  # two channels carry 2 values per frame
        (["first", "second", "third"], 3, (4,)),
    ],
)
def test_shape_mismatch(channels: list[str], pairs: int, shape: tuple[int, ...]) -> None:
    converter = SampleConverter(3.3, [(1.0, 0.0)] * pairs)
    with pytest.raises(ValueError):
        converter.convert(np.zeros(shape, np.uint16), ChannelLayout.of(channels))


def test_layout_validation() -> None:
    assert ChannelLayout.of(["first"]).values_per_frame == 3
    assert ChannelLayout.of(["first", "third"]).values_per_frame == 2
    assert ChannelLayout.of(["first", "second", "third"]).samples_per_frame == 1
    for bad in ([], ["second", "first"], ["fourth"], ["first", "first"]):
        with pytest.raises(ValueError):
            ChannelLayout.of(bad)
