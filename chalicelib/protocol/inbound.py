"""The transport-neutral shape of one HTTP request at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib.errors import BadRequest, Forbidden

# The instants a callback or an order may carry: Unix time up to 2100. Outside them a date is
# garbage; far outside, datetime cannot even hold it (before year 1, after 9999).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Inbound:
    method: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""
    path: str = ""  # the route's path with its parameters, without the API stage: /pos/members/MC…

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
    now_s = now.timestamp()
    if not now_s - tolerance_s <= value <= now_s + tolerance_s:  # compared, not subtracted: no float overflow
        raise Forbidden(f"timestamp outside the {tolerance_s}s window")
    return value


def require_int(fields: dict, name: str) -> int:
    try:
        return int(fields[name])
    except KeyError as exc:
        raise BadRequest(f"missing field {name}") from exc
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"field {name} is not an integer") from exc


def require_time(fields: dict, name: str) -> int:
    """A Unix-seconds field between ``EARLIEST`` and ``LATEST``."""
    value = require_int(fields, name)
    if not EARLIEST.timestamp() <= value < LATEST.timestamp():
        raise BadRequest(f"field {name} is not a time between {EARLIEST.year} and {LATEST.year}")
    return value


def require_str(fields: dict, name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"missing field {name}")
    return value
