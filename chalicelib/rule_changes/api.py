"""The admin API of rule sets: the same checks and versions as the CLI, over HTTP.

    GET  /admin/rules                      active version, its files, the version history
    PUT  /admin/rules                      {"note": "...", "files": {"welcome.json": <text or object>, ...}}
    POST /admin/rules/{version}/activate   {"note": "..."} (optional): roll back / forward

``If-Match: v7`` makes a write conditional on v7 being active (409 otherwise). A file given as
an object is pretty-printed before checking, so problem lines refer to that printed text; send
files as text to get line numbers of your own file.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from chalicelib.errors import BadRequest
from chalicelib.rules import versions
from chalicelib.rules.loader import active
from chalicelib.runtime import Context


def _number(text: str) -> int | None:
    """``v7`` or ``7`` → 7. ASCII digits only: ``str.isdigit`` also passes "²", which ``int`` refuses."""
    value = text.strip().strip('"').lstrip("vV")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 8 else None


def _expected(if_match: str | None) -> int | None:
    if not if_match:
        return None
    number = _number(if_match)
    if number is None:
        raise BadRequest("If-Match must name a version, e.g. v7")
    return number


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}", parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; arrays nested thousands deep
        raise BadRequest(f"body is not usable JSON: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, indent=2, default=_decimal) + "\n"
    raise BadRequest(f"files/{name} must be the file's text or its JSON object")


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    raise TypeError(type(value).__name__)


def show(ctx: Context) -> dict[str, Any]:
    current = active(ctx.settings)
    pointer = versions.active_pointer()
    return {
        "active": current.version,
        "content_hash": current.content_hash,
        "activated_at": pointer.created_at.isoformat() if pointer else None,
        "activated_by": pointer.author if pointer else None,
        "files": dict(current.files),
        "versions": [
            {
                "version": f"v{int(r.version)}",
                "created_at": r.created_at.isoformat(),
                "author": r.author,
                "note": r.note,
                "content_hash": r.content_hash,
            }
            for r in versions.history()
        ],
    }


def publish(ctx: Context, caller: str, body: bytes, if_match: str | None) -> dict[str, Any]:
    data = _json_body(body)
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise BadRequest('body needs "files": {"welcome.json": ..., "stores.json": ...}')
    texts = {str(name): _as_text(str(name), value) for name, value in files.items()}
    result = versions.publish(
        texts, note=str(data.get("note") or ""), author=caller, now=ctx.clock.now(), expected_active=_expected(if_match)
    )
    return {
        "active": f"v{result.version}",
        "previous": f"v{result.previous}" if result.previous else None,
        "changed": result.changed,
    }


def activate(ctx: Context, caller: str, version: str, body: bytes, if_match: str | None) -> dict[str, Any]:
    number = _number(version)
    if number is None:
        raise BadRequest("version must look like v7 or 7")
    note = str(_json_body(body).get("note") or "rollback")
    result = versions.activate(
        number, author=caller, now=ctx.clock.now(), note=note, expected_active=_expected(if_match)
    )
    return {
        "active": f"v{result.version}",
        "previous": f"v{result.previous}" if result.previous else None,
        "changed": result.changed,
    }
