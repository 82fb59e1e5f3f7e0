"""The points ledger: points are never lost and never counted twice.

One partition per member in the ``points`` table. Every change is an immutable entry
(``entry#<cause key>``) written in ONE DynamoDB transaction with the member's balance item:

- the entry is put on the condition that its key is absent, so a cause (an order, a refund, a
  redemption, a day's check-in) posts at most once, whatever the retries and duplicates;
- the balance item is updated on the condition that its ``seq`` (the number of entries) is the
  one read just before (optimistic locking), and the entry records that sequence number and the
  balance after it. So ``balance == sum(entry deltas)`` and ``seq == number of entries`` hold
  after every committed transaction, and a debit is computed against the current balance:
  the balance never goes negative;
- an order's item (``order#<id>``) records what the order earned and what refunds reversed, on
  its own condition, so refunds together never reverse more than the order earned, and a
  refund that arrives before its order voids the order's earning.

The audit re-derives every balance from its entries. It reads the balance item before the
entries (``balance`` sorts before ``entry#``) and only counts entries up to the balance's
``seq``, so a posting that commits during the audit is not reported as a difference.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.errors import Retryable
from chalicelib.logs import log
from chalicelib.state.conditions import cancellation_codes
from chalicelib.state.models import PointsRecord

BALANCE = "balance"
ENTRY = "entry#"
ORDER = "order#"
ATTEMPTS = 8  # optimistic-lock attempts against concurrent postings of the same member

Mode = Literal["credit", "debit", "reverse"]
Outcome = Literal["new", "taken", "refused"]


@dataclass(frozen=True)
class Posting:
    """One intended ledger entry (the plan's ``PostPoints`` effect carries one).

    ``mode``: ``credit`` adds ``delta`` (≥ 0); ``debit`` takes ``-delta`` only if the balance
    covers all of it, else nothing is written (redemption); ``reverse`` takes what the balance
    covers and records the rest as ``unrecovered`` (refunds, expiry: never negative).
    ``order``: ``open`` creates the order's item (an earn), ``reverse`` moves its reversed
    points on the condition that they are still ``order_reversed`` (a refund), ``void`` creates
    it voided (a refund of an order that earned nothing yet)."""

    member_id: str
    key: str
    delta: int
    mode: Mode
    cause: str
    event_id: str
    rules_version: str
    at: datetime
    order_id: str | None = None
    order: Literal["open", "reverse", "void"] | None = None
    order_reversed: int = 0
    order_refunded_fen: int = 0
    amount_fen: int | None = None
    spend_fen: int = 0
    categories: frozenset[str] = frozenset()
    expires_on: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Balance:
    points: int
    seq: int
    spend_fen: int


@dataclass(frozen=True)
class Difference:
    member_id: str
    balance: int
    ledger_sum: int
    seq: int
    entries: int


_one_read: ContextVar[dict | None] = ContextVar("ledger_one_read", default=None)


@contextmanager
def one_read(member_id: str | None) -> Iterator[None]:
    """Within the block, reads of this member's ledger are answered from one query of their
    partition, made on the first read: the duties gathering facts for one order ask the ledger
    half a dozen questions. Only for reading: postings always read afresh."""
    token = _one_read.set({"member": member_id, "items": None})
    try:
        yield
    finally:
        _one_read.reset(token)


def _partition(member_id: str) -> list[PointsRecord]:
    held = _one_read.get()
    if held is None or held["member"] != member_id:
        return list(PointsRecord.query(member_id, consistent_read=True))
    if held["items"] is None:
        held["items"] = list(PointsRecord.query(member_id, consistent_read=True))
    return held["items"]


def _held(member_id: str) -> bool:
    held = _one_read.get()
    return held is not None and held["member"] == member_id


def _one(member_id: str, sk: str) -> PointsRecord | None:
    if _held(member_id):
        return next((item for item in _partition(member_id) if item.sk == sk), None)
    found = list(PointsRecord.query(member_id, PointsRecord.sk == sk, consistent_read=True))
    return found[0] if found else None


def entry(member_id: str, key: str) -> PointsRecord | None:
    return _one(member_id, ENTRY + key)


def order_item(member_id: str, order_id: str) -> PointsRecord | None:
    return _one(member_id, ORDER + order_id)


def entries(member_id: str, prefix: str = "") -> list[PointsRecord]:
    """A member's entries in key order (``prefix``: e.g. ``earn#`` for the orders that earned)."""
    if _held(member_id):
        return [item for item in _partition(member_id) if item.sk.startswith(ENTRY + prefix)]
    return list(PointsRecord.query(member_id, PointsRecord.sk.startswith(ENTRY + prefix), consistent_read=True))


def orders_since(member_id: str, since: datetime) -> list[tuple[datetime, int, frozenset[str]]]:
    """(paid at, net amount in fen, categories) of each order that earned since ``since``: the
    order's amount minus what was refunded of it (tiers and precision push read from here)."""
    items = _partition(member_id)
    refunded = {i.sk.removeprefix(ORDER): int(i.refunded_fen or 0) for i in items if i.sk.startswith(ORDER)}
    return [
        (
            item.at,
            max(0, int(item.amount_fen or 0) - refunded.get(str(item.order_id), 0)),
            frozenset(item.categories or ()),
        )
        for item in items
        if item.sk.startswith(ENTRY + "earn#") and item.at is not None and item.at >= since
    ]


def redemption(member_id: str, redemption_id: str) -> dict[str, int | bool]:
    """What the caller of a redemption is told: whether it was debited, and the balance."""
    debited = entry(member_id, f"redeem#{redemption_id}") is not None
    return {"redeemed": debited, "balance": balance_of(member_id).points}


def post(posting: Posting) -> Outcome:
    """Write one entry with its balance, exactly once. ``new``: written now (or by an earlier
    attempt of the same event); ``taken``: another event already posted this key; ``refused``: a
    debit the balance does not cover, or an earn of an order a refund already voided."""
    for attempt in range(ATTEMPTS):
        current = balance_of(posting.member_id)
        delta, unrecovered = _amount(posting, current.points)
        if delta is None:
            log("points.refused", key=posting.key, cause=posting.cause, balance=current.points)
            return "refused"
        try:
            _transact(posting, current, delta, unrecovered)
        except TransactWriteError as exc:
            reasons = cancellation_codes(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return _already(posting)
            if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
                if posting.order == "open":
                    log("points.order_voided", key=posting.key)
                    return "refused"
                raise Retryable("the order's points changed since the decision; retry") from exc
            if not any(code in ("ConditionalCheckFailed", "TransactionConflict") for code in reasons):
                raise
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # a concurrent posting won: re-read
            continue
        log("points.posted", key=posting.key, cause=posting.cause, delta=delta, seq=current.seq + 1)
        return "new"
    raise Retryable("too many concurrent postings for this member; retry")


def balance_of(member_id: str) -> Balance:
    item = _one(member_id, BALANCE)
    if item is None:
        return Balance(0, 0, 0)
    return Balance(int(item.balance or 0), int(item.seq or 0), int(item.spend_fen or 0))


def _amount(posting: Posting, balance: int) -> tuple[int | None, int]:
    if posting.mode == "credit":
        return max(posting.delta, 0), 0
    wanted = min(posting.delta, 0)
    if balance + wanted >= 0:
        return wanted, 0
    if posting.mode == "debit":
        return None, 0
    return -balance, -(balance + wanted)  # take what the balance covers; the rest is unrecovered


def _already(posting: Posting) -> Outcome:
    existing = entry(posting.member_id, posting.key)
    return "new" if existing is not None and existing.event_id == posting.event_id else "taken"


def _transact(posting: Posting, current: Balance, delta: int, unrecovered: int) -> None:
    seq = current.seq + 1
    record = PointsRecord(
        posting.member_id,
        ENTRY + posting.key,
        seq=seq,
        delta=delta,
        balance_after=current.points + delta,
        cause=posting.cause,
        event_id=posting.event_id,
        rules_version=posting.rules_version,
        at=posting.at,
        order_id=posting.order_id,
        amount_fen=posting.amount_fen,
        categories=set(posting.categories) or None,
        expires_on=posting.expires_on,
        expires_month=posting.expires_on[:7] if posting.expires_on and delta > 0 else None,
        unrecovered=unrecovered or None,
        note=posting.note,
    )
    with TransactWrite(connection=PointsRecord._get_connection().connection) as transaction:
        transaction.save(record, condition=PointsRecord.sk.does_not_exist())
        balance_actions = [
            PointsRecord.balance.set(current.points + delta),
            PointsRecord.seq.set(seq),
            PointsRecord.spend_fen.set(current.spend_fen + posting.spend_fen),
        ]
        unchanged = (PointsRecord.seq.does_not_exist() if current.seq == 0 else PointsRecord.seq == current.seq) & (
            PointsRecord.balance.does_not_exist() | (PointsRecord.balance >= -delta)
        )
        transaction.update(PointsRecord(posting.member_id, BALANCE), actions=balance_actions, condition=unchanged)
        if posting.order_id and posting.order:
            _order_step(transaction, posting, delta)


def _order_step(transaction: TransactWrite, posting: Posting, delta: int) -> None:
    """Always an update (an update creates a missing item): PynamoDB sends puts before updates,
    and ``post`` reads the cancellation reasons by position (entry, balance, order)."""
    item = PointsRecord(posting.member_id, ORDER + str(posting.order_id))
    if posting.order in ("open", "void"):
        actions = [
            PointsRecord.earned.set(delta),
            PointsRecord.reversed.set(0),
            PointsRecord.event_id.set(posting.event_id),
        ]
        if posting.order == "open":
            actions += [PointsRecord.amount_fen.set(posting.amount_fen or 0), PointsRecord.refunded_fen.set(0)]
        else:
            actions += [PointsRecord.voided.set("yes"), PointsRecord.refunded_fen.set(posting.amount_fen or 0)]
        transaction.update(item, actions=actions, condition=PointsRecord.sk.does_not_exist())
    else:
        transaction.update(
            item,
            actions=[
                PointsRecord.reversed.set(posting.order_reversed - delta),
                PointsRecord.refunded_fen.set(posting.order_refunded_fen + (posting.amount_fen or 0)),
            ],
            condition=PointsRecord.sk.exists() & (PointsRecord.reversed == posting.order_reversed),
        )


def check_member(member_id: str) -> Difference | None:
    """Re-derive one member's balance from the entries; ``None`` when they agree."""
    items = list(PointsRecord.query(member_id, consistent_read=True))  # balance first, then entry#…
    head = next((i for i in items if i.sk == BALANCE), None)
    balance, seq = (int(head.balance or 0), int(head.seq or 0)) if head else (0, 0)
    counted = [i for i in items if i.sk.startswith(ENTRY) and int(i.seq or 0) <= seq]
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
