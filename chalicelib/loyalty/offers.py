"""The coupon a loyalty rule gives: its code derived from the cause key (so it is issued once,
ever, for that cause), its expiry at the end of the last valid day in the store's time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from chalicelib import codes
from chalicelib.clock import UTC
from chalicelib.effects import IssueCoupon
from chalicelib.rules.models import CouponSpec


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
    last_day = today + timedelta(days=spec.valid_days)
    return IssueCoupon(
        code=codes.derive(cause_key, secret),
        member_id=member_id,
        cause=cause,
        cause_key=cause_key,
        event_id=event_id,
        title=spec.title,
        value_fen=spec.value_fen,
        min_spend_fen=spec.min_spend_fen,
        stores=frozenset({home_store}) if spec.store_scope == "home_store" and home_store else None,
        expires_at=datetime.combine(last_day, time(23, 59, 59), zone).astimezone(UTC),
        rules_version=rules_version,
    )


def yuan(fen: int) -> str:
    return f"{fen / 100:g}"
