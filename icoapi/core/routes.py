"""Path patterns of routes, for middleware that acts per route (access rules,
body limits) before the router has matched anything."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RoutePattern:
    """A path pattern such as ``/files/{name}/embedded``: ``{x}`` is one segment."""

    pattern: str
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, pattern: str) -> RoutePattern:
        parts = re.split(r"\{[^}/]+\}", pattern)
        expression = "[^/]+".join(re.escape(part) for part in parts)
        return cls(pattern, re.compile(f"{expression}/?"))

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None

    @property
    def literal_segments(self) -> int:
        """How specific the pattern is: literal paths win over parameters."""
        return sum(1 for part in self.pattern.split("/") if part and "{" not in part)


HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")


def documented_methods(openapi: dict[str, Any], path: str) -> list[str]:
    """The methods the OpenAPI document lists for ``path``: those of the most
    specific matching templates (``/files/analyze`` over ``/files/{name}``)."""
    matching: dict[int, set[str]] = {}
    for template, operations in openapi.get("paths", {}).items():
        pattern = RoutePattern.compile(template)
        if pattern.matches(path):
            matching.setdefault(pattern.literal_segments, set()).update(
                method.upper() for method in operations if method.upper() in HTTP_METHODS
            )
    return sorted(matching[max(matching)]) if matching else []
