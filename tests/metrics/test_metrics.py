"""GET /metrics on a real server with the simulator: every named series, the
frame counters over measurements, clients, link, disk and the request histogram."""

from __future__ import annotations

import shutil
import socket
import time

import httpx
from websockets.sync.client import connect

from icoapi.simulator import Simulator
from tests.measurement.helpers import (
    StreamRecorder,
    connect_device,
    instructions,
    measurement_file,
    read_table,
    start,
    wait_idle,
)
from tests.metrics.support import HISTOGRAM, REQUIRED_SERIES, scrape
from tests.support import AppServices, LiveServer


def test_every_named_series_is_exported_with_its_type(sim_server: LiveServer) -> None:
    metrics = scrape(sim_server.url)
    missing = [name for name in REQUIRED_SERIES if name not in metrics.names]
    assert missing == []
    types = metrics.types
    for counter in (
        "icoapi_frames_total",
        "icoapi_frames_lost_total",
        "icoapi_stream_messages_dropped_total",
        "icoapi_upload_bytes_total",
        "icoapi_upload_failures_total",
    ):
        assert types[counter] == "counter", counter
    assert types[HISTOGRAM] == "histogram"
    assert types["icoapi_measurement_running"] == "gauge"
    (build,) = metrics.series("icoapi_build_info")
    assert build["version"] == sim_server.app.version
    assert build["icotronic_version"][0].isdigit()
    assert metrics.value("icoapi_build_info") == 1
    assert {labels["state"] for labels in metrics.series("icoapi_upload_jobs")} == {
        "queued",
        "uploading",
        "done",
        "failed",
        "cancelled",
    }
    assert metrics.value("icoapi_dataspace_healthy") == 0  # none configured
    assert metrics.value("icoapi_can_link_up") == 1
    assert metrics.value("icoapi_stu_connected") == 1
    assert metrics.value("icoapi_sensor_device_connected") == 0


