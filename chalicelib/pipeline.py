"""One event, one atomic commit: read → decide → commit.

``process`` is called once per normalized event, by the webhooks (synchronously, well inside
WeChat's 5 s) and by the redrive timer:

1. **read**, in one request: the event's record, the member, their erase tombstone, the day's
   active-member marker and what the triggered duties declared they need (``prefetch``);
   a duty that needs more (a member's points partition) reads it through the same snapshot;
2. **decide**, pure: the member as this event leaves them (``state.members``), each triggered
   duty's plan (``chalicelib/duties/``), the counters of all of it (``chalicelib.counters``);
3. **commit**, one ``TransactWriteItems`` (``chalicelib.executor``): the event's record (on the
   condition that it is not done), the member's update, every instruction of the plan and its
   counters. There is no state in which an event is half applied.

A duty may refuse the event whole (``plans.Refuse``: a points redemption the member cannot
make): then nothing is committed, not even the record, and the caller gets the refusal.

A retry of a done event finds its record in step 1 and answers its stored reply; a duplicate
running at the same time loses the commit on the record and answers the winner's reply (the
cancelled transaction hands back the record). When what the plan was decided on changed (a
concurrent event of the same member), the event is read and decided again. A failure leaves a
``failed`` record for the redrive timer (WeChat may stop retrying), which finishes the event the
same way; a reply it makes is delivered by the outbox, nobody is waiting for it any more.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib import counters, executor, ledger, plans
from chalicelib.clock import SHANGHAI
from chalicelib.delivery import queue
from chalicelib.duties import REGISTRY, answers
from chalicelib.errors import BadRule, Erased, Retryable
from chalicelib.events import Event, Kind, robot_recipient
from chalicelib.facts import Snapshot
from chalicelib.identity import resolve
from chalicelib.logs import log
from chalicelib.plans import Instruction, Plan
from chalicelib.privacy import guard
from chalicelib.rules.loader import RuleSet
from chalicelib.runtime import Context
from chalicelib.state import members
from chalicelib.state.models import EventRecord, Member, Metric, PointsRecord, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome

# Reads and decisions of one event before it is given back (503, "retry") as too contended. A
# member's events at once (a basket paid as several orders, two tills) commit one per round — the
# points balance takes one posting at a time — so five at once need five rounds.
ATTEMPTS = 8


@dataclass(frozen=True)
class Result:
    reply: str | None
    duplicate: bool
    answer: dict[str, Any] = dataclasses.field(default_factory=dict)  # the order webhook's extra fields


def process(ctx: Context, event: Event, answered: bool = True) -> Result:
    """``answered``: a caller waits for the reply (a webhook); the redrive timer's events have
    none, so their replies go out through the outbox instead."""
    started = time.perf_counter()
    rules = _rules(ctx, event)
    if rules is not None:
        event = _attributed(event, rules)
    zone = ZoneInfo(rules.stores.default_timezone) if rules is not None else SHANGHAI
    try:
        for attempt in range(1, ATTEMPTS + 1):
            result = _attempt(ctx, event, rules, zone, answered, attempt)
            if result is not None:
                if not result.duplicate:
                    ms = round((time.perf_counter() - started) * 1000, 1)
                    log("event.processed", event_id=event.event_id, kind=event.kind.value, attempts=attempt, ms=ms)
                return result
        raise Retryable("this member's state keeps changing; retry")
    except Erased:
        log("event.dropped", kind=event.kind.value, reason="erased member")
        return Result(None, duplicate=False)
    except Exception as exc:
        _keep_for_redrive(ctx, event, type(exc).__name__)
        log("event.failed", logging.ERROR, event_id=event.event_id, kind=event.kind.value, error=type(exc).__name__)
        raise


def _rules(ctx: Context, event: Event) -> RuleSet | None:
    try:
        return ctx.rules()
    except BadRule as exc:
        log("rules.unusable", logging.ERROR, event_id=event.event_id, reason=exc.reason)
        return None


def _attributed(event: Event, rules: RuleSet) -> Event:
    """Where the member came from, as far as the rules stand behind it. A group's event belongs
    to the group's store. A QR scene or "contact me" state naming a store the rules do not know
    (a code printed for a closed store, a hand-made one) attributes the member to no store
    rather than to one no report shows. The order webhook's store is the till's own word."""
    if event.group_id and not event.store_id:
        return dataclasses.replace(event, store_id=rules.stores.store_of_group(event.group_id))
    if event.store_id and event.source != "orders" and event.store_id not in rules.stores.ids:
        log("scene.unknown_store", event_id=event.event_id, kind=event.kind.value)
        return dataclasses.replace(event, store_id=None)
    return event


def prefetch(ctx: Context, event: Event, zone: ZoneInfo) -> list[db.Key]:
    """What every event reads in its one request, and what its duties declare they need."""
    wanted: list[db.Key] = [(EventRecord, event.event_id, None), *resolve.prefetch(event)]
    if event.member_id:
        wanted += [(Member, event.member_id, None), guard.tombstone_key(ctx.settings, event.member_id)]
        day = members.local_day(event.occurred_at, zone)
        wanted.append((Metric, keys.active(day), event.member_id))
        if event.inviter:
            wanted.append((Member, event.inviter, None))
    for duty in REGISTRY:
        if event.kind in duty.TRIGGERS and hasattr(duty, "prefetch"):
            wanted += duty.prefetch(event, ctx.settings)
    return wanted


def _attempt(
    ctx: Context, event: Event, rules: RuleSet | None, zone: ZoneInfo, answered: bool, attempt: int
) -> Result | None:
    """One read → decide → commit; None when what it decided on changed meanwhile."""
    now = ctx.clock.now()
    reads = Snapshot.read(prefetch(ctx, event, zone))  # every get below is answered from this read
    record = reads.get(EventRecord, event.event_id)
    if record is not None and record.status == "done":
        log("event.duplicate", event_id=event.event_id, kind=event.kind.value)
        return _stored(record)
    version = rules.version if rules is not None else "-"
    found = resolve.resolve(event, reads, version)
    for _ in range(resolve.HOPS):
        if found.final:
            break
        event = found.event  # another id of a person: read the person's items too, in one request
        reads.fetch(prefetch(ctx, event, zone))
        found = resolve.resolve(event, reads, version)
    if not found.final:
        raise Retryable("this id's person keeps changing; retry")
    event = _known_inviter(event, reads)
    before = reads.get(Member, event.member_id) if event.member_id else None
    touch = members.touch(event, before, now, zone, _windows(rules))
    member = members.after(before, touch) if touch is not None else None
    tombstone = reads.get(Shared, *guard.tombstone_key(ctx.settings, event.member_id)[1:]) if event.member_id else None
    _admit(event, before, member, tombstone, record)
    decided = decide(ctx, event, member, reads, rules, answered) if rules is not None else []
    refused = _refused(event, decided, record)
    if refused is not None:
        return refused
    plan = [*_whole_plan(ctx, event, before, member, touch, decided, reads, zone, attempt), *found.plan]
    balances = {m: ledger.balance_of(m, reads) for m in ledger.members_posted(plan)}

    def finish(resolved: Plan) -> Plan:
        settled = ledger.settle(resolved, balances)
        answer = answers.of(event, settled, reads)
        return [
            dataclasses.replace(i, answer=json.dumps(answer, ensure_ascii=False) if answer else None)
            if isinstance(i, plans.RecordEvent)
            else i
            for i in settled
        ]

    applied = executor.execute(plan, event.event_id, now, existing=reads.existing, settle=finish)
    if applied.outcome is Outcome.ALREADY_DONE:
        log("event.duplicate", event_id=event.event_id, kind=event.kind.value)
        done = applied.done if isinstance(applied.done, EventRecord) else db.get(EventRecord, event.event_id)
        return _stored(done) if done is not None else None
    if applied.outcome is Outcome.CONFLICT:
        log("event.reread", event_id=event.event_id, kind=event.kind.value, attempt=attempt)
        return None
    queue.enqueue(ctx.settings, applied.messages)
    committed = next(i for i in applied.plan if isinstance(i, plans.RecordEvent))
    return Result(applied.reply, duplicate=False, answer=json.loads(committed.answer) if committed.answer else {})


def _admit(
    event: Event, before: Member | None, member: Member | None, tombstone: Shared | None, record: EventRecord | None
) -> None:
    """``guard.admit``: an event of an erased member raises ``Erased``, kept nowhere."""
    try:
        guard.admit(event, before, member, tombstone)
    except Erased:
        if record is not None:  # a failed attempt's record: kept nowhere either
            db.delete(EventRecord(event.event_id))
        raise


def _refused(event: Event, decided: Plan, record: EventRecord | None) -> Result | None:
    """The answer of an event a duty refused whole (``plans.Refuse``): nothing of it is written,
    and a failed attempt's record goes (the redrive timer must not redeem it later, unasked)."""
    refused = next((i for i in decided if isinstance(i, plans.Refuse)), None)
    if refused is None:
        return None
    if record is not None:
        db.delete(EventRecord(event.event_id), EventRecord.status != "done")
    log("event.refused", event_id=event.event_id, kind=event.kind.value, reason=str(refused.answer.get("reason")))
    return Result(None, duplicate=False, answer=dict(refused.answer))


