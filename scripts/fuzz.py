"""Fuzz the whole OpenAPI schema with schemathesis against a live server on the
built-in device simulator (``make fuzz``; ``tests/core/test_openapi_contract.py``
runs a short version). Exits non-zero on any server error or response-schema
violation. ``--access-control``: with an operator token in every request and no
trusted networks, so every request also passes the access checks."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from icoapi.access.tokens import add_token
from icoapi.api import create_app
from tests.support import LiveServer, make_settings, simulator_options

CHECKS = "not_a_server_error,response_schema_conformance"


def schemathesis_command(
    url: str, max_examples: int, seed: int, workers: int, token: str | None
) -> list[str]:
    executable = Path(sys.executable).with_name("schemathesis")
    header = [f"--header=Authorization: Bearer {token}"] if token else []
    return [
        str(executable),
        "run",
        f"{url}/openapi.json",
        f"--checks={CHECKS}",
        f"--max-examples={max_examples}",
        f"--seed={seed}",
        f"--workers={workers}",
        "--request-timeout=60",
        "--suppress-health-check=all",
        "--no-color",
        "--output-sanitize=true",
        *header,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--access-control", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="icoapi-fuzz-") as folder:
        token = None
        access: dict[str, object] = {}
        if options.access_control:
            tokens_file = Path(folder) / "tokens.yaml"
            token = add_token(tokens_file, "fuzz", "operator")
            access = {"ICOAPI_TOKENS_FILE": tokens_file, "ICOAPI_TRUSTED_NETWORKS": ""}
        settings = make_settings(
            Path(folder) / "data",
            CAN_INTERFACE="simulator",
            LOG_LEVEL="WARNING",
            LOG_LEVEL_UVICORN="WARNING",
            **access,
        )
        server = LiveServer(create_app(settings, can_bus_options=simulator_options()))
        server.start()
        try:
            command = schemathesis_command(
                server.url, options.max_examples, options.seed, options.workers, token
            )
            # schemathesis keeps a cache in its working folder: not in the checkout.
            return subprocess.run(command, check=False, cwd=folder).returncode
        finally:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
