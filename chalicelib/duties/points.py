"""Points (积分): a paid order earns points, a refund reverses what its order earned, a
redemption spends them (docs/domain.md, "Loyalty").

Earning: ``floor(yuan × points_per_yuan)`` plus ``series_bonus_points`` per item of a designated
series, times the member's tier multiplier, floored. Each cause has one ledger key
(``earn#<order>``, ``refund#<order>#<refund>``, ``redeem#<redemption>``; a catalog item's
redemption is ``duties.catalog``'s), so retries, duplicate
deliveries and concurrent workers post it once (``chalicelib/ledger.py``).

Refunds reverse the order's points in proportion to the money refunded so far (all of them
once the whole amount is refunded), and never more than the order earned. Refunds and
redemptions are honoured whatever the rule says today: a member's points are the member's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from chalicelib import ledger
from chalicelib.calendars import local_day, month_end
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, PostPoints, QueueMessage
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import LoyaltyRule
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member, PointsRecord
from chalicelib.store import db, keys

TRIGGERS = frozenset({Kind.ORDER_PAID, Kind.ORDER_REFUNDED, Kind.POINTS_REDEEMED})
CAUSE = "points"


@dataclass(frozen=True)
class OrderState:
    """What the ledger knows of an order: what it earned and what refunds took back."""

    earned: int
    reversed: int
    refunded_fen: int
    amount_fen: int
    voided: bool


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    home_store: str | None
    tier: str | None
    order: OrderState | None  # the order's item (an order paid, a refund), when the ledger has it


def prefetch(event: Event, settings: Settings) -> list[db.Key]:
    """The balance (what a posting is settled against) and, for orders and refunds, the order's item."""
    if not event.member_id:
        return []
    wanted: list[db.Key] = [(PointsRecord, event.member_id, keys.BALANCE)]
    if event.kind in (Kind.ORDER_PAID, Kind.ORDER_REFUNDED):
        wanted.append((PointsRecord, event.member_id, keys.order(str(event.data["order_id"]))))
    return wanted


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    order = None
    if event.kind in (Kind.ORDER_PAID, Kind.ORDER_REFUNDED):
        item = ledger.order_item(event.member_id, str(event.data["order_id"]), reads)
        if item is not None:
            order = OrderState(
                int(item.earned or 0),
                int(item.reversed or 0),
                int(item.refunded_fen or 0),
                int(item.amount_fen or 0),
                item.voided == "yes",
            )
    return Facts(event, event.member_id, member.store_id or event.store_id, member.tier, order)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    event = facts.event
    if event.kind is Kind.ORDER_PAID:
        return _earn(facts, rules, now)
    if event.kind is Kind.ORDER_REFUNDED:
        return [_reverse(facts, rules)]
    if event.data.get("item_id"):
        return []  # a catalog item: duties.catalog debits its price with the rest of it
    return [
        PostPoints(
            member_id=facts.member_id,
            key=keys.redeem_points(str(event.data["redemption_id"])),
            delta=-int(event.data["points"]),
            mode="debit",
            cause="redeem",
            event_id=event.event_id,
            rules_version=rules.version,
            at=event.occurred_at,
            note=str(event.data.get("reason") or "") or None,
        )
    ]


def earned_points(rule: LoyaltyRule, tier: str | None, amount_fen: int, items: list[dict]) -> int:
    """Points an order earns under the rule, for a member of ``tier``."""
    section = rule.points
    base = (Decimal(amount_fen) * section.points_per_yuan / 100).to_integral_value(ROUND_FLOOR)
    in_series = sum(int(i.get("qty") or 1) for i in items if i.get("series") in section.bonus_series)
    raw = (base + in_series * section.series_bonus_points) * rule.tier(tier).points_multiplier
    return int(raw.to_integral_value(ROUND_FLOOR))


