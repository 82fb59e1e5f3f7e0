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

from chalicelib import ledger, offers
from chalicelib.calendars import chinese_date, local_day
from chalicelib.clock import UTC
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, QueueMessage, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member
from chalicelib.store import keys

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


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    orders = tuple(ledger.orders_since(event.member_id, event.occurred_at - LOOKBACK, reads))
    categories = frozenset(str(i["category"]) for i in event.data.get("items") or [] if i.get("category"))
    orders += ((event.occurred_at, int(event.data.get("amount_fen") or 0), categories),)  # this order
    return Facts(event, event.member_id, member.store_id or event.store_id, orders, settings.coupon_secret)


def period_of(day: date, period: str) -> tuple[str, date]:
    """The period's label and first day: ("2026-11", Nov 1), ("2026-Q4", Oct 1), ("2026", Jan 1)."""
    if period == "year":
        return str(day.year), date(day.year, 1, 1)
    if period == "quarter":
        quarter = (day.month - 1) // 3
        return f"{day.year}-Q{quarter + 1}", date(day.year, quarter * 3 + 1, 1)
    return f"{day.year}-{day.month:02d}", day.replace(day=1)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
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
    plan: list[Instruction] = []
    for offer in section.offers:
        times = sum(1 for cats in bought if offer.category in cats)
        if times <= section.more_than:
            continue
        cause_key = keys.precision(facts.member_id, offer.category, label)
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
        words = {
            "name": offer.name,
            "title": offer.coupon.title,
            "value": offers.yuan(issued.value_fen),
            "benefit": offers.benefit(issued),
            "code": issued.code,
            "expires": chinese_date(local_day(issued.expires_at, zone)),
            "tier": "",
        }
        text = fill(offer.text, **words)
        plan.append(
            QueueMessage(
                message_key=cause_key,
                member_id=facts.member_id,
                channel="custom",
                category="promo",
                text=text,
                cause=CAUSE,
                event_id=facts.event.event_id,
                rules_version=rules.version,
                when=new(issued),
                store_id=facts.home_store,
                expires_at=issued.expires_at,
                payload=words,
            )
        )
    return plan
