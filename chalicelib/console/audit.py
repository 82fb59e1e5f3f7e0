"""The console's audit log: every change made through the console, who made it, when, and what
came of it (``ConsoleAction``, one item per change). Reads (a member's profile, a KPI page) are
not changes and are not logged here; the structured logs have the requests.

The target is a ticket id, a rule version or an erase's pseudonym — never a member id (an erased
member must not stay named in the log of their erase) — and staff notes stay on the ticket.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.console.auth import Principal
from chalicelib.logs import log
from chalicelib.state.models import ConsoleAction
from chalicelib.store import db, keys

KEEP = timedelta(days=730)


def record(
    principal: Principal, action: str, target: str, outcome: str, now: datetime, **detail: str | int | None
) -> ConsoleAction:
    item = ConsoleAction(
        keys.audit_month(now),
        keys.audit_entry(now, uuid.uuid4().hex[:8]),
        at=now,
        user=principal.user,
        role=principal.role,
        action=action,
        target=target,
        outcome=outcome,
        detail=json.dumps(detail, ensure_ascii=False) if detail else None,
        expires=now + KEEP,
    )
    db.put(item)
    log("console.audit", action=action, target=target, outcome=outcome, role=principal.role)
    return item


def recent(principal: Principal, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """The newest changes of this month and the last (ops: everyone's; a store manager: their own)."""
    found: list[ConsoleAction] = []
    month_start = now.astimezone(UTC).replace(day=1)
    for month in (keys.audit_month(now), keys.audit_month(month_start - timedelta(days=1))):
        for item in ConsoleAction.query(month, scan_index_forward=False, limit=limit):
            if principal.is_ops or item.user == principal.user:
                found.append(item)
        if len(found) >= limit:
            break
    return [
        {
            "at": item.at.isoformat(),
            "user": item.user,
            "role": item.role,
            "action": item.action,
            "target": item.target,
            "outcome": item.outcome,
            "detail": json.loads(item.detail) if item.detail else {},
        }
        for item in found[:limit]
    ]
