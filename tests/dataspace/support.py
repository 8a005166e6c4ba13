"""Real servers for the dataspace tests, all on loopback with ephemeral ports:
moto's S3 server, a Trident stand-in that issues presigned URLs to it, and a
proxy in front of S3 that can corrupt uploads."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import tables
import yaml

from icoapi.dataspace.service import DataspaceOptions
from tests.files.helpers import write_measurement

HEADER = {
    "schema_name": "dataspace_schema",
    "schema_version": "1.0.0",
    "config_name": "Test Dataspace",
    "config_version": "1.0.0",
    "config_date": "2025-01-01T00:00:00+00:00",
}
# Short delays: a test's outage lasts a moment, not minutes.
FAST = DataspaceOptions(
    connect_timeout=2.0,
    read_timeout=2.0,
    part_size=5 * 1024 * 1024,
    backoff_initial=0.05,
    backoff_max=0.3,
    max_attempts=2,
    listing_ttl=3600,
    listing_fresh=0.0,
)
TEST_KEY_ID = "AKIDTESTTESTTEST"
TEST_SECRET = "test-secret-access-key-do-not-log"


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """A real S3 server (moto) on 127.0.0.1; yields its endpoint URL. Its access
    log (werkzeug) is silenced: in this process it would land in the service's
    log file, with the presigned URLs the tests check that the service never logs."""
    # moto and boto3 take half a second to import: only where a test needs them.
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, actual = server.get_host_and_port()
    try:
        yield f"http://{host}:{actual}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-central-1",
        aws_access_key_id=TEST_KEY_ID,
        aws_secret_access_key=TEST_SECRET,
    )


def new_bucket(endpoint: str) -> str:
    """A bucket of its own (moto's state is shared by the servers of a process)."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client(endpoint).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    return name


def write_config(data_dir: Path, connection: dict[str, Any]) -> None:
    folder = data_dir / "config"
    folder.mkdir(parents=True, exist_ok=True)
    document = {"info": HEADER, "connection": connection}
    (folder / "dataspace.yaml").write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")


def s3_connection(endpoint: str, bucket: str, **overrides: Any) -> dict[str, Any]:
    connection = {
        "enabled": True,
        "connector": "s3",
        "endpoint_url": endpoint,
        "region": "eu-central-1",
        "bucket": bucket,
        "bucket_folder": "site-a",
        "access_key_id": TEST_KEY_ID,
        "secret_access_key": TEST_SECRET,
        "auto_upload": False,
    }
    connection.update(overrides)
    return connection


def measurement(folder: Path, name: str, extra_bytes: int = 0, frames: int = 500) -> Path:
    """A real measurement file; ``extra_bytes`` of incompressible data make it large."""
    folder.mkdir(parents=True, exist_ok=True)
    path = write_measurement(
        folder / name,
        frames=frames,
        metadata={
            "version": "1",
            "profile": "milling",
            "parameters": {"tool": "T1", "tool_pictures": {"0": "iVBORw0KGgo=", "1": "AAAA"}},
        },
    )
    if extra_bytes:
        import numpy as np

        noise = np.random.default_rng(1).integers(0, 256, extra_bytes, dtype=np.uint8)
        with tables.open_file(str(path), "a") as h5:
            h5.create_array("/", "noise", noise)
    return path


# -- Trident stand-in -------------------------------------------------------------------


@dataclass
class TridentEntry:
    id: int
    name: str
    key: str
    metadata: Any
    virtual_group: Any
    status: str | None = None  # set: last_status whatever S3 holds (e.g. deleted)


@dataclass
class TridentStandIn:
    """The Trident endpoints the service uses, under ``/api``: login, refresh,
    paged listing (``page_size`` per page, 1-based), presigned upload and
    update URLs pointing at the S3 server."""

    s3_endpoint: str
    bucket: str
    username: str = "operator"
    password: str = "correct horse"
    page_size: int = 2
    mode: str = "ok"  # ok, garbage, slow, error500, conflict (new objects: 409)
    upload_endpoint: str | None = None  # presigned URLs point here (a proxy) if set
    entries: dict[int, TridentEntry] = field(default_factory=dict)
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    logins: int = 0
    refreshes: int = 0
    unauthorized: int = 0
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.s3 = s3_client(self.s3_endpoint)
        self.presigner = s3_client(self.upload_endpoint or self.s3_endpoint)
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stand_in.handle(self, "GET")

            def do_POST(self) -> None:
                stand_in.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def connection(self, **overrides: Any) -> dict[str, Any]:
        connection = {
            "enabled": True,
            "connector": "trident",
            "protocol": "http",
            "domain": self.url.removeprefix("http://"),
            "base_path": "api",
            "username": self.username,
            "password": self.password,
            "bucket": self.bucket,
            "manage_assets_path": "assets",
            "virtual_group_root": "machines",
            "auto_upload": False,
        }
        connection.update(overrides)
        return connection

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def expire_tokens(self) -> None:
        """Access tokens stop working (the next request gets 401)."""
        with self.lock:
            self.access_tokens.clear()

    def add_entry(self, name: str) -> TridentEntry:
        with self.lock:
            entry = TridentEntry(len(self.entries) + 1, name, f"trident/{name}", {}, None)
            self.entries[entry.id] = entry
            return entry

    # -- request handling ---------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"null")
        with self.lock:
            self.requests.append(f"{method} {parts.path}")
        if self.mode == "slow":
            self.release.wait(30)
        if self.mode == "garbage":
            return self.send(request, 200, b"<html>surprise</html>", "text/html")
        if self.mode == "error500":
            return self.send_json(request, 500, {"detail": "maintenance"})
        route = (method, parts.path)
        if route == ("POST", "/api/auth/login"):
            return self.login(request, body)
        if route == ("POST", "/api/auth/refresh"):
            return self.refresh(request, body)
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.lock:
            valid = token in self.access_tokens
            if not valid:
                self.unauthorized += 1
        if not valid:
            return self.send_json(request, 401, {"detail": "Unauthorized"})
        if route == ("GET", "/api/management/files"):
            query = parse_qs(parts.query)
            page = int(query.get("page", ["1"])[0])
            return self.listing(request, page)
        if route == ("POST", "/api/management/files"):
            if self.mode == "conflict":
                return self.send_json(request, 409, {"detail": "File already exists"})
            entry = self.add_entry(body["name"])
            entry.metadata = body["metadata"]
            entry.virtual_group = body.get("virtual_group")
            return self.send_json(request, 201, {"presignedUrl": self.presign(entry)})
        if method == "GET" and parts.path.startswith("/api/management/files/"):
            identifier = parts.path.split("/")[4]
            entry_for = self.entries.get(int(identifier)) if identifier.isdigit() else None
            if entry_for is None or not parts.path.endswith("/upload-url"):
                return self.send_json(request, 404, {"detail": "Not found"})
            return self.send_json(request, 200, {"presignedUrl": self.presign(entry_for)})
        return self.send_json(request, 404, {"detail": "Not found"})

    def login(self, request: BaseHTTPRequestHandler, body: Any) -> None:
        with self.lock:
            self.logins += 1
        if body != {"username": self.username, "password": self.password}:
            return self.send_json(request, 401, {"detail": "Invalid credentials"})
        self.send_json(request, 200, self.tokens())

    def refresh(self, request: BaseHTTPRequestHandler, body: Any) -> None:
        with self.lock:
            self.refreshes += 1
            known = isinstance(body, dict) and body.get("refresh_token") in self.refresh_tokens
        if not known:
            return self.send_json(request, 401, {"detail": "Invalid refresh token"})
        self.send_json(request, 200, self.tokens())

    def tokens(self) -> dict[str, str]:
        access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        with self.lock:
            self.access_tokens.add(access)
            self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh}

    def presign(self, entry: TridentEntry) -> str:
        url: str = self.presigner.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": entry.key}, ExpiresIn=600
        )
        return url

    def details(self, entry: TridentEntry) -> dict[str, Any]:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=entry.key)
        except Exception:
            head = None
        return {
            "id": entry.id,
            "bucket": self.bucket,
            "objectname": entry.key,
            "name": entry.name,
            "description": None,
            "metadata": entry.metadata,
            "created_at": "2025-01-01T00:00:00Z",
            "s3_lastmodified": head["LastModified"].isoformat() if head else None,
            "s3_size": head["ContentLength"] if head else 0,
            "origin": "icoapi",
            "author": self.username,
            "type": "hdf5",
            "etag": head["ETag"] if head else None,
            "last_status": entry.status or ("available" if head else "created"),
            "last_status_time": "2025-01-01T00:00:00Z",
            "secrets_count": 0,
            "access_total_count": 0,
            "access_week_count": 0,
            "last_access_time": None,
            "active_offerings_count": 0,
            "virtual_group": entry.virtual_group,
        }

    def listing(self, request: BaseHTTPRequestHandler, page: int) -> None:
        with self.lock:
            entries = sorted(self.entries.values(), key=lambda e: e.id)
        chunk = entries[(page - 1) * self.page_size : page * self.page_size]
        self.send_json(
            request,
            200,
            {
                "files": [self.details(entry) for entry in chunk],
                "total": len(entries),
                "page": page,
                "size": self.page_size,
            },
        )

    @staticmethod
    def send_json(request: BaseHTTPRequestHandler, status: int, document: Any) -> None:
        TridentStandIn.send(request, status, json.dumps(document).encode(), "application/json")

    @staticmethod
    def send(request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


# -- a proxy in front of S3 ---------------------------------------------------------------


class CorruptingProxy:
    """Forwards every request to ``target``; with ``corrupt`` set, flips one byte
    of each PUT body and drops its Content-MD5, as a faulty store or network path
    would (the store then keeps bytes that differ from the file); with
    ``drop_puts``, closes the connection of that many PUTs instead of answering."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.corrupt = False
        # hold_puts: the next PUT waits (``held`` set) until ``release`` is set.
        self.hold_puts = False
        # drop_puts: so many PUTs are read and then answered by a closed connection.
        self.drop_puts = 0
        self.puts = 0
        self.held = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                if self.command == "PUT":
                    proxy.puts += 1
                if proxy.drop_puts and self.command == "PUT":
                    proxy.drop_puts -= 1
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if proxy.hold_puts and self.command == "PUT":
                    proxy.hold_puts = False
                    proxy.held.set()
                    proxy.release.wait(30)
                if proxy.corrupt and self.command == "PUT" and body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                    headers = {k: v for k, v in headers.items() if k.lower() != "content-md5"}
                connection = http.client.HTTPConnection(
                    proxy.target.hostname, proxy.target.port, timeout=30
                )
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    skipped = ("transfer-encoding", "connection")
                    if self.command != "HEAD":
                        skipped += ("content-length",)
                    for key, value in response.getheaders():
                        if key.lower() not in skipped:
                            self.send_header(key, value)
                    if self.command != "HEAD":
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    connection.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def wait_until(predicate: Any, timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``predicate`` (an HTTP query of the service) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
