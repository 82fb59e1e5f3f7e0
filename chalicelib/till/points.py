"""Points for a catalog item (rules/catalog.json), at the till or in the mini program.

Both ask the same thing: spend this member's points on this item, once for this redemption id.
It goes through the pipeline as the member's ``points_redeemed`` event keyed by the redemption
(``keys.catalog_redemption``: a till's ids are its store's, the mini program's its own), and
``duties.catalog`` decides it on the event's one read: refused whole, nothing written (the caller
may ask again), or debited, counted and its coupon issued in one transaction. A retry of the
same redemption is that event again and answers the same, marked ``duplicate``.
"""

from __future__ import annotations

from typing import Any

from chalicelib import pipeline
from chalicelib.calendars import local_day
from chalicelib.events import Event, Kind
from chalicelib.protocol import member_code
from chalicelib.protocol.orders import CatalogRedeem
from chalicelib.protocol.till import PointsRedeem
from chalicelib.runtime import Context
from chalicelib.store import keys


def at_till(ctx: Context, body: PointsRedeem) -> dict[str, Any]:
    """The member named by the code they show (as ``GET /pos/members/{code}`` reads it: expired or
    altered is ``BadRequest``, nothing written)."""
    person = member_code.open_code(body.member_code, ctx.settings.member_code_key, ctx.clock.now())
    redemption = keys.catalog_redemption("till", body.store_id, body.redemption_id)
    answer = _redeem(ctx, "till", person, body.item_id, redemption, body.store_id)
    return {"redemption_id": body.redemption_id, **answer}


def in_mini_program(ctx: Context, body: CatalogRedeem) -> dict[str, Any]:
    redemption = keys.catalog_redemption("mp", body.redemption_id)
    # the mini program's server is the order webhook's: its openids are that source's ids
    answer = _redeem(ctx, "orders", body.openid, body.item_id, redemption, body.store_id)
    return {"redemption_id": body.redemption_id, **answer}


def _redeem(ctx: Context, source: str, member_id: str, item_id: str, redemption: str, store: str | None) -> dict:
    now = ctx.clock.now()
    month = local_day(now, ctx.rules().stores.zone_of(store)).isoformat()[:7]  # the limit's month
    event = Event(
        Kind.POINTS_REDEEMED,
        keys.catalog_event(redemption),
        source,
        now,
        member_id,
        store_id=store,
        data={"item_id": item_id, "redemption": redemption, "month": month},
    )
    outcome = pipeline.process(ctx, event)
    answer = outcome.answer or {"redeemed": False, "reason": "unknown_member"}  # an erased member
    return {**answer, "duplicate": outcome.duplicate}
