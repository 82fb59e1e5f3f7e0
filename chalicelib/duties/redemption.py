"""Coupon redemption reported by the POS or mini program marks the coupon redeemed: on its own
(``coupon_redeemed``) or as the coupons an order paid with (``order_paid`` ``coupon_codes``).

A coupon is redeemed once, ever, by the first event that reports it for its own member: the
coupons are read with the event, only an issued coupon of this member is redeemed, and the
write is conditioned on it still being issued to them, so two orders at once redeem it once
(the other is decided again and finds it used). Every other report — another order, another
member, an unknown code — is refused, counted nowhere, and the webhook's answer says why
(``duties.answers``). A recall or challenge coupon's redemption is noted on its decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, LinkRedemption, RedeemCoupon, new
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Coupon, Member
from chalicelib.store import db, keys

TRIGGERS = frozenset({Kind.COUPON_REDEEMED, Kind.ORDER_PAID})
CAUSE = "redemption"
RECALL_CAUSES = frozenset({"recall", "challenge"})


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    coupons: tuple[Coupon, ...]  # the reported coupons that exist
    owners: frozenset[str]  # the person and the persons merged into them: a coupon of any is theirs


def codes_of(event: Event) -> list[str]:
    """The codes the event reports, each once, in the order given."""
    codes = event.data.get("coupon_codes") or [event.data.get("coupon_code")]
    return [str(code) for code in dict.fromkeys(codes) if code]


def prefetch(event: Event, settings: Settings) -> list[db.Key]:
    return [(Coupon, code, None) for code in codes_of(event)]


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if event.member_id is None or not codes_of(event):
        return None
    found = (reads.get(Coupon, code) for code in codes_of(event))
    return Facts(event, event.member_id, tuple(c for c in found if c is not None), owners_of(event.member_id, member))


def owners_of(member_id: str, member: Member | None) -> frozenset[str]:
    """Whose coupons this person may redeem: their own and those of every person merged into them
    (chalicelib/identity/merge.py), from any of their ids."""
    return frozenset({member_id, *((member.absorbed or ()) if member is not None else ())})


def refusal(coupon: Coupon | None, owners: frozenset[str]) -> str:
    """Why a coupon cannot be redeemed by this person now (for logs and the till's answer)."""
    if coupon is None:
        return "unknown"
    if coupon.member_id not in owners:
        return "not_this_member"
    if coupon.status == "redeemed":
        return "used"
    return str(coupon.status)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    event = facts.event
    order = event.data.get("order_id")
    plan: list[Instruction] = []
    for coupon in facts.coupons:
        if coupon.member_id not in facts.owners or coupon.status != "issued":
            continue
        redeem = RedeemCoupon(
            code=coupon.code,
            member_id=coupon.member_id,  # its owner: the condition of the redemption
            order_id=str(order) if order else None,
            at=event.occurred_at,
            event_id=event.event_id,
            cause=coupon.cause,
        )
        plan.append(redeem)
        if coupon.cause in RECALL_CAUSES:
            plan.append(
                LinkRedemption(
                    member_id=coupon.member_id,
                    recall_key=keys.recall_record_of(coupon.cause_key),
                    at=event.occurred_at,
                    value_fen=int(coupon.value_fen),
                    when=new(redeem),
                )
            )
    return plan
