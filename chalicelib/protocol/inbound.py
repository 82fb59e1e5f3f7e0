"""The transport-neutral shape of one HTTP request at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.errors import BadRequest, Forbidden


@dataclass(frozen=True)
class Inbound:
    method: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""

    def param(self, name: str) -> str:
        value = self.query.get(name)
        if not value:
            raise Forbidden(f"missing query parameter {name}")
        return value

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def check_fresh(timestamp: str, now: datetime, tolerance_s: int) -> int:
    """Parse a Unix-seconds timestamp and reject it when outside the tolerance window."""
    try:
        value = int(timestamp)
    except ValueError as exc:
        raise Forbidden("timestamp is not an integer") from exc
    if abs(now.timestamp() - value) > tolerance_s:
        raise Forbidden(f"timestamp outside the {tolerance_s}s window")
    return value


def require_int(fields: dict, name: str) -> int:
    try:
        return int(fields[name])
    except KeyError as exc:
        raise BadRequest(f"missing field {name}") from exc
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"field {name} is not an integer") from exc


def require_str(fields: dict, name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"missing field {name}")
    return value
