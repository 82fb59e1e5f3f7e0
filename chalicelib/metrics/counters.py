"""Counters, added when events are processed: exactly once per event.

An event's counters go to two items, its store's day and the chain's day (local days in the
chain's time zone), in one transaction with the event record's ``counted`` flag, written on the
condition that it is absent: a retried or redriven event is counted once. "Active members" count
a member once a day: the same transaction puts the marker ``(active#<day>, member)`` on the
condition it is new, and when that condition fails (the member was already active that day) the
counters are added again without it. A member's first activity of a day also feeds the
retention cohort of the day they were first seen (day 1 and day 7 returns).

Counter names are plain words (``follows``, ``gmv_fen``); counters by cause or category are
``<name>:<cause>`` (``coupons_issued:welcome``).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, tzinfo

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.operand import Path
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.events import ACTIVITY, Event, Kind
from chalicelib.state.conditions import cancellation_codes
from chalicelib.state.models import EventRecord, Member, Metric, OutboxMessage

CHAIN = "chain"
TOTAL = "total"
KEEP = timedelta(days=400)
RETENTION_DAYS = (1, 7)

BY_KIND = {
    Kind.FOLLOWED: "follows",
    Kind.UNFOLLOWED: "unfollows",
    Kind.JOINED_GROUP: "group_joins",
    Kind.LEFT_GROUP: "group_leaves",
    Kind.CONTACT_ADDED: "contacts_added",
    Kind.MESSAGED: "messages_in",
    Kind.ORDER_PAID: "orders",
    Kind.ORDER_REFUNDED: "refunds",
    Kind.REVIEWED: "reviews",
    Kind.NPS_ANSWERED: "nps_answers",
    Kind.POINTS_REDEEMED: "points_redemptions",
}


def cohort_key(day: date) -> str:
    return f"cohort#{day.isoformat()}"


def of_event(event: Event, member: Member | None, zone: tzinfo) -> Counter[str]:
    """What one event adds to its day (effects come on top: ``of_effects``)."""
    counts: Counter[str] = Counter()
    if event.kind in BY_KIND:
        counts[BY_KIND[event.kind]] += 1
    if event.kind in ACTIVITY:
        counts["interactions"] += 1
    data = event.data
    if event.kind is Kind.ORDER_PAID:
        counts["gmv_fen"] += int(data.get("amount_fen") or 0)
        today = event.occurred_at.astimezone(zone).date().isoformat()
        if member is not None and any(day < today for day in member.order_days or ()):
            counts["repeat_orders"] += 1
    elif event.kind is Kind.ORDER_REFUNDED:
        counts["refund_fen"] += int(data.get("amount_fen") or 0)
    elif event.kind is Kind.REVIEWED and int(data.get("score") or 5) <= 2:
        counts["reviews_negative"] += 1
    elif event.kind is Kind.NPS_ANSWERED:
        score = int(data.get("score") or 0)
        counts["nps_promoters"] += score >= 9
        counts["nps_detractors"] += score <= 6
    if is_new(event, member):
        counts["new_members"] += 1
    return +counts


def of_effects(issued: list[str], redeemed: list[str], records: dict[str, str]) -> Counter[str]:
    """Coupons issued / redeemed by cause; check-ins (a new ``checkin#<member>|<day>`` record,
    however the member checked in: keyword or mini program)."""
    counts: Counter[str] = Counter()
    counts["checkins"] += sum(1 for key, outcome in records.items() if _is_checkin_day(key) and outcome == "new")
    for cause in issued:
        counts["coupons_issued"] += 1
        counts[f"coupons_issued:{cause}"] += 1
    for cause in redeemed:
        counts["coupons_redeemed"] += 1
        counts[f"coupons_redeemed:{cause}"] += 1
    return counts


def _is_checkin_day(key: str) -> bool:
    """The day's record ``checkin#<member>|<day>``, not the points posted under ``checkin#<day>``."""
    return key.startswith("checkin#") and "|" in key


def is_new(event: Event, member: Member | None) -> bool:
    """The member was first seen with this event (``first_seen`` is set only if absent)."""
    return member is not None and member.first_seen == event.occurred_at and member.origin == event.source