def _earn(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    rule = rules.loyalty
    event = facts.event
    if not rule.points.enabled or not in_scope(rule, "loyalty", facts.member_id, facts.home_store, now):
        return []
    if facts.order is not None:  # voided by a refund that came first, or earned already
        return []
    amount = int(event.data["amount_fen"])
    items = list(event.data.get("items") or [])
    expires_on = expiry_of(rules, event.occurred_at, facts.home_store)
    order_id = str(event.data["order_id"])
    return [
        PostPoints(
            member_id=facts.member_id,
            key=keys.earn(order_id),
            delta=earned_points(rule, facts.tier, amount, items),
            mode="credit",
            cause="order",
            event_id=event.event_id,
            rules_version=rules.version,
            at=event.occurred_at,
            order_id=order_id,
            order="open",
            amount_fen=amount,
            spend_fen=amount,
            categories=frozenset(str(i["category"]) for i in items if i.get("category")),
            expires_on=expires_on,
        )
    ]


def expiry_of(rules: RuleSet, earned_at: datetime, home_store: str | None) -> str | None:
    """The local date after which points earned at ``earned_at`` expire (``None``: never)."""
    months = rules.loyalty.points.expire_after_months
    if not months:
        return None
    return month_end(local_day(earned_at, rules.stores.zone_of(home_store)), months).isoformat()


def reversal(order: OrderState, refund_fen: int) -> int:
    """Points a refund takes back: the earned points in proportion to all money refunded so
    far (every point once the whole amount is refunded), minus what earlier refunds took."""
    refunded = order.refunded_fen + refund_fen
    if order.amount_fen <= 0 or refunded >= order.amount_fen:
        target = order.earned
    else:
        share = Decimal(order.earned) * refunded / order.amount_fen
        target = int(share.to_integral_value(ROUND_HALF_UP))
    return max(0, min(target, order.earned) - order.reversed)


def _reverse(facts: Facts, rules: RuleSet) -> PostPoints:
    event = facts.event
    order_id = str(event.data["order_id"])
    refund_fen = int(event.data["amount_fen"])
    order = facts.order
    common = {
        "order_id": order_id,
        "amount_fen": refund_fen,
        "note": None if order else "refund before the order earned: the order will earn nothing",
    }
    key = keys.refund(order_id, str(event.data["refund_id"]))
    if order is None:
        return PostPoints(
            member_id=facts.member_id,
            key=key,
            delta=0,
            mode="reverse",
            cause="refund",
            event_id=event.event_id,
            rules_version=rules.version,
            at=event.occurred_at,
            order="void",
            **common,  # type: ignore[arg-type]
        )
    taken = reversal(order, refund_fen)
    spend_back = -min(refund_fen, max(0, order.amount_fen - order.refunded_fen))
    return PostPoints(
        member_id=facts.member_id,
        key=key,
        delta=-taken,
        mode="reverse",
        cause="refund",
        event_id=event.event_id,
        rules_version=rules.version,
        at=event.occurred_at,
        order="reverse",
        order_reversed=order.reversed,
        order_refunded_fen=order.refunded_fen,
        spend_fen=spend_back,
        **common,  # type: ignore[arg-type]
    )


# --- expiry (the loyalty timer) -------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    delta: int
    expires_on: str | None  # credits only


def expiring(entries: list[Entry], cutoff: str) -> int:
    """Points of credits that expire on or before ``cutoff`` (a local date) and are still
    unspent. Spending is first-in, first-out: every debit so far (redemptions, reversals,
    earlier expiries) used the oldest points first, so what expires is the old credits minus
    all debits, never less than 0."""
    old = sum(e.delta for e in entries if e.delta > 0 and e.expires_on and e.expires_on <= cutoff)
    spent = -sum(e.delta for e in entries if e.delta < 0)
    return max(0, old - spent)


def expiry_plan(member_id: str, month: str, amount: int, rules: RuleSet, now: datetime) -> list[Instruction]:
    """Expire a month's unspent points once (key ``expire#<month>``)."""
    if amount <= 0:
        return []
    return [
        PostPoints(
            member_id=member_id,
            key=keys.expiry(month),
            delta=-amount,
            mode="reverse",
            cause="expiry",
            event_id=keys.expiry_step(month),
            rules_version=rules.version,
            at=now,
        )
    ]


def reminder_plan(
    member_id: str, last_day: str, amount: int, balance: int, rules: RuleSet, home_store: str | None
) -> list[Instruction]:
    """Tell the member once per month which points are about to expire."""
    if amount <= 0 or not rules.loyalty.points.expiry_reminder_days:
        return []
    day = datetime.fromisoformat(last_day).date()
    words = {"points": str(amount), "balance": str(balance), "date": f"{day.year}年{day.month}月{day.day}日"}
    text = fill(rules.loyalty.points.expiry_reminder_text, **words)
    return [
        QueueMessage(
            message_key=keys.expiry_reminder(member_id, last_day[:7]),
            member_id=member_id,
            channel="custom",
            category="service",
            text=text,
            cause="points_expiry",
            event_id=keys.expiry_reminder_step(last_day[:7]),
            rules_version=rules.version,
            store_id=home_store,
            payload=words,
        )
    ]
