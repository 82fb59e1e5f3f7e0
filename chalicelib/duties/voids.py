"""A till voids a coupon's redemption for a cancelled order (``coupon_voided``, from
``POST /pos/coupons/{code}/void``): the coupon is its member's again, to use on another order.

Only the order that redeemed it, at the store that redeemed it, within the rules' window
(loyalty.json ``till.void_window_minutes``) may void it. The void is written on the condition that
this order still holds the coupon and no other void came first (the coupon's ``voids``, read with
the event), so a retry answers the same and two voids at once undo one redemption. In the same
commit the day the coupon was redeemed counts it redeemed once less (and ``coupons_voided`` once
more), and a recall or challenge coupon's redemption leaves its decision record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.counters import CHAIN
from chalicelib.duties.redemption import RECALL_CAUSES
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import AddCounters, Instruction, UnlinkRedemption, VoidRedemption, new
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Coupon, Member
from chalicelib.store import db, keys

TRIGGERS = frozenset({Kind.COUPON_VOIDED})
CAUSE = "void"


@dataclass(frozen=True)
class Facts:
    event: Event
    coupon: Coupon | None


def prefetch(event: Event, settings: Settings) -> list[db.Key]:
    return [(Coupon, str(event.data["coupon_code"]), None)]


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    return Facts(event, reads.get(Coupon, str(event.data["coupon_code"])))


def refusal(coupon: Coupon | None, store_id: str, order_id: str, window: timedelta | None, now: datetime) -> str | None:
    """Why this till may not void the coupon's redemption by this order now; None when it may.
    ``window`` None: judged without the time (the answer of a void decided earlier)."""
    if coupon is None:
        return "unknown"
    if coupon.status != "redeemed":
        return "not_redeemed" if coupon.status == "issued" else str(coupon.status)
    if coupon.redeemed_order != order_id:
        return "other_order"
    if coupon.redeemed_store != store_id:
        return "other_store"
    if window is not None and (not window or coupon.redeemed_at is None or now > coupon.redeemed_at + window):
        return "window_closed"
    return None


def window_of(rules: RuleSet) -> timedelta:
    return timedelta(minutes=rules.loyalty.till.void_window_minutes)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    event, coupon = facts.event, facts.coupon
    store, order = str(event.store_id), str(event.data["order_id"])
    if coupon is None or refusal(coupon, store, order, window_of(rules), event.occurred_at) is not None:
        return []
    assert coupon.redeemed_at is not None  # a redeemed coupon has its time (refusal above)
    void = VoidRedemption(code=coupon.code, order_id=order, voids=int(coupon.voids or 0), at=event.occurred_at)
    day = coupon.redeemed_at.astimezone(rules.stores.zone_of(store)).date().isoformat()
    undone = {"coupons_redeemed": -1, f"coupons_redeemed:{coupon.cause}": -1, "coupons_voided": 1}
    plan: list[Instruction] = [void]
    plan += [AddCounters(scope=scope, key=day, counts=undone, when=new(void)) for scope in (CHAIN, store)]
    if coupon.cause in RECALL_CAUSES:
        plan.append(
            UnlinkRedemption(
                member_id=coupon.member_id, recall_key=keys.recall_record_of(coupon.cause_key), when=new(void)
            )
        )
    return plan


def answer(event: Event, plan: Sequence[Instruction], reads: Snapshot) -> dict[str, Any]:
    code = str(event.data["coupon_code"])
    if any(isinstance(i, VoidRedemption) and i.code == code for i in plan):
        return {"code": code, "voided": True}
    coupon = reads.get(Coupon, code)
    why = refusal(coupon, str(event.store_id), str(event.data["order_id"]), None, event.occurred_at)
    return {"code": code, "voided": False, "reason": why or "window_closed"}
