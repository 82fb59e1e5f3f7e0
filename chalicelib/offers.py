"""Coupons as duties offer them: the coupon instruction for a rule's ``CouponSpec`` and the words
a message uses for it (price-tag yuan, Chinese dates), shared by every duty that gives coupons;
``coupon`` for the loyalty rules, whose code is derived from the cause key (issued once, ever,
for that cause) and which expire at the end of the last valid day in the store's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from chalicelib import codes
from chalicelib.clock import UTC
from chalicelib.plans import IssueCoupon
from chalicelib.rules.models import CouponSpec


@dataclass(frozen=True)
class Offer:
    coupon: IssueCoupon
    expires_local: date

    @property
    def words(self) -> dict[str, str]:
        """Placeholders for rule texts and template fields."""
        return {
            "value": yuan(self.coupon.value_fen),
            "benefit": benefit(self.coupon),
            "min_spend": yuan(self.coupon.min_spend_fen),
            "code": self.coupon.code,
            "expires": chinese_date(self.expires_local),
            "title": self.coupon.title,
        }


def offer(
    spec: CouponSpec,
    *,
    code: str,
    member_id: str,
    cause: str,
    cause_key: str,
    event_id: str,
    home_store: str | None,
    zone: ZoneInfo,
    now: datetime,
    rules_version: str,
) -> Offer:
    """A coupon valid until the end of its last local day (``valid_days`` from today)."""
    expires_local = now.astimezone(zone).date() + timedelta(days=spec.valid_days)
    expires_at = datetime.combine(expires_local, time(23, 59, 59), zone).astimezone(UTC)
    starts_local = now.astimezone(zone).date() + timedelta(days=spec.starts_after_days)
    valid_from = datetime.combine(starts_local, time(0), zone).astimezone(UTC) if spec.starts_after_days else None
    stores = frozenset({home_store}) if spec.store_scope == "home_store" and home_store else None
    coupon = IssueCoupon(
        code=code,
        member_id=member_id,
        cause=cause,
        cause_key=cause_key,
        event_id=event_id,
        title=spec.title,
        value_fen=spec.value_fen,
        min_spend_fen=spec.min_spend_fen,
        stores=stores,
        expires_at=expires_at,
        kind=spec.kind,
        percent_off=spec.percent_off,
        item_sku=spec.item.sku if spec.item else None,
        item_name=spec.item.name if spec.item else None,
        valid_from=valid_from,
        rules_version=rules_version,
    )
    return Offer(coupon, expires_local)


def offer_words(coupon: IssueCoupon, zone: ZoneInfo) -> dict[str, str]:
    """A coupon's words (as ``Offer.words``) for a coupon issued on its own."""
    local = coupon.expires_at.astimezone(zone).date()
    return Offer(coupon, local).words


def benefit(coupon: IssueCoupon) -> str:
    """What the coupon gives, as a member reads it: 10元 / 9折（最高减20元） / 免费拿铁."""
    if coupon.kind == "percent" and coupon.percent_off:
        return f"{_zhe(coupon.percent_off)}折（最高减{yuan(coupon.value_fen)}元）"
    if coupon.kind == "item" and coupon.item_name:
        return f"免费{coupon.item_name}"
    return f"{yuan(coupon.value_fen)}元"


def _zhe(percent_off: int) -> str:
    """10 % off → "9", 15 % off → "8.5" (how a Chinese price tag says it)."""
    return f"{Decimal(100 - percent_off) / 10:.1f}".rstrip("0").rstrip(".")


def yuan(fen: int) -> str:
    """990 → "9.9", 1000 → "10", 1050 → "10.5" (as a price tag reads)."""
    value = Decimal(fen) / 100
    return f"{value:.2f}".rstrip("0").rstrip(".")


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


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
    """The coupon offered on the local day ``today``, its code derived from ``cause_key``."""
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
