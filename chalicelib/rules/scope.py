"""Who a rule reaches: its switch, time window, pilot stores and percentage rollout."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

from chalicelib.rules.models import Scoped


def bucket(rule_id: str, member_id: str) -> Decimal:
    """A member's stable position in [0, 100) for one rule: the same every time, so a member in
    a 10% rollout is still in at 20%."""
    digest = hashlib.sha256(f"{rule_id}:{member_id}".encode()).digest()
    return Decimal(int.from_bytes(digest[:8], "big") % 10_000) / 100


def in_scope(rule: Scoped, rule_id: str, member_id: str, store_id: str | None, now: datetime) -> bool:
    if not rule.active_at(now):
        return False
    if rule.pilot_stores and store_id not in rule.pilot_stores:
        return False
    return bucket(rule_id, member_id) < rule.rollout_percent
