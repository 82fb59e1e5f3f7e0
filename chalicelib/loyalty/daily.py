"""The loyalty timer's work (``run_loyalty_day`` in app.py, hourly; every step is idempotent,
so running it again, or in two containers at once, changes nothing). Its work is keyed by local
days, so once every step of a day has succeeded (under the active rule version) the day's later
runs stop at one read; a failed step leaves the day open and the next hourly run retries.

Each step gathers the facts it needs, decides with the duty's pure function, and hands the plan
to the executor — the same path as the webhooks (``siyu loyalty day --dry-run`` hands it to the
dry run instead: every plan is shown, nothing is written).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

from chalicelib import executor, ledger, plans
from chalicelib.calendars import iso_week, local_day, month_end, week_days
from chalicelib.clock import UTC
from chalicelib.delivery import queue
from chalicelib.duties import birthday, checkin, koc, referral, tiers
from chalicelib.duties import points as points_duty
from chalicelib.errors import BadRequest, Retryable
from chalicelib.logs import log
from chalicelib.plans import Instruction
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.runtime import Context
from chalicelib.state.models import EventRecord, LoyaltyRecord, Member, PointsRecord
from chalicelib.store import db, keys


class Day:
    """One run of the day's work: the clock's time, where plans go (the executor, or a dry run)."""

    def __init__(self, ctx: Context, runner: executor.Runner | None = None) -> None:
        self.ctx = ctx
        self.runner = runner or executor.Executor()
        self.dry = not isinstance(self.runner, executor.Executor)

    def apply(self, plan: list[Instruction], cause: str, now: datetime) -> executor.Applied:
        """Commit one plan (its points settled against the balances it touches) and queue its messages."""
        balances = {m: ledger.balance_of(m) for m in ledger.members_posted(plan)}
        settle = (lambda resolved: ledger.settle(resolved, balances)) if balances else None
        applied = executor.execute(plan, cause, now, self.runner, settle=settle)
        if applied.outcome is executor.Outcome.CONFLICT:
            raise Retryable(f"{cause}: changed while it was decided (the next run does it)")
        if not self.dry:
            queue.enqueue(self.ctx.settings, applied.messages)
        return applied

    def finish(self, step: str, now: datetime) -> None:
        cursor = plans.SaveCursor(table="loyalty", pk=keys.CURSOR, sk=step, value=None, at=now)
        executor.execute([cursor], f"{keys.CURSOR}#{step}", now, self.runner)


def run(ctx: Context, runner: executor.Runner | None = None) -> dict[str, int]:
    """Every step, each on its own: a step that fails is logged and retried on the next run
    (it marks nothing finished), and does not keep the others from running."""
    rules = ctx.rules()
    now = ctx.clock.now()
    done: dict[str, int] = {}
    work = Day(ctx, runner)
    ran = keys.loyalty_day(local_day(now, rules.stores.zone_of(None)).isoformat(), rules.version)
    if not rules.loyalty.enabled or finished(ran):
        return done  # the day's work is keyed by local days: once it all succeeded, it is done
    steps: dict[str, Callable[[], int]] = {
        "lottery_winners": lambda: len(drawn.winners) if (drawn := lottery(work, rules, now)) else 0,
        "points_expiry": lambda: expire_points(work, rules, now),
        "invites_confirmed": lambda: confirm_invites(work, rules, now),
        "tier_reviews": lambda: review_tiers(work, rules, now),
        "birthdays": lambda: grant_birthdays(work, rules, now),
        "brand_helpers": lambda: select_brand_helpers(work, rules, now),
    }
    failed = []
    for name, step in steps.items():
        try:
            done[name] = step()
        except Exception as exc:  # one failing step must not stop the others
            log("loyalty.step_failed", logging.ERROR, step=name, error=type(exc).__name__)
            failed.append(name)
    log("loyalty.day", failed=",".join(failed) or None, **done)
    if failed:
        raise Retryable(f"loyalty steps failed: {', '.join(failed)} (retried on the next run)")
    work.finish(ran, now)
    return done


def recorded_draw(week: str) -> checkin.Draw | None:
    record = db.get(LoyaltyRecord, keys.lottery(week), keys.DRAW)
    return checkin.Draw.from_json(record.value or "{}") if record is not None else None


def lottery(work: Day, rules: RuleSet, now: datetime, week: str | None = None) -> checkin.Draw | None:
    """Draw a finished week's check-in lottery once (default: last week, chain time zone).
    A week already drawn is never re-drawn: its recorded draw is what the winners get."""
    manual = week is not None
    section = rules.loyalty.checkin
    today = local_day(now, rules.stores.zone_of(None))
    week = week or iso_week(today - timedelta(days=7))
    try:
        _, sunday = week_days(week)
    except ValueError as exc:
        raise BadRequest(f"{week!r} is not an ISO week like 2026-W47") from exc
    existing = recorded_draw(week)
    if existing is not None and finished(keys.lottery(week)) and not manual:
        return existing
    if existing is None:
        if today <= sunday:
            raise BadRequest(f"week {week} is not over yet (last day {sunday.isoformat()})")
        if not section.enabled or section.lottery_winners == 0:
            return None
        entrants = [r.sk for r in LoyaltyRecord.query(keys.week_entrants(week))]
        existing = checkin.draw(week, entrants, section.lottery_winners, rules.version)
    for part in checkin.lottery_plans(existing, rules, now, work.ctx.settings.coupon_secret):
        work.apply(part, keys.lottery(week), now)
    work.finish(keys.lottery(week), now)
    return existing


def _expiring_members(month: str) -> list[str]:
    return sorted({item.member_id for item in PointsRecord.expiring.query(month)})


def _entries(member_id: str) -> list[points_duty.Entry]:
    return [points_duty.Entry(int(e.delta or 0), e.expires_on) for e in ledger.entries(member_id)]


def expire_points(work: Day, rules: RuleSet, now: datetime) -> int:
    """Expire last month's unspent points (and, once, any month the timer missed before it),
    and remind members whose points expire at the end of this month. Returns the number of
    members whose points expired or who were reminded."""
    today = local_day(now, rules.stores.zone_of(None))
    expired = reminded = 0
    for back in (2, 1):  # the month before last too: a timer outage over a month end
        last_day = month_end(today, -back)
        month = last_day.isoformat()[:7]
        if finished(keys.expiry_step(month)):
            continue
        for member_id in _expiring_members(month):
            amount = points_duty.expiring(_entries(member_id), last_day.isoformat())
            plan = points_duty.expiry_plan(member_id, month, amount, rules, now)
            if plan:
                work.apply(plan, keys.expiry_step(month), now)
                expired += 1
        work.finish(keys.expiry_step(month), now)
    this_month_end = month_end(today, 0)
    section = rules.loyalty.points
    due = (this_month_end - today).days < section.expiry_reminder_days
    reminder_step = keys.expiry_reminder_step(this_month_end.isoformat()[:7])
    if due and not finished(reminder_step):
        for member_id in _expiring_members(this_month_end.isoformat()[:7]):
            entries = _entries(member_id)
            amount = points_duty.expiring(entries, this_month_end.isoformat())
            balance = sum(e.delta for e in entries)
            home = _home_store(member_id)
            plan = points_duty.reminder_plan(member_id, this_month_end.isoformat(), amount, balance, rules, home)
            if plan and work.apply(plan, reminder_step, now).messages:
                reminded += 1
        work.finish(reminder_step, now)
    return expired + reminded


def finished(step: str) -> bool:
    """Whether a once-only sweep (a month's expiry, a week's lottery) already completed; a sweep
    that crashed midway is not marked and runs again (its effects are idempotent)."""
    return db.get(LoyaltyRecord, keys.CURSOR, step) is not None


def _home_store(member_id: str) -> str | None:
    member = db.get(Member, member_id, consistent=False)
    return member.store_id if member is not None else None


AGENDA_DAYS = 14  # days of the agenda looked at on each run (a timer outage shorter than this heals)


def agenda(today: date, kind: str) -> Iterator[tuple[date, list[LoyaltyRecord]]]:
    """Agenda items of ``kind`` due on each unfinished day up to today, oldest day first. The
    finished days of the window are read in one query of the cursor partition."""
    first = today - timedelta(days=AGENDA_DAYS)
    done = {
        item.sk
        for item in LoyaltyRecord.query(
            keys.CURSOR,
            LoyaltyRecord.sk.between(keys.agenda(first), keys.agenda_step(today.isoformat(), "~")),
            consistent_read=True,
        )
    }
    for back in range(AGENDA_DAYS, -1, -1):
        day = today - timedelta(days=back)
        if keys.agenda_step(day.isoformat(), kind) in done:
            continue
        yield day, list(LoyaltyRecord.query(keys.agenda(day), LoyaltyRecord.sk.startswith(keys.agenda_item(kind, ""))))


def confirm_invites(work: Day, rules: RuleSet, now: datetime) -> int:
    """Count (or void) the invites whose grace period ended."""
    today = local_day(now, rules.stores.zone_of(None))
    counted = 0
    for day, items in agenda(today, "referral"):
        for item in items:
            pending = _pending(str(item.member_id))
            if pending is None:
                continue
            plan = referral.confirm(pending, rules, now, work.ctx.settings.coupon_secret)
            applied = work.apply(plan, keys.invitee(pending.invitee), now)
            first = plan[0] if plan else None
            if isinstance(first, plans.CountInvite) and not first.void and applied.kept(first):
                counted += 1
        work.finish(keys.agenda_step(day.isoformat(), "referral"), now)
    return counted


def _pending(invitee: str) -> referral.Pending | None:
    invite = db.get(LoyaltyRecord, keys.invitee(invitee), keys.INVITE)
    member = db.get(Member, invitee)
    if invite is None or member is None:
        return None
    inviter = str(invite.member_id)
    row = db.get(Member, inviter)
    if row is not None and row.merged_into:
        inviter = row.merged_into  # the inviter's person now (chalicelib/identity): rewarded there
    counted = db.get(LoyaltyRecord, keys.inviter(inviter), keys.COUNT)
    return referral.Pending(
        invitee,
        inviter,
        str(invite.status),
        int(invite.number or 0),
        invite.at,
        member.unsubscribed_at,
        member.subscribed == "yes",
        int(counted.number or 0) if counted is not None else 0,
        _home_store(inviter),
        existing_person=bool(member.merged_into),  # the newer person is the one merged away
    )


def review_tiers(work: Day, rules: RuleSet, now: datetime) -> int:
    """Tier reviews due today (and any day the timer missed): down only here, at period end;
    and the warnings ahead of reviews that would move a member down."""
    today = local_day(now, rules.stores.zone_of(None))
    reviewed = 0
    for kind, decide in (("tier-warning", tiers.warning), ("tier", tiers.review)):
        reviewed += _tier_agenda(work, rules, now, today, kind, decide)
    return reviewed


def _tier_agenda(work: Day, rules: RuleSet, now: datetime, today: date, kind: str, decide: Callable[..., list]) -> int:
    reviewed = 0
    for day, items in agenda(today, kind):
        for item in items:
            member = _person(db.get(Member, str(item.member_id)))
            if member is None:
                continue
            standing = tiers.Standing(
                member.member_id,
                member.store_id,
                member.tier,
                tiers.orders_of(member.member_id, now),
                work.ctx.settings.coupon_secret,
            )
            plan = decide(standing, member.tier_review_on, day, rules, now)
            if plan:
                work.apply(plan, keys.tier_review(member.member_id, day.isoformat()), now)
                reviewed += 1
        work.finish(keys.agenda_step(day.isoformat(), kind), now)
    return reviewed


def grant_birthdays(work: Day, rules: RuleSet, now: datetime) -> int:
    """On the first run of a month: the birthday benefit of every member born in that month."""
    today = local_day(now, rules.stores.zone_of(None))
    step = keys.birthday_step(today.year, today.month)
    if not rules.loyalty.birthday.enabled or finished(step):
        return 0
    granted = 0
    seen: set[str] = set()
    for item in LoyaltyRecord.query(keys.birthdays(f"{today.month:02d}")):
        member = _person(db.get(Member, item.sk))
        if member is None or not member.birthday or member.birthday[:2] != f"{today.month:02d}":
            continue  # gone, or the member changed their birthday since
        if member.member_id in seen:
            continue  # two ids of one person (chalicelib/identity): one gift
        seen.add(member.member_id)
        plan = birthday.benefit(
            member.member_id, member.tier, member.store_id, now, rules, work.ctx.settings.coupon_secret, step
        )
        if plan and work.apply(plan, keys.birthday_benefit(member.member_id, today.year), now).messages:
            granted += 1
    work.finish(step, now)
    return granted


def select_brand_helpers(work: Day, rules: RuleSet, now: datetime) -> int:
    """On the first run of a month: last month's most active members of each store group."""
    section = rules.loyalty.koc
    zone = rules.stores.zone_of(None)
    today = local_day(now, zone)
    last = month_end(today, -1)
    month = last.isoformat()[:7]
    if not section.enabled or finished(keys.helpers_step(month)):
        return 0
    start = datetime.combine(last.replace(day=1), time(0), zone).astimezone(UTC)
    end = datetime.combine(today.replace(day=1), time(0), zone).astimezone(UTC)
    chosen: dict[str, tuple[str, list[str], set[str]]] = {}
    for store in rules.stores.stores:
        for group_id in store.groups:
            roster = [m for m in _roster(group_id) if in_scope(rules.loyalty, "loyalty", m, store.id, now)]
            activity = {m: _events(m, start, end) for m in roster}
            helpers = koc.select(activity, float(section.share_percent), section.min_events)
            chosen[group_id] = (store.id, helpers, _helpers_of(group_id, month_end(last, -1).isoformat()[:7]))
    everyone = {m for _, helpers, _ in chosen.values() for m in helpers}
    count = 0
    for group_id, (store_id, helpers, previous) in chosen.items():
        for part in koc.monthly_plans(group_id, store_id, month, helpers, previous, everyone, rules, now):
            work.apply(part, keys.helpers_month(group_id, month), now)
        count += len(helpers)
    work.finish(keys.helpers_step(month), now)
    return count


def _roster(group_id: str) -> list[str]:
    """The group's members now: those who joined it and have not left it since."""
    members: list[str] = []
    for item in LoyaltyRecord.query(keys.roster(group_id)):
        member = _person(db.get(Member, item.sk, consistent=False))
        if member is not None and group_id in (member.groups or set()) and member.member_id not in members:
            members.append(member.member_id)
    return members


def _person(member: Member | None) -> Member | None:
    """The person a loyalty record's member is now: the one a merged-away person became
    (chalicelib/identity): their tier, birthday and group activity are that person's."""
    if member is None or not member.merged_into:
        return member
    person = db.get(Member, member.merged_into)
    return person if person is not None and not person.merged_into else None


def _events(member_id: str, start: datetime, end: datetime) -> int:
    return EventRecord.by_member.count(member_id, EventRecord.occurred_at.between(start, end - timedelta(seconds=1)))


def _helpers_of(group_id: str, month: str) -> set[str]:
    record = db.get(LoyaltyRecord, keys.helpers(group_id), month, consistent=False)
    return set(json.loads(record.value or "[]")) if record is not None else set()
