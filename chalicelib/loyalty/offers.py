"""The coupon a loyalty rule gives: its code derived from the cause key (so it is issued once,
ever, for that cause), its expiry at the end of the last valid day in the store's time zone
(``chalicelib.offers``, which every duty's coupons share)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from chalicelib import codes
from chalicelib.effects import IssueCoupon
from chalicelib.offers import offer, yuan
from chalicelib.rules.models import CouponSpec

__all__ = ["coupon", "yuan"]


def coupon(
    spec: CouponSpec,
    member_id: str,
    cause: str,
    cause_key: str,
    event_id: str,
    rules_version: str,
    today: date,
    zone: ZoneInfo,
    home_store: str | None,
    secret: str,
) -> IssueCoupon:
    """The coupon offered on the local day ``today``."""
    return offer(
        spec,
        code=codes.derive(cause_key, secret),
        member_id=member_id,
        cause=cause,
        cause_key=cause_key,
        event_id=event_id,
        home_store=home_store,
        zone=zone,
        now=datetime.combine(today, time(12), zone),
        rules_version=rules_version,
    ).coupon
