"""Drive a running icoapi over its REST API on loopback (used by scripts/deploy-check).

    measure.py URL record DATA_DIR   wait until it serves, record ~2 s, check the file
    measure.py URL start             wait until it serves, start an open-ended measurement
    measure.py URL health            wait until it serves
    verify DATA_DIR NAME             (measure.py verify ...) check a measurement file

Prints one short line per action; exits 1 with the reason on any failure.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

RECORD_SECONDS = 2.0
START_TIMEOUT = 90.0


class CheckError(Exception):
    """The service did not behave as a deployed service must."""


def call(url: str, method: str = "GET", body: Any = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        raise CheckError(f"{method} {url}: {error.code} {error.read().decode()[:300]}") from error
    return json.loads(text) if text else None


def wait_until_serving(base: str) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            health: dict[str, Any] = call(f"{base}/api/v1/health", timeout=2)
            return health
        except (OSError, CheckError) as error:
            last = str(error)
            time.sleep(0.25)
    raise CheckError(f"{base} did not answer /api/v1/health within {START_TIMEOUT:.0f} s ({last})")


def start_measurement(base: str, name: str) -> None:
    connected = call(f"{base}/api/v1/state").get("device")
    if connected:  # still connected after an earlier measurement of this process
        mac = connected["mac_address"]
    else:
        devices = call(f"{base}/api/v1/sth")
        if not devices:
            raise CheckError("the scan found no sensor device")
        mac = devices[0]["mac_address"]
        call(f"{base}/api/v1/sth/connect", "PUT", {"mac_address": mac})
    none = {"channel_number": 0, "sensor_id": None}
    instructions = {
        "name": name,
        "mac_address": mac,
        "time": None,
        "first": {"channel_number": 1, "sensor_id": None},
        "second": none,
        "third": none,
        "ift_requested": False,
        "ift_channel": "first",
        "ift_window_width": 150,
        "adc": {
            "prescaler": 2,
            "acquisition_time": 8,
            "oversampling_rate": 64,
            "reference_voltage": 3.3,
        },
        "meta": None,
    }
    call(f"{base}/api/v1/measurement/start", "POST", instructions)
    deadline = time.monotonic() + 30
    while not call(f"{base}/api/v1/measurement")["running"]:
        if time.monotonic() > deadline:
            raise CheckError("the measurement did not start")
        time.sleep(0.1)


def stop_measurement(base: str) -> str:
    call(f"{base}/api/v1/measurement/stop", "POST")
    deadline = time.monotonic() + 30
    while True:
        status = call(f"{base}/api/v1/measurement")
        if not status["running"] and not status.get("post_meta_pending"):
            break
        if time.monotonic() > deadline:
            raise CheckError("the measurement did not end after stop")
        time.sleep(0.1)
    files = call(f"{base}/api/v1/files")["files"]
    if not files:
        raise CheckError("no measurement file listed after the measurement")
    return str(files[0]["name"])


def verify(data_dir: Path, name: str) -> str:
    import tables

    path = data_dir / "measurements" / name
    if not path.is_file():
        raise CheckError(f"{path} does not exist")
    with tables.open_file(str(path), "r") as handle:
        data = max(handle.walk_nodes("/", "Table"), key=lambda node: node.nrows, default=None)
        if data is None or data.nrows == 0:
            raise CheckError(f"{path} holds no samples")
        rows = data.nrows
        attributes = {
            key: getattr(data._v_attrs, key, None)
            for key in ("measurement_status", "icoapi_version", "dataloss")
        }
    return (
        f"{name}: {rows} rows, {path.stat().st_size} bytes, "
        f"status {attributes['measurement_status']}, loss {attributes['dataloss']}, "
        f"icoapi {attributes['icoapi_version']}"
    )


def say(text: str, stream: Any = None) -> None:
    (stream or sys.stdout).write(text + "\n")
    (stream or sys.stdout).flush()


def main(argv: list[str]) -> int:
    try:
        if argv[1] == "verify":
            say(verify(Path(argv[2]), argv[3]))
            return 0
        base, action = argv[1].rstrip("/"), argv[2]
        health = wait_until_serving(base)
        if action == "health":
            say(f"serving: {health}")
        elif action == "start":
            start_measurement(base, "deploy-check-sigterm")
            time.sleep(RECORD_SECONDS)
            say("measurement running")
        elif action == "record":
            start_measurement(base, "deploy-check")
            time.sleep(RECORD_SECONDS)
            name = stop_measurement(base)
            say(verify(Path(argv[3]), name))
        else:
            raise CheckError(f"unknown action {action!r}")
    except (CheckError, OSError, KeyError, IndexError) as error:
        say(f"measure: {error}", sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
