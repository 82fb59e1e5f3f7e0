"""The loyalty timer's work (``run_loyalty_day`` in app.py, hourly; every step is idempotent,
so running it again, or in two containers at once, changes nothing).

Each step gathers the facts it needs, decides with the duty's pure function, and hands the plan
to ``effects.apply`` — the same path as the webhooks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib import effects
from chalicelib.delivery import queue
from chalicelib.duties import checkin
from chalicelib.errors import BadRequest
from chalicelib.logs import log
from chalicelib.loyalty.calendar import iso_week, local_day, week_days
from chalicelib.rules.loader import RuleSet
from chalicelib.runtime import Context
from chalicelib.state.models import LoyaltyRecord


def run(ctx: Context) -> dict[str, int]:
    rules = ctx.rules()
    now = ctx.clock.now()
    done: dict[str, int] = {}
    if not rules.loyalty.enabled:
        return done
    result = lottery(ctx, rules, now)
    done["lottery_winners"] = len(result.winners) if result else 0
    log("loyalty.day", **done)
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
    section = rules.loyalty.checkin
    today = local_day(now, rules.stores.zone_of(None))
    week = week or iso_week(today - timedelta(days=7))
    try:
        _, sunday = week_days(week)
    except ValueError as exc:
        raise BadRequest(f"{week!r} is not an ISO week like 2026-W47") from exc
    existing = recorded_draw(week)
    if existing is None:
        if today <= sunday:
            raise BadRequest(f"week {week} is not over yet (last day {sunday.isoformat()})")
        if not section.enabled or section.lottery_winners == 0:
            return None
        entrants = [r.sk for r in LoyaltyRecord.query(f"checkins#{week}")]
        existing = checkin.draw(week, entrants, section.lottery_winners, rules.version)
    _apply(ctx, checkin.lottery_plan(existing, rules, now, ctx.settings.coupon_secret), now)
    return existing
