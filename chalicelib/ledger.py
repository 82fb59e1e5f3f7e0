"""The points ledger: points are never lost and never counted twice.

One partition per member in the ``points`` table. Every change is an immutable entry
(``entry#<cause key>``) written in the same transaction as the member's balance item:

- the entry is put on the condition that its key is absent, so a cause (an order, a refund, a
  redemption, a day's check-in) posts at most once, whatever the retries and duplicates;
- the balance item is updated on the condition that its ``seq`` (the number of entries) is the
  one read before the plan was decided (optimistic locking), and each entry records its sequence
  number and the balance after it. ``settle`` computes both from the balance read: so
  ``balance == sum(entry deltas)`` and ``seq == number of entries`` hold after every committed
  transaction, and a debit is decided against the current balance: it never goes negative;
- an order's item (``order#<id>``) records what the order earned and what refunds reversed, on
  its own condition, so refunds together never reverse more than the order earned, and a
  refund that arrives before its order voids the order's earning.

The audit re-derives every balance from its entries. It reads the balance item before the
entries (``balance`` sorts before ``entry#``) and only counts entries up to the balance's
``seq``, so a posting that commits during the audit is not reported as a difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from chalicelib import plans
from chalicelib.facts import Snapshot
from chalicelib.plans import Plan
from chalicelib.state.models import PointsRecord
from chalicelib.store import db, keys


@dataclass(frozen=True)
class Balance:
    points: int
    seq: int
    spend_fen: int


ZERO = Balance(0, 0, 0)


@dataclass(frozen=True)
class Difference:
    member_id: str
    balance: int
    ledger_sum: int
    seq: int
    entries: int


# --- reads ------------------------------------------------------------------------------------


def _item(member_id: str, sk: str, reads: Snapshot | None) -> PointsRecord | None:
    if reads is not None:
        return reads.points_item(member_id, sk)
    return db.get(PointsRecord, member_id, sk)


def balance_of(member_id: str, reads: Snapshot | None = None) -> Balance:
    item = _item(member_id, keys.BALANCE, reads)
    if item is None:
        return ZERO
    return Balance(int(item.balance or 0), int(item.seq or 0), int(item.spend_fen or 0))


def entry(member_id: str, key: str, reads: Snapshot | None = None) -> PointsRecord | None:
    return _item(member_id, keys.entry(key), reads)


def order_item(member_id: str, order_id: str, reads: Snapshot | None = None) -> PointsRecord | None:
    return _item(member_id, keys.order(order_id), reads)


def _partition(member_id: str, reads: Snapshot | None) -> list[PointsRecord]:
    if reads is not None:
        return reads.points(member_id)
    return list(PointsRecord.query(member_id, consistent_read=True))


def entries(member_id: str, prefix: str = "", reads: Snapshot | None = None) -> list[PointsRecord]:
    """A member's entries in key order (``prefix``: e.g. ``earn#`` for the orders that earned)."""
    if reads is not None:
        return [item for item in reads.points(member_id) if item.sk.startswith(keys.ENTRY + prefix)]
    condition = PointsRecord.sk.startswith(keys.ENTRY + prefix)
    return list(PointsRecord.query(member_id, condition, consistent_read=True))


def orders_since(
    member_id: str, since: datetime, reads: Snapshot | None = None
) -> list[tuple[datetime, int, frozenset[str]]]:
    """(paid at, net amount in fen, categories) of each order that earned since ``since``: the
    order's amount minus what was refunded of it (tiers and precision push read from here)."""
    return [(at, net, categories) for _, at, net, categories in paid_orders(member_id, since, reads)]


def paid_orders(
    member_id: str, since: datetime, reads: Snapshot | None = None
) -> list[tuple[str, datetime, int, frozenset[str]]]:
    """``orders_since`` with each order's id first (segments: which orders redeemed a coupon)."""
    items = _partition(member_id, reads)
    refunded = {i.sk.removeprefix(keys.ORDER): int(i.refunded_fen or 0) for i in items if i.sk.startswith(keys.ORDER)}
    return [
        (
            str(item.order_id),
            item.at,
            max(0, int(item.amount_fen or 0) - refunded.get(str(item.order_id), 0)),
            frozenset(item.categories or ()),
        )
        for item in items
        if item.sk.startswith(keys.entry("earn#")) and item.at is not None and item.at >= since
    ]


