"""Precision push (精准推送): a member who has bought a category more than ``more_than`` times
(default 3) in the current period (month, quarter or year, store time) gets that category's
coupon, once per period (docs/domain.md, "Precision push and segments").

Purchases are read from the points ledger's order entries (each carries its categories and
refunds), so a fully refunded order does not count. The coupon's code is derived from
``precision#<member>#<category>#<period>``: one per period, whatever the retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from chalicelib.clock import UTC
from chalicelib.effects import Effect, QueueMessage
from chalicelib.events import Event, Kind
from chalicelib.loyalty import ledger, offers
from chalicelib.loyalty.calendar import chinese_date, local_day
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member

TRIGGERS = frozenset({Kind.ORDER_PAID})
CAUSE = "precision_push"
LOOKBACK = timedelta(days=370)  # the longest period (a year) and some


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    home_store: str | None
    orders: tuple[tuple[datetime, int, frozenset[str]], ...]  # including this order
    secret: str


def gather(event: Event, member: Member | None, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    orders = tuple(ledger.orders_since(event.member_id, event.occurred_at - LOOKBACK))
    if ledger.entry(event.member_id, f"earn#{event.data['order_id']}") is None:  # not in the ledger yet
        categories = frozenset(str(i["category"]) for i in event.data.get("items") or [] if i.get("category"))
        orders += ((event.occurred_at, int(event.data.get("amount_fen") or 0), categories),)
    return Facts(event, event.member_id, member.store_id or event.store_id, orders, settings.coupon_secret)


def period_of(day: date, period: str) -> tuple[str, date]:
    """The period's label and first day: ("2026-11", Nov 1), ("2026-Q4", Oct 1), ("2026", Jan 1)."""
    if period == "year":
        return str(day.year), date(day.year, 1, 1)
    if period == "quarter":
        quarter = (day.month - 1) // 3
        return f"{day.year}-Q{quarter + 1}", date(day.year, quarter * 3 + 1, 1)
    return f"{day.year}-{day.month:02d}", day.replace(day=1)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Effect]:
    rule = rules.loyalty
    section = rule.precision_push
    if not section.enabled or not section.offers:
        return []
    if not in_scope(rule, "loyalty", facts.member_id, facts.home_store, now):
        return []
    zone = rules.stores.zone_of(facts.home_store)
    today = local_day(facts.event.occurred_at, zone)
    label, first = period_of(today, section.period)
    start = datetime.combine(first, time(0), zone).astimezone(UTC)
    bought = [cats for at, net, cats in facts.orders if at >= start and net > 0]
    plan: list[Effect] = []
    for offer in section.offers:
        times = sum(1 for cats in bought if offer.category in cats)
        if times <= section.more_than:
            continue
        cause_key = f"precision#{facts.member_id}#{offer.category}#{label}"
        issued = offers.coupon(
            offer.coupon,
            facts.member_id,
            CAUSE,
            cause_key,
            facts.event.event_id,
            rules.version,
            today,
            zone,
            facts.home_store,
            facts.secret,
        )
        plan.append(issued)
        text = fill(
            offer.text,
            name=offer.name,
            title=offer.coupon.title,
            value=offers.yuan(issued.value_fen),
            code=issued.code,
            expires=chinese_date(local_day(issued.expires_at, zone)),
            tier="",
        )
        plan.append(
            QueueMessage(
                cause_key,
                facts.member_id,
                "custom",
                "promo",
                text,
                CAUSE,
                facts.event.event_id,
                rules.version,
                when_coupon=(issued.code, "new"),
                store_id=facts.home_store,
                expires_at=issued.expires_at,
            )
        )
    return plan