def _stored(record: EventRecord) -> Result:
    return Result(record.reply, duplicate=True, answer=json.loads(record.answer) if record.answer else {})


def _known_inviter(event: Event, reads: Snapshot) -> Event:
    """An inviter who is not a member is no inviter (a forged or stale invite code)."""
    if not event.inviter:
        return event
    if event.inviter != event.member_id and reads.items.get((Member, event.inviter, None)) is not None:
        return event
    log("scene.unknown_inviter", event_id=event.event_id, kind=event.kind.value)
    return dataclasses.replace(event, inviter=None)


def decide(
    ctx: Context, event: Event, member: Member | None, reads: Snapshot, rules: RuleSet, answered: bool = True
) -> Plan:
    """Every triggered duty's plan (its facts from ``reads``), in registry order. A rule the runtime
    cannot apply skips its duty and tells ops once per version; the other duties run. Any other
    exception is a fault of siyu, not of the rules: the event fails (503, retried)."""
    plan: Plan = []
    now = ctx.clock.now()
    for duty in REGISTRY:
        if event.kind not in duty.TRIGGERS:
            continue
        facts = duty.gather(event, member, reads, ctx.settings)
        if facts is None:
            continue
        try:
            plan += duty.decide(facts, rules, now)
        except BadRule as exc:
            plan.append(rule_alert(duty.CAUSE, rules.version, event.event_id, exc.reason))
    if not answered:
        plan = [i.later() if isinstance(i, plans.Reply) else i for i in plan]
    return plan


