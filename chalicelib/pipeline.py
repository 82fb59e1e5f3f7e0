"""The event pipeline: dedupe → update the member → run the duties → count → remember the outcome.

``process`` is called once per normalized event, by the webhooks (synchronously, well inside
WeChat's 5 s) and by the redrive timer. Every step is safe to repeat: an exception anywhere
releases the event, and the next delivery (WeChat's retry) or the redrive timer redoes it. An
event about an erased member is dropped right after the member update (``privacy.guard``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from chalicelib import effects
from chalicelib.clock import SHANGHAI
from chalicelib.delivery import queue
from chalicelib.duties import REGISTRY
from chalicelib.errors import BadRule, Erased, Retryable
from chalicelib.events import Event, robot_recipient
from chalicelib.logs import log
from chalicelib.loyalty import ledger
from chalicelib.metrics import counters
from chalicelib.privacy import guard
from chalicelib.rules.loader import RuleSet
from chalicelib.runtime import Context
from chalicelib.state import journal, members
from chalicelib.state.models import Member

BUSY_WAIT_SECONDS = 2.0  # real time a duplicate waits for the worker holding the lease
BUSY_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Outcome:
    reply: str | None
    duplicate: bool


def process(ctx: Context, event: Event, answered: bool = True) -> Outcome:
    """``answered``: a caller waits for the reply (a webhook); the redrive timer's events have
    none, so their replies go out through the outbox instead."""
    now = ctx.clock.now()
    claimed = journal.claim(event, now, timedelta(days=ctx.settings.event_ttl_days))
    if claimed.claim is journal.Claim.BUSY:
        claimed = _wait_for_peer(ctx, event)
    if claimed.claim is journal.Claim.DONE:
        log("event.duplicate", event_id=event.event_id, kind=event.kind.value)
        return Outcome(claimed.reply, duplicate=True)
    started = time.perf_counter()
    try:
        reply = _run(ctx, event, answered)
        journal.complete(event.event_id, reply)  # inside: a failure to record "done" also releases
    except Erased:
        journal.forget(event.event_id)  # about an erased member: kept nowhere (privacy/guard.py)
        log("event.dropped", kind=event.kind.value, reason="erased member")
        return Outcome(None, duplicate=False)
    except Exception as exc:
        journal.release(event.event_id, type(exc).__name__, ctx.clock.now())
        log("event.failed", logging.ERROR, event_id=event.event_id, kind=event.kind.value, error=type(exc).__name__)
        raise
    log(
        "event.processed",
        event_id=event.event_id,
        kind=event.kind.value,
        attempts=claimed.attempts,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return Outcome(reply, duplicate=False)


def _wait_for_peer(ctx: Context, event: Event) -> journal.ClaimResult:
    """Poll the peer's record, 50 ms apart at first and doubling to 400 ms: a quick peer is caught
    at once, a slow one does not cost a read every 50 ms."""
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    pause = BUSY_POLL_SECONDS
    while time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 8 * BUSY_POLL_SECONDS)
        result = journal.reclaim(event.event_id, ctx.clock.now())
        if result.claim is not journal.Claim.BUSY:
            return result
    raise Retryable("another worker is still processing this event")


def _run(ctx: Context, event: Event, answered: bool) -> str | None:
    try:
        rules: RuleSet | None = ctx.rules()
    except BadRule as exc:
        log("rules.unusable", logging.ERROR, event_id=event.event_id, reason=exc.reason)
        rules = None
    if rules is not None:
        event = _attributed(event, rules)
    zone = ZoneInfo(rules.stores.default_timezone) if rules is not None else SHANGHAI
    member = members.touch(event, ctx.clock.now(), zone)
    guard.admit(ctx.settings, event, member)
    applied = run_duties(ctx, event, member, rules, answered) if rules is not None else effects.Applied()
    counts = counters.of_event(event, member, zone) + counters.of_effects(
        applied.issued, applied.redeemed, applied.records
    )
    store_id = event.store_id or (member.store_id if member else None)
    counters.count_event(event, member, store_id, counts, zone, ctx.clock.now())
    return applied.reply


def _attributed(event: Event, rules: RuleSet) -> Event:
    """Where the member came from, as far as siyu can stand behind it. A group's event belongs to
    the group's store. A QR scene or "contact me" state naming a store the rules do not know (a
    code printed for a closed store, a hand-made one) attributes the member to no store rather
    than to one no report shows, and an inviter who is not a member is no inviter (one read, on
    the rare event that names one). The order webhook's store is the till's own word and is kept."""
    if event.group_id and not event.store_id:
        event = dataclasses.replace(event, store_id=rules.stores.store_of_group(event.group_id))
    elif event.store_id and event.source != "orders" and event.store_id not in rules.stores.ids:
        log("scene.unknown_store", event_id=event.event_id, kind=event.kind.value)
        event = dataclasses.replace(event, store_id=None)
    if event.inviter and (event.inviter == event.member_id or not members.exists(event.inviter)):
        log("scene.unknown_inviter", event_id=event.event_id, kind=event.kind.value)
        event = dataclasses.replace(event, inviter=None)
    return event


def run_duties(
    ctx: Context, event: Event, member: Member | None, rules: RuleSet, answered: bool = True
) -> effects.Applied:
    plan: list[effects.Effect] = []
    now = ctx.clock.now()
    with ledger.one_read(event.member_id):  # the gathers read the member's points once
        for duty in REGISTRY:
            if event.kind not in duty.TRIGGERS:
                continue
            facts = duty.gather(event, member, ctx.settings)
            if facts is None:
                continue
            try:
                plan += duty.decide(facts, rules, now)  # type: ignore[arg-type]
            except BadRule as exc:
                # A rule the runtime cannot apply is skipped, ops are told once per version, the rest
                # runs. Any other exception is a fault of siyu, not of the rules: the event fails
                # (503, retried) and is logged as such, never reported to ops as a rule to republish.
                plan.append(rule_alert(duty.CAUSE, rules.version, event.event_id, exc.reason))
    if not answered:
        plan = [effects.later(effect) if isinstance(effect, effects.Reply) else effect for effect in plan]
    applied = effects.apply(plan, now)
    queue.enqueue(ctx.settings, applied.messages)
    return applied


def rule_alert(duty: str, version: str, event_id: str, reason: str) -> effects.QueueMessage:
    log("rules.duty_skipped", logging.ERROR, duty=duty, rules_version=version, event_id=event_id, reason=reason)
    return effects.QueueMessage(
        message_key=f"alert#rule#{version}#{duty}",
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


def redrive(ctx: Context, grace: timedelta = timedelta(minutes=1), limit: int = 100) -> int:
    """Finish events whose worker died and whose retries never came (timer). WeChat stopped
    waiting long ago: a reply such an event makes is delivered by the outbox."""
    done = 0
    for event_id in journal.stalled(ctx.clock.now() - grace, limit):
        record = journal.peek(event_id)
        if record.status == "done":
            continue
        try:
            process(ctx, Event.from_json(record.body), answered=False)
            done += 1
        except Exception as exc:  # one bad event must not stop the sweep
            log("redrive.failed", logging.ERROR, event_id=event_id, error=type(exc).__name__)
    return done
