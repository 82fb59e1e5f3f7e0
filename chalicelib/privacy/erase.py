"""Erase a member's personal data from every table: ``siyu member erase OPENID`` and
``DELETE /admin/members/{id}``. What each table keeps, and why, is decided in ``registry``.

How an erase runs:

1. **The record.** An ``Erasure`` is opened under the member's *subject* (a keyed hash of the id,
   ``pseudonyms``) with the pseudonym this erase leaves behind, ``in_progress``, and a lease
   (a token and an expiry) that one run holds at a time; another run meanwhile gets Conflict.
   The member's row is marked ``erasing``: the pipeline answers their events 503 until the end.
2. **The steps**, in registry order, then the rows of the members they invited (``invitees``):
   each row found is deleted or pseudonymized in one transaction with ``+1`` on the record's
   ``<table>:<outcome>`` count, conditioned on the row being as found and on the lease. A row is
   therefore changed and counted once, whatever crashes and re-runs happen; a finished step is
   added to the record's checkpoint (``steps_done``).
3. **Done**: ``completed`` with its time, the counts read back, one log line (pseudonym and
   counts: never the id).

Idempotent and resumable: a run that dies anywhere leaves the record ``in_progress``; the next
run (after the lease, two minutes, or at once if the dying run could release it) skips the
finished steps and finds only the rows still to do. Erasing an erased member runs every step
again (they find nothing) and answers the same record. A ``budget_s`` (the admin API's, inside
its Lambda's 10 s) stops a large erase between rows: the answer says ``in_progress`` and the next
call continues. A row in someone's hands (a message being sent, an event being processed) stops
the run with Retryable: run it again shortly.

After the erase, the member is unknown: the id appears in no table (the erase record holds only
its keyed hash). What the pipeline does with the id afterwards is ``guard``'s business: late
events from before the erase are dropped; a follow, message or order after it is a new member.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.operand import Path
from pynamodb.models import Model

from chalicelib.errors import Conflict, NotFound
from chalicelib.identity import merge
from chalicelib.logs import log
from chalicelib.privacy import pseudonyms, records
from chalicelib.privacy.actions import REWRITE, Erasing, key_of, table_of
from chalicelib.privacy.records import COMPLETED, IN_PROGRESS
from chalicelib.privacy.registry import REGISTRY, Policy
from chalicelib.runtime import Context
from chalicelib.state import members
from chalicelib.state.models import BASE_NAMES, Erasure, Member, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome, Write

LEASE = timedelta(minutes=2)
INVITEES = "invitees"
API_BUDGET_S = 6.0  # the admin route's Lambda stops at 10 s (.chalice/config.json)
PLANNED = "planned"


@dataclass(frozen=True)
class Result:
    status: str  # completed | in_progress | planned (a dry run)
    pseudonym: str
    erasure: int  # 1 for a member's first erase, 2 if they came back and were erased again …
    started_at: datetime | None
    completed_at: datetime | None
    tables: dict[str, dict[str, int]]

    @property
    def erased(self) -> bool:
        return self.status == COMPLETED

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "erased": self.erased,
            "pseudonym": self.pseudonym,
            "erasure": self.erasure,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "tables": self.tables,
        }


class _Paused(Exception):
    """The run's time budget is spent: stop between rows, the next run continues."""


class _Run:
    """One run's hold on an erase record: the ``Tally`` every action counts through."""

    def __init__(self, record: Erasure, token: str, clock: Callable[[], datetime]) -> None:
        self.record = record
        self.token = token
        self.clock = clock

    def _mine(self) -> Any:
        return Erasure.lease == self.token

    def commit(self, table: str, outcome: str, writes: list[Write]) -> bool:
        count = Write(
            "update",
            Erasure(self.record.subject, self.record.number),
            (Path(f"{table}:{outcome}").add(1),),
            self._mine(),
            tag="record",
        )
        committed = db.commit([*writes, count], f"erase#{self.record.subject}#{self.token}#{table}")
        if committed.outcome is Outcome.NEW:
            return True
        tags = {write.tag for write in committed.failed}
        if "record" in tags:
            raise Conflict("another run of this erase took over")
        if "moved" in tags:
            raise Conflict(f"a {table} row the erase moves is already at its new key")
        if committed.failed:
            return False  # changed (or gone) since it was found: an earlier run did it
        raise Conflict("a row the erase changes is being written right now; run the erase again")

    def mark(self, table: str, outcome: str) -> None:
        self._update([Path(f"{table}:{outcome}").set(1)])

    def step_done(self, step: str) -> None:
        self._update([Erasure.steps_done.add({step}), Erasure.lease_until.set(self.clock() + LEASE)])

    def complete(self) -> None:
        completed_at = self.record.completed_at or self.clock()
        actions = [Erasure.status.set(COMPLETED), Erasure.lease.remove(), Erasure.lease_until.remove()]
        if self.record.completed_at is None:
            actions.append(Erasure.completed_at.set(completed_at))
        record = Write("update", Erasure(self.record.subject, self.record.number), tuple(actions), self._mine())
        committed = db.commit([record, tombstone(self.record.subject, COMPLETED, completed_at)], f"erased#{self.token}")
        if committed.outcome is not Outcome.NEW:
            raise Conflict("another run of this erase took over")

    def _update(self, actions: list[Any]) -> None:
        if db.update(Erasure(self.record.subject, self.record.number), actions, self._mine()) is not Outcome.NEW:
            raise Conflict("another run of this erase took over")

    def release(self) -> None:
        with contextlib.suppress(Conflict):  # not ours any more
            self._update([Erasure.lease.remove(), Erasure.lease_until.remove()])


