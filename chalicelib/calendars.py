"""Local calendar arithmetic: loyalty counts days, weeks and months in the store's time zone,
never in the server's (Lambda runs in UTC; a Shanghai day starts at 16:00 UTC)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def iso_week(day: date) -> str:
    """2026-11-23 → "2026-W48" (ISO weeks start on Monday)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_days(week: str) -> tuple[date, date]:
    """ "2026-W48" → (Monday, Sunday). ``ValueError`` for anything else."""
    year, _, number = week.partition("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    return monday, monday + timedelta(days=6)


def month_end(day: date, months_ahead: int) -> date:
    """The last day of the month ``months_ahead`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months_ahead
    year, month = divmod(index, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"
