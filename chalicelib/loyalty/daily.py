"""The loyalty timer's work (``run_loyalty_day`` in app.py, hourly; every step is idempotent,
so running it again, or in two containers at once, changes nothing). Its work is keyed by local
days, so once every step of a day has succeeded (under the active rule version) the day's later
runs stop at one read; a failed step leaves the day open and the next hourly run retries.

Each step gathers the facts it needs, decides with the duty's pure function, and hands the plan
to ``effects.apply`` — the same path as the webhooks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib import effects
from chalicelib.clock import UTC
from chalicelib.delivery import queue
from chalicelib.duties import birthday, checkin, koc, referral, tiers
from chalicelib.duties import points as points_duty
from chalicelib.errors import BadRequest, Retryable
from chalicelib.logs import log
from chalicelib.loyalty import ledger
from chalicelib.loyalty.calendar import iso_week, local_day, month_end, week_days
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.runtime import Context
from chalicelib.state.models import EventRecord, LoyaltyRecord, Member, PointsRecord


def run(ctx: Context) -> dict[str, int]:
    """Every step, each on its own: a step that fails is logged and retried on the next run
    (it marks nothing finished), and does not keep the others from running."""
    rules = ctx.rules()
    now = ctx.clock.now()
    done: dict[str, int] = {}
    ran = f"day#{local_day(now, rules.stores.zone_of(None)).isoformat()}#{rules.version}"
    if not rules.loyalty.enabled or finished(ran):
        return done  # the day's work is keyed by local days: once it all succeeded, it is done
    steps: dict[str, Callable[[], int]] = {
        "lottery_winners": lambda: len(drawn.winners) if (drawn := lottery(ctx, rules, now)) else 0,
        "points_expiry": lambda: expire_points(ctx, rules, now),
        "invites_confirmed": lambda: confirm_invites(ctx, rules, now),
        "tier_reviews": lambda: review_tiers(ctx, rules, now),
        "birthdays": lambda: grant_birthdays(ctx, rules, now),
        "brand_helpers": lambda: select_brand_helpers(ctx, rules, now),
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
    finish(ran, now)
    return done


def _apply(ctx: Context, plan: list[effects.Effect], now: datetime) -> effects.Applied:
    applied = effects.apply(plan, now)
    queue.enqueue(ctx.settings, applied.messages)
    return applied


def recorded_draw(week: str) -> checkin.Draw | None:
    try:
        record = LoyaltyRecord.get(f"lottery#{week}", "draw", consistent_read=True)
    except DoesNotExist:
        return None
    return checkin.Draw.from_json(record.value or "{}")


def lottery(ctx: Context, rules: RuleSet, now: datetime, week: str | None = None) -> checkin.Draw | None:
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
    if existing is not None and finished(f"lottery#{week}") and not manual:
        return existing
    if existing is None:
        if today <= sunday:
            raise BadRequest(f"week {week} is not over yet (last day {sunday.isoformat()})")
        if not section.enabled or section.lottery_winners == 0:
            return None
        entrants = [r.sk for r in LoyaltyRecord.query(f"checkins#{week}")]
        existing = checkin.draw(week, entrants, section.lottery_winners, rules.version)
    _apply(ctx, checkin.lottery_plan(existing, rules, now, ctx.settings.coupon_secret), now)
    finish(f"lottery#{week}", now)
    return existing


def _expiring_members(month: str) -> list[str]:
    return sorted({item.member_id for item in PointsRecord.expiring.query(month)})


def _entries(member_id: str) -> list[points_duty.Entry]:
    return [points_duty.Entry(int(e.delta or 0), e.expires_on) for e in ledger.entries(member_id)]


def expire_points(ctx: Context, rules: RuleSet, now: datetime) -> int:
    """Expire last month's unspent points (and, once, any month the timer missed before it),
    and remind members whose points expire at the end of this month. Returns the number of
    members whose points expired or who were reminded."""
    today = local_day(now, rules.stores.zone_of(None))
    expired = reminded = 0
    for back in (2, 1):  # the month before last too: a timer outage over a month end
        last_day = month_end(today, -back)
        month = last_day.isoformat()[:7]
        if finished(f"expiry#{month}"):
            continue
        for member_id in _expiring_members(month):
            amount = points_duty.expiring(_entries(member_id), last_day.isoformat())
            plan = points_duty.expiry_plan(member_id, month, amount, rules, now)
            if plan:
                _apply(ctx, plan, now)
                expired += 1
        finish(f"expiry#{month}", now)
    this_month_end = month_end(today, 0)
    section = rules.loyalty.points
    due = (this_month_end - today).days < section.expiry_reminder_days
    if due and not finished(f"expiry-reminder#{this_month_end.isoformat()[:7]}"):
        for member_id in _expiring_members(this_month_end.isoformat()[:7]):
            entries = _entries(member_id)
            amount = points_duty.expiring(entries, this_month_end.isoformat())
            balance = sum(e.delta for e in entries)
            home = _home_store(member_id)
            plan = points_duty.reminder_plan(member_id, this_month_end.isoformat(), amount, balance, rules, home)
            if plan and _apply(ctx, plan, now).messages:
                reminded += 1
        finish(f"expiry-reminder#{this_month_end.isoformat()[:7]}", now)
    return expired + reminded


def finished(step: str) -> bool:
    """Whether a once-only sweep (a month's expiry, a week's lottery) already completed; a sweep
    that crashed midway is not marked and runs again (its effects are idempotent)."""
    return LoyaltyRecord.count("cursor", LoyaltyRecord.sk == step, consistent_read=True) > 0


def finish(step: str, now: datetime) -> None:
    LoyaltyRecord("cursor", step, at=now).save()


def _home_store(member_id: str) -> str | None:
    try:
        return Member.get(member_id).store_id
    except DoesNotExist:
        return None


AGENDA_DAYS = 14  # days of the agenda looked at on each run (a timer outage shorter than this heals)


def agenda(today: date, kind: str) -> Iterator[tuple[date, list[LoyaltyRecord]]]:
    """Agenda items of ``kind`` due on each unfinished day up to today, oldest day first. The
    finished days of the window are read in one query of the cursor partition."""
    first = today - timedelta(days=AGENDA_DAYS)
    done = {
        item.sk
        for item in LoyaltyRecord.query(
            "cursor",
            LoyaltyRecord.sk.between(f"due#{first.isoformat()}", f"due#{today.isoformat()}#~"),
            consistent_read=True,
        )
    }
    for back in range(AGENDA_DAYS, -1, -1):
        day = today - timedelta(days=back)
        if f"due#{day.isoformat()}#{kind}" in done:
            continue
        yield day, list(LoyaltyRecord.query(f"due#{day.isoformat()}", LoyaltyRecord.sk.startswith(f"{kind}#")))


def confirm_invites(ctx: Context, rules: RuleSet, now: datetime) -> int:
    """Count (or void) the invites whose grace period ended."""
    today = local_day(now, rules.stores.zone_of(None))
    counted = 0
    for day, items in agenda(today, "referral"):
        for item in items:
            pending = _pending(str(item.member_id))
            if pending is None:
                continue
            plan = referral.confirm(pending, rules, now, ctx.settings.coupon_secret)
            applied = _apply(ctx, plan, now)
            first = plan[0] if plan else None
            if isinstance(first, effects.CountInvite) and not first.void and applied.records.get(first.key) == "new":
                counted += 1
        finish(f"due#{day.isoformat()}#referral", now)
    return counted


def _pending(invitee: str) -> referral.Pending | None:
    try:
        invite = LoyaltyRecord.get(f"invitee#{invitee}", "-", consistent_read=True)
        member = Member.get(invitee, consistent_read=True)
    except DoesNotExist:
        return None
    inviter = str(invite.member_id)
    try:
        count = int(LoyaltyRecord.get(f"inviter#{inviter}", "count", consistent_read=True).number or 0)
    except DoesNotExist:
        count = 0
    return referral.Pending(
        invitee,
        inviter,
        str(invite.status),
        int(invite.number or 0),
        invite.at,  # type: ignore[arg-type]
        member.unsubscribed_at,
        member.subscribed == "yes",
        count,
        _home_store(inviter),
    )


def review_tiers(ctx: Context, rules: RuleSet, now: datetime) -> int:
    """Tier reviews due today (and any day the timer missed): down only here, at period end;
    and the warnings ahead of reviews that would move a member down."""
    today = local_day(now, rules.stores.zone_of(None))
    reviewed = 0
    for kind, decide in (("tier-warning", tiers.warning), ("tier", tiers.review)):
        reviewed += _tier_agenda(ctx, rules, now, today, kind, decide)
    return reviewed


def _tier_agenda(
    ctx: Context, rules: RuleSet, now: datetime, today: date, kind: str, decide: Callable[..., list]
) -> int:
    reviewed = 0
    for day, items in agenda(today, kind):
        for item in items:
            try:
                member = Member.get(str(item.member_id), consistent_read=True)
            except DoesNotExist:
                continue
            standing = tiers.Standing(
                member.member_id,
                member.store_id,
                member.tier,
                tiers.orders_of(member.member_id, now),
                ctx.settings.coupon_secret,
            )
            plan = decide(standing, member.tier_review_on, day, rules, now)
            if plan:
                _apply(ctx, plan, now)
                reviewed += 1
        finish(f"due#{day.isoformat()}#{kind}", now)
    return reviewed


def grant_birthdays(ctx: Context, rules: RuleSet, now: datetime) -> int:
    """On the first run of a month: the birthday benefit of every member born in that month."""
    today = local_day(now, rules.stores.zone_of(None))
    step = f"birthday#{today.year}-{today.month:02d}"
    if not rules.loyalty.birthday.enabled or finished(step):
        return 0
    granted = 0
    for item in LoyaltyRecord.query(f"birthdays#{today.month:02d}"):
        try:
            member = Member.get(item.sk, consistent_read=True)
        except DoesNotExist:
            continue
        if not member.birthday or member.birthday[:2] != f"{today.month:02d}":
            continue  # the member changed their birthday since
        plan = birthday.benefit(
            member.member_id,
            member.tier,
            member.store_id,
            now,
            rules,
            ctx.settings.coupon_secret,
            step,
        )
        if plan and _apply(ctx, plan, now).messages:
            granted += 1
    finish(step, now)
    return granted


def select_brand_helpers(ctx: Context, rules: RuleSet, now: datetime) -> int:
    """On the first run of a month: last month's most active members of each store group."""
    section = rules.loyalty.koc
    zone = rules.stores.zone_of(None)
    today = local_day(now, zone)
    last = month_end(today, -1)
    month = last.isoformat()[:7]
    if not section.enabled or finished(f"koc#{month}"):
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
        _apply(ctx, koc.monthly_plan(group_id, store_id, month, helpers, previous, everyone, rules, now), now)
        count += len(helpers)
    finish(f"koc#{month}", now)
    return count


def _roster(group_id: str) -> list[str]:
    """The group's members now: those who joined it and have not left it since."""
    members = []
    for item in LoyaltyRecord.query(f"group#{group_id}"):
        try:
            member = Member.get(item.sk)
        except DoesNotExist:
            continue
        if group_id in (member.groups or set()):
            members.append(member.member_id)
    return members


def _events(member_id: str, start: datetime, end: datetime) -> int:
    return EventRecord.by_member.count(member_id, EventRecord.occurred_at.between(start, end - timedelta(seconds=1)))


def _helpers_of(group_id: str, month: str) -> set[str]:
    try:
        return set(json.loads(LoyaltyRecord.get(f"koc#{group_id}", month).value or "[]"))
    except DoesNotExist:
        return set()
