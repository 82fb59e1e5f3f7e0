"""Coupon redemption reported by the POS or mini program marks the coupon redeemed: on its own
(``coupon_redeemed``) or as the coupons an order paid with (``order_paid`` ``coupon_codes``).

A coupon is redeemed once, ever, by the first event that reports it for its own member: the
coupons are read with the event, only an issued coupon of this member is redeemed, and the
write is conditioned on it still being issued to them, so two orders at once redeem it once
(the other is decided again and finds it used). Every other report — another order, another
member, an unknown code — is refused, counted nowhere, and the webhook's answer says why
(``duties.answers``). A recall or challenge coupon's redemption is noted on its decision.

A redemption at the till (``chalicelib/till``: ``till`` in the event's data) is a question asked
before the sale, so it is also held to the coupon's terms, judged on siyu's clock: refused when
expired or not yet valid, for a store outside its scope, or on a basket below its minimum spend;
its answer gives the discount. Reports after the fact are not (the sale happened).
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


def refusal(coupon: Coupon | None, owners: frozenset[str], event: Event | None = None) -> str:
    """Why a coupon cannot be redeemed by this person now (for logs and the till's answer)."""
    return reason(coupon, owners, event) or str(coupon.status if coupon is not None else "unknown")


def reason(coupon: Coupon | None, owners: frozenset[str] | None, event: Event | None) -> str | None:
    """None when the event may redeem the coupon; else why not. ``owners`` None: the till
    asks for whoever holds the coupon (it shows the code, not the member)."""
    if coupon is None:
        return "unknown"
    if owners is not None and coupon.member_id not in owners:
        return "not_this_member"
    if coupon.status == "redeemed":
        return "used"
    if coupon.status != "issued":
        return str(coupon.status)  # void
    if event is not None and event.data.get("till"):
        return terms(coupon, event.store_id, int(event.data.get("basket_total_fen") or 0), event.occurred_at)
    return None


def terms(coupon: Coupon, store_id: str | None, basket_fen: int, now: datetime) -> str | None:
    """The coupon's own terms at the till: validity, store scope, minimum spend."""
    why = validity(coupon, store_id, now)
    if why is None and basket_fen < int(coupon.min_spend_fen or 0):
        return "below_minimum"
    return why


def validity(coupon: Coupon, store_id: str | None, now: datetime) -> str | None:
    """Why the coupon cannot be used at this store now whatever the basket (its dates, its
    stores); None: it can. Its status is ``reason``'s."""
    if coupon.expires_at <= now:
        return "expired"
    if (coupon.valid_from or coupon.issued_at) > now:
        return "not_yet_valid"
    if coupon.stores and store_id not in coupon.stores:
        return "other_store"
    return None


def discount_fen(coupon: Coupon, basket_fen: int) -> int:
    """What the coupon takes off this basket, never more than the basket: its value (an amount, or
    a free item's price), or its percentage of the basket, rounded down, at most its value (the cap)."""
    if coupon.kind == "percent" and coupon.percent_off:
        return min(basket_fen * int(coupon.percent_off) // 100, int(coupon.value_fen), basket_fen)
    return min(int(coupon.value_fen), basket_fen)


def terms_of(coupon: Coupon) -> dict[str, object]:
    """The coupon's terms as the till shows them (its answers and the member lookup)."""
    shown: dict[str, object] = {
        "kind": coupon.kind or "amount",
        "title": coupon.title,
        "value_fen": int(coupon.value_fen),
        "min_spend_fen": int(coupon.min_spend_fen or 0),
        "valid_from": (coupon.valid_from or coupon.issued_at).isoformat(),
        "expires_at": coupon.expires_at.isoformat(),
    }
    if coupon.kind == "percent":
        shown["percent_off"] = int(coupon.percent_off or 0)
    if coupon.kind == "item":
        shown["item"] = {"sku": coupon.item_sku, "name": coupon.item_name}
    return shown


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    event = facts.event
    order = event.data.get("order_id")
    plan: list[Instruction] = []
    for coupon in facts.coupons:
        if reason(coupon, facts.owners, event) is not None:
            continue
        redeem = RedeemCoupon(
            code=coupon.code,
            member_id=coupon.member_id,  # its owner: the condition of the redemption
            order_id=str(order) if order else None,
            at=event.occurred_at,
            event_id=event.event_id,
            cause=coupon.cause,
            store_id=event.store_id,
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
