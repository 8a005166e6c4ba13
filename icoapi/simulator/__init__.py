"""ICOtronic device simulator: an emulated STU with sensor devices on a CAN bus.

The unmodified icotronic library (and everything built on it) drives the
simulator exactly like hardware: in-process as the python-can interface
``icosim`` (``can.Bus(interface="icosim", channel=...)``, see
:mod:`~icoapi.simulator.plugin`) or on python-can's ``virtual`` interface, or
over TCP with python-can's ``socketcand`` interface
(``python -m icoapi.simulator --port 29536``).  See ``docs/simulator.md``.

Public API::

    from icoapi.simulator import (
        Simulator, SimulatorConfig, DeviceConfig, Faults, configure_icotronic,
    )

    with Simulator(SimulatorConfig.default(), interface="virtual") as sim:
        configure_icotronic("virtual", sim.channel)
        ...  # async with icotronic.can.Connection() as stu: ...
"""

from .config import DeviceConfig, SimulatorConfig
from .device import SensorDevice
from .faults import Faults
from .icotronic_config import configure_icotronic
from .server import RequestRecord, Simulator
from .signals import (
    Signal,
    default_signals,
    expected_physical,
    raw_to_physical,
    sample_time,
)
from .socketcand import SocketcandServerBus
from .streamer import Streamer
from .stu import STU

__all__ = [
    "STU",
    "DeviceConfig",
    "Faults",
    "RequestRecord",
    "SensorDevice",
    "Signal",
    "Simulator",
    "SimulatorConfig",
    "SocketcandServerBus",
    "Streamer",
    "configure_icotronic",
    "default_signals",
    "expected_physical",
    "raw_to_physical",
    "sample_time",
]
