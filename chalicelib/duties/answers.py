"""What the order webhook answers besides ``ok``: decided with the plan and stored with the
event, so a retry answers the same (``RecordEvent.answer``).

- ``coupons`` (an order paid with coupons, ``coupon_redeemed``): per code ``redeemed: true``, or
  ``false`` with the ``reason`` (``unknown``, ``not_this_member``, ``used`` and the order that
  used it);
- ``redeemed`` and ``balance`` (``points_redeemed``): whether the points were debited, and the
  balance after;
- a catalog item's redemption (``points_redeemed`` with ``item_id``, ``duties.catalog``):
  ``redeemed: true``, the ``coupon`` (code and terms), ``points_spent`` and the ``balance``
  after (a refusal is answered by the duty's ``Refuse``, nothing stored);
- ``checkin`` (``checked_in``): the day and the streak of the member's latest check-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib import executor, ledger, plans
from chalicelib.duties import catalog, redemption, voids
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction
from chalicelib.state.models import Coupon, Member
from chalicelib.store import keys


def of(event: Event, plan: Sequence[Instruction], reads: Snapshot) -> dict[str, Any]:
    member_id = event.member_id or ""
    if event.kind in (Kind.ORDER_PAID, Kind.COUPON_REDEEMED) and redemption.codes_of(event):
        return {"coupons": [_coupon(event, code, member_id, plan, reads) for code in redemption.codes_of(event)]}
    if event.kind is Kind.POINTS_REDEEMED and member_id and event.data.get("item_id"):
        return _catalog(event, plan, reads)
    if event.kind is Kind.POINTS_REDEEMED and member_id:
        key = keys.redeem_points(str(event.data["redemption_id"]))
        debited = any(isinstance(i, plans.PostPoints) and i.key == key for i in plan)
        balance = next((i.balance for i in plan if isinstance(i, plans.SetBalance) and i.member_id == member_id), None)
        return {
            "redeemed": debited,
            "balance": ledger.balance_of(member_id, reads).points if balance is None else balance,
        }
    if event.kind is Kind.COUPON_VOIDED:
        return voids.answer(event, plan, reads)
    if event.kind is Kind.CHECKED_IN and member_id:
        return {"checkin": _checkin(member_id, plan, reads)}
    return {}


def _catalog(event: Event, plan: Sequence[Instruction], reads: Snapshot) -> dict[str, Any]:
    member_id = str(event.member_id)
    key = keys.redeem_points(str(event.data["redemption"]))
    debit = next((i for i in plan if isinstance(i, plans.PostPoints) and i.key == key), None)
    issued = next((i for i in plan if isinstance(i, plans.IssueCoupon) and i.cause == catalog.CAUSE), None)
    if debit is None or issued is None:  # the balance read did not cover it after all
        return {"redeemed": False, "reason": "not_enough_points"}
    balance = next((i.balance for i in plan if isinstance(i, plans.SetBalance) and i.member_id == member_id), None)
    coupon = executor.coupon_item(issued, event.occurred_at)
    return {
        "redeemed": True,
        "item_id": str(event.data["item_id"]),
        "coupon": {"code": issued.code, **redemption.terms_of(coupon), **_stores(issued)},
        "points_spent": -debit.delta,
        "balance": ledger.balance_of(member_id, reads).points if balance is None else balance,
    }


def _stores(coupon: plans.IssueCoupon) -> dict[str, Any]:
    """Where a coupon may be used, when not everywhere (a per-store catalog item's store)."""
    return {"stores": sorted(coupon.stores)} if coupon.stores else {}


def _coupon(event: Event, code: str, member_id: str, plan: Sequence[Instruction], reads: Snapshot) -> dict[str, Any]:
    coupon = reads.get(Coupon, code)
    if any(isinstance(i, plans.RedeemCoupon) and i.code == code for i in plan):
        redeemed: dict[str, Any] = {"code": code, "redeemed": True}
        if event.data.get("till") and coupon is not None:  # the till gives the discount it says
            redeemed["discount_fen"] = redemption.discount_fen(coupon, int(event.data.get("basket_total_fen") or 0))
            redeemed |= redemption.terms_of(coupon)
        return redeemed
    owners = redemption.owners_of(member_id, reads.get(Member, member_id))
    answer: dict[str, Any] = {"code": code, "redeemed": False, "reason": redemption.refusal(coupon, owners, event)}
    if answer["reason"] == "used" and coupon is not None and coupon.redeemed_order:
        answer["used_by_order"] = coupon.redeemed_order
    return answer


def _checkin(member_id: str, plan: Sequence[Instruction], reads: Snapshot) -> dict[str, Any] | None:
    made = next((i for i in plan if isinstance(i, plans.UpdateLoyalty) and i.checkin_day), None)
    if made is not None:
        return {"day": made.checkin_day, "streak": made.checkin_streak}
    member = reads.get(Member, member_id)
    if member is None or not member.checkin_day:
        return None
    return {"day": member.checkin_day, "streak": int(member.checkin_streak or 0)}
