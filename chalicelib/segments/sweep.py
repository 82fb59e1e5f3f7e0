"""The segments timer (``evaluate_segments``, every 15 minutes; docs/rules.md, "Segments").

Two parts per run:

- **the daily full pass**: once the chain's local time passes ``evaluate_at``, every member is
  evaluated (time moves members too: a member nobody heard from for 30 days becomes lapsed and
  leaves active). Members are read in pages of ``page_size`` (a paged scan of the members
  table: the pass's reach is everyone, like the points audit); after each page the cursor is
  saved (``Shared(sweep, segments#<day>)``), and a run that reaches its time budget stops and the
  next run continues where it stopped, as the recall sweep does (chalicelib/recall/sweep.py);
- **the members touched since they were evaluated**: today's and yesterday's partitions of
  ``Member.by_active_day`` (the members active lately), those whose ``updated_at`` is later than
  their ``segments_at``: an order moves its member into high_value within 15 minutes.

A member's evaluation is one ``plans.SetSegments`` conditioned on their ``segments_seq``, so two
passes at once, or a page redone after a crash, write each change once; a member whose sets are
unchanged (and evaluated under these segment rules: ``rule_hash``) is not written by the full pass.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import executor
from chalicelib.logs import log
from chalicelib.plans import SaveCursor, SetSegments
from chalicelib.rules.check import canonical
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.runtime import Context
from chalicelib.segments.evaluate import evaluate
from chalicelib.segments.facts import gather
from chalicelib.state.models import Member, Shared
from chalicelib.store import db, keys

OFF = "off"
RULE_ID = "segments"
_hashes: dict[str, str] = {}  # rule set content hash → rule_hash


@dataclass
class Result:
    finished: bool = True  # the full pass due (if any) finished
    day: str | None = None  # the local day whose full pass ran
    members_read: int = 0
    pages: int = 0
    touched: int = 0  # members evaluated because they were active since their evaluation
    changed: int = 0  # members written
    planned: list[SetSegments] = field(default_factory=list)  # what was written (or a dry run would write)


def run(
    ctx: Context, budget_s: float = 600.0, max_pages: int | None = None, runner: executor.Runner | None = None
) -> Result:
    """The full pass if it is due (up to the budget, or ``max_pages`` pages), then the touched
    members. A ``DryRun`` runner evaluates and writes nothing (the cursor neither)."""
    rules = ctx.rules()
    now = ctx.clock.now()
    result = Result()
    active = rules.segments.active_at(now)
    deadline = time.monotonic() + budget_s
    day = _full_day_due(rules, now, active)
    if day is not None:
        result.day = day.isoformat()
        result.finished = _full_pass(ctx, rules, day, result, deadline, max_pages, runner)
        if result.finished:
            # a pass under a rule switched off emptied every segment: none is due until it is on again
            value = day.isoformat() if active else OFF
            done = SaveCursor(table="shared", pk=keys.SWEEP, sk=keys.SEGMENTS_DAY, value=value, at=now)
            executor.execute([done], keys.segments_cursor(day.isoformat()) + "#done", now, runner)
    if active:
        _touched(ctx, rules, now, result, runner)
    if day is not None or result.touched:
        log(
            "segments.evaluated",
            day=result.day or "-",
            finished=result.finished,
            read=result.members_read,
            touched=result.touched,
            changed=result.changed,
        )
    return result


def _full_day_due(rules: RuleSet, now: datetime, active: bool) -> date | None:
    """Today (chain time) if its full pass is due: past ``evaluate_at`` and not done yet; under a
    rule switched off, only while segments from when it was on may be left."""
    local = now.astimezone(ZoneInfo(rules.stores.default_timezone))
    hours, minutes = (int(x) for x in rules.segments.evaluate_at.split(":"))
    if (local.hour, local.minute) < (hours, minutes):
        return None
    done = db.get(Shared, keys.SWEEP, keys.SEGMENTS_DAY)
    last = done.value if done is not None else None
    if not active and last in (None, OFF):
        return None
    if active and last == local.date().isoformat():
        return None
    return local.date()


def _full_pass(
    ctx: Context,
    rules: RuleSet,
    day: date,
    result: Result,
    deadline: float,
    max_pages: int | None,
    runner: executor.Runner | None,
) -> bool:
    cursor_key = keys.segments_cursor(day.isoformat())
    done, cursor = executor.pass_place(cursor_key)
    if done:
        return True
    size = rules.segments.page_size
    while True:
        if time.monotonic() >= deadline or (max_pages is not None and result.pages >= max_pages):
            log("segments.paused", day=day.isoformat(), pages=result.pages)
            return False
        page = Member.scan(limit=size, page_size=size, last_evaluated_key=cursor)
        for member in page:
            result.members_read += 1
            evaluate_member(ctx, rules, member, result, runner)
        result.pages += 1
        cursor = page.last_evaluated_key
        if executor.save_place(cursor_key, cursor, ctx.clock.now(), runner):
            return True


def _touched(ctx: Context, rules: RuleSet, now: datetime, result: Result, runner: executor.Runner | None) -> None:
    """Members active today or yesterday (chain time) who changed since their evaluation."""
    today = now.astimezone(ZoneInfo(rules.stores.default_timezone)).date()
    for day in (today - timedelta(days=1), today):
        for member in Member.by_active_day.query(day.isoformat(), page_size=rules.segments.page_size):
            if member.updated_at is None or (
                member.segments_at is not None and member.segments_at >= member.updated_at
            ):
                continue
            result.touched += 1
            evaluate_member(ctx, rules, member, result, runner, touched=True)


def decide(member: Member, rules: RuleSet, now: datetime, touched: bool = False) -> SetSegments | None:
    """The member's write, or None when there is nothing to write. Pure but for the facts read
    about orders (``facts.gather``). A merged person, or one out of the rule's scope, is in no
    segment. ``touched``: write even when nothing changed (the member is then not re-evaluated
    until they are touched again)."""
    if member.erasing:
        return None  # the erase deletes the rows (they name the member: LoyaltyRecord.by_member)
    rule = rules.segments
    tags: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    if not member.merged_into and in_scope(rule, RULE_ID, member.member_id, member.store_id, now):
        tags, segments = evaluate(gather(member, rules, now), rule, rules.messaging)
    before = frozenset(member.segments or ())
    store = member.store_id or keys.NO_STORE
    unchanged = (
        segments == before
        and tags == frozenset(member.segment_tags or ())
        and (member.segments_store == store or not before)
    )
    current = member.segments_rule == rule_hash(rules) or not (before or tags)
    if unchanged and current and not touched:
        return None
    return SetSegments(
        member_id=member.member_id,
        seq_before=int(member.segments_seq or 0),
        store_before=member.segments_store,
        store=store,
        before=before,
        after=segments,
        tags=tags,
        rules_version=rules.version,
        rule_hash=rule_hash(rules),
        now=now,
    )


def rule_hash(rules: RuleSet) -> str:
    """segments.json's content, formatting aside. Every full pass decides every member's sets
    afresh; this only says whether an unchanged member must be rewritten to name the version they
    were evaluated under: a publish that left segments.json alone rewrites nobody."""
    if rules.content_hash not in _hashes:
        text = rules.files.get("segments.json")
        wanted = {"segments.json": text} if text is not None else {}
        _hashes[rules.content_hash] = hashlib.sha256(canonical(wanted).encode()).hexdigest()[:16]
    return _hashes[rules.content_hash]


def evaluate_member(
    ctx: Context,
    rules: RuleSet,
    member: Member,
    result: Result,
    runner: executor.Runner | None = None,
    touched: bool = False,
) -> None:
    """Decide and write one member; a member changed since the read is read again (once)."""
    for _ in range(2):
        now = ctx.clock.now()
        plan = decide(member, rules, now, touched)
        if plan is None:
            return
        applied = executor.execute([plan], keys.segments_cause(member.member_id, plan.seq_before), now, runner)
        if applied.written:
            result.changed += 1
            result.planned.append(plan)
            joined, left = sorted(plan.after - plan.before), sorted(plan.before - plan.after)
            if joined or left:
                log("segments.member_moved", joined=",".join(joined), left=",".join(left), store=plan.store)
            return
        fresh = db.get(Member, member.member_id)
        if fresh is None:
            return
        member, touched = fresh, False  # written by another pass meanwhile: write only what it missed
    log("segments.member_busy", logging.WARNING)
