"""The event journal: dedupe by conditional put, a lease while one worker processes an event,
and the stored reply that answers WeChat's retries (powertools' idempotency record, on
PynamoDB). States: in_progress (leased) → done | failed; a failed or lease-expired record
can be taken over by the next delivery or by the redrive timer."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.events import Event
from chalicelib.state.conditions import is_condition_failure
from chalicelib.state.models import EventRecord

LEASE = timedelta(seconds=15)
STALLED = "1"


class Claim(enum.Enum):
    CLAIMED = "claimed"  # ours to process
    DONE = "done"  # processed already: answer with the stored reply
    BUSY = "busy"  # another worker holds a live lease


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    reply: str | None = None
    attempts: int = 1


def claim(event: Event, now: datetime, ttl: timedelta) -> ClaimResult:
    record = EventRecord(
        event.event_id,
        kind=event.kind.value,
        source=event.source,
        member_id=event.member_id,
        occurred_at=event.occurred_at,
        received_at=now,
        day=now.date().isoformat(),
        body=event.to_json(),
        status="in_progress",
        attempts=1,
        lease_until=now + LEASE,
        stalled=STALLED,
        expires=now + ttl,
    )
    try:
        record.save(condition=EventRecord.event_id.does_not_exist())
        return ClaimResult(Claim.CLAIMED)
    except PutError as exc:
        if not is_condition_failure(exc):
            raise
    return reclaim(event.event_id, now)


def reclaim(event_id: str, now: datetime) -> ClaimResult:
    """Look at an existing record: replay it if done, take it over if failed or abandoned."""
    existing = EventRecord.get(event_id, consistent_read=True)
    if existing.status == "done":
        return ClaimResult(Claim.DONE, existing.reply, existing.attempts)
    abandoned = existing.lease_until is None or existing.lease_until <= now
    if existing.status == "in_progress" and not abandoned:
        return ClaimResult(Claim.BUSY)
    try:
        existing.update(
            actions=[
                EventRecord.status.set("in_progress"),
                EventRecord.attempts.add(1),
                EventRecord.lease_until.set(now + LEASE),
            ],
            condition=(EventRecord.status == existing.status) & (EventRecord.attempts == existing.attempts),
        )
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise
        return ClaimResult(Claim.BUSY)
    return ClaimResult(Claim.CLAIMED, attempts=existing.attempts)


def peek(event_id: str) -> EventRecord:
    return EventRecord.get(event_id, consistent_read=True)


def complete(event_id: str, reply: str | None) -> None:
    actions = [
        EventRecord.status.set("done"),
        EventRecord.stalled.remove(),
        EventRecord.lease_until.remove(),
        EventRecord.error.remove(),
        EventRecord.reply.set(reply) if reply is not None else EventRecord.reply.remove(),
    ]
    EventRecord(event_id).update(actions=actions)


def forget(event_id: str) -> None:
    """Remove the record: the event was about an erased member (chalicelib/privacy/guard.py)."""
    EventRecord(event_id).delete()


def release(event_id: str, error: str, now: datetime) -> None:
    """Give the event back after a failure: the next delivery or the redrive timer redoes it."""
    EventRecord(event_id).update(
        actions=[
            EventRecord.status.set("failed"),
            EventRecord.error.set(error[:200]),
            EventRecord.lease_until.set(now),
        ]
    )


def stalled(before: datetime, limit: int) -> list[str]:
    """Ids of events not done whose lease ended before ``before`` (sparse index, no scan)."""
    query = EventRecord.stalled_index.query(STALLED, EventRecord.lease_until < before, limit=limit)
    return [record.event_id for record in query]
