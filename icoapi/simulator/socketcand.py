"""Server side of the socketcand protocol (raw mode) as a python-can bus.

python-can's stock ``socketcand`` interface connects to it unmodified.  The
conversation (every message is ``< … >``, ASCII)::

    server: < hi >
    client: < open can0 >        server: < ok >
    client: < rawmode >          server: < ok >
    client: < send 0000A3D1 1 0 >                 (id, dlc, hex bytes)
    server: < frame 0000844F 1732443080.123456 25 >  (id, secs.usecs, hex data)

Frames the simulator sends go to every client in raw mode; frames from
clients go to the simulator only (clients do not hear each other).  Every
client has its own writer thread and output buffer, so a stalled client loses
frames (which its icotronic stream reports as data loss) instead of blocking
the simulator.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import can

log = logging.getLogger(__name__)

HANDSHAKE_GRACE = 0.05
"""Seconds after the raw mode ``< ok >`` before frames flow to a silent client.

python-can reads each handshake answer with a single ``recv`` and compares it
exactly, so a frame (e.g. of a stream a previous client left running) must not
arrive in the same TCP segment as ``< ok >``.  A client that sends a frame is
past its handshake and gets frames at once.
"""
MAX_PENDING_BYTES = 8 * 1024 * 1024
"""Output buffered per client before frames are dropped."""


def format_frame(message: can.Message) -> str:
    """Format a frame as socketcand does in raw mode."""
    if message.is_extended_id:
        identifier = f"{message.arbitration_id & 0x1FFFFFFF:08X}"
    else:
        identifier = f"{message.arbitration_id & 0x7FF:03X}"
    data = bytes(message.data[: message.dlc]).hex().upper()
    # An empty payload still needs the separating space: python-can splits
    # "<id> <time> <data>" and expects three parts.
    return f"< frame {identifier} {message.timestamp:.6f} {data} >"


def parse_send(tokens: list[str]) -> can.Message:
    """Parse the tokens of ``< send <id> <dlc> <byte>… >`` into a message."""
    identifier, length = tokens[1], int(tokens[2], 16)
    data = bytes(int(token, 16) for token in tokens[3 : 3 + length])
    return can.Message(
        timestamp=time.time(),
        arbitration_id=int(identifier, 16),
        is_extended_id=len(identifier) > 3,
        dlc=length,
        data=data,
        is_rx=True,
    )


class _Client:
    """One TCP connection."""

    def __init__(self, server: SocketcandServerBus, sock: socket.socket, address: str) -> None:
        self.server = server
        self.sock = sock
        self.address = address
        self.ready_at: float | None = None
        """Monotonic time from which frames are forwarded (raw mode)."""
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._condition = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(
            target=self._read_loop, name=f"socketcand-rx-{address}", daemon=True
        )
        self._writer = threading.Thread(
            target=self._write_loop, name=f"socketcand-tx-{address}", daemon=True
        )

    def start(self) -> None:
        self.write(b"< hi >", control=True)
        self._writer.start()
        self._reader.start()

    def write(self, data: bytes, control: bool = False) -> None:
        with self._condition:
            if self._closed:
                return
            if not control and self._pending_bytes > MAX_PENDING_BYTES:
                return  # a stalled client loses frames, its stream counts them
            self._pending.append(data)
            self._pending_bytes += len(data)
            self._condition.notify()

    def wants_frames(self, now: float) -> bool:
        return self.ready_at is not None and now >= self.ready_at and not self._closed

    def close(self) -> None:
        with self._condition:
            if self._closed:
                return
            self._closed = True
            self._condition.notify()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.server._forget(self)

    def join(self, timeout: float) -> None:
        for thread in (self._reader, self._writer):
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout)

    def _write_loop(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                chunk = b"".join(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
            try:
                self.sock.sendall(chunk)
            except OSError:
                self.close()
                return

    def _read_loop(self) -> None:
        buffer = ""
        while True:
            try:
                received = self.sock.recv(65536)
            except OSError:
                received = b""
            if not received:
                self.close()
                return
            buffer += received.decode("ascii", errors="replace")
            while True:
                start = buffer.find("<")
                end = buffer.find(">", start + 1)
                if start < 0 or end < 0:
                    if start < 0:
                        buffer = ""
                    break
                command = buffer[start + 1 : end]
                buffer = buffer[end + 1 :]
                self._handle(command.split())

    def _handle(self, tokens: list[str]) -> None:
        if not tokens:
            return
        verb = tokens[0]
        if verb == "send":
            try:
                message = parse_send(tokens)
            except (IndexError, ValueError):
                self.write(b"< error could not parse send >", control=True)
                return
            if self.ready_at is not None:
                # A client that sends has finished its handshake: answers to
                # its first request must not fall into the grace period.
                self.ready_at = min(self.ready_at, time.monotonic())
            self.server._received(message)
        elif verb == "open":
            self.write(b"< ok >", control=True)
        elif verb == "rawmode":
            self.write(b"< ok >", control=True)
            self.ready_at = time.monotonic() + HANDSHAKE_GRACE
        elif verb == "echo":
            self.write(b"< echo >", control=True)
        else:
            self.write(f"< error unknown command {verb} >".encode("ascii", "replace"), control=True)


class SocketcandServerBus(can.BusABC):
    """A python-can bus that serves the socketcand protocol over TCP.

    Args:
        host: Address to listen on.
        port: TCP port; ``0`` picks a free one (see :attr:`port`).
        channel: Name of the served CAN channel (clients ``open`` any name).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 29536,
        channel: str = "can0",
        **kwargs: Any,
    ) -> None:
        self._server = socket.create_server((host, port))
        self.host = host
        self.port: int = self._server.getsockname()[1]
        self._rx: queue.Queue[can.Message] = queue.Queue()
        self._clients: list[_Client] = []
        self._clients_lock = threading.Lock()
        self._closed = False
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="socketcand-accept", daemon=True
        )
        self.channel = channel
        self.channel_info = f"socketcand server {channel} on {host}:{self.port}"
        super().__init__(channel=channel, **kwargs)
        self._accept_thread.start()

    @property
    def clients(self) -> int:
        """Number of connected clients."""
        with self._clients_lock:
            return len(self._clients)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, address = self._server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(self, sock, f"{address[0]}:{address[1]}")
            with self._clients_lock:
                self._clients.append(client)
            log.info("socketcand client %s connected", client.address)
            client.start()

    def _forget(self, client: _Client) -> None:
        with self._clients_lock:
            if client in self._clients:
                self._clients.remove(client)
                log.info("socketcand client %s disconnected", client.address)

    def _received(self, message: can.Message) -> None:
        self._rx.put(message)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        try:
            return self._rx.get(timeout=timeout), False
        except queue.Empty:
            return None, False

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        """Send one frame to every client in raw mode."""
        self.send_many((msg,))

    def send_many(self, messages: Sequence[can.Message]) -> None:
        """Send frames to every client in raw mode, in one TCP write each."""
        now = time.monotonic()
        with self._clients_lock:
            targets = [client for client in self._clients if client.wants_frames(now)]
        if not targets:
            return
        payload = "".join([format_frame(message) for message in messages]).encode("ascii")
        for client in targets:
            client.write(payload)

    def shutdown(self) -> None:
        """Close the listening socket and all client connections."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            client.close()
        for client in clients:
            client.join(2)
        self._accept_thread.join(2)
        super().shutdown()
