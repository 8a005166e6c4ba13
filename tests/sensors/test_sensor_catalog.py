"""SensorCatalog and Sensor: parsing, derived coefficients, caching, lookup."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from icoapi.core.settings import BUNDLED_CONFIG_DIR
from icoapi.sensors.errors import SensorConfigError
from icoapi.sensors.schemas import RAW_SENSOR
from icoapi.sensors.service import SensorCatalog


def sensor(sensor_id: str, **values: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": f"Sensor {sensor_id}",
        "sensor_id": sensor_id,
        "unit": "g",
        "dimension": "Acceleration",
        "phys_min": -10,
        "phys_max": 10,
        "volt_min": 0,
        "volt_max": 2,
    }
    entry.update(values)
    return entry


def write(path: Path, document: object) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def sensors_path(tmp_path: Path) -> Path:
    return tmp_path / "sensors.yaml"


def test_shipped_file_derives_coefficients(tmp_path: Path) -> None:
    path = shutil.copyfile(BUNDLED_CONFIG_DIR / "sensors.yaml", tmp_path / "sensors.yaml")
    acc = SensorCatalog(path).current().sensor("acc100g_01")
    assert acc is not None
    assert acc.scaling_factor == pytest.approx(200 / 2.64)
    assert acc.offset == pytest.approx(-125.0)
    assert acc.model_dump()["scaling_factor"] == pytest.approx(75.7575757)


def test_values_in_file_for_coefficients_are_ignored(sensors_path: Path) -> None:
    write(sensors_path, {"sensors": [sensor("a", scaling_factor=1, offset=99)]})
    entry = SensorCatalog(sensors_path).current().sensors[0]
    assert entry.scaling_factor == 10.0
    assert entry.offset == -10.0


def test_equal_voltage_limits_are_rejected(sensors_path: Path) -> None:
    write(sensors_path, {"sensors": [sensor("a"), sensor("b", volt_min=1, volt_max=1)]})
    with pytest.raises(SensorConfigError) as caught:
        SensorCatalog(sensors_path).current()
    assert caught.value.status_code == 422
    assert "sensors -> 1 -> volt_max: volt_max must differ from volt_min" in caught.value.detail


def test_default_configuration_id_missing_null_and_set(sensors_path: Path) -> None:
    configurations = [
        {
            "configuration_id": "one",
            "configuration_name": "One",
            "channels": {1: {"sensor_id": "a"}},
        },
        {"configuration_id": "two", "configuration_name": "Two"},
    ]
    base = {"sensors": [sensor("a")], "sensor_configurations": configurations}
    catalog = SensorCatalog(sensors_path)
    write(sensors_path, base)
    assert catalog.current().default_configuration_id == ""
    write(sensors_path, {**base, "default_configuration_id": None})
    assert catalog.reload().default_configuration_id == "one"
    write(sensors_path, {**base, "default_configuration_id": "two"})
    assert catalog.reload().default_configuration_id == "two"


def test_yaml_syntax_error_names_the_line(sensors_path: Path) -> None:
    sensors_path.write_text("sensors:\n  - name: a\n    unit: [g\n", encoding="utf-8")
    with pytest.raises(SensorConfigError) as caught:
        SensorCatalog(sensors_path).current()
    assert caught.value.detail.startswith("sensors.yaml is not valid YAML: line 4")


def test_schema_errors_name_path_and_line(sensors_path: Path) -> None:
    text = (
        "sensors:\n"
        "  - name: A\n"
        "    sensor_id: a\n"
        "    unit: g\n"
        "    dimension: D\n"
        "    phys_min: -1\n"
        "    phys_max: 1\n"
        "    volt_min: 0\n"
        "    volt_max: three\n"
        "sensor_configurations:\n"
        "  - configuration_id: c\n"
        "    configuration_name: C\n"
        "    channels:\n"
        "      1: {sensor_id: missing}\n"
    )
    sensors_path.write_text(text, encoding="utf-8")
    with pytest.raises(SensorConfigError) as caught:
        SensorCatalog(sensors_path).current()
    detail = caught.value.detail
    assert detail.startswith("Invalid sensor configuration in sensors.yaml: ")
    assert "sensors -> 0 -> volt_max: expected a number (line 9)" in detail
    assert (
        "sensor_configurations -> 0 -> channels -> 1 -> sensor_id: "
        "unknown sensor_id 'missing' (line 14)"
    ) in detail


def test_file_is_parsed_once_and_reloaded_on_change(sensors_path: Path) -> None:
    write(sensors_path, {"sensors": [sensor("a")]})
    catalog = SensorCatalog(sensors_path)
    first = catalog.current()
    assert catalog.current() is first  # cached: not re-read while unchanged
    write(sensors_path, {"sensors": [sensor("a"), sensor("b")]})
    # A rewrite changes size and modification time; no explicit reload needed.
    assert [s.sensor_id for s in catalog.current().sensors] == ["a", "b"]


def test_replacing_the_file_with_same_size_is_noticed(sensors_path: Path, tmp_path: Path) -> None:
    write(sensors_path, {"sensors": [sensor("a")]})
    catalog = SensorCatalog(sensors_path)
    catalog.current()
    replacement = write(tmp_path / "new.yaml", {"sensors": [sensor("b")]})
    stat = sensors_path.stat()
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, sensors_path)  # same size and mtime, new inode
    assert catalog.current().sensors[0].sensor_id == "b"


def test_broken_file_error_is_cached_until_fixed(sensors_path: Path) -> None:
    sensors_path.write_text("sensors: []\n", encoding="utf-8")
    catalog = SensorCatalog(sensors_path)
    for _ in range(2):
        with pytest.raises(SensorConfigError, match="sensors: expected at least one entry"):
            catalog.current()
    write(sensors_path, {"sensors": [sensor("fixed")]})
    assert catalog.current().sensors[0].sensor_id == "fixed"


def test_missing_file_uses_bundled_default_without_writing(sensors_path: Path) -> None:
    catalog = SensorCatalog(sensors_path)
    assert catalog.current().sensors[0].sensor_id == "acc100g_01"
    assert not sensors_path.exists()
    assert catalog.available().default_configuration_id == "default-sth"


def test_concurrent_reads_from_threads(sensors_path: Path) -> None:
    write(sensors_path, {"sensors": [sensor("a")]})
    catalog = SensorCatalog(sensors_path)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(catalog.current().sensors[0].sensor_id))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["a"] * 16


class TestSensorForChannel:
    @pytest.fixture
    def catalog(self, sensors_path: Path) -> SensorCatalog:
        # The default configuration maps channel 1 to "c" (not list position 0)
        # and has no entry for channel 2.
        write(
            sensors_path,
            {
                "sensors": [sensor("a"), sensor("b"), sensor("c")],
                "sensor_configurations": [
                    {
                        "configuration_id": "other",
                        "configuration_name": "Other",
                        "channels": {1: {"sensor_id": "b"}},
                    },
                    {
                        "configuration_id": "main",
                        "configuration_name": "Main",
                        "channels": {1: {"sensor_id": "c"}, 3: {"sensor_id": "a"}},
                    },
                ],
                "default_configuration_id": "main",
            },
        )
        return SensorCatalog(sensors_path)

    def test_known_sensor_id_wins(self, catalog: SensorCatalog) -> None:
        found = catalog.sensor_for_channel("b", 1)
        assert found is not None and found.sensor_id == "b"

    def test_default_configuration_mapping(self, catalog: SensorCatalog) -> None:
        for channel, expected in ((1, "c"), (3, "a")):
            found = catalog.sensor_for_channel(None, channel)
            assert found is not None and found.sensor_id == expected

    def test_unknown_sensor_id_falls_back_to_channel(self, catalog: SensorCatalog) -> None:
        found = catalog.sensor_for_channel("nope", 1)
        assert found is not None and found.sensor_id == "c"

    def test_list_position_without_mapping(self, catalog: SensorCatalog) -> None:
        found = catalog.sensor_for_channel(None, 2)
        assert found is not None and found.sensor_id == "b"

    def test_disabled_channel(self, catalog: SensorCatalog) -> None:
        assert catalog.sensor_for_channel(None, 0) is None

    def test_unknown_channel_gives_raw_sensor(self, catalog: SensorCatalog) -> None:
        raw = catalog.sensor_for_channel(None, 7)
        assert raw is RAW_SENSOR
        assert (raw.name, raw.sensor_id, raw.unit, raw.dimension, raw.sensor_type) == (
            "Raw",
            "raw_default_01",
            "-",
            "Raw",
            None,
        )
        assert (raw.phys_min, raw.phys_max, raw.volt_min, raw.volt_max) == (-100.0, 100.0, 0.0, 3.3)

    def test_list_position_without_configurations(self, sensors_path: Path) -> None:
        write(sensors_path, {"sensors": [sensor("a"), sensor("b")]})
        catalog = SensorCatalog(sensors_path)
        found = catalog.sensor_for_channel(None, 2)
        assert found is not None and found.sensor_id == "b"
        assert catalog.sensor_for_channel(None, 3) is RAW_SENSOR
