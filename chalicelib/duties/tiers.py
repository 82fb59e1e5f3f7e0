"""Tiers (普通 / 银卡 / 金卡 / 钻卡) by net spend and orders over a rolling period
(docs/domain.md, "Loyalty"). An order that reaches a higher tier upgrades the member at once, with
a message and the tier's coupon; a member is only ever moved down at the end of their period
(the tier review, on the loyalty agenda), with a notice.

The tier change is a conditional update on the member's current tier, so two orders that both
upgrade a member upgrade (and notify) once; the tier's coupon is keyed by member, tier and the
day the tier was reached.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from chalicelib import ledger, offers
from chalicelib.calendars import chinese_date, local_day
from chalicelib.clock import UTC
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, IssueCoupon, QueueMessage, RecordOnce, UpdateLoyalty, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import LoyaltyRule, Tier
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member
from chalicelib.store import keys

TRIGGERS = frozenset({Kind.ORDER_PAID})
CAUSE = "tier"
MAX_PERIOD_DAYS = 730  # the longest period a rule may set: the window read for any rule


@dataclass(frozen=True)
class Standing:
    """What the tier is decided on: the member's tier and the orders of the window."""

    member_id: str
    home_store: str | None
    tier: str | None
    orders: tuple[tuple[datetime, int], ...]  # (paid at, net amount in fen), within MAX_PERIOD_DAYS
    secret: str


@dataclass(frozen=True)
class Facts:
    event: Event
    standing: Standing


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    orders = orders_of(event.member_id, event.occurred_at, reads)
    orders += ((event.occurred_at, int(event.data.get("amount_fen") or 0)),)  # this order, not in the ledger yet
    standing = Standing(event.member_id, member.store_id or event.store_id, member.tier, orders, settings.coupon_secret)
    return Facts(event, standing)


def orders_of(member_id: str, now: datetime, reads: Snapshot | None = None) -> tuple[tuple[datetime, int], ...]:
    since = now - timedelta(days=MAX_PERIOD_DAYS)
    return tuple((at, net) for at, net, _ in ledger.orders_since(member_id, since, reads))


def earned_tier(rule: LoyaltyRule, standing: Standing, now: datetime) -> Tier:
    """The highest tier the window's spend and orders reach."""
    since = now - timedelta(days=rule.tiers.period_days)
    spend = sum(net for at, net in standing.orders if at >= since)
    count = sum(1 for at, net in standing.orders if at >= since and net > 0)
    reached = rule.tiers.levels[0]
    for level in rule.tiers.levels:
        if spend >= level.min_spend_yuan * 100 and count >= level.min_orders:
            reached = level
    return reached


def rank(rule: LoyaltyRule, name: str | None) -> int:
    return rule.tiers.levels.index(rule.tier(name))


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    rule = rules.loyalty
    standing = facts.standing
    if not rule.tiers.enabled or not in_scope(rule, "loyalty", standing.member_id, standing.home_store, now):
        return []
    at = facts.event.occurred_at
    target = earned_tier(rule, standing, at)
    if rank(rule, target.name) <= rank(rule, standing.tier):
        return []
    return change(standing, target, rules, at, facts.event.event_id)


def change(standing: Standing, target: Tier, rules: RuleSet, at: datetime, event_id: str) -> list[Instruction]:
    """Move the member to ``target`` (up: message and coupon; down: notice), schedule the review."""
    rule = rules.loyalty
    zone = rules.stores.zone_of(standing.home_store)
    today = local_day(at, zone)
    review_on = today + timedelta(days=rule.tiers.period_days)
    previous = rule.tier(standing.tier)
    up = rank(rule, target.name) > rank(rule, standing.tier)
    key = keys.tier_change(standing.member_id, target.name, today.isoformat())
    moved = UpdateLoyalty(
        key=key,
        member_id=standing.member_id,
        expect_tier=standing.tier or "",
        tier=target.name,
        tier_since=at,
        tier_review_on=review_on.isoformat(),
        add_tags=frozenset(target.tags),
        remove_tags=frozenset(previous.tags) - frozenset(target.tags),
    )
    plan: list[Instruction] = [moved, _review(standing.member_id, review_on, event_id, rules.version, at, moved)]
    plan += _warning_agenda(standing.member_id, review_on, event_id, rules, at, moved)
    spend = sum(net for when, net in standing.orders if when >= at - timedelta(days=rule.tiers.period_days))
    values = {"tier": target.name, "previous": previous.name, "spend": f"{spend / 100:g}", "date": chinese_date(today)}
    text = fill(rule.tiers.upgrade_text if up else rule.tiers.downgrade_notice_text, **values)
    if up and target.coupon is not None:
        plan.append(replace(_coupon(standing, target, key, event_id, rules, today), when=new(moved)))
    plan.append(
        QueueMessage(
            message_key=key,
            member_id=standing.member_id,
            channel="custom",
            category="service",
            text=text,
            cause=CAUSE,
            event_id=event_id,
            rules_version=rules.version,
            store_id=standing.home_store,
            when=new(moved),
            payload=values,
        )
    )
    return plan


