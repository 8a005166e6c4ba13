"""Benchmark the request protection: what the guard, the body limit and the log
redactor cost per request or line.

Run: ``.venv/bin/python bench/bench_guard.py`` (a few seconds).

Prints microseconds per call of
  1. the request guard (Host, origin and access check) with access control off,
     with 2 tokens and with 200 tokens (every token is compared, in constant time);
  2. the whole middleware stack around an empty app;
  3. the log redactor on an access-log line, with and without registered secrets.

Figures only, no asserts.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from icoapi.access.guard import HostPolicy, RequestGuard
from icoapi.access.protection import add_protection
from icoapi.access.rules import Role
from icoapi.access.tokens import TokenEntry, TokenStore, new_token, token_hash
from icoapi.core.logging import SecretRedactor
from icoapi.core.settings import load_settings

ROUNDS = 20_000


async def _empty_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    pass


def _scope(token: str | None) -> Scope:
    headers = [(b"host", b"127.0.0.1:33215"), (b"origin", b"http://localhost:5173")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/measurement/stop",
        "query_string": b"",
        "headers": headers,
        "client": ("192.0.2.1", 50000),
    }


def _store(count: int) -> tuple[TokenStore, str]:
    tokens = [new_token() for _ in range(count)]
    entries = [TokenEntry(f"t{i}", Role.OPERATOR, token_hash(t)) for i, t in enumerate(tokens)]
    return TokenStore(entries), tokens[-1]


async def _ok(request: Request) -> Response:
    return Response(status_code=204)


def _time(call: Callable[[], Awaitable[None]]) -> float:
    async def run() -> float:
        start = time.perf_counter()
        for _ in range(ROUNDS):
            await call()
        return (time.perf_counter() - start) / ROUNDS * 1e6

    return asyncio.run(run())


def main() -> None:
    logging.disable(logging.WARNING)  # refusals would log at INFO
    print("Request guard, µs per request:")
    for label, count in (("access control off", 0), ("2 tokens", 2), ("200 tokens", 200)):
        store, token = _store(count) if count else (TokenStore(), None)
        guard = RequestGuard(
            _empty_app,
            allowed_origins=["http://localhost:5173"],
            hosts=HostPolicy([]),
            tokens=store,
            trusted_networks=[],
            api_prefix="/api/v1",
        )
        scope = _scope(token)
        per_request = _time(lambda guard=guard, scope=scope: guard(scope, _receive, _send))
        print(f"  {label:20s} {per_request:8.1f}")

    settings = load_settings(env_file=None)
    app = Starlette()
    store, token = _store(2)
    add_protection(app, settings, store)
    app.router.add_route("/api/v1/measurement/stop", _ok, methods=["POST"])
    stack = app.build_middleware_stack()
    scope = _scope(token)
    per_request = _time(lambda: stack(dict(scope), _receive, _send))
    print(f"Whole middleware stack (CORS, guard, limit, safety net), µs: {per_request:.1f}")

    line = '127.0.0.1:50000 - "GET /api/v1/state?api_key=abc%2Bdef HTTP/1.1" 200'
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, line, None, None)
    for label, secrets in (("no secrets", []), ("3 secrets", ["abc+def", "pass word", "k3y/k3y"])):
        redactor = SecretRedactor()
        redactor.register(secrets)
        start = time.perf_counter()
        for _ in range(ROUNDS):
            record.msg, record.args = line, None
            redactor.filter(record)
        per_line = (time.perf_counter() - start) / ROUNDS * 1e6
        print(f"Log redactor, {label}: {per_line:.1f} µs per line")


if __name__ == "__main__":
    main()
