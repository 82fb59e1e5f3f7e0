"""The console's other changes: answering a review ticket and erasing a member. Each calls the
function the admin API calls (``reviews.api.record``, ``privacy.erase.erase``) — the console never
writes those tables itself — after checking the principal's role and stores, and leaves one
entry in the audit log.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.console import audit, views
from chalicelib.console.auth import Principal
from chalicelib.errors import BadRequest, Conflict
from chalicelib.privacy import erase
from chalicelib.reviews import api as tickets_api
from chalicelib.reviews import tickets
from chalicelib.runtime import Context


def _body(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def record_ticket(ctx: Context, principal: Principal, ticket_id: str, raw: bytes) -> dict[str, Any]:
    """``{"action": "respond" | "resolve" | "follow_up", "note": "…"}``; ``by`` is the user, or the
    name they give (a store's login may be shared by its staff: "店长王")."""
    before = views.ticket(principal, ctx.rules(), ticket_id)
    data = _body(raw)
    by = data.get("by") or principal.user
    body = json.dumps({"action": data.get("action"), "by": by, "note": data.get("note") or None}).encode()
    action = str(data.get("action"))
    now = ctx.clock.now()
    try:
        answer = tickets_api.record(ctx, principal.user, ticket_id, body)
    except Conflict:
        audit.record(principal, f"ticket.{action}", ticket_id, "conflict", now, status=before.status)
        raise
    if answer["status"] != before.status:
        audit.record(principal, f"ticket.{action}", ticket_id, "ok", now, status=answer["status"], by=str(by)[:40])
    return answer


def ticket_view(ctx: Context, principal: Principal, ticket_id: str) -> dict[str, Any]:
    rules = ctx.rules()
    return tickets.view(views.ticket(principal, rules, ticket_id), rules)


def erase_member(ctx: Context, principal: Principal, member_id: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """Erase after a confirmation that repeats the member id (``{"confirm": "<id>"}``). 200 when
    done, 202 when the time budget ran out first (the page calls again)."""
    views.erasable(principal, member_id)
    if _body(raw).get("confirm") != member_id:
        raise BadRequest("confirm: type the member id to confirm the erase")
    result = erase.erase(ctx, member_id, f"console:{principal.user}", budget_s=erase.API_BUDGET_S)
    audit.record(principal, "member.erase", result.pseudonym, result.status, ctx.clock.now(), erasure=result.erasure)
    return (200 if result.erased else 202), result.as_dict()
