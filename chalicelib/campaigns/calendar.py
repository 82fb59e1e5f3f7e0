"""Which calendar pushes are due: per store group, per day, per slot (campaigns.json ``calendar``).

Pure: rules and a day in, pushes out. A day's theme is its weekday's (003 §2.2.2), or the holiday's
greeting when the day is a holiday (002 §3.4). A slot's time is local to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import WEEKDAYS, CalendarSlot, CampaignsRule


@dataclass(frozen=True)
class Push:
    store_id: str
    group_id: str
    day: date
    slot: CalendarSlot
    at: datetime  # aware, in the store's zone
    theme: str
    holiday: str | None = None

    @property
    def title(self) -> str:
        """The push's theme as staff read it."""
        return self.holiday or self.theme


def theme_of(rule: CampaignsRule, day: date) -> tuple[str, str | None]:
    """The day's theme and, on a holiday, the holiday's name (its greeting replaces the theme)."""
    calendar = rule.calendar
    holiday = next((h.name for h in calendar.holidays if h.date == day), None)
    if holiday is not None:
        return calendar.holiday_theme, holiday
    weekday = WEEKDAYS[day.weekday()]
    return next((theme for name, theme in calendar.themes.items() if name == weekday), ""), None


def local_at(day: date, hhmm: str, zone: tzinfo) -> datetime:
    hours, minutes = hhmm.split(":")
    return datetime.combine(day, time(int(hours), int(minutes)), zone)


def pushes_on(rules: RuleSet, day: date, store_id: str | None = None) -> list[Push]:
    """Every calendar push of a local day: one per group per slot, in each store's zone. None when
    the calendar is off; only the pilot stores when the file names some."""
    rule = rules.campaigns
    if not (rule.enabled and rule.calendar.enabled):
        return []
    theme, holiday = theme_of(rule, day)
    if not theme:
        return []
    pushes = []
    for store in rules.stores.stores:
        if (store_id and store.id != store_id) or (rule.pilot_stores and store.id not in rule.pilot_stores):
            continue
        zone = rules.stores.zone_of(store.id)
        for group in store.groups:
            for slot in rule.calendar.slots:
                at = local_at(day, slot.at, zone)
                if rule.active_at(at):
                    pushes.append(Push(store.id, group, day, slot, at, theme, holiday))
    return pushes


def week_of(day: date) -> list[date]:
    """The ISO week (Monday to Sunday) that holds ``day``."""
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=n) for n in range(7)]


def parse_week(text: str) -> date:
    """``2026-W49`` (ISO week) or a date in it, ``2026-12-02``: the week's Monday."""
    if "W" in text:
        year, week = text.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    return week_of(date.fromisoformat(text))[0]