def _member(member_id: str) -> Member | None:
    try:
        return Member.get(member_id, consistent_read=True)
    except Member.DoesNotExist:
        return None


def _next(ctx: Context, member_id: str) -> tuple[str, Erasure | None, Member | None, int]:
    """(subject, latest erase, member row, number of the erase to run: the latest one when it
    is unfinished or nobody came back since, else a new one). NotFound for an unknown id."""
    subject = pseudonyms.subject(ctx.settings.privacy_secret, member_id)
    latest, member = records.latest(subject), _member(member_id)
    if latest is None and member is None:
        raise NotFound(f"no member {member_id}")
    if latest is None:
        return subject, None, member, 1
    new = latest.status == COMPLETED and member is not None
    return subject, latest, member, int(latest.number) + (1 if new else 0)


def _open(ctx: Context, member_id: str, requested_by: str) -> tuple[_Run, bool]:
    """Hold the erase to run: (the run, whether it re-runs a completed erase)."""
    subject, latest, _, number = _next(ctx, member_id)
    now, token = ctx.clock.now(), uuid.uuid4().hex
    if latest is None or number > latest.number:
        record = Erasure(
            subject,
            number,
            pseudonym=pseudonyms.pseudonym(ctx.settings.privacy_secret, member_id, number),
            status=IN_PROGRESS,
            started_at=now,
            requested_by=requested_by,
            lease=token,
            lease_until=now + LEASE,
        )
        opened = Write("put", record, condition=Erasure.number.does_not_exist())
        if db.commit([opened, tombstone(subject, IN_PROGRESS)], f"erase#{subject}#{number}").outcome is not Outcome.NEW:
            raise Conflict("another erase of this member is starting")
        return _Run(record, token, ctx.clock.now), False
    free = Erasure.lease_until.does_not_exist() | (Erasure.lease_until < now)
    if db.update(latest, [Erasure.lease.set(token), Erasure.lease_until.set(now + LEASE)], free) is not Outcome.NEW:
        raise Conflict("an erase of this member is running; try again in a few minutes")
    return _Run(latest, token, ctx.clock.now), latest.status == COMPLETED


def tombstone(subject: str, status: str, completed_at: datetime | None = None) -> Write:
    """What the pipeline reads, with every event, to recognize an erased id (``guard``): the keyed
    hash of the id, the erase's status and when it completed. No personal data."""
    return Write("put", Shared(keys.ERASED, subject, value=status, valid_until=completed_at))


Work = Iterable[tuple[Any, Model, Erasing]]  # (action, row, whose row / which id goes)


def _steps(
    member_id: str, pseudonym: str, now: datetime, policies: Sequence[Policy]
) -> list[tuple[str, Callable[[], Work]]]:
    """(step, its rows) in order: each policy's rows of the member, then the rows of the members
    they invited that quote their id. The rows are read when the step runs, not before."""
    erased = Erasing(member_id, member_id, pseudonym, now)
    active = [policy for policy in policies if policy.find is not None]

    def rows_of(policy: Policy) -> Callable[[], Work]:
        return lambda: ((policy.action, item, erased) for item in policy.find(erased))  # type: ignore[misc]

    def invitees() -> Work:
        quoted = [policy for policy in active if policy.quoted]
        for invitee in Member.by_inviter.query(member_id):
            theirs = Erasing(invitee.member_id, member_id, pseudonym, now)
            for policy in quoted:
                yield from ((REWRITE, item, theirs) for item in policy.find(theirs))  # type: ignore[misc]

    return [*((policy.name, rows_of(policy)) for policy in active), (INVITEES, invitees)]


