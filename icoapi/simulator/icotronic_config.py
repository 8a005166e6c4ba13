"""Point the icotronic library at a python-can interface at runtime.

icotronic reads its CAN settings from the Dynaconf object
``icotronic.config.settings`` (section ``can.linux``, ``can.mac`` or
``can.windows`` by ``sys.platform``) when a ``Connection`` is *constructed*,
and its ``__aenter__`` calls ``can.Bus(channel=…, interface=…, bitrate=…)``
with nothing else.  Interface-specific options (such as ``host``/``port`` of
socketcand) therefore cannot travel through icotronic's settings.

Mechanism chosen for those: python-can's in-code configuration dictionary
``can.rc``.  ``can.Bus()`` merges it into every bus it creates (explicit
arguments win, then ``can.rc``, then ``CAN_CONFIG``/``CAN_*`` environment
variables, then config files), so setting ``can.rc["host"]`` and
``can.rc["port"]`` makes icotronic's plain ``can.Bus`` call reach a socketcand
server without touching icotronic's files.  The keys set by the previous call
are removed first, so switching between links in one process is clean.  The
simulator's own bus is created with ``ignore_config=True`` and is not
affected.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import can

_applied_rc_keys: set[str] = set()


def _platform_section() -> str:
    # Same choice as icotronic.can.connection.Connection.__init__
    if sys.platform == "linux":
        return "linux"
    if sys.platform == "darwin":
        return "mac"
    return "windows"


def configure_icotronic(interface: str, channel: str, **bus_kwargs: Any) -> None:
    """Make icotronic's next ``Connection()`` use ``interface``/``channel``.

    Call it before ``icotronic.can.Connection()`` (or icostate's
    ``ICOsystem()``) is constructed; existing connections keep their bus.

    Args:
        interface: python-can interface name, e.g. ``"virtual"`` or
            ``"socketcand"``.
        channel: The channel, e.g. the simulator's ``sim.channel`` or
            ``"can0"`` for socketcand.
        **bus_kwargs: Extra ``can.Bus`` arguments, e.g. ``host="127.0.0.1",
            port=29536`` for socketcand.  ``bitrate`` goes into icotronic's
            settings (it must stay an int there); everything else into
            ``can.rc``.

    Example:
        >>> configure_icotronic("socketcand", "can0", host="127.0.0.1", port=29536)
    """
    from icotronic.config import settings  # import late: builds Dynaconf settings

    section = f"can.{_platform_section()}"
    settings.set(f"{section}.interface", str(interface))
    settings.set(f"{section}.channel", str(channel))
    bitrate = bus_kwargs.pop("bitrate", None)
    if bitrate is not None:
        settings.set(f"{section}.bitrate", int(bitrate))

    for key in _applied_rc_keys:
        can.rc.pop(key, None)
    _applied_rc_keys.clear()
    for key, value in bus_kwargs.items():
        can.rc[key] = value
        _applied_rc_keys.add(key)

    if interface == "socketcand":
        # python-can logs a warning for every TCP read that ends inside a
        # frame, which happens constantly while streaming.
        logging.getLogger("can.interfaces.socketcand").setLevel(logging.ERROR)
        logging.getLogger("can.interfaces.socketcand.socketcand").setLevel(logging.ERROR)
