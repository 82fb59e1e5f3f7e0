"""Warning thresholds: one alert per check and store, opened once, escalated as the deviation
grows, reminded while open, closed once when the number recovers — and silent on small samples
and in promotion season."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pynamodb.expressions.operand import Path as Attr

from chalicelib import runtime
from chalicelib.events import robot_recipient
from chalicelib.metrics import alerts
from chalicelib.rules import loader
from chalicelib.state.models import Alert, Metric, OutboxMessage
from siyu import cli

RULES = Path(__file__).resolve().parent.parent / "rules"
FIRST = date(2026, 11, 2)


@pytest.fixture
def conversion_check(tmp_path, monkeypatch):
    """Only one check: S00x conversion (orders / active members) at least 20 % a day."""

    def use(**changes):
        directory = tmp_path / "rules"
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(RULES, directory)
        data = json.loads((directory / "alerts.json").read_text(encoding="utf-8"))
        check = {"name": "conversion", "metric": "conversion_rate", "scope": "each_store", "target": 20}
        data["checks"] = [check | {"min_sample": 30}]
        data.update(changes)
        (directory / "alerts.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        monkeypatch.setenv("SIYU_RULES_DIR", str(directory))
        loader.clear_cache()

    return use


def day_of(store: str, day: date, active: int, orders: int) -> None:
    Metric(store, day.isoformat()).update(actions=[Attr("active_members").set(active), Attr("orders").set(orders)])


def check_on(clock, day: date) -> int:
    """Run the hourly check at 10:00 Shanghai on the day after ``day``."""
    clock.set(datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC) + timedelta(days=1))
    return len(alerts.evaluate(runtime.context()))


def robot_messages() -> list[OutboxMessage]:
    return sorted((m for m in OutboxMessage.scan() if m.channel == "robot"), key=lambda m: m.created_at)


def test_an_alert_opens_once_escalates_three_times_and_closes_once(aws, clock, conversion_check):
    conversion_check()
    rates = [18, 17, 15, 12, 12, 21]  # 10 %, 15 %, 25 %, 40 %, 40 % below the 20 % target, then back
    for i, rate in enumerate(rates):
        day = FIRST + timedelta(days=i)
        day_of("S001", day, active=100, orders=rate)
        day_of("S002", day, active=100, orders=22)  # on target all along
        check_on(clock, day)
        check_on(clock, day)  # the hourly timer runs again: nothing new
    found = list(Alert.scan())
    assert len(found) == 1
    alert = found[0]
    assert alert.alert_id == "conversion#S001" and alert.status == "closed" and alert.level == "red"
    assert alert.escalations == 3 and alert.reminders == 1  # still red a day later: one reminder
    sent = robot_messages()
    heads = [m.text.splitlines()[0] for m in sent]
    assert heads == [
        "【关注】S001 静安寺店 · 转化率",
        "【升级为黄色预警】S001 静安寺店 · 转化率",
        "【升级为橙色预警】S001 静安寺店 · 转化率",
        "【升级为红色预警】S001 静安寺店 · 转化率",
        "【提醒·红色预警未解除】S001 静安寺店 · 转化率",
        "【预警解除】S001 静安寺店 · 转化率",
    ]
    assert {m.member_id for m in sent} == {robot_recipient("S001")}  # the store's robot
    assert "成立技术与运营专项组" in sent[2].text and "12.0%" in sent[3].text and "目标 20.0%" in sent[3].text


def test_an_open_alert_is_remembered_every_remind_hours_not_every_hour(aws, clock, conversion_check):
    conversion_check(remind_hours=24)
    day_of("S001", FIRST, active=100, orders=15)
    day_of("S001", FIRST + timedelta(days=1), active=100, orders=15)
    check_on(clock, FIRST)
    clock.set(clock.now() + timedelta(hours=23))
    assert len(alerts.evaluate(runtime.context())) == 0
    clock.set(clock.now() + timedelta(hours=1))
    assert len(alerts.evaluate(runtime.context())) == 1
    assert [m.text.splitlines()[0] for m in robot_messages()][-1] == "【提醒·橙色预警未解除】S001 静安寺店 · 转化率"


def test_nothing_fires_below_the_minimum_sample_or_in_a_suppression_window(aws, clock, conversion_check):
    conversion_check()
    day_of("S001", FIRST, active=20, orders=1)  # 5 %, far below target, but only 20 members
    assert check_on(clock, FIRST) == 0
    conversion_check(
        suppress=[
            {"starts_at": "2026-11-01T00:00:00+08:00", "ends_at": "2026-12-01T00:00:00+08:00", "reason": "双十一促销"}
        ]
    )
    day_of("S001", FIRST + timedelta(days=1), active=100, orders=5)
    assert check_on(clock, FIRST + timedelta(days=1)) == 0
    assert list(Alert.scan()) == [] and robot_messages() == []


def test_a_floor_makes_a_small_deviation_at_least_yellow_and_weeks_must_run_consecutively(
    aws, clock, tmp_path, conversion_check
):
    conversion_check(
        checks=[
            {
                "name": "conv_floor",
                "metric": "conversion_rate",
                "scope": "each_store",
                "target": 20,
                "floor": 19,
                "min_sample": 30,
            },
            {
                "name": "conv_weeks",
                "metric": "conversion_rate",
                "scope": "each_store",
                "target": 20,
                "period": "week",
                "consecutive": 2,
                "min_sample": 30,
            },
        ]
    )
    for i in range(14):
        rate = 22 if i < 7 else 14  # week one on target, week two 30 % below
        day_of("S001", FIRST + timedelta(days=i), active=100, orders=rate if i != 13 else 18)
    check_on(clock, FIRST + timedelta(days=13))  # last day 18 % (10 % below, under the 19 % floor)
    open_ = {a.check: a.level for a in Alert.scan() if a.status == "open"}
    assert open_ == {"conv_floor": "yellow"}  # week one was fine: no two-week alert yet


def test_siyu_alerts_lists_open_and_closed_alerts(aws, clock, conversion_check, capsys):
    conversion_check()
    day_of("S001", FIRST, active=100, orders=12)
    check_on(clock, FIRST)
    assert cli.main(["alerts"]) == 0
    out = capsys.readouterr().out
    assert "conversion#S001" in out and "open" in out and "红色预警" in out


def test_later_runs_of_a_day_read_two_items_until_a_reminder_or_a_suppression_end_needs_more(
    aws, clock, conversion_check
):
    """The checks judge complete days: the day's first run measures, the other hourly runs only
    look for due reminders — unless a suppression window ended since the day was measured."""
    from siyu.metering import Meter

    ends = datetime(FIRST.year, FIRST.month, FIRST.day, 6, 0, tzinfo=UTC) + timedelta(days=1)  # 14:00 Shanghai
    window = {"starts_at": "2026-11-01T00:00:00+08:00", "ends_at": ends.isoformat(), "reason": "大促"}
    conversion_check(suppress=[window])
    day_of("S001", FIRST, active=100, orders=12)  # 40 % below target
    day_of("S002", FIRST, active=100, orders=22)
    assert check_on(clock, FIRST) == 0  # 10:00, suppressed: nothing opens
    clock.set(clock.now() + timedelta(hours=1))
    with Meter() as meter:
        assert len(alerts.evaluate(runtime.context())) == 0  # still suppressed, measured already
    assert sum(meter.calls.values()) <= 3
    clock.set(ends + timedelta(hours=1))  # 15:00: the window has ended
    assert len(alerts.evaluate(runtime.context())) == 1
    assert [m.text.splitlines()[0] for m in robot_messages()] == ["【红色预警】S001 静安寺店 · 转化率"]
    clock.set(clock.now() + timedelta(hours=1))
    with Meter() as meter:
        assert len(alerts.evaluate(runtime.context())) == 0
    assert sum(meter.calls.values()) <= 3  # the day's marker and the open alerts