def test_frame_counters_follow_the_files_over_runs(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    assert scrape(sim_server.url).value("icoapi_sensor_device_connected") == 1
    before = scrape(sim_server.url)
    assert before.value("icoapi_frames_total") == 0
    assert before.value("icoapi_measurement_running") == 0

    with connect(f"{sim_server.ws_url}/api/v1/state") as state_socket:
        state_socket.recv(timeout=10)  # the first state push: the client is registered
        stream = StreamRecorder(f"{sim_server.ws_url}/api/v1/measurement/stream").start()
        name = start(client, instructions(mac, time=2))["data"]["name"]
        during = scrape(sim_server.url)
        assert during.value("icoapi_measurement_running") == 1
        assert during.value("icoapi_stream_clients") == 1
        assert during.value("icoapi_state_clients") == 1
        wait_idle(sim_server)
        stream.wait()
    _, first, _ = read_table(measurement_file(sim_server, name))

    after = scrape(sim_server.url)
    assert after.value("icoapi_measurement_running") == 0
    assert after.value("icoapi_frames_total") == int(first["frames"]) > 0
    assert after.value("icoapi_frames_lost_total") == int(first["lost_frames"])
    assert after.value("icoapi_measurement_dataloss_ratio") == 0  # no run now
    assert after.value("icoapi_stream_clients") == 0
    assert after.value("icoapi_stream_messages_dropped_total") == 0  # the client kept up

    # Counters over the service's life: a second run adds its frames.
    second_name = start(client, instructions(mac, time=1))["data"]["name"]
    wait_idle(sim_server)
    _, second, _ = read_table(measurement_file(sim_server, second_name))
    total = scrape(sim_server.url).value("icoapi_frames_total")
    assert total == int(first["frames"]) + int(second["frames"])


def test_lost_frames_and_the_current_runs_loss(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    simulator.faults.drop_rate = 0.2
    name = start(client, instructions(mac, time=30))["data"]["name"]
    # Poll until a second of the run's loss is visible, then stop it.
    deadline = time.monotonic() + 20
    while True:
        during = scrape(sim_server.url)
        if during.value("icoapi_frames_total") > 3000:
            break
        assert time.monotonic() < deadline, "no frames counted"
        time.sleep(0.05)
    assert during.value("icoapi_measurement_running") == 1
    ratio = during.value("icoapi_measurement_dataloss_ratio")
    assert 0.05 < ratio < 0.5
    client.post("/measurement/stop")
    wait_idle(sim_server)
    _, attributes, _ = read_table(measurement_file(sim_server, name))
    after = scrape(sim_server.url)
    assert after.value("icoapi_frames_lost_total") == int(attributes["lost_frames"]) > 0
    assert after.value("icoapi_frames_total") == int(attributes["frames"])


def test_disk_free_bytes_is_the_measurement_volumes(sim_server: LiveServer) -> None:
    folder = AppServices(sim_server.app).paths.measurements
    reported = scrape(sim_server.url).value("icoapi_disk_free_bytes")
    # Other processes write to the same volume meanwhile: close, not equal.
    assert abs(reported - shutil.disk_usage(folder).free) < 512 * 1024 * 1024
    reserve = getattr(sim_server.app.state.settings, "ICOAPI_DISK_RESERVE_BYTES", None)
    names = scrape(sim_server.url).names
    assert ("icoapi_disk_reserve_bytes" in names) == (reserve is not None)


def test_request_histogram_labels_are_route_templates(sim_server: LiveServer) -> None:
    with httpx.Client(base_url=sim_server.url, timeout=30) as http:
        for index in range(20):
            assert http.get(f"/api/v1/files/nothing-{index}.hdf5").status_code == 404
            assert http.get(f"/random/{index}/path").status_code == 404
        assert http.request("PROPFIND", "/api/v1/state").status_code == 405
        assert http.get("/api/v1/state").status_code == 200
    metrics = scrape(sim_server.url)
    series = metrics.series(f"{HISTOGRAM}_count")
    routes = {labels["route"] for labels in series}
    assert "/api/v1/files/{name}" in routes
    assert "/api/v1/state" in routes
    assert "unmatched" in routes
    assert not any("nothing-" in route or "/random/" in route for route in routes)
    assert (
        metrics.value(
            f"{HISTOGRAM}_count", route="/api/v1/files/{name}", method="GET", status_class="4xx"
        )
        == 20
    )
    assert (
        metrics.value(f"{HISTOGRAM}_count", route="unmatched", method="GET", status_class="4xx")
        == 20
    )
    assert (
        metrics.value(
            f"{HISTOGRAM}_count", route="/api/v1/state", method="other", status_class="4xx"
        )
        == 1
    )
    assert {labels["status_class"] for labels in series} <= {"2xx", "3xx", "4xx", "5xx"}


def test_messages_a_slow_client_lost_are_counted(
    sim_server: LiveServer, client: httpx.Client, simulator: Simulator
) -> None:
    mac = simulator.config.devices[0].mac
    connect_device(client, mac)
    url = f"{sim_server.ws_url}/api/v1/measurement/stream"
    reader = StreamRecorder(url).start()
    # Connected, never reads, with a small receive buffer: at 60 messages a
    # second the server's queue of 256 messages for it is full after a few
    # seconds, then messages are dropped.
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", sim_server.port))
    stalled = connect(url, sock=raw, close_timeout=0.5, legacy=True)
    try:
        name = start(client, instructions(mac, time=90))["data"]["name"]
        deadline = time.monotonic() + 80
        while scrape(sim_server.url).value("icoapi_stream_messages_dropped_total") == 0:
            assert time.monotonic() < deadline, "no message was dropped"
            time.sleep(0.2)
        assert client.post("/measurement/stop").status_code == 200
        wait_idle(sim_server)
        reader.wait()
        dropped = scrape(sim_server.url).value("icoapi_stream_messages_dropped_total")
        assert dropped == AppServices(sim_server.app).measurement.stream_clients.dropped
        # The reading client and the file lost nothing.
        rows, attributes, _ = read_table(measurement_file(sim_server, name))
        assert len(reader.samples) == len(rows)
        assert float(attributes["dataloss"]) == 0
    finally:
        stalled.close()
