"""Coupon redemption reported by the POS or mini program marks the coupon redeemed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.effects import Effect, RedeemCoupon
from chalicelib.events import Event, Kind
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Member

TRIGGERS = frozenset({Kind.COUPON_REDEEMED})
CAUSE = "redemption"


@dataclass(frozen=True)
class Facts:
    event: Event


def gather(event: Event, member: Member | None, settings: Settings) -> Facts | None:
    return Facts(event) if event.member_id else None


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Effect]:
    event = facts.event
    code = str(event.data.get("coupon_code") or "")
    if not code or event.member_id is None:
        return []
    order = event.data.get("order_id")
    return [RedeemCoupon(code, event.member_id, str(order) if order else None, event.occurred_at)]