def _whole_plan(
    ctx: Context,
    event: Event,
    before: Member | None,
    member: Member | None,
    touch: plans.TouchMember | None,
    decided: Plan,
    reads: Snapshot,
    zone: ZoneInfo,
    attempt: int,
) -> Plan:
    """The event's record, the member's update, the duties' plan and the counters of it all."""
    now = ctx.clock.now()
    ttl = timedelta(days=ctx.settings.event_ttl_days)
    record = plans.RecordEvent(event=event, received_at=now, expires=now + ttl, attempts=attempt)
    order = None
    if event.kind is Kind.ORDER_REFUNDED and event.member_id:
        order = reads.points_item(event.member_id, keys.order(str(event.data["order_id"])))
    counts = counters.of_event(event, before, member, zone, order if isinstance(order, PointsRecord) else None)
    store_id = event.store_id or (member.store_id if member else None)
    counted = counters.plan(event, before, member, store_id, counts, decided, zone, now)
    active = (Metric, keys.active(members.local_day(event.occurred_at, zone)), event.member_id)
    if reads.items.get(active) is not None:
        reads.existing.add(("active", f"{active[1].removeprefix('active#')}|{event.member_id}"))
    head: list[Instruction] = [record, *([touch] if touch is not None else [])]
    return [*head, *decided, *counted]


def _windows(rules: RuleSet | None) -> dict[str, timedelta]:
    """How long each member action keeps the customer-service window open (messaging.json)."""
    if rules is None:
        return dict(members.DEFAULT_WINDOWS)
    return {name: timedelta(minutes=w.minutes) for name, w in rules.messaging.service_windows.items() if w}


def rule_alert(duty: str, version: str, event_id: str, reason: str) -> plans.QueueMessage:
    log("rules.duty_skipped", logging.ERROR, duty=duty, rules_version=version, event_id=event_id, reason=reason)
    return plans.QueueMessage(
        message_key=keys.rule_alert(version, duty),
        member_id=robot_recipient("ops"),
        channel="robot",
        category="alert",
        text=(
            f"【规则异常】{duty} 规则（版本 {version}）无法执行，已跳过，其余规则照常运行。"
            f"原因：{reason}。请检查并重新发布规则。"
        ),
        cause="rules",
        event_id=event_id,
        rules_version=version,
    )


def _keep_for_redrive(ctx: Context, event: Event, error: str) -> None:
    """Keep a failed event (unless it is done meanwhile) for the redrive timer; best effort: if
    even this write fails, WeChat's retry is the one left."""
    now = ctx.clock.now()
    failed = plans.FailEvent(
        event=event, received_at=now, expires=now + timedelta(days=ctx.settings.event_ttl_days), error=error
    )
    try:
        executor.Executor().run([failed], f"failed#{event.event_id}", now)
    except Exception as exc:  # the store itself is failing: nothing more to do here
        log("event.unkept", logging.WARNING, event_id=event.event_id, error=type(exc).__name__)


def redrive(ctx: Context, grace: timedelta = timedelta(minutes=1), limit: int = 100) -> int:
    """Finish events whose processing failed and whose retries never came (timer)."""
    done = 0
    before = ctx.clock.now() - grace
    query = EventRecord.stalled_index.query("1", EventRecord.lease_until < before, limit=limit)
    for event_id in [record.event_id for record in query]:
        record = db.get(EventRecord, event_id)
        if record is None or record.status == "done":
            continue
        try:
            process(ctx, Event.from_json(record.body), answered=False)
            done += 1
        except Exception as exc:  # one bad event must not stop the sweep
            log("redrive.failed", logging.ERROR, event_id=event_id, error=type(exc).__name__)
    return done
