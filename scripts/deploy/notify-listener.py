"""Listen on a datagram socket the way systemd does for a Type=notify service.

    notify-listener.py SOCKET_PATH LOG_FILE

Binds SOCKET_PATH (mode 0666, so the service's user may send), then appends every
message (READY=1, WATCHDOG=1, STATUS=..., STOPPING=1) to LOG_FILE, one per line,
until it gets SIGTERM. Used by scripts/deploy-check.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    path, log = Path(argv[1]), Path(argv[2])
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    os.chmod(path, 0o666)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with log.open("a", encoding="utf-8") as output:
        while True:
            message = listener.recv(4096).decode("utf-8", "replace")
            for line in message.splitlines():
                output.write(line + "\n")
            output.flush()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
