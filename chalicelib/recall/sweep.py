"""The daily recall sweep (timer).

Once the chain's local time passes ``run_at``, each stage of N days reads the members whose
last activity fell N days before the sweep day: one partition of ``Member.by_active_day``, so
the sweep reads the members due, not the member base. Members are read in pages of
``page_size``; after each page the cursor is saved, and a run that reaches its time budget
stops and the next timer run continues where it stopped (a sweep of any size finishes across
runs, each well inside Lambda's limit). Every member's decision is a plan committed as one
transaction keyed by (member, lapse, stage), so a page redone after a crash recalls nobody
twice; ``siyu recall sweep --dry-run`` shows the plans and writes nothing (the cursor neither).

Days missed (the timer did not run) are caught up, at most ``CATCH_UP_DAYS`` back.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import codes, executor
from chalicelib.delivery import queue
from chalicelib.logs import log
from chalicelib.plans import RecallDecision, SaveCursor
from chalicelib.recall.decide import decide, plan_of
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import RecallStage
from chalicelib.runtime import Context
from chalicelib.state.models import Member, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome

CATCH_UP_DAYS = 3


@dataclass
class Result:
    finished: bool = True
    days: list[str] = field(default_factory=list)
    members_read: int = 0
    pages: int = 0
    decided: Counter[str] = field(default_factory=Counter)  # treated / holdout / skipped / again
    planned: list[RecallDecision] = field(default_factory=list)  # a dry run's decisions


def run(
    ctx: Context, budget_s: float = 600.0, max_pages: int | None = None, runner: executor.Runner | None = None
) -> Result:
    """Sweep every day that is due and not yet swept; stop at the budget (or after
    ``max_pages``, for tests and benchmarks) and leave the rest to the next run. A ``DryRun``
    runner decides every member due and writes nothing."""
    rules = ctx.rules()
    rule = rules.recall
    now = ctx.clock.now()
    result = Result()
    if not rule.active_at(now) or not rule.stages:
        return result
    deadline = time.monotonic() + budget_s
    for day in _days_due(rules, now):
        result.days.append(day.isoformat())
        for stage in rule.stages:
            if not _sweep_stage(ctx, rules, day, stage, result, deadline, max_pages, runner):
                result.finished = False
                log("recall.sweep_paused", day=day.isoformat(), stage=stage.name, pages=result.pages)
                return result
        swept = SaveCursor(table="shared", pk=keys.SWEEP, sk="recall", value=day.isoformat(), at=now)
        executor.execute([swept], keys.sweep_day(day.isoformat()), now, runner)
    log("recall.swept", days=",".join(result.days), read=result.members_read, **dict(result.decided))
    return result


def _days_due(rules: RuleSet, now: datetime) -> list[date]:
    local = now.astimezone(ZoneInfo(rules.stores.default_timezone))
    hours, minutes = (int(x) for x in rules.recall.run_at.split(":"))
    started = (local.hour, local.minute) >= (hours, minutes)
    until = local.date() if started else local.date() - timedelta(days=1)
    swept = db.get(Shared, keys.SWEEP, "recall")
    try:
        last = date.fromisoformat(swept.value or "") if swept is not None else local.date() - timedelta(days=1)
    except ValueError:
        last = local.date() - timedelta(days=1)  # the first sweep ever is today's, not the past's
    first = max(last + timedelta(days=1), until - timedelta(days=CATCH_UP_DAYS))
    return [first + timedelta(days=i) for i in range((until - first).days + 1)]


def _sweep_stage(
    ctx: Context,
    rules: RuleSet,
    day: date,
    stage: RecallStage,
    result: Result,
    deadline: float,
    max_pages: int | None,
    runner: executor.Runner | None,
) -> bool:
    """Sweep one stage of one day to its end (True) or until the budget runs out (False)."""
    cursor_key = keys.sweep_cursor(day.isoformat(), stage.name)
    done, cursor = executor.pass_place(cursor_key)
    if done:
        return True
    lapse = day - timedelta(days=stage.days)
    while True:
        if time.monotonic() >= deadline or (max_pages is not None and result.pages >= max_pages):
            return False
        page = Member.by_active_day.query(
            lapse.isoformat(), limit=rules.recall.page_size, page_size=rules.recall.page_size, last_evaluated_key=cursor
        )
        messages = []
        for member in page:
            result.members_read += 1
            messages += _recall(ctx, rules, member, stage, lapse, day, result, runner)
        if runner is None or isinstance(runner, executor.Executor):
            queue.enqueue(ctx.settings, messages)
        result.pages += 1
        cursor = page.last_evaluated_key
        if executor.save_place(cursor_key, cursor, ctx.clock.now(), runner):
            return True


def _recall(
    ctx: Context,
    rules: RuleSet,
    member: Member,
    stage: RecallStage,
    lapse: date,
    day: date,
    result: Result,
    runner: executor.Runner | None,
) -> list[str]:
    """Decide and write one member; a member changed since the read is read again (once)."""
    for _ in range(2):
        now = ctx.clock.now()
        key = keys.recall_record(lapse.isoformat(), stage.name)
        code = codes.derive(keys.recall_cause(member.member_id, key), ctx.settings.coupon_secret)
        decision = decide(member, stage, rules, lapse, day, now, code)
        if decision is None:
            return []
        applied = executor.execute(plan_of(decision), keys.recall_cause(member.member_id, key), now, runner)
        if applied.kept(decision):
            result.decided[decision.arm] += 1
            result.planned.append(decision)
            log(
                "recall.decided",
                stage=decision.stage,
                arm=decision.arm,
                reason=decision.reason,
                store=decision.store_id,
            )
            return applied.messages
        if applied.outcome is Outcome.NEW:  # the decision existed: an earlier run wrote it
            result.decided["again"] += 1
            return []
        fresh = db.get(Member, member.member_id)
        if fresh is None or fresh.active_day != lapse.isoformat():
            return []  # gone, or active again since the index was read: no longer due
        member = fresh
    log("recall.member_busy", logging.WARNING, stage=stage.name)
    return []
