"""Run the app's ``@app.schedule`` handlers on their schedules (``chalice local`` does not).

Understands ``Rate`` and ``Cron`` (AWS semantics: UTC, six fields, ``?`` wildcard, lists,
ranges, steps, day names). Each handler is called as Lambda would call it, with a
CloudWatch scheduled-event dict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalice import Cron, Rate

from chalicelib.clock import UTC, Clock
from chalicelib.logs import log

_UNIT_SECONDS = {Rate.MINUTES: 60, Rate.HOURS: 3600, Rate.DAYS: 86400}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {
    m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)
}


def _field_matches(spec: str, value: int, names: dict[str, int] | None = None) -> bool:
    spec = str(spec).upper()
    if spec in ("*", "?"):
        return True
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part in ("*", ""):
            low, high = 0, 10_000
        elif "-" in part:
            a, b = part.split("-")
            low, high = _num(a, names), _num(b, names)
        else:
            low = _num(part, names)
            high = low if step == 1 else 10_000
        if low <= value <= high and (value - low) % step == 0:
            return True
    return False


def _num(text: str, names: dict[str, int] | None) -> int:
    return names[text] if names and text in names else int(text)


def cron_matches(cron: Cron, at: datetime) -> bool:
    at = at.astimezone(UTC)
    aws_weekday = (at.isoweekday() % 7) + 1  # AWS: 1 = Sunday
    return (
        _field_matches(str(cron.minutes), at.minute)
        and _field_matches(str(cron.hours), at.hour)
        and _field_matches(str(cron.day_of_month), at.day)
        and _field_matches(str(cron.month), at.month, _MONTHS)
        and _field_matches(str(cron.day_of_week), aws_weekday, _DAYS)
        and _field_matches(str(cron.year), at.year)
    )


@dataclass
class Job:
    name: str
    schedule: Rate | Cron
    handler: Callable[[dict, object], object]
    next_rate_run: datetime | None = None

    def due(self, now: datetime, last_minute: datetime | None) -> bool:
        if isinstance(self.schedule, Rate):
            if self.next_rate_run is None:
                self.next_rate_run = now + timedelta(seconds=self.schedule.value * _UNIT_SECONDS[self.schedule.unit])
            if now >= self.next_rate_run:
                self.next_rate_run += timedelta(seconds=self.schedule.value * _UNIT_SECONDS[self.schedule.unit])
                return True
            return False
        minute = now.replace(second=0, microsecond=0)
        return minute != last_minute and cron_matches(self.schedule, minute)


def jobs_of(app_module: object, app: object) -> list[Job]:
    jobs = []
    for source in getattr(app, "event_sources", []):
        schedule = getattr(source, "schedule_expression", None)
        if isinstance(schedule, Rate | Cron):
            jobs.append(Job(source.name, schedule, getattr(app_module, source.name)))
    return jobs


def scheduled_event(name: str, at: datetime) -> dict:
    return {
        "version": "0",
        "id": f"local-{name}-{int(at.timestamp())}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "local",
        "resources": [f"arn:aws:events:local:123456789012:rule/{name}"],
        "detail": {},
    }


class Timers:
    def __init__(self, jobs: list[Job], clock: Clock, tick_seconds: float = 1.0) -> None:
        self.jobs, self.clock, self.tick = jobs, clock, tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-timers", daemon=True)
        self._last_minute: datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)

    def run_due(self) -> list[str]:
        now = self.clock.now()
        ran = []
        for job in self.jobs:
            if job.due(now, self._last_minute):
                ran.append(job.name)
                try:
                    job.handler(scheduled_event(job.name, now), None)
                except Exception as exc:  # a failing job must not stop the timers
                    log("timer.failed", job=job.name, error=type(exc).__name__)
        self._last_minute = now.replace(second=0, microsecond=0)
        return ran

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            self.run_due()
