"""The local timer runner: schedules fire as EventBridge would fire them."""

from datetime import UTC, datetime, timedelta

from chalice import Cron, Rate

from chalicelib.clock import FixedClock
from siyu.local.timers import Job, Timers, cron_matches


def test_cron_follows_aws_semantics():
    wednesday_9am = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # Wed 09:00 Shanghai = 01:00 UTC
    weekly = Cron(0, 1, "?", "*", "WED", "*")
    assert cron_matches(weekly, wednesday_9am)
    assert not cron_matches(weekly, wednesday_9am + timedelta(days=1))
    assert not cron_matches(weekly, wednesday_9am + timedelta(minutes=1))
    every_15 = Cron("0/15", "*", "*", "*", "?", "*")
    assert [cron_matches(every_15, wednesday_9am + timedelta(minutes=m)) for m in (0, 15, 20, 45)] == [
        True,
        True,
        False,
        True,
    ]
    assert cron_matches(Cron(30, "8-10", "1,15", "NOV", "?", "*"), datetime(2026, 11, 15, 9, 30, tzinfo=UTC))
    assert cron_matches(Cron(0, 0, "?", "*", "1", "*"), datetime(2026, 11, 22, 0, 0, tzinfo=UTC))  # 1 = Sunday


def test_rate_jobs_run_each_interval_and_cron_jobs_once_per_matching_minute():
    clock = FixedClock(datetime(2026, 11, 25, 0, 58, 30, tzinfo=UTC))
    calls: list[tuple[str, str]] = []
    rate = Job("every_5_min", Rate(5, unit=Rate.MINUTES), lambda event, ctx: calls.append(("rate", event["time"])))
    cron = Job("at_one", Cron(0, 1, "*", "*", "?", "*"), lambda event, ctx: calls.append(("cron", event["time"])))
    timers = Timers([rate, cron], clock)
    for _ in range(12 * 11):  # eleven minutes in 5 s ticks
        timers.run_due()
        clock.advance(timedelta(seconds=5))
    assert [kind for kind, _ in calls].count("rate") == 2
    assert [c for c in calls if c[0] == "cron"] == [("cron", "2026-11-25T01:00:00Z")]


def test_a_failing_job_does_not_stop_the_others():
    clock = FixedClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))
    ran = []

    def boom(event, ctx):
        raise RuntimeError("x")

    timers = Timers(
        [
            Job("boom", Cron("*", "*", "*", "*", "?", "*"), boom),
            Job("ok", Cron("*", "*", "*", "*", "?", "*"), lambda e, c: ran.append(1)),
        ],
        clock,
    )
    assert timers.run_due() == ["boom", "ok"] and ran == [1]
