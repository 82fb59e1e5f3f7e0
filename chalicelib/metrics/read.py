"""Reads of the counters: a scope's days in a range, one query (a week is 7 items, whether the
week had a thousand events or a million)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from chalicelib.counters import TOTAL, cohort_key
from chalicelib.state.models import Metric


def _items(scope: str, low: str, high: str) -> dict[str, Counter[str]]:
    connection = Metric._get_connection()
    found: dict[str, Counter[str]] = {}
    start = None
    while True:
        page = connection.query(scope, Metric.key.between(low, high), exclusive_start_key=start)
        for item in page.get("Items", []):
            key = item.pop("key")["S"]
            item.pop("scope", None)
            item.pop("expires", None)
            found[key] = Counter({name: int(value["N"]) for name, value in item.items() if "N" in value})
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def days(scope: str, since: date, until: date) -> dict[date, Counter[str]]:
    """Each day's counters (days without any event are absent)."""
    return {date.fromisoformat(k): v for k, v in _items(scope, since.isoformat(), until.isoformat()).items()}


def cohorts(scope: str, since: date, until: date) -> dict[date, Counter[str]]:
    items = _items(scope, cohort_key(since), cohort_key(until))
    return {date.fromisoformat(k.split("#", 1)[1]): v for k, v in items.items()}


def totals(scope: str) -> Counter[str]:
    return _items(scope, TOTAL, TOTAL).get(TOTAL, Counter())


def window(scope: str, since: date, until: date) -> Counter[str]:
    """The counters summed over the days, with ``days`` = the window's length."""
    summed: Counter[str] = Counter()
    for counts in days(scope, since, until).values():
        summed.update(counts)
    summed["days"] = (until - since).days + 1
    return summed


def cohort_window(scope: str, since: date, until: date) -> Counter[str]:
    summed: Counter[str] = Counter()
    for counts in cohorts(scope, since, until).values():
        summed.update(counts)
    return summed


def every_day(since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]
