"""The console's first page, 今日 / 本周: the core KPIs of the chain and each store, week over
week and against target, with their daily trend.

Every number comes from the counters through the one set of formulas (``metrics.kpis``) and the
same reads (``metrics.read``) that ``siyu kpis`` and the weekly digest use, over the same windows:

- ``近7天`` (the default) is ``siyu kpis --days 7``: the 7 complete local days before today;
- ``2026-W47`` is that ISO week, Monday to Sunday, as the digest of that week shows it;
- ``今日`` is today so far (a partial day: no week-over-week, no target).

The previous window (环比) is the 7 days before. Targets are digest.json's ``targets`` (in the
KPI's unit). Times are the chain's default time zone (stores.json ``default_timezone``).

The delivery rate (送达率) is one of the KPIs: member messages delivered (WeChat's receipts, or
its acceptance where it gives none) of those queued, with the messages dropped by reason under
the activity.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.console.auth import Principal
from chalicelib.counters import CHAIN
from chalicelib.errors import BadRequest
from chalicelib.metrics import digest, kpis, read
from chalicelib.metrics.alerts import unit
from chalicelib.rules.loader import RuleSet

ACTIVITY = (
    "follows",
    "unfollows",
    "group_joins",
    "new_members",
    "orders",
    "gmv_fen",
    "coupons_issued",
    "coupons_redeemed",
    "messages_intended",
    "messages_sent",
    "messages_delivered",
    "messages_dropped",
    "message_cost_fen",
    "reviews",
    "reviews_negative",
)
TREND_DAYS = 28


def scopes_of(principal: Principal, rules: RuleSet) -> list[dict[str, str]]:
    """The scopes this user may look at: the chain (ops) and their stores."""
    found = [{"id": CHAIN, "name": "全连锁"}] if principal.is_ops else []
    found += [{"id": s.id, "name": s.name} for s in rules.stores.stores if principal.sees(s.id)]
    return found


def window_of(today: date, week: str | None) -> tuple[date, date, str]:
    if week:
        try:
            monday = digest.week_of(week)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return monday, monday + timedelta(days=6), week
    until = today - timedelta(days=1)
    return until - timedelta(days=6), until, "近7天"


def values(scope: str, since: date, until: date) -> dict[str, kpis.Value]:
    """Each KPI over the window, as ``siyu kpis`` computes it."""
    counts = read.window(scope, since, until)
    cohort = read.cohort_window(scope, since, until)
    totals = read.totals(scope)
    return {
        name: formula(cohort if name in kpis.COHORT_KPIS else counts, totals) for name, formula in kpis.KPIS.items()
    }


def _shown(name: str, value: kpis.Value) -> dict[str, Any]:
    suffix, factor = unit(name)
    number = None if value.value is None else value.value * factor
    return {"value": number, "text": digest.shown(name, value.value), "sample": value.sample, "unit": suffix}


def _kpi_rows(scope: str, since: date, until: date, rules: RuleSet) -> list[dict[str, Any]]:
    now_values = values(scope, since, until)
    before = values(scope, since - timedelta(days=7), until - timedelta(days=7))
    rows = []
    for name in kpis.KPIS:
        row = {"name": name, "label": kpis.NAMES[name], **_shown(name, now_values[name])}
        previous = _shown(name, before[name])
        row["previous"] = previous["value"]
        row["change"] = None if row["value"] is None or previous["value"] is None else row["value"] - previous["value"]
        target = rules.digest.target_of(name)
        row["target"] = None if target is None else float(target)
        row["lower_is_better"] = name in kpis.LOWER_IS_BETTER
        if row["target"] is not None and row["value"] is not None:
            gap = row["value"] - row["target"]
            row["on_target"] = gap <= 0 if row["lower_is_better"] else gap >= 0
        else:
            row["on_target"] = None
        rows.append(row)
    return rows


def _activity(counts: Counter[str]) -> dict[str, int]:
    return {name: int(counts.get(name, 0)) for name in ACTIVITY}


def _trend(scope: str, until: date) -> dict[str, Any]:
    """Each day's KPIs of the last ``TREND_DAYS`` days (a day without counters is a gap)."""
    since = until - timedelta(days=TREND_DAYS - 1)
    days = read.days(scope, since, until)
    cohorts = read.cohorts(scope, since, until)
    totals = read.totals(scope)
    series: dict[str, list[float | None]] = {name: [] for name in kpis.KPIS}
    series["follows"] = []
    labels = []
    for day in read.every_day(since, until):
        labels.append(day.isoformat())
        counts = Counter(days.get(day, Counter()))
        counts["days"] = 1
        for name, formula in kpis.KPIS.items():
            value = formula(cohorts.get(day, Counter()) if name in kpis.COHORT_KPIS else counts, totals).value
            series[name].append(None if value is None or day not in days else value * unit(name)[1])
        series["follows"].append(float(counts.get("follows", 0)) if day in days else None)
    return {"days": labels, "series": series}


def board(principal: Principal, rules: RuleSet, now: datetime, scope: str | None, week: str | None) -> dict[str, Any]:
    scope = scope or (CHAIN if principal.is_ops else min(principal.stores))
    if scope == CHAIN:
        principal.require_ops("see the whole chain")
    else:
        if scope not in rules.stores.ids:
            raise BadRequest(f"no store {scope} in stores.json")
        principal.see(scope, f"store {scope}")
    today = now.astimezone(ZoneInfo(rules.stores.default_timezone)).date()
    since, until, label = window_of(today, week)
    today_values = values(scope, today, today)
    return {
        "scope": scope,
        "scopes": scopes_of(principal, rules),
        "window": {"label": label, "since": since.isoformat(), "until": until.isoformat()},
        "timezone": rules.stores.default_timezone,
        "today": {
            "date": today.isoformat(),
            "kpis": [{"name": n, "label": kpis.NAMES[n], **_shown(n, v)} for n, v in today_values.items()],
            "activity": _activity(read.window(scope, today, today)),
        },
        "kpis": _kpi_rows(scope, since, until, rules),
        "core": list(rules.digest.core),
        "activity": _activity(read.window(scope, since, until)),
        "activity_before": _activity(read.window(scope, since - timedelta(days=7), until - timedelta(days=7))),
        "trend": _trend(scope, until),
    }
