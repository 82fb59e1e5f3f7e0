"""Coupon redemption reported by the POS or mini program marks the coupon redeemed: on its own
(``coupon_redeemed``) or as the coupons an order paid with (``order_paid`` ``coupon_codes``).
A coupon is redeemed once, ever, by the first event that reports it for its own member
(``effects._redeem``); every later report — another order, another member — is refused and
counted nowhere, and the webhook's answer says why (``results``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.duties.common import EventFacts, gather_event
from chalicelib.effects import Effect, RedeemCoupon, refusal
from chalicelib.events import Event, Kind
from chalicelib.rules.loader import RuleSet
from chalicelib.state.models import Coupon

TRIGGERS = frozenset({Kind.COUPON_REDEEMED, Kind.ORDER_PAID})
CAUSE = "redemption"


gather = gather_event


def codes_of(event: Event) -> list[str]:
    """The codes the event reports, each once, in the order given."""
    codes = event.data.get("coupon_codes") or [event.data.get("coupon_code")]
    return [str(code) for code in dict.fromkeys(codes) if code]


def decide(facts: EventFacts, rules: RuleSet, now: datetime) -> list[Effect]:
    event = facts.event
    if event.member_id is None:
        return []
    order = event.data.get("order_id")
    return [
        RedeemCoupon(code, event.member_id, str(order) if order else None, event.occurred_at, event.event_id)
        for code in codes_of(event)
    ]


def results(event: Event) -> list[dict[str, Any]]:
    """What became of each reported code, for the webhook's answer (a retry answers the same):
    ``redeemed`` by this event, or the reason it was not — ``unknown``, ``not_this_member``, or
    ``used`` with the order that used it."""
    answers = []
    for code in codes_of(event):
        try:
            coupon: Coupon | None = Coupon.get(code, consistent_read=True)
        except Coupon.DoesNotExist:
            coupon = None
        if coupon is not None and coupon.redeemed_event == event.event_id:
            answers.append({"code": code, "redeemed": True})
            continue
        answer: dict[str, Any] = {"code": code, "redeemed": False, "reason": refusal(coupon, event.member_id or "")}
        if answer["reason"] == "used" and coupon is not None and coupon.redeemed_order:
            answer["used_by_order"] = coupon.redeemed_order
        answers.append(answer)
    return answers
