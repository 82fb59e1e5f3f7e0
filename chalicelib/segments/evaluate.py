"""Which tags and segments a member's facts meet: pure (facts, rule → sets), no I/O.

Tags first, then segments, which may ask ``has_tag`` of the tags just evaluated. A fact the
member does not have (no activity yet, no order) meets no numeric condition.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from chalicelib.rules.models import (
    CategoryOrders,
    ChannelIn,
    Condition,
    ConsentTo,
    CouponOrderShare,
    DaysSinceActive,
    DaysSinceFirstSeen,
    DaysSinceOrder,
    HasTag,
    MessagingRule,
    Orders,
    SegmentsRule,
    SpendYuan,
    StoreIn,
    Subscribed,
    TierIn,
)
from chalicelib.segments.facts import MemberFacts, Order


def evaluate(facts: MemberFacts, rule: SegmentsRule, messaging: MessagingRule) -> tuple[frozenset[str], frozenset[str]]:
    """(tags, segments) of the member under the rule."""
    tags = frozenset(name for name, tag in rule.tags.items() if all(meets(facts, c, messaging) for c in tag.all))
    facts = replace(facts, tags=facts.tags | tags)
    segments = frozenset(
        name for name, segment in rule.segments.items() if all(meets(facts, c, messaging) for c in segment.all)
    )
    return tags, segments


def meets(facts: MemberFacts, condition: Condition, messaging: MessagingRule) -> bool:
    if isinstance(condition, TierIn | StoreIn | ChannelIn):
        value = {"tier": facts.tier, "store": facts.store_id, "channel": facts.channel}[condition.fact]
        return value in condition.in_
    if isinstance(condition, HasTag):
        return (condition.tag in facts.tags) is condition.is_
    if isinstance(condition, Subscribed):
        return facts.subscribed is condition.is_
    if isinstance(condition, ConsentTo):
        template = messaging.templates.get(condition.template)
        accepted = template is not None and template.template_id in facts.consented
        return accepted is condition.is_
    return condition.holds(number(facts, condition))


def number(facts: MemberFacts, condition: Condition) -> Decimal | int | None:
    """The numeric fact a condition compares (None: the member has none)."""
    if isinstance(condition, DaysSinceActive):
        return facts.days_since(facts.last_active)
    if isinstance(condition, DaysSinceFirstSeen):
        return facts.days_since(facts.first_seen)
    if isinstance(condition, DaysSinceOrder):
        return None if facts.last_order_day is None else (facts.today - facts.last_order_day).days
    if isinstance(condition, Orders | SpendYuan | CategoryOrders | CouponOrderShare):
        return _order_number(facts, condition)
    raise TypeError(f"no numeric fact for {type(condition).__name__}")


def _order_number(
    facts: MemberFacts, condition: Orders | SpendYuan | CategoryOrders | CouponOrderShare
) -> Decimal | int | None:
    paid = _paid_within(facts, condition.days)
    if isinstance(condition, Orders):
        return len(paid)
    if isinstance(condition, SpendYuan):
        return Decimal(sum(o.net_fen for o in paid)) / 100
    if isinstance(condition, CategoryOrders):
        return sum(1 for o in paid if condition.category in o.categories)
    if len(paid) < condition.min_orders:
        return None
    return Decimal(100 * sum(1 for o in paid if o.coupon)) / len(paid)


def _paid_within(facts: MemberFacts, days: int) -> list[Order]:
    """Orders of the last ``days`` local days, today included, that were not wholly refunded."""
    first = facts.today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), facts.zone)
    return [o for o in facts.orders if o.at >= start and o.net_fen > 0]