def count_event(
    event: Event, member: Member | None, store_id: str | None, counts: Counter[str], zone: tzinfo, now: datetime
) -> bool:
    """Add the event's counters once; False when an earlier attempt already did."""
    day = event.occurred_at.astimezone(zone).date()
    scopes = [CHAIN, *([store_id] if store_id else [])]
    totals: Counter[str] = Counter()
    totals["members"] += counts.get("new_members", 0)
    totals["followers"] += counts.get("follows", 0) - counts.get("unfollows", 0)
    cohort: Counter[str] = Counter({"new_members": counts["new_members"]}) if counts.get("new_members") else Counter()
    returns = _returns(event, member, day, zone) if event.kind in ACTIVITY and member else Counter()
    active = event.kind in ACTIVITY and member is not None
    for with_marker in [True, False] if active else [False]:
        items = []
        for scope in scopes:
            day_counts = counts + (Counter({"active_members": 1}) if with_marker else Counter())
            items.append((Metric(scope, day.isoformat()), day_counts))
            if +totals:
                items.append((Metric(scope, TOTAL), totals))
            if cohort:
                items.append((Metric(scope, cohort_key(day)), cohort))
            if with_marker and returns:
                first_day = member.first_seen.astimezone(zone).date()  # type: ignore[union-attr]
                items.append((Metric(scope, cohort_key(first_day)), returns))
        marker = Metric(f"active#{day.isoformat()}", member.member_id, expires=now + KEEP) if with_marker else None
        outcome = _write(event.event_id, items, marker, now)
        if outcome != "active":
            return outcome == "counted"
    return False


def _returns(event: Event, member: Member, day: date, zone: tzinfo) -> Counter[str]:
    if member.first_seen is None:
        return Counter()
    since = (day - member.first_seen.astimezone(zone).date()).days
    return Counter({f"retained_d{n}": 1 for n in RETENTION_DAYS if since == n})


def _write(event_id: str, items: list[tuple[Metric, Counter[str]]], marker: Metric | None, now: datetime) -> str:
    """counted | already (an earlier attempt counted it) | active (the member was already
    active that day: try again without the marker)."""
    try:
        with TransactWrite(connection=Metric._get_connection().connection) as transaction:
            transaction.update(
                EventRecord(event_id),
                actions=[EventRecord.counted.set("yes")],
                condition=EventRecord.event_id.exists() & EventRecord.counted.does_not_exist(),
            )
            if marker is not None:
                transaction.save(marker, condition=Metric.key.does_not_exist())
            for item, counts in items:
                actions = [Path(name).add(amount) for name, amount in sorted(counts.items()) if amount]
                if actions:
                    transaction.update(item, actions=actions)
    except TransactWriteError as exc:
        # DynamoDB reports one reason per item in PynamoDB's order: puts (the marker), then updates.
        reasons = cancellation_codes(exc)
        guard = 1 if marker is not None else 0
        if len(reasons) > guard and reasons[guard] == "ConditionalCheckFailed":
            return "already"
        if marker is not None and reasons and reasons[0] == "ConditionalCheckFailed":
            return "active"
        raise
    return "counted"


def add(scope_counts: dict[str, Counter[str]], day: date, transaction: TransactWrite) -> None:
    """Add counters inside a caller's transaction (the recall sweep's, the sender's)."""
    for scope, counts in scope_counts.items():
        actions = [Path(name).add(amount) for name, amount in sorted(counts.items()) if amount]
        if actions:
            transaction.update(Metric(scope, day.isoformat()), actions=actions)


def count_message(
    message: OutboxMessage,
    zone: tzinfo,
    now: datetime,
    outcome: list | None = None,
    also: list[tuple[Model, list]] | None = None,
) -> bool:
    """A message WeChat accepted: once, guarded by the message's own ``counted`` flag. The sender
    writes the message's ``outcome`` and its other counters (``also``: item, actions) in the same
    transaction. False when an earlier attempt counted it already."""
    counts = Counter({"messages_sent": 1, f"messages_sent:{message.category}": 1})
    counts["message_cost_fen"] += int(message.cost_fen or 0)
    scopes = {CHAIN: counts, **({message.store_id: counts} if message.store_id else {})}
    try:
        with TransactWrite(connection=Metric._get_connection().connection) as transaction:
            transaction.update(
                message,
                actions=[OutboxMessage.counted.set("yes"), *(outcome or [])],
                condition=OutboxMessage.counted.does_not_exist(),
            )
            add(scopes, now.astimezone(zone).date(), transaction)
            for item, actions in also or []:
                transaction.update(item, actions=actions)
    except TransactWriteError as exc:
        reasons = cancellation_codes(exc)
        if not reasons or reasons[0] != "ConditionalCheckFailed":
            raise
        return False
    return True


def scopes_of(store_id: str | None, counts: Counter[str]) -> dict[str, Counter[str]]:
    return {CHAIN: counts, **({store_id: counts} if store_id else {})}
