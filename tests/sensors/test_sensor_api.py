"""GET /api/v1/sensor against real files."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

SENSOR_URL = "/api/v1/sensor"
NUMERIC = ("phys_min", "phys_max", "volt_min", "volt_max", "scaling_factor", "offset")


def check_sensor(entry: dict[str, object]) -> None:
    for key in ("name", "sensor_id", "unit", "dimension"):
        assert isinstance(entry[key], str)
    for key in NUMERIC:
        assert isinstance(entry[key], float), key
    assert entry["sensor_type"] is None or isinstance(entry["sensor_type"], str)


def test_sensor_information_shape(api: TestClient) -> None:
    response = api.get(SENSOR_URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"sensors", "configurations", "default_configuration_id"}
    assert len(body["sensors"]) == 12
    for entry in body["sensors"]:
        check_sensor(entry)
    assert body["default_configuration_id"] == "default-sth"
    [configuration] = body["configurations"]
    assert configuration["configuration_id"] == "default-sth"
    assert configuration["configuration_name"] == "Default IFT STH"
    assert list(configuration["channels"]) == [str(number) for number in range(1, 11)]
    for entry in configuration["channels"].values():
        check_sensor(entry)
    assert configuration["channels"]["10"]["sensor_id"] == "vbat_01"
    # Integers in the YAML file are sent as JSON floats.
    assert '"phys_min":-100.0' in response.text


def test_coefficients_are_derived(api: TestClient) -> None:
    acc = next(s for s in api.get(SENSOR_URL).json()["sensors"] if s["sensor_id"] == "acc100g_01")
    assert abs(acc["scaling_factor"] - 75.75757575757575) < 1e-9
    assert abs(acc["offset"] - -125.0) < 1e-9


def test_broken_file_is_422_naming_the_line(api: TestClient, sensors_file: Path) -> None:
    lines = sensors_file.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines) if "volt_max: 2.97" in line)
    lines[number] = "    volt_max: [2.97"
    sensors_file.write_text("\n".join(lines), encoding="utf-8")
    response = api.get(SENSOR_URL)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("sensors.yaml is not valid YAML: line ")
    assert set(response.json()) == {"detail"}


def test_schema_error_is_422_with_path(api: TestClient, sensors_file: Path) -> None:
    text = sensors_file.read_text(encoding="utf-8").replace("volt_max: 1.7", "volt_max: 0.1", 1)
    sensors_file.write_text(text, encoding="utf-8")
    response = api.get(SENSOR_URL)
    assert response.status_code == 422
    line = next(
        i for i, content in enumerate(text.splitlines(), 1) if content.strip() == "volt_max: 0.1"
    )
    assert response.json() == {
        "detail": (
            "Invalid sensor configuration in sensors.yaml: sensors -> 1 -> volt_max: "
            f"volt_max must differ from volt_min (line {line})."
        )
    }


def test_changed_file_is_reloaded(api: TestClient, sensors_file: Path) -> None:
    assert api.get(SENSOR_URL).json()["sensors"][0]["name"] == "Acceleration 100g"
    text = sensors_file.read_text(encoding="utf-8").replace(
        "name: Acceleration 100g", "name: Renamed Sensor"
    )
    sensors_file.write_text(text, encoding="utf-8")
    assert api.get(SENSOR_URL).json()["sensors"][0]["name"] == "Renamed Sensor"


def test_upload_is_seen_by_sensor_endpoint(api: TestClient, sensors_file: Path) -> None:
    text = sensors_file.read_text(encoding="utf-8").replace(
        "default_configuration_id: default-sth", "default_configuration_id: null"
    )
    text = text.replace("configuration_name: Default IFT STH", "configuration_name: Uploaded")
    response = api.post(
        "/api/v1/config/sensors",
        files={"file": ("sensors.yaml", text.encode(), "application/x-yaml")},
    )
    assert response.status_code == 200, response.text
    body = api.get(SENSOR_URL).json()
    assert body["configurations"][0]["configuration_name"] == "Uploaded"
    assert body["default_configuration_id"] == "default-sth"


def test_missing_key_default_is_empty_string(api: TestClient, sensors_file: Path) -> None:
    text = sensors_file.read_text(encoding="utf-8")
    sensors_file.write_text(
        text.replace("default_configuration_id: default-sth", ""), encoding="utf-8"
    )
    assert json.loads(api.get(SENSOR_URL).text)["default_configuration_id"] == ""
