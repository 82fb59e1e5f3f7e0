"""What an experiment found: per metric, each arm against the baseline (the holdout, or the
first arm when there is none), with n, the rate or mean, the lift with its 95 % interval, the
p-value and the verdict (chalicelib/stats.py; 002 §4.4).

Only members whose conversion window has closed are counted (exposed at least
``conversion_days`` ago): every member is then observed for the same time, whatever their group.
The metrics, per exposed member:

- ``conversion``: a paid order (``order_paid`` event) after the exposure, within ``conversion_days``;
- ``redemption``: a coupon issued from the exposure on, redeemed within ``conversion_days`` of the
  exposure — for a campaign only its own coupons (cause key ``campaign#<name>…``);
- ``order_value``: the mean paid amount of the member's orders in that window, over the members
  who ordered (one value per member, so a frequent buyer does not count as many observations).

Until each group has the members its plan needs (``Experiment.plan``) the verdict is 样本不足,
whatever the interval shows: looking early and stopping at the first significant day would
inflate the false positives. A member exposed to ``polluted_at`` experiments or more whose
windows overlap this one's is counted, and the report warns (002 §4.4).

Reads: one query of the experiment's exposures (and of each overlapping experiment's, for the
pollution count), then per exposed member their events in the window (the member index, then the
events) and their coupons: about three requests a member, 16 at a time. An experiment of tens of
thousands of members therefore takes minutes: fine for ``siyu experiments report`` and the weekly
digest's timer, slow for the console.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib import stats
from chalicelib.events import Event, Kind
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import Experiment, SamplePlan
from chalicelib.state.models import Coupon, EventRecord, LoyaltyRecord
from chalicelib.store import keys

READERS = 16  # parallel reads of members' outcomes (report.build)
LABELS = {"conversion": "转化率", "redemption": "核销率", "order_value": "客单价"}


@dataclass(frozen=True)
class Exposure:
    member_id: str
    arm: str
    at: datetime
    store_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a member did after the exposure: orders (time, paid fen) and coupons (cause key,
    issued, redeemed or None)."""

    orders: tuple[tuple[datetime, int], ...] = ()
    coupons: tuple[tuple[str, datetime, datetime | None], ...] = ()


@dataclass(frozen=True)
class Result:
    metric: str
    arm: str
    baseline: str
    difference: stats.Difference | None
    verdict: str
    minimum_effect: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "arm": self.arm,
            "baseline": self.baseline,
            "verdict": self.verdict,
            "minimum_effect": self.minimum_effect,
            **(self.difference.as_dict() if self.difference else {}),
        }


@dataclass
class ExperimentReport:
    name: str
    title: str
    plan: SamplePlan
    exposed: Counter[str] = field(default_factory=Counter)
    window_open: int = 0
    polluted: int = 0
    polluted_at: int = 5
    results: list[Result] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "plan": self.plan.model_dump(),
            "exposed": dict(self.exposed),
            "window_open": self.window_open,
            "polluted": self.polluted,
            "polluted_at": self.polluted_at,
            "results": [r.as_dict() for r in self.results],
        }


# --- pure: the measurement ---------------------------------------------------------------------


def _in_window(at: datetime, exposed: datetime, days: int) -> bool:
    return exposed < at <= exposed + timedelta(days=days)


def converted(outcome: Outcome, exposure: Exposure, days: int) -> bool:
    return any(_in_window(at, exposure.at, days) for at, _ in outcome.orders)


def order_value_fen(outcome: Outcome, exposure: Exposure, days: int) -> float | None:
    paid = [fen for at, fen in outcome.orders if _in_window(at, exposure.at, days)]
    return sum(paid) / len(paid) if paid else None


def redeemed(outcome: Outcome, exposure: Exposure, days: int, cause_prefix: str | None) -> bool:
    return any(
        issued >= exposure.at
        and used is not None
        and used <= exposure.at + timedelta(days=days)
        and (cause_prefix is None or cause.startswith(cause_prefix))
        for cause, issued, used in outcome.coupons
    )


