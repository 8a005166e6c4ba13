"""Which role each route needs.

Every HTTP route and WebSocket of the API has an entry in :data:`RULES`, keyed by
method and path pattern (relative to the API prefix, ``{name}`` standing for one
path segment); routes outside the API (``/metrics``) are in :data:`SERVER_RULES`.
``tests/access/test_rules.py`` walks the application's routes, so a new route
without a rule fails the tests. A request that matches no rule (an
unknown path) needs the operator role: access control fails closed.
"""

from __future__ import annotations

from enum import IntEnum

from icoapi.core.routes import RoutePattern


class Role(IntEnum):
    """Roles in increasing power: a role may do everything a lower one may."""

    PUBLIC = 0
    METRICS = 1  # Prometheus: /metrics only
    VIEWER = 2
    OPERATOR = 3

    @property
    def label(self) -> str:
        return self.name.lower()


# "WS" stands for a WebSocket handshake.
WEBSOCKET = "WS"

PUBLIC, METRICS, VIEWER, OPERATOR = Role.PUBLIC, Role.METRICS, Role.VIEWER, Role.OPERATOR

RULES: dict[tuple[str, str], Role] = {
    # General
    ("GET", "/health"): PUBLIC,
    ("GET", "/state"): VIEWER,
    (WEBSOCKET, "/state"): VIEWER,
    ("PUT", "/reset-can"): OPERATOR,
    # Hardware: every call talks to the STU or a sensor device over CAN and takes
    # the hardware, reads included.
    ("GET", "/stu"): OPERATOR,
    ("PUT", "/stu/reset"): OPERATOR,
    ("GET", "/stu/connected"): OPERATOR,
    ("GET", "/sth"): OPERATOR,
    ("PUT", "/sth/connect"): OPERATOR,
    ("PUT", "/sth/disconnect"): OPERATOR,
    ("PUT", "/sth/rename"): OPERATOR,
    ("GET", "/sth/read-adc"): OPERATOR,
    ("PUT", "/sth/write-adc"): OPERATOR,
    ("GET", "/sth/supply-voltage"): OPERATOR,
    # Measurement
    ("GET", "/measurement"): VIEWER,
    ("POST", "/measurement/start"): OPERATOR,
    ("POST", "/measurement/stop"): OPERATOR,
    ("POST", "/measurement/post_meta"): OPERATOR,
    (WEBSOCKET, "/measurement/stream"): VIEWER,
    # Measurement files
    ("GET", "/files"): VIEWER,
    ("POST", "/files/analyze"): OPERATOR,
    ("GET", "/files/analyze/meta/{name}"): VIEWER,
    ("GET", "/files/analyze/{name}"): VIEWER,
    ("POST", "/files/pre_meta/{name}"): OPERATOR,
    ("POST", "/files/post_meta/{name}"): OPERATOR,
    ("POST", "/files/{name}/embedded"): OPERATOR,
    ("GET", "/files/{name}/embedded/{dataset_name}"): VIEWER,
    ("DELETE", "/files/{name}/embedded/{dataset_name}"): OPERATOR,
    ("GET", "/files/{name}"): VIEWER,
    ("DELETE", "/files/{name}"): OPERATOR,
    # Sensor definitions
    ("GET", "/sensor"): VIEWER,
    # Configuration: the dataspace file holds credentials (masked, but still the
    # account name and server), backups and restores change what the service does.
    ("GET", "/config/meta"): VIEWER,
    ("POST", "/config/meta"): OPERATOR,
    ("GET", "/config/sensors"): VIEWER,
    ("POST", "/config/sensors"): OPERATOR,
    ("GET", "/config/dataspace"): OPERATOR,
    ("POST", "/config/dataspace"): OPERATOR,
    ("GET", "/config/backup"): VIEWER,
    ("PUT", "/config/restore"): OPERATOR,
    # Logs
    ("GET", "/logs"): VIEWER,
    ("GET", "/logs/view"): VIEWER,
    ("GET", "/logs/download/{file}"): VIEWER,
    ("GET", "/logs/all"): VIEWER,
    (WEBSOCKET, "/logs/stream"): VIEWER,
    # Dataspace (cloud)
    ("GET", "/cloud"): VIEWER,
    ("GET", "/cloud/queue"): VIEWER,
    ("GET", "/cloud/queue/{job_id}"): VIEWER,
    ("POST", "/cloud/upload"): OPERATOR,
    ("POST", "/cloud/update"): OPERATOR,
    ("POST", "/cloud/authenticate"): OPERATOR,
    ("POST", "/cloud/queue/{job_id}/retry"): OPERATOR,
    ("POST", "/cloud/queue/{job_id}/cancel"): OPERATOR,
}

# Routes at the server root, outside the API prefix (absolute paths). Paths not
# named here or under the prefix (the documentation pages) need no token.
SERVER_RULES: dict[tuple[str, str], Role] = {
    ("GET", "/metrics"): METRICS,
}


class RuleBook:
    """Looks up the role a request needs, by method and path below the API prefix."""

    def __init__(self, rules: dict[tuple[str, str], Role] = RULES) -> None:
        compiled = [
            (method, RoutePattern.compile(path), role) for (method, path), role in rules.items()
        ]
        # Most literal segments first: "/files/analyze/{name}" before "/files/{name}".
        compiled.sort(key=lambda item: -item[1].literal_segments)
        self._compiled = compiled

    def rule(self, method: str, path: str) -> Role | None:
        """The role the route needs, or ``None`` if no rule names it."""
        method = "GET" if method == "HEAD" else method
        for rule_method, pattern, role in self._compiled:
            if rule_method == method and pattern.matches(path):
                return role
        return None

    def required(self, method: str, path: str) -> Role:
        rule = self.rule(method, path)
        return OPERATOR if rule is None else rule

    @staticmethod
    def server_rule(method: str, path: str) -> Role | None:
        """The role a route outside the API prefix needs, or ``None``."""
        method = "GET" if method == "HEAD" else method
        return SERVER_RULES.get((method, path.rstrip("/") or "/"))