# --- settling a plan's postings ---------------------------------------------------------------


def settle(plan: Plan, balances: Mapping[str, Balance]) -> Plan:
    """The plan with each ``PostPoints`` settled against its member's balance, in plan order, and
    one ``SetBalance`` per member after them. ``credit`` adds; ``debit`` takes all of its points
    or is refused (left out of the plan, with what depends on it); ``reverse`` takes what the
    balance covers and records the rest as unrecovered. Pure."""
    running = dict(balances)
    first: dict[str, Balance] = {}
    settled: Plan = []
    for instruction in plan:
        if not isinstance(instruction, plans.PostPoints) or instruction.settled:
            settled.append(instruction)
            continue
        current = running.get(instruction.member_id, ZERO)
        delta, unrecovered = amount(instruction, current.points)
        if delta is None:
            continue  # a debit the balance does not cover: refused
        first.setdefault(instruction.member_id, current)
        after = Balance(current.points + delta, current.seq + 1, current.spend_fen + instruction.spend_fen)
        running[instruction.member_id] = after
        settled.append(
            dataclasses.replace(
                instruction,
                delta=delta,
                unrecovered=unrecovered,
                settled=True,
                seq=after.seq,
                balance_before=current.points,
                spend_before=current.spend_fen,
            )
        )
    for member_id, before in first.items():
        after = running[member_id]
        settled.append(
            plans.SetBalance(
                member_id=member_id,
                seq_before=before.seq,
                seq=after.seq,
                balance=after.points,
                spend_fen=after.spend_fen,
            )
        )
    return settled


def amount(posting: plans.PostPoints, balance: int) -> tuple[int | None, int]:
    """(delta, unrecovered) of a posting against ``balance``; delta None: a refused debit."""
    if posting.mode == "credit":
        return max(posting.delta, 0), 0
    wanted = min(posting.delta, 0)
    if balance + wanted >= 0:
        return wanted, 0
    if posting.mode == "debit":
        return None, 0
    return -balance, -(balance + wanted)  # take what the balance covers; the rest is unrecovered


def members_posted(plan: Plan) -> list[str]:
    return list(dict.fromkeys(i.member_id for i in plan if isinstance(i, plans.PostPoints)))


# --- the audit --------------------------------------------------------------------------------


def check_member(member_id: str) -> Difference | None:
    """Re-derive one member's balance from the entries; ``None`` when they agree."""
    items = list(PointsRecord.query(member_id, consistent_read=True))  # balance first, then entry#…
    head = next((i for i in items if i.sk == keys.BALANCE), None)
    if head is not None and head.moved_to:
        return None  # merged into another person's ledger (one ``merge#`` entry there); being cleaned
    balance, seq = (int(head.balance or 0), int(head.seq or 0)) if head else (0, 0)
    # a merged person's entries copied here are history: their balance came as one ``merge#`` entry
    own = [i for i in items if i.sk.startswith(keys.ENTRY) and not i.merged_from]
    counted = [i for i in own if int(i.seq or 0) <= seq]
    total = sum(int(i.delta or 0) for i in counted)
    if total == balance and len(counted) == seq and balance >= 0:
        return None
    return Difference(member_id, balance, total, seq, len(counted))


def members() -> Iterator[str]:
    """Every member with anything in the ledger: a paged scan (the audit's reach is everyone)."""
    seen: set[str] = set()
    for item in PointsRecord.scan(attributes_to_get=["member_id"], page_size=1000, consistent_read=True):
        if item.member_id not in seen:
            seen.add(item.member_id)
            yield item.member_id


def audit(member_ids: list[str] | None = None) -> tuple[int, list[Difference]]:
    """(members checked, differences), over the given members or every member."""
    checked, differences = 0, []
    for member_id in member_ids if member_ids is not None else members():
        checked += 1
        difference = check_member(member_id)
        if difference is not None:
            differences.append(difference)
    return checked, differences