def _cause_prefix(experiment: Experiment) -> str | None:
    return None if experiment.campaign is None else f"campaign#{experiment.campaign}"


def _values(experiment: Experiment, metric: str, members: list[tuple[Exposure, Outcome]]) -> tuple[list[float], int]:
    """Per member of a group, the metric's observations (0/1, or yuan) and the group's size."""
    days = experiment.conversion_days
    if metric == "conversion":
        return [float(converted(o, e, days)) for e, o in members], len(members)
    if metric == "redemption":
        prefix = _cause_prefix(experiment)
        return [float(redeemed(o, e, days, prefix)) for e, o in members], len(members)
    values = [order_value_fen(o, e, days) for e, o in members]
    return [v / 100 for v in values if v is not None], len(members)


def _result(
    experiment: Experiment, plan: SamplePlan, metric: str, arm: str, groups: dict[str, list[tuple[Exposure, Outcome]]]
) -> Result:
    """One arm against the baseline on one metric."""
    baseline = plan.baseline
    effect = float(next((v for k, v in experiment.minimum_effect.items() if k == metric), 0))
    effect = effect if metric == "order_value" else effect / 100
    base, base_n = _values(experiment, metric, groups.get(baseline, []))
    values, arm_n = _values(experiment, metric, groups.get(arm, []))
    enough = arm_n >= plan.per_group[arm] and base_n >= plan.per_group[baseline]
    if not values or not base:
        return Result(metric, arm, baseline, None, stats.TOO_FEW, effect)
    if metric == "order_value":
        difference = stats.means(values, base)
        enough = enough and min(len(values), len(base)) >= stats.MIN_MEAN_SAMPLE
    else:
        difference = stats.proportions(int(sum(values)), len(values), int(sum(base)), len(base))
    return Result(metric, arm, baseline, difference, stats.verdict(difference, effect, enough), effect)


def measure(
    name: str,
    experiment: Experiment,
    observed: Iterable[tuple[Exposure, Outcome]],
    now: datetime,
    concurrent: Counter[str] | None = None,
    polluted_at: int = 5,
) -> ExperimentReport:
    """The report of one experiment from its exposures and their outcomes (module docstring).
    ``concurrent``: per member, the experiments they were exposed to whose windows overlap."""
    plan = experiment.plan()
    report = ExperimentReport(name, experiment.title, plan, polluted_at=polluted_at)
    groups: dict[str, list[tuple[Exposure, Outcome]]] = {}
    for exposure, outcome in observed:
        report.exposed[exposure.arm] += 1
        report.polluted += (concurrent or Counter())[exposure.member_id] >= polluted_at
        if exposure.at + timedelta(days=experiment.conversion_days) > now:
            report.window_open += 1
        else:
            groups.setdefault(exposure.arm, []).append((exposure, outcome))
    arms = [a.name for a in experiment.arms if a.name != plan.baseline]
    report.results = [_result(experiment, plan, metric, arm, groups) for metric in experiment.metrics for arm in arms]
    return report


# --- reads -------------------------------------------------------------------------------------


def exposures(experiment: str) -> list[Exposure]:
    """Every exposure of an experiment (one query of its partition)."""
    return [
        Exposure(record.sk, record.status or "", record.at, record.value)
        for record in LoyaltyRecord.query(keys.exposures(experiment))
        if record.at is not None
    ]


def outcome(member_id: str, since: datetime, until: datetime) -> Outcome:
    """A member's paid orders and coupons between ``since`` and ``until`` (their events through
    the member index, then the events themselves; their coupons through theirs)."""
    ids = [r.event_id for r in EventRecord.by_member.query(member_id, EventRecord.occurred_at.between(since, until))]
    orders = []
    for record in EventRecord.batch_get(ids) if ids else []:
        if record.kind == Kind.ORDER_PAID.value and record.status == "done":
            event = Event.from_json(record.body)
            orders.append((event.occurred_at, int(event.data.get("amount_fen") or 0)))
    coupons = tuple(
        (c.cause_key, c.issued_at, c.redeemed_at if c.status == "redeemed" else None)
        for c in Coupon.by_member.query(member_id, Coupon.issued_at.between(since, until))
    )
    return Outcome(tuple(sorted(orders)), coupons)


