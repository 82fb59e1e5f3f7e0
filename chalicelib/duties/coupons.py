"""Coupon redemption reported by the POS or mini program marks the coupon redeemed: on its own
(``coupon_redeemed``) or as the coupons an order paid with (``order_paid`` ``coupon_codes``).
Each code is redeemed once, for its own member only (``effects._redeem``)."""

from __future__ import annotations

from datetime import datetime

from chalicelib.duties.common import EventFacts, gather_event
from chalicelib.effects import Effect, RedeemCoupon
from chalicelib.events import Kind
from chalicelib.rules.loader import RuleSet

TRIGGERS = frozenset({Kind.COUPON_REDEEMED, Kind.ORDER_PAID})
CAUSE = "redemption"


gather = gather_event


def decide(facts: EventFacts, rules: RuleSet, now: datetime) -> list[Effect]:
    event = facts.event
    codes = event.data.get("coupon_codes") or [event.data.get("coupon_code")]
    if event.member_id is None:
        return []
    order = event.data.get("order_id")
    return [
        RedeemCoupon(str(code), event.member_id, str(order) if order else None, event.occurred_at)
        for code in dict.fromkeys(codes)
        if code
    ]
