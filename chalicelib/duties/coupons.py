"""Coupon redemption reported by the POS or mini program marks the coupon redeemed."""

from __future__ import annotations

from datetime import datetime

from chalicelib.duties.common import EventFacts, gather_event
from chalicelib.effects import Effect, RedeemCoupon
from chalicelib.events import Kind
from chalicelib.rules.loader import RuleSet

TRIGGERS = frozenset({Kind.COUPON_REDEEMED})
CAUSE = "redemption"


gather = gather_event


def decide(facts: EventFacts, rules: RuleSet, now: datetime) -> list[Effect]:
    event = facts.event
    code = str(event.data.get("coupon_code") or "")
    if not code or event.member_id is None:
        return []
    order = event.data.get("order_id")
    return [RedeemCoupon(code, event.member_id, str(order) if order else None, event.occurred_at)]
