"""A coupon at the till: check it (one read), redeem it for an order (exactly once).

``check`` reads the coupon and judges it (``duties.redemption.reason``: unknown, used, void,
expired, not yet valid, another store, below the minimum spend) and what it takes off the basket.
Nothing is written.

``redeem`` judges the same way first: a refusal is answered from that read, nothing written (the
cashier may fix the basket and ask again for the same order). A coupon that may be used goes
through the pipeline as its holder's ``coupon_redeemed`` event, keyed by code and order
(``keys.till_redeem``): one commit redeems it, counts it, credits a recall that sent it, and
stores the answer. The first order wins — a concurrent redeem from another till finds it used at
commit and is answered with the order that used it; a retry of the same order is that event
again and answers the same.

``void`` gives a cancelled order's coupon back (``duties.voids``): judged from one read first
(the order, the store and the rules' window), a refusal writing nothing; then the coupon's
``coupon_voided`` event, keyed by code, order and the voids before it, so a retry answers the same
and the coupon, redeemed again later, can be voided again.
"""

from __future__ import annotations

from typing import Any

from chalicelib import ledger, pipeline
from chalicelib.duties import redemption, voids
from chalicelib.errors import Conflict
from chalicelib.events import Event, Kind
from chalicelib.protocol.till import Check, Redeem, Void
from chalicelib.runtime import Context
from chalicelib.state.models import Coupon
from chalicelib.store import db, keys


def check(ctx: Context, body: Check) -> dict[str, Any]:
    now = ctx.clock.now()
    coupon = db.get(Coupon, body.code)
    why = _refusal(coupon, body.store_id, body.basket_total_fen, now)
    if why is not None or coupon is None:
        return _refused(body.code, why or "unknown", coupon)
    return {
        "code": body.code,
        "valid": True,
        "discount_fen": redemption.discount_fen(coupon, body.basket_total_fen),
        **redemption.terms_of(coupon),
    }


def redeem(ctx: Context, body: Redeem) -> dict[str, Any]:
    now = ctx.clock.now()
    coupon = db.get(Coupon, body.code)
    retried = coupon is not None and coupon.status == "redeemed" and coupon.redeemed_order == body.order_id
    why = None if retried else _refusal(coupon, body.store_id, body.basket_total_fen, now)
    if why is not None or coupon is None:
        return {"order_id": body.order_id, **_refused(body.code, why or "unknown", coupon, "redeemed")}
    if not retried:
        _not_refunded(coupon.member_id, body.order_id)
    event = Event(
        Kind.COUPON_REDEEMED,
        keys.till_redeem(body.code, body.order_id, int(coupon.voids or 0)),
        "till",
        now,
        coupon.member_id,
        store_id=body.store_id,
        data={
            "coupon_code": body.code,
            "order_id": body.order_id,
            "basket_total_fen": body.basket_total_fen,
            "till": True,
        },
    )
    outcome = pipeline.process(ctx, event)
    [answer] = outcome.answer.get("coupons") or [{"code": body.code, "redeemed": False, "reason": "unknown"}]
    return {"order_id": body.order_id, **answer, "duplicate": outcome.duplicate}


def void(ctx: Context, body: Void) -> dict[str, Any]:
    now = ctx.clock.now()
    coupon = db.get(Coupon, body.code)
    retried = coupon is not None and coupon.status == "issued" and coupon.voids and coupon.voided_order == body.order_id
    window = voids.window_of(ctx.rules())
    why = None if retried else voids.refusal(coupon, body.store_id, body.order_id, window, now)
    if why is not None or coupon is None:
        return {"order_id": body.order_id, "code": body.code, "voided": False, "reason": why or "unknown"}
    before = int(coupon.voids or 0) - (1 if retried else 0)
    event = Event(
        Kind.COUPON_VOIDED,
        keys.till_void(body.code, body.order_id, before),
        "till",
        now,
        coupon.member_id,
        store_id=body.store_id,
        data={"coupon_code": body.code, "order_id": body.order_id, "till": True},
    )
    outcome = pipeline.process(ctx, event)
    answer = outcome.answer or {"code": body.code, "voided": False, "reason": "unknown"}
    return {"order_id": body.order_id, **answer, "duplicate": outcome.duplicate}


def _not_refunded(member_id: str, order_id: str) -> None:
    """A coupon is not redeemed for an order the member was already refunded (Conflict, 409)."""
    order = ledger.order_item(member_id, order_id)
    if order is not None and (order.voided == "yes" or int(order.refunded_fen or 0) > 0):
        raise Conflict("order_id: this order was refunded; a refunded order cannot redeem a coupon")


def _refusal(coupon: Coupon | None, store_id: str, basket_fen: int, now: Any) -> str | None:
    if coupon is None:
        return "unknown"
    return redemption.reason(coupon, None, None) or redemption.terms(coupon, store_id, basket_fen, now)


def _refused(code: str, why: str, coupon: Coupon | None, flag: str = "valid") -> dict[str, Any]:
    answer: dict[str, Any] = {"code": code, flag: False, "reason": why}
    if why == "used" and coupon is not None and coupon.redeemed_order:
        answer["used_by_order"] = coupon.redeemed_order
    return answer
