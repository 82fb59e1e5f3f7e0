"""Warning thresholds (风险预警): each check of alerts.json measures its KPI per store or for the
chain over its periods, grades the deviation from target into a level (notice / yellow / orange
/ red; an absolute ``floor`` crossed is at least yellow), and keeps one alert per check and scope:

- opened once, at the level reached, with that level's playbook;
- escalated when the level rises (a falling level while still breached sends nothing);
- reminded every ``remind_hours`` while open;
- closed once, with a message, when the KPI is back within target.

Nothing is judged on fewer than ``min_sample`` (the KPI's denominator) — the state stays as it
is — and no alert opens or escalates inside a suppression window (a promotion season). Each
transition is a conditional update of the alert on the state the checker read, in one
transaction with its robot message: two checkers running at once notify once.

The checks judge complete periods (yesterday and before), so their readings change once a local
day: the hourly timer measures on its first successful run of the day (and again when a
suppression window ended since), and on its other runs only sends the reminders that fell due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from chalicelib import executor
from chalicelib.counters import CHAIN
from chalicelib.logs import log
from chalicelib.metrics import kpis, read
from chalicelib.plans import Instruction, MoveAlert, QueueMessage, SaveCursor
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import LEVELS, AlertsRule, Check
from chalicelib.runtime import Context
from chalicelib.state.models import Alert, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome

LEVEL_NAMES = {"notice": "关注", "yellow": "黄色预警", "orange": "橙色预警", "red": "红色预警"}
COLOURS = {"notice": "comment", "yellow": "warning", "orange": "warning", "red": "warning"}


@dataclass(frozen=True)
class Reading:
    value: float | None  # the latest period's value, in the check's unit
    level: str | None  # None: within target
    judged: bool  # False: too few members (or no data) in some period


def unit(metric: str) -> tuple[str, float]:
    """How a KPI is written in rules and messages: (suffix, factor from the KPI's value)."""
    if metric == "average_order_value":
        return "元", 0.01
    if metric == "nps":
        return "", 1.0
    return "%", 100.0


def grade(check: Check, value: float, levels: AlertsRule) -> str | None:
    """The level of one period's value (None: within target)."""
    target = float(check.target)
    worse = (target - value) / target if check.direction == "at_least" else (value - target) / target
    reached = [lv.name for lv in levels.levels if worse * 100 >= lv.deviation_percent - 1e-9]
    level = reached[-1] if reached else None
    if check.floor is not None:
        crossed = value < float(check.floor) if check.direction == "at_least" else value > float(check.floor)
        if crossed and (level is None or LEVELS.index(level) < LEVELS.index("yellow")):
            level = "yellow"
    return level


def measure(check: Check, scope: str, today: date, rules: AlertsRule) -> Reading:
    """The last ``consecutive`` complete periods before ``today``; the mildest level counts."""
    _, factor = unit(check.metric)
    length = 7 if check.period == "week" else 1
    levels, latest = [], None
    totals = read.totals(scope)
    for n in range(check.consecutive):
        until = today - timedelta(days=1 + n * length)
        since = until - timedelta(days=length - 1)
        if check.metric in kpis.COHORT_KPIS:
            lag = timedelta(days=_cohort_lag(check.metric))
            counts = read.cohort_window(scope, since - lag, until - lag)
        else:
            counts = read.window(scope, since, until)
        result = kpis.KPIS[check.metric](counts, totals)
        if result.value is None or result.sample < check.min_sample:
            return Reading(latest, None, judged=False)
        shown = result.value * factor
        latest = shown if latest is None else latest
        levels.append(grade(check, shown, rules))
    if any(level is None for level in levels):
        return Reading(latest, None, judged=True)
    return Reading(latest, min(levels, key=LEVELS.index), judged=True)


def _cohort_lag(metric: str) -> int:
    """A cohort is complete once its day-N return could have happened: D1 the day after, D7 a week."""
    return 1 if metric == "retention_d1" else 7


def evaluate(ctx: Context, runner: executor.Runner | None = None) -> list[str]:
    """Run every check (timer, hourly); returns the keys of the messages queued (with a ``DryRun``
    runner: that would be queued; nothing is written)."""
    rules = ctx.rules()
    rule = rules.alerts
    now = ctx.clock.now()
    if not rule.active_at(now):
        return []
    today = now.astimezone(ZoneInfo(rules.stores.default_timezone)).date()
    suppressed = any(s.starts_at <= now < s.ends_at for s in rule.suppress)
    measured = _measured(today, rules.version)
    if measured == "clear" or (measured == "suppressed" and suppressed):
        return _reminders(rules, today, now, runner)
    queued = []
    for check in rule.checks:
        scopes = [CHAIN] if check.scope == "chain" else sorted(rules.stores.ids)
        for scope in scopes:
            reading = measure(check, scope, today, rule)
            if not reading.judged:
                continue
            alert_id = keys.alert(check.name, scope)
            plan = transition(check, scope, reading, db.get(Alert, alert_id), rules, suppressed, now)
            queued += _commit(plan, now, runner)
    cursor = SaveCursor(
        table="shared",
        pk=keys.ALERTS,
        sk=keys.measured(today.isoformat(), rules.version),
        value="suppressed" if suppressed else "clear",
        at=now,
    )
    executor.execute([cursor], cursor.sk, now, runner)
    return queued


def _measured(today: date, version: str) -> str | None:
    """Whether today's readings were taken (under this rule version), and under suppression."""
    item = db.get(Shared, keys.ALERTS, keys.measured(today.isoformat(), version))
    return item.value if item is not None else None


def _reminders(rules: RuleSet, today: date, now: datetime, runner: executor.Runner | None) -> list[str]:
    """Between daily measurements: remind the open alerts whose reminder fell due."""
    checks = {check.name: check for check in rules.alerts.checks}
    queued = []
    for current in Alert.scan(Alert.status == "open"):
        check = checks.get(current.check)
        if check is None or now - current.notified_at < timedelta(hours=rules.alerts.remind_hours):
            continue
        reading = measure(check, current.scope, today, rules.alerts)
        if reading.judged and reading.level is not None:
            queued += _commit(_remind(current, check, current.scope, reading, rules, now), now, runner)
    return queued


def _commit(plan: list[Instruction], now: datetime, runner: executor.Runner | None) -> list[str]:
    move = next((i for i in plan if isinstance(i, MoveAlert)), None)
    if move is None:
        return []
    applied = executor.execute(plan, f"{move.alert_id}#{move.transition}", now, runner)
    if applied.outcome is not Outcome.NEW:
        return []  # another checker made this transition
    log("alert.transition", alert=move.alert_id, key=applied.messages[0].rsplit("#", 1)[-1])
    return applied.messages


def transition(
    check: Check,
    scope: str,
    reading: Reading,
    current: Alert | None,
    rules: RuleSet,
    suppressed: bool,
    now: datetime,
) -> list[Instruction]:
    """The alert's next transition for this reading (pure): its move and its robot message."""
    level = reading.level
    if current is None or current.status != "open":
        return [] if level is None or suppressed else _open(check, scope, reading, rules, now)
    if level is None:
        return _close(current, check, scope, reading, rules, now)
    if LEVELS.index(level) > LEVELS.index(current.level):
        return [] if suppressed else _escalate(current, check, scope, reading, rules, now)
    if now - current.notified_at >= timedelta(hours=rules.alerts.remind_hours):
        return _remind(current, check, scope, reading, rules, now)
    return []


def _move(
    check: Check,
    scope: str,
    reading: Reading,
    now: datetime,
    transition: Literal["open", "escalate", "remind", "close"],
    current: Alert | None = None,
) -> MoveAlert:
    """The move, on the condition that the alert is as ``current`` (None: closed or absent)."""
    return MoveAlert(
        alert_id=keys.alert(check.name, scope),
        transition=transition,
        check=check.name,
        scope=scope,
        level=reading.level or "notice",
        value=_shown(check, reading.value),
        now=now,
        expect_level=current.level if current is not None else None,
        expect_opened_at=current.opened_at if current is not None else None,
        expect_notified_at=current.notified_at if current is not None else None,
    )


def _open(check: Check, scope: str, reading: Reading, rules: RuleSet, now: datetime) -> list[Instruction]:
    key = keys.alert_message(keys.alert(check.name, scope), now, "open")
    return [_move(check, scope, reading, now, "open"), _message(key, check, scope, reading, rules, "open")]


def _escalate(
    current: Alert, check: Check, scope: str, reading: Reading, rules: RuleSet, now: datetime
) -> list[Instruction]:
    move = _move(check, scope, reading, now, "escalate", current)
    key = keys.alert_message(current.alert_id, current.opened_at, str(reading.level))
    return [move, _message(key, check, scope, reading, rules, "escalate")]


def _remind(
    current: Alert, check: Check, scope: str, reading: Reading, rules: RuleSet, now: datetime
) -> list[Instruction]:
    held = Reading(reading.value, current.level, True)
    move = _move(check, scope, held, now, "remind", current)
    key = keys.alert_message(current.alert_id, current.opened_at, f"remind{int(current.reminders) + 1}")
    return [move, _message(key, check, scope, held, rules, "remind")]


def _close(
    current: Alert, check: Check, scope: str, reading: Reading, rules: RuleSet, now: datetime
) -> list[Instruction]:
    held = Reading(reading.value, current.level, True)
    move = _move(check, scope, held, now, "close", current)
    key = keys.alert_message(current.alert_id, current.opened_at, "closed")
    return [move, _message(key, check, scope, held, rules, "close")]


def _shown(check: Check, value: float | None) -> str:
    suffix, _ = unit(check.metric)
    return "-" if value is None else f"{value:.1f}{suffix}"


def _message(key: str, check: Check, scope: str, reading: Reading, rules: RuleSet, kind: str) -> QueueMessage:
    level = reading.level or "notice"
    playbook = next((lv.playbook for lv in rules.alerts.levels if lv.name == level), "")
    place = "全连锁" if scope == CHAIN else rules.stores.label_of(scope)
    name = kpis.NAMES[check.metric]
    target = _shown(check, float(check.target))
    value = _shown(check, reading.value)
    period = "天" if check.period == "day" else "周"
    head = {
        "open": f"【{LEVEL_NAMES[level]}】",
        "escalate": f"【升级为{LEVEL_NAMES[level]}】",
        "remind": f"【提醒·{LEVEL_NAMES[level]}未解除】",
        "close": "【预警解除】",
    }[kind]
    lines = [f"{head}{place} · {name}", f'> 当前：<font color="{COLOURS[level]}">{value}</font>（目标 {target}）']
    if kind == "close":
        lines.append("> 指标已回到目标范围内。")
    else:
        lines.append(f"> 连续 {check.consecutive} {period}未达标")
        lines.append(f"> 应对：{playbook}")
    robot = check.robot or ("ops" if scope == CHAIN else scope)
    return QueueMessage.to_robot(key, robot, lines, "alerts", rules.version, None if scope == CHAIN else scope)
