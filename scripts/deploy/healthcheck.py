"""Container health check: GET /api/v1/health on the address the settings name.

Reads the settings the way the service does (environment, then /data/.env), so a
port changed in /data/.env is the port checked. Exit 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import sys
import urllib.request

from icoapi.core.settings import load_settings

WILDCARDS = {"0.0.0.0", "::", ""}


def main() -> int:
    settings = load_settings()
    host = settings.VITE_API_HOSTNAME
    if host in WILDCARDS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{settings.VITE_API_PORT}/api/{settings.VITE_API_VERSION}/health"
    try:
        with urllib.request.urlopen(url, timeout=8) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)  # noqa: T201
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
