"""What a member's segments are decided on: their row, and (only when the rules ask about orders)
their orders from the points ledger and which of them redeemed a coupon.

Orders are the ledger's ``earn#`` entries (``ledger.orders_since``: amount net of refunds, the
order's categories), so an order placed while points were off or out of scope is not counted;
``days_since_order`` reads the member's ``order_days`` and counts every paid order. Coupon use is
the coupon register: a coupon whose ``redeemed_order`` is the order (``Coupon.by_member``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import ledger
from chalicelib.calendars import local_day
from chalicelib.rules.loader import RuleSet
from chalicelib.state.models import Coupon, Member

LOOKBACK_DAYS = 731  # the longest window a condition may set (rules.models.DaysWindow), and a day


@dataclass(frozen=True)
class Order:
    at: datetime
    net_fen: int
    categories: frozenset[str]
    coupon: bool  # a coupon was redeemed by this order


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    today: date  # the member's store's local day
    zone: ZoneInfo
    store_id: str | None
    channel: str | None
    tier: str  # the entry tier when the member has none
    subscribed: bool
    first_seen: datetime | None
    last_active: datetime | None
    last_order_day: date | None
    tags: frozenset[str]  # loyalty tags and, once evaluated, this pass's segment tags
    consented: frozenset[str]  # subscribe template ids the member accepted
    orders: tuple[Order, ...] = ()

    def days_since(self, instant: datetime | None) -> int | None:
        return None if instant is None else (self.today - local_day(instant, self.zone)).days


def gather(member: Member, rules: RuleSet, now: datetime) -> MemberFacts:
    zone = rules.stores.zone_of(member.store_id)
    today = local_day(now, zone)
    days = sorted(member.order_days or ())
    last_order = date.fromisoformat(days[-1]) if days else None
    window = rules.segments.order_window_days()
    orders: tuple[Order, ...] = ()
    if last_order is not None and window and last_order > today - timedelta(days=window):
        # only a member with an order inside the longest window asked about: the rest have none in it
        orders = orders_of(member.member_id, now, with_coupons=rules.segments.uses("coupon_order_share_percent"))
    return MemberFacts(
        member_id=member.member_id,
        today=today,
        zone=zone,
        store_id=member.store_id,
        channel=member.channel,
        tier=rules.loyalty.tier(member.tier).name,
        subscribed=member.subscribed == "yes",
        first_seen=member.first_seen,
        last_active=member.last_active,
        last_order_day=last_order,
        tags=frozenset(member.loyalty_tags or ()),
        consented=frozenset(member.consented or ()),
        orders=orders,
    )


def orders_of(member_id: str, now: datetime, with_coupons: bool) -> tuple[Order, ...]:
    paid = ledger.paid_orders(member_id, now - timedelta(days=LOOKBACK_DAYS))
    with_coupon: set[str] = set()
    if paid and with_coupons:
        with_coupon = {str(c.redeemed_order) for c in Coupon.by_member.query(member_id) if c.redeemed_order}
    return tuple(Order(at, net, categories, order_id in with_coupon) for order_id, at, net, categories in paid)
