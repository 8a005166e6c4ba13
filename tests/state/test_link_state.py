"""``link_state`` of ``/state``: the system's link state, and ``measuring`` while a
measurement holds the device (what MyTooliT ICOapi 0.2.1 clients read)."""

from __future__ import annotations

import pytest

from icoapi.state.schemas import ReportedLinkState
from icoapi.system.schemas import ConnectedDevice, LinkState, SystemSnapshot

DEVICE = ConnectedDevice(name="Tool-1", mac_address="08-6B-D7-01-DE-81")


@pytest.mark.parametrize(
    ("link_state", "measuring", "reported"),
    [
        (LinkState.DISCONNECTED, False, "disconnected"),
        (LinkState.STU_CONNECTED, False, "stu_connected"),
        (LinkState.SENSOR_CONNECTED, False, "sensor_connected"),
        (LinkState.SENSOR_CONNECTED, True, "measuring"),
    ],
)
def test_reported_link_state(link_state: LinkState, measuring: bool, reported: str) -> None:
    snapshot = SystemSnapshot(
        link_state=link_state,
        measuring=measuring,
        link_error=None,
        can_interface="built-in simulator",
        device=DEVICE if link_state is LinkState.SENSOR_CONNECTED else None,
    )
    assert ReportedLinkState.of(snapshot) == reported


def test_every_link_state_is_reported_under_its_own_name() -> None:
    assert {state.value for state in LinkState} < {state.value for state in ReportedLinkState}