Reader = Callable[[str, datetime, datetime], Outcome]


def build(rules: RuleSet, name: str, now: datetime, read: Reader = outcome) -> ExperimentReport:
    """The report of the experiment ``name`` of the active rules (reads its exposures, each
    member's outcomes, and the other experiments' exposures for the pollution count)."""
    experiment = rules.experiments.experiments[name]
    found = exposures(name)
    days = timedelta(days=experiment.conversion_days)
    # three requests per member, waiting on the network: read in parallel (botocore's clients are
    # thread-safe), in the exposures' order
    with ThreadPoolExecutor(READERS) as pool:
        outcomes = list(pool.map(lambda e: read(e.member_id, e.at, e.at + days), found))
    observed = list(zip(found, outcomes, strict=True))
    return measure(name, experiment, observed, now, _concurrent(rules, name), rules.experiments.polluted_at)


def _concurrent(rules: RuleSet, name: str) -> Counter[str]:
    """Per member, how many experiments (this one included) whose windows overlap this one's
    they were exposed to."""
    this = rules.experiments.experiments[name]
    counts: Counter[str] = Counter()
    for other_name, other in rules.experiments.experiments.items():
        if other.starts_at < this.ends_at and this.starts_at < other.ends_at:
            counts.update({e.member_id for e in exposures(other_name)})
    return counts


# --- text for ops (Chinese) ----------------------------------------------------------------------


def _value(metric: str, value: float) -> str:
    return f"{value:.2f}元" if metric == "order_value" else f"{100 * value:.1f}%"


def lift_text(metric: str, d: stats.Difference) -> str:
    if metric == "order_value":
        return f"{d.estimate:+.2f}元 [{d.low:+.2f}, {d.high:+.2f}]"
    return f"{100 * d.estimate:+.1f}个百分点 [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"


def result_line(result: Result) -> str:
    label = LABELS[result.metric]
    d = result.difference
    if d is None:
        return f"{label} {result.arm} 对 {result.baseline}：暂无数据（{result.verdict}）"
    return (
        f"{label} {result.arm} {_value(result.metric, d.value_arm)}（{d.n_arm}人）对 {result.baseline} "
        f"{_value(result.metric, d.value_base)}（{d.n_base}人）：提升 {lift_text(result.metric, d)}，"
        f"p={d.p_value:.3f}，{result.verdict}"
    )


def plan_text(name: str, experiment: Experiment) -> str:
    plan = experiment.plan()
    groups = "、".join(f"{group} {n}人" for group, n in plan.per_group.items())
    fits = "窗口足够" if plan.days_needed <= plan.window_days else "窗口不够：rules check 会拒绝"
    return "\n".join(
        [
            f"实验 {name}：{experiment.title}",
            f"基线转化率 {100 * plan.base_rate:.1f}% → 预期 {100 * plan.expected_rate:.1f}%"
            f"（α=0.05 双侧，检验力 {experiment.power}%）",
            f"每组所需样本：{groups}",
            f"按每天 {experiment.expected_daily_exposures} 人曝光需 {plan.fill_days} 天，"
            f"再加 {experiment.conversion_days} 天转化期，共 {plan.days_needed} 天；"
            f"窗口 {plan.window_days} 天（{fits}）",
        ]
    )


def render(report: ExperimentReport) -> str:
    plan = report.plan
    needs = "、".join(f"{group} {n}人" for group, n in plan.per_group.items())
    exposed = "、".join(f"{group} {n}人" for group, n in sorted(report.exposed.items())) or "暂无"
    lines = [
        f"实验 {report.name}：{report.title}",
        f"所需样本 {needs}；已曝光 {exposed}；归因窗口未结束 {report.window_open}人",
        *(result_line(r) for r in report.results),
    ]
    if report.polluted:
        lines.append(
            f"注意：{report.polluted}名会员同时参加了≥{report.polluted_at}个实验，结果可能受污染（002 §4.4），"
            "建议让他们休息后再进入新实验。"
        )
    return "\n".join(lines)
