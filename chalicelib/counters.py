"""Counters, added when events are processed: exactly once per event, by construction.

An event's counters are instructions of its plan (``AddCounters``), so they are written in the
event's one transaction: an event is counted when, and only when, it is processed. They go to
two items, its store's day and the chain's day (local days in the chain's time zone). "Active
members" count a member once a day: the plan marks ``(active#<day>, member)`` on its absence and
the count depends on the marker being new. A member's first activity of a day also feeds the
retention cohort of the day they were first seen (day 1 and day 7 returns). What the plan does
counts too, each only if it happens: a coupon issued or redeemed (by cause), a check-in. An
order's tier discount (``tier_discount_fen``, what the till gave) is the cost of tier benefits.

Counter names are plain words (``follows``, ``gmv_fen``); counters by cause or category are
``<name>:<cause>`` (``coupons_issued:welcome``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo

from chalicelib import plans
from chalicelib.events import ACTIVITY, Event, Kind, robot_of
from chalicelib.plans import Instruction
from chalicelib.state.models import Member, PointsRecord
from chalicelib.store import keys

CHAIN = keys.CHAIN
TOTAL = keys.TOTAL
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
    return keys.cohort(day)


def of_event(
    event: Event, before: Member | None, member: Member | None, zone: tzinfo, order: PointsRecord | None = None
) -> Counter[str]:
    """What one event adds to its day (what its plan does comes on top: ``plan``). ``before`` and
    ``member``: the member as read and as the event leaves them. ``order``: the ledger's item of
    a refunded order, when siyu knows the order: a refund counts at most what is left of it (as
    the points do), so refunds never add up to more than the order."""
    counts: Counter[str] = Counter()
    if event.kind in BY_KIND:
        counts[BY_KIND[event.kind]] += 1
    if event.kind in ACTIVITY:
        counts["interactions"] += 1
    data = event.data
    if event.kind is Kind.ORDER_PAID:
        counts["gmv_fen"] += int(data.get("amount_fen") or 0)
        tier_discount = int(data.get("tier_discount_fen") or 0)  # what the till took off for the tier
        counts["tier_discount_fen"] += tier_discount
        counts["tier_discount_orders"] += tier_discount > 0
        today = event.occurred_at.astimezone(zone).date().isoformat()
        if member is not None and any(day < today for day in member.order_days or ()):
            counts["repeat_orders"] += 1
    elif event.kind is Kind.ORDER_REFUNDED:
        counts["refund_fen"] += refunded(int(data.get("amount_fen") or 0), order)
    elif event.kind is Kind.REVIEWED and int(data.get("score") or 5) <= 2:
        counts["reviews_negative"] += 1
    elif event.kind is Kind.NPS_ANSWERED:
        score = int(data.get("score") or 0)
        counts["nps_promoters"] += score >= 9
        counts["nps_detractors"] += score <= 6
    if is_new(before, member):
        counts["new_members"] += 1
    return +counts


def refunded(amount_fen: int, order: PointsRecord | None) -> int:
    """The part of a refund that counts: all of it for an order siyu does not know, else at most
    what the order has left (its amount minus earlier refunds)."""
    if order is None or order.voided == "yes":
        return amount_fen
    left = int(order.amount_fen or 0) - int(order.refunded_fen or 0)
    return max(0, min(amount_fen, left))


def is_new(before: Member | None, member: Member | None) -> bool:
    """The member is first seen with this event: no row before it, one after."""
    return before is None and member is not None


def plan(
    event: Event,
    before: Member | None,
    member: Member | None,
    store_id: str | None,
    counts: Counter[str],
    decided: Sequence[Instruction],
    zone: tzinfo,
    now: datetime,
) -> list[Instruction]:
    """The counter instructions of one event's plan: the event's own ``counts``, what the decided
    instructions do (each depending on its instruction), and the active-member marker."""
    day = event.occurred_at.astimezone(zone).date()
    scopes = scopes_of(store_id, Counter())
    out: list[Instruction] = []
    out += _add(scopes, day.isoformat(), counts)
    totals = Counter({"members": counts.get("new_members", 0), "followers": counts["follows"] - counts["unfollows"]})
    out += _add(scopes, TOTAL, +totals)
    if counts.get("new_members"):
        out += _add(scopes, cohort_key(day), Counter({"new_members": counts["new_members"]}))
    for instruction in decided:
        out += _add(scopes, day.isoformat(), _of(instruction), when=plans.new(instruction) if instruction.ref else None)
    if event.kind in ACTIVITY and member is not None:
        marker = plans.MarkActive(day=day.isoformat(), member_id=member.member_id, expires=now + KEEP)
        out.append(marker)
        out += _add(scopes, day.isoformat(), Counter({"active_members": 1}), when=plans.new(marker))
        returns = _returns(member, day, zone)
        if returns and member.first_seen is not None:
            first_day = member.first_seen.astimezone(zone).date()
            out += _add(scopes, cohort_key(first_day), returns, when=plans.new(marker))
    return out


def _of(instruction: Instruction) -> Counter[str]:
    """What one decided instruction counts when it is written."""
    if isinstance(instruction, plans.IssueCoupon):
        return Counter({"coupons_issued": 1, f"coupons_issued:{instruction.cause}": 1})
    if isinstance(instruction, plans.RedeemCoupon):
        return Counter({"coupons_redeemed": 1, f"coupons_redeemed:{instruction.cause}": 1})
    if isinstance(instruction, plans.RecordOnce) and instruction.pk.startswith(keys.checkins_of("")):
        return Counter({"checkins": 1})
    if isinstance(instruction, plans.Reply) and to_member(instruction.member_id, "passive_reply"):
        # a passive reply is delivered as the webhook's answer; a queued message is counted by the
        # sender when it ends (sent or dropped), with its delivery (chalicelib/delivery/sender.py)
        names = ("messages_intended", "messages_delivered")
        return Counter({f"{name}{by}": 1 for name in names for by in ("", f":{instruction.cause}")})
    if isinstance(instruction, plans.RecordDelivery) and instruction.cause:
        done = "delivered" if instruction.status == "success" else "undelivered"
        return Counter({f"messages_{done}": 1, f"messages_{done}:{instruction.cause}": 1})
    return Counter()


STAFF_CHANNELS = frozenset({"robot", "wecom_group", "identity"})


def to_member(recipient: str, channel: str) -> bool:
    """A message for one member (what the delivery rate counts), not staff, a group or siyu's own work."""
    return channel not in STAFF_CHANNELS and robot_of(recipient) is None


def _add(
    scopes: Mapping[str, Counter[str]], key: str, counts: Counter[str], when: plans.When | None = None
) -> list[Instruction]:
    if not +counts:
        return []
    return [plans.AddCounters(scope=scope, key=key, counts=dict(+counts), when=when) for scope in scopes]


def _returns(member: Member, day: date, zone: tzinfo) -> Counter[str]:
    if member.first_seen is None:
        return Counter()
    since = (day - member.first_seen.astimezone(zone).date()).days
    return Counter({f"retained_d{n}": 1 for n in RETENTION_DAYS if since == n})


def scopes_of(store_id: str | None, counts: Counter[str]) -> dict[str, Counter[str]]:
    return {CHAIN: counts, **({store_id: counts} if store_id else {})}


def counters_of(
    scope_counts: Mapping[str, Counter[str]], day: str, when: plans.When | None = None
) -> list[Instruction]:
    """``AddCounters`` for each scope's counts of a local day (timers, the sender)."""
    return [
        plans.AddCounters(scope=scope, key=day, counts=dict(+counts), when=when)
        for scope, counts in scope_counts.items()
        if +counts
    ]
