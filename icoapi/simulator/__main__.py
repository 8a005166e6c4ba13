"""Run the simulator as a process: ``python -m icoapi.simulator --port 29536``.

By default it serves the socketcand protocol over TCP, which python-can's
stock ``socketcand`` interface (and so icotronic, the ``icon`` CLI and the
service) can use.  ``--interface``/``--channel`` put it on any python-can bus
instead (e.g. ``udp_multicast``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from .config import SimulatorConfig
from .faults import BURST_INTERVAL, BURST_JITTER, BUS_BITRATE
from .protocol import visible_text
from .server import Simulator
from .socketcand import SocketcandServerBus


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m icoapi.simulator",
        description="Simulated ICOtronic STU with sensor devices.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (TCP)")
    parser.add_argument("--port", type=int, default=29536, help="TCP port (0: pick a free one)")
    parser.add_argument("--devices", type=int, default=3, help="number of sensor devices")
    parser.add_argument(
        "--rate-multiplier", type=float, default=1.0, help="speed factor for streams"
    )
    parser.add_argument(
        "--scan-delay", type=float, default=0.1, help="seconds until scan finds devices"
    )
    parser.add_argument("--connect-delay", type=float, default=0.3, help="seconds to connect")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument(
        "--bus-bitrate",
        type=int,
        default=BUS_BITRATE,
        help="CAN bit rate that limits the stream (0: no limit)",
    )
    parser.add_argument(
        "--burst-interval",
        type=float,
        default=BURST_INTERVAL,
        help="seconds between Bluetooth bursts (0: every frame at its sample time)",
    )
    parser.add_argument(
        "--burst-jitter", type=float, default=BURST_JITTER, help="jitter of the burst interval"
    )
    parser.add_argument(
        "--interface",
        default=None,
        help="use this python-can interface instead of serving TCP socketcand",
    )
    parser.add_argument("--channel", default=None, help="channel for --interface")
    parser.add_argument("--log-level", default="INFO", help="logging level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``icoapi-simulator``)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = SimulatorConfig.default(
        args.devices,
        rate_multiplier=args.rate_multiplier,
        scan_delay=args.scan_delay,
        connect_delay=args.connect_delay,
        seed=args.seed,
    )
    if args.interface is None:
        bus = SocketcandServerBus(args.host, args.port)
        simulator = Simulator(config, interface="socketcand", channel="can0", bus=bus)
        where = f"socketcand on {args.host}:{bus.port} (channel can0)"
    else:
        simulator = Simulator(config, interface=args.interface, channel=args.channel)
        where = f"{args.interface} channel {simulator.channel}"

    simulator.faults.bus_bitrate = args.bus_bitrate or None
    simulator.faults.burst_interval = args.burst_interval
    simulator.faults.burst_jitter = args.burst_jitter

    done = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with simulator:
        # The line tests and scripts wait for: the server listens now.
        print(f"icoapi simulator ready: {where}", flush=True)
        for device in simulator.devices:
            print(
                f"  device {visible_text(device.name)} {device.config.mac} RSSI {device.rssi}",
                flush=True,
            )
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
