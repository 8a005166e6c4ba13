"""Requests racing each other leave a consistent state."""

from __future__ import annotations

import asyncio

import httpx

from icoapi.simulator import Simulator
from tests.support import LiveServer


def test_concurrent_scans_and_connects(sim_server: LiveServer, simulator: Simulator) -> None:
    macs = [device.mac for device in simulator.config.devices]

    async def race() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=f"{sim_server.url}/api/v1", timeout=60) as http:
            scans = [http.get("/sth") for _ in range(20)]
            connects = [
                http.put("/sth/connect", json={"mac_address": macs[index % len(macs)]})
                for index in range(20)
            ]
            results = await asyncio.gather(*scans, *connects)
            return list(results[:20]), list(results[20:])

    scans, connects = asyncio.run(race())
    for scan in scans:
        # A scan either ran before a device got connected (all listed) or was
        # refused or finished while one was connected; never an error or a 500.
        assert scan.status_code == 200, scan.text
        listed = {device["mac_address"] for device in scan.json()}
        assert listed <= set(macs)
    winners = [response for response in connects if response.status_code == 200]
    losers = [response for response in connects if response.status_code != 200]
    assert len(winners) == 1
    for response in losers:
        assert response.status_code == 400
        assert response.json() == {
            "detail": "Incorrect request for current ICOtronic system state."
        }
    with httpx.Client(base_url=f"{sim_server.url}/api/v1", timeout=60) as http:
        state = http.get("/state").json()
        assert state["link_state"] == "sensor_connected"
        connected = simulator.connected_device
        assert connected is not None
        assert (
            state["device"]["mac_address"]
            == simulator.config.devices[simulator.devices.index(connected)].mac
        )
        assert http.get("/stu/connected").json() is True
        assert http.put("/sth/disconnect").status_code == 200
        assert http.get("/stu/connected").json() is False


def test_concurrent_scans_share_one_bus_scan(sim_server: LiveServer, simulator: Simulator) -> None:
    async def scans() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"{sim_server.url}/api/v1", timeout=60) as http:
            return list(await asyncio.gather(*[http.get("/sth") for _ in range(20)]))

    before = sum(
        1 for record in simulator.requests if record.block == 0 and record.data[:1] == b"\x02"
    )
    results = asyncio.run(scans())
    after = sum(
        1 for record in simulator.requests if record.block == 0 and record.data[:1] == b"\x02"
    )
    bodies = [response.json() for response in results]
    assert all(body == bodies[0] for body in bodies)
    assert len(bodies[0]) == len(simulator.config.devices)
    # 20 callers, but the device count was asked for by only a few scan rounds.
    assert after - before < 20