def _review(
    member_id: str, day: date, event_id: str, version: str, at: datetime, after: UpdateLoyalty | None = None
) -> RecordOnce:
    return RecordOnce(
        pk=keys.agenda(day),
        sk=keys.agenda_item("tier", member_id),
        member_id=member_id,
        event_id=event_id,
        rules_version=version,
        at=at,
        when=new(after) if after is not None else None,
    )


def period_end(review_day: date, rules: RuleSet, home_store: str | None) -> datetime:
    """The end of the period a review on ``review_day`` judges: the end of that local day. The
    period is the ``period_days`` local days up to and including it, so the day the tier was
    reached (one period before) is no longer in it."""
    zone = rules.stores.zone_of(home_store)
    return datetime.combine(review_day + timedelta(days=1), time(0), zone).astimezone(UTC)


def _warning_agenda(
    member_id: str, review_on: date, event_id: str, rules: RuleSet, at: datetime, after: UpdateLoyalty
) -> list[Instruction]:
    days = rules.loyalty.tiers.downgrade_warning_days
    if not days:
        return []
    warn_on = review_on - timedelta(days=days)
    return [
        RecordOnce(
            pk=keys.agenda(warn_on),
            sk=keys.agenda_item("tier-warning", member_id),
            member_id=member_id,
            event_id=event_id,
            rules_version=rules.version,
            at=at,
            when=new(after),
        )
    ]


def warning(standing: Standing, review_on: str | None, day: date, rules: RuleSet, now: datetime) -> list[Instruction]:
    """Ahead of the period end: tell a member whom the review would move down, once per period."""
    rule = rules.loyalty
    days = rule.tiers.downgrade_warning_days
    if not rule.tiers.enabled or not days or review_on != (day + timedelta(days=days)).isoformat():
        return []
    # What the review will count if the member buys nothing more.
    at_review = period_end(date.fromisoformat(review_on), rules, standing.home_store)
    target = earned_tier(rule, standing, at_review)
    if rank(rule, target.name) >= rank(rule, standing.tier):
        return []
    spend = sum(net for when, net in standing.orders if when >= at_review - timedelta(days=rule.tiers.period_days))
    words = {
        "tier": target.name,
        "previous": rule.tier(standing.tier).name,
        "spend": f"{spend / 100:g}",
        "date": chinese_date(date.fromisoformat(review_on)),
    }
    text = fill(rule.tiers.downgrade_warning_text, **words)
    key = keys.tier_warning(standing.member_id, review_on)
    return [
        QueueMessage(
            message_key=key,
            member_id=standing.member_id,
            channel="custom",
            category="service",
            text=text,
            cause=CAUSE,
            event_id=key,
            rules_version=rules.version,
            store_id=standing.home_store,
            payload=words,
        )
    ]


def _coupon(standing: Standing, target: Tier, key: str, event_id: str, rules: RuleSet, today: date) -> IssueCoupon:
    spec = target.coupon
    assert spec is not None
    zone = rules.stores.zone_of(standing.home_store)
    return offers.coupon(
        spec, standing.member_id, CAUSE, key, event_id, rules.version, today, zone, standing.home_store, standing.secret
    )


def review(standing: Standing, review_on: str | None, day: date, rules: RuleSet, now: datetime) -> list[Instruction]:
    """At the end of the member's period: down (with notice) if the period earned a lower
    tier, up if it earned a higher one, otherwise a new period at the same tier. A stale
    agenda item (the member's review moved, e.g. after an upgrade) does nothing."""
    rule = rules.loyalty
    if not rule.tiers.enabled or review_on != day.isoformat():
        return []
    target = earned_tier(rule, standing, period_end(day, rules, standing.home_store))
    if target.name == rule.tier(standing.tier).name:
        next_review = day + timedelta(days=rule.tiers.period_days)
        event_id = keys.tier_review(standing.member_id, day.isoformat())
        kept = UpdateLoyalty(
            key=keys.tier_keep(standing.member_id, day.isoformat()),
            member_id=standing.member_id,
            expect_tier=standing.tier or "",
            tier_review_on=next_review.isoformat(),
        )
        return [
            kept,
            _review(standing.member_id, next_review, event_id, rules.version, now, kept),
            *_warning_agenda(standing.member_id, next_review, event_id, rules, now, kept),
        ]
    start = datetime.combine(day, time(0), rules.stores.zone_of(standing.home_store)).astimezone(UTC)
    return change(standing, target, rules, start, keys.tier_review(standing.member_id, day.isoformat()))