def erase(
    ctx: Context,
    member_id: str,
    requested_by: str,
    *,
    budget_s: float | None = None,
    policies: Sequence[Policy] = REGISTRY,
) -> Result:
    """Erase the person ``member_id`` is (any of their ids: chalicelib/identity), or finish, or
    repeat, their erase: every person merged into them first (each its own erase record), then
    them; once done, each of their ids has a tombstone, so a late event of any is refused.
    NotFound for an id siyu never had."""
    deadline = None if budget_s is None else time.monotonic() + budget_s
    person = merge.current(member_id)
    target = person.member_id if person is not None else member_id
    for absorbed in sorted(person.absorbed or ()) if person is not None else ():
        try:
            done = _erase_one(ctx, absorbed, requested_by, deadline, policies)
        except NotFound:
            continue  # erased before
        if done.status != COMPLETED:
            return done
    result = _erase_one(ctx, target, requested_by, deadline, policies)
    others = sorted(members.platform_ids(person) - {target}) if person is not None else []
    if result.status == COMPLETED and others:
        subjects = [pseudonyms.subject(ctx.settings.privacy_secret, platform_id) for platform_id in others]
        db.commit([tombstone(s, COMPLETED, ctx.clock.now()) for s in subjects], f"erased-ids#{result.pseudonym}")
    return result


def _erase_one(
    ctx: Context, member_id: str, requested_by: str, deadline: float | None, policies: Sequence[Policy]
) -> Result:
    """Erase one member row (or finish, or repeat, its erase), until ``deadline`` (monotonic)."""
    started = time.monotonic()
    run, again = _open(ctx, member_id, requested_by)
    done = set() if again else set(run.record.steps_done or ())
    pseudonym = run.record.pseudonym
    completed = False
    try:
        _mark_erasing(member_id)
        for step, rows in _steps(member_id, pseudonym, ctx.clock.now(), policies):
            if step in done:
                continue
            for action, item, erasing in rows():
                if deadline is not None and time.monotonic() >= deadline:
                    raise _Paused
                action.apply(item, erasing, run)
            run.step_done(step)
        run.complete()
        completed = True
    except _Paused:
        pass
    finally:
        if not completed:
            run.release()  # at once, rather than after the lease: the next run may continue
    record = Erasure.get(run.record.subject, run.record.number, consistent_read=True)
    result = _result(record, records.counts(record), policies)
    flat = {f"{t}_{o}": n for t, outcomes in result.tables.items() for o, n in outcomes.items()}
    log(
        "privacy.erased" if result.status == COMPLETED else "privacy.erase_paused",
        pseudonym=pseudonym,
        erasure=result.erasure,
        requested_by=requested_by,
        ms=round((time.monotonic() - started) * 1000, 1),
        **flat,
    )
    return result


def plan(ctx: Context, member_id: str, policies: Sequence[Policy] = REGISTRY) -> Result:
    """The dry run: what an erase would change, per table; nothing is written."""
    _, _, _, number = _next(ctx, member_id)
    pseudonym = pseudonyms.pseudonym(ctx.settings.privacy_secret, member_id, number)
    tables: dict[str, Counter[str]] = defaultdict(Counter)
    seen: set[tuple[str, Any]] = set()
    for step, rows in _steps(member_id, pseudonym, ctx.clock.now(), policies):
        for action, item, erasing in rows():
            key = (table_of(item), key_of(item))
            if step == INVITEES and key in seen:
                continue  # an earlier step changes this row already (an invite they made)
            outcome = action.plan(item, erasing)
            if outcome is not None:
                seen.add(key)
                tables[table_of(item)][outcome] += 1
    return _result_of(PLANNED, pseudonym, number, None, None, tables, policies)


def _mark_erasing(member_id: str) -> None:
    db.update(Member(member_id), [Member.erasing.set("yes")], Member.member_id.exists())  # gone already: fine


def _result(record: Erasure, counted: dict[str, dict[str, int]], policies: Sequence[Policy]) -> Result:
    return _result_of(
        record.status, record.pseudonym, int(record.number), record.started_at, record.completed_at, counted, policies
    )


def _result_of(
    status: str,
    pseudonym: str,
    number: int,
    started_at: datetime | None,
    completed_at: datetime | None,
    counted: dict[str, Any],
    policies: Sequence[Policy],
) -> Result:
    """Every table the registry knows, in its order, with the rows changed (``{}``: none)."""
    names = dict.fromkeys(BASE_NAMES.get(policy.table, policy.name) for policy in policies)
    tables = {name: dict(sorted(counted.get(name, {}).items())) for name in names}
    return Result(status, pseudonym, number, started_at, completed_at, tables)
