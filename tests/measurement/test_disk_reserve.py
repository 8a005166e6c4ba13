"""The disk reserve and the journal's bound, through the real service on the
simulator and the real disk (free space as the operating system reports it)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from icoapi.hdf5.journal import journal_path
from tests.measurement.helpers import (
    StreamRecorder,
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.support import LiveServer, simulator_of

MIB = 1024 * 1024
DEFAULT_ROW_BYTES_PER_SECOND = 9523.8 * 13  # one channel, default ADC settings


def free_space(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def serve(factory: Any, tmp_path: Path, **settings: Any) -> tuple[LiveServer, httpx.Client, str]:
    server: LiveServer = factory(**settings)
    http = httpx.Client(base_url=f"{server.url}/api/v1", timeout=60)
    mac = simulator_of(server.app).config.devices[0].mac
    connect_device(http, mac)
    return server, http, mac


def test_start_below_the_reserve_is_refused_and_creates_nothing(
    sim_server_factory: Any, tmp_path: Path
) -> None:
    reserve = free_space(tmp_path) + 1024 * MIB
    server, http, mac = serve(sim_server_factory, tmp_path, ICOAPI_DISK_RESERVE_BYTES=reserve)
    with contextlib.closing(http):
        response = http.post("/measurement/start", json=instructions(mac, time=None))
        assert response.status_code == 507
        detail = response.json()["detail"]
        assert "MiB free" in detail and f"{reserve / MIB:.1f} MiB must stay free" in detail
        assert "estimated" not in detail  # no time: no size estimate
        assert list(server.app.state.paths.measurements.iterdir()) == []
        state = http.get("/state").json()
        assert state["measurement_status"]["running"] is False
        assert state["disk"]["reserve_bytes"] == reserve
        assert state["disk"]["recordable_seconds"] == 0


def test_timed_start_is_refused_when_its_file_would_not_fit(
    sim_server_factory: Any, tmp_path: Path
) -> None:
    # 2 GiB above the reserve (room for other processes writing meanwhile): a
    # short measurement fits, a day's (~10 GiB of uncompressed rows) does not.
    reserve = free_space(tmp_path) - 2048 * MIB
    server, http, mac = serve(sim_server_factory, tmp_path, ICOAPI_DISK_RESERVE_BYTES=reserve)
    with contextlib.closing(http):
        disk = http.get("/measurement").json()["disk"]
        assert disk["reserve_bytes"] == reserve
        expected = (disk["free_bytes"] - reserve) / DEFAULT_ROW_BYTES_PER_SECOND
        assert disk["recordable_seconds"] == pytest.approx(expected, rel=0.01)
        assert 10_000 < disk["recordable_seconds"] < 25_000
        response = http.post("/measurement/start", json=instructions(mac, time=86_400))
        assert response.status_code == 507
        detail = response.json()["detail"]
        assert "estimated at" in detail and "86400 s" in detail
        assert list(server.app.state.paths.measurements.iterdir()) == []
        name = start(http, instructions(mac, time=1))["data"]["name"]
        wait_idle(server)
        _, attributes, _ = read_table(measurement_file(server, name))
        assert attributes["measurement_status"] == "completed"


def test_run_reaching_the_reserve_stops_cleanly_with_everything_kept(
    sim_server_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="icoapi.measurement.reserve")
    reserve = free_space(tmp_path) - 2048 * MIB
    server, http, mac = serve(sim_server_factory, tmp_path, ICOAPI_DISK_RESERVE_BYTES=reserve)
    filler = tmp_path / "filler"
    simulator = simulator_of(server.app)
    device = simulator.device(mac)
    with contextlib.closing(http):
        stream = StreamRecorder(f"{server.ws_url}/api/v1/measurement/stream").start()
        name = start(http, instructions(mac, time=None))["data"]["name"]
        assert simulator.wait_until(
            lambda: device.streamer is not None and device.streamer.frames_sent > 3000,
            timeout=30,
        )
        # Something else fills the disk: 4 GiB really allocated on the same volume.
        with open(filler, "wb") as file:
            os.posix_fallocate(file.fileno(), 0, 4096 * MIB)
        try:
            wait_idle(server)
            stream.wait()
            state = http.get("/state").json()
        finally:
            filler.unlink()
    rows, attributes, _ = read_table(measurement_file(server, name))
    assert attributes["measurement_status"] == "stopped: disk reserve reached"
    assert attributes["rows"] == len(rows) > 9000
    assert attributes["lost_frames"] == 0
    # Every sample the file has went to the stream client, then the message why.
    assert len(stream.samples) == len(rows)
    assert [sample["counter"] for sample in stream.samples] == rows["counter"].tolist()
    assert stream.closed_normally
    assert stream.errors[-1]["type"] == "MeasurementStopped"
    assert "disk reserve reached" in stream.errors[-1]["message"]
    assert state["measurement_status"]["running"] is False
    assert "disk reserve reached" in state["measurement_status"]["last_error"]
    assert "ICOAPI_DISK_RESERVE_BYTES" in state["measurement_status"]["last_error"]
    assert any("fell below the reserve" in record.getMessage() for record in caplog.records)
    assert not journal_path(measurement_file(server, name)).exists()


def test_journal_stays_under_its_bound_during_a_long_run(
    sim_server_factory: Any, tmp_path: Path
) -> None:
    """At 4x the default rate for 12 s (48 s of default-rate data, 2.3 MB of rows
    at this rate), the extra disk next to the file stays a few seconds of data."""
    server, http, mac = serve(sim_server_factory, tmp_path, ICOAPI_JOURNAL_CHECKPOINT_SECONDS=0.5)
    # Four times the default rate is more than a 1 Mbit/s bus carries: this test
    # is about the journal, so the simulator's bus ceiling is off.
    simulator_of(server.app).faults.bus_bitrate = None
    folder = server.app.state.paths.measurements
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.wait(0.02):
            total = 0
            for path in folder.glob(".*"):
                try:
                    total += path.stat().st_size
                except FileNotFoundError:
                    continue
            peak = max(peak, total)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    body = instructions(mac, time=12)
    body["adc"].update(prescaler=2, oversampling_rate=16)  # 4x the default rate
    with contextlib.closing(http):
        name = start(http, body)["data"]["name"]
        wait_idle(server, 90)
    done.set()
    watcher.join()
    rows, attributes, _ = read_table(measurement_file(server, name))
    assert attributes["measurement_status"] == "completed"
    rows_per_second = len(rows) / 12
    assert rows_per_second > 3.5 * 9523
    seconds_in_journal = peak / (rows_per_second * 13)
    # 0.5 s between checkpoints, 1 s between flushes, one chunk (10,082 rows)
    # carried over, both journals for the moment of the switch: far below 15 s.
    assert 0 < seconds_in_journal < 5, seconds_in_journal
