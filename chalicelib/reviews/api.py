"""``POST /admin/tickets/{ticket_id}``: staff record what they did about a negative review.

Body: ``{"action": "respond" | "resolve" | "follow_up", "by": "店长王", "note": "…"}``; ``by``
defaults to the caller. Answers the ticket as it now is; a repeated action answers the same.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import BadRequest
from chalicelib.reviews import tickets
from chalicelib.runtime import Context


def record(ctx: Context, caller: str, ticket_id: str, body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise BadRequest("body must be a JSON object")
    unknown = set(request) - {"action", "by", "note"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    action, by, note = request.get("action"), request.get("by", caller), request.get("note")
    if not isinstance(action, str) or not isinstance(by, str) or not isinstance(note, str | None):
        raise BadRequest("action and by are strings, note a string or null")
    rules = ctx.rules()
    ticket = tickets.record(ticket_id, action, by, note, rules, ctx.clock.now())  # type: ignore[arg-type]
    return tickets.view(ticket, rules)


def show(ctx: Context, ticket_id: str) -> dict[str, Any]:
    return tickets.view(tickets.get(ticket_id), ctx.rules())
