"""The weekly digest (周报): chain and stores, for the review meeting.

Per scope, the week's core KPIs with the change on the week before and the distance to target,
the activity behind them (follows, orders, GMV), coupons and message spend, the cost of tier
discounts given at the till (digest.json's ``tier_benefits_text``); open alerts; the
recall lift; the experiments' results (``experiments_text``, chalicelib/experiments/report.py);
the top and bottom stores. Rendered as WeCom markdown within the robot's 4,096
bytes (store lines are dropped from the end if needed, and the digest says so) plus one PNG
chart of the chain's daily trend (``chart``, the only module that imports matplotlib). Stored
under its ISO week, so ``siyu digest --week 2026-W47`` reads the same digest again.

Reads: three queries per scope (two weeks of days, cohorts, totals) whatever the number of
events, one scan of the small alerts table, the recall decisions of the last 30 days, and the
exposures of at most five experiments with their members' orders and coupons.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import executor
from chalicelib.counters import CHAIN
from chalicelib.events import robot_recipient
from chalicelib.experiments import report as experiment_report
from chalicelib.logs import log
from chalicelib.metrics import kpis, read
from chalicelib.metrics.alerts import LEVEL_NAMES, unit
from chalicelib.offers import yuan
from chalicelib.plans import Instruction, KeepDigest, QueueMessage, new
from chalicelib.recall import report
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.texts import fill
from chalicelib.runtime import Context
from chalicelib.state.models import Alert, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome

ROBOT_MARKDOWN_BYTES = 4096
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CN_WEEKDAYS = "一二三四五六日"


@dataclass
class Scope:
    scope: str
    name: str
    week: Counter[str]
    before: Counter[str]
    cohort: Counter[str]
    cohort_before: Counter[str]
    totals: Counter[str]
    daily: dict[date, Counter[str]] = field(default_factory=dict)

    def kpi(self, name: str, previous: bool = False) -> kpis.Value:
        counts = (self.cohort_before if previous else self.cohort) if name in kpis.COHORT_KPIS else None
        if counts is None:
            counts = self.before if previous else self.week
        return kpis.KPIS[name](counts, self.totals)


@dataclass
class Digest:
    week: str
    monday: date
    scopes: list[Scope]
    open_alerts: list[Alert]
    recall: list[report.Row]
    min_sample: int
    markdown: str = ""
    chart_png: bytes = b""
    experiments: list[experiment_report.ExperimentReport] = field(default_factory=list)


def week_of(text: str) -> date:
    """``2026-W47`` → its Monday; ValueError otherwise."""
    year, sep, number = text.partition("-W")
    if not sep or not year.isdigit() or not number.isdigit():
        raise ValueError(f"{text!r}: a week is written like 2026-W47")
    return date.fromisocalendar(int(year), int(number), 1)


def iso_week(day: date) -> str:
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def build(rules: RuleSet, monday: date, now: datetime) -> Digest:
    sunday = monday + timedelta(days=6)
    scopes = [_scope(CHAIN, "全连锁", monday, sunday)]
    scopes += [_scope(store.id, store.name, monday, sunday) for store in rules.stores.stores]
    open_alerts = [a for a in Alert.scan() if a.status == "open"]
    recall_rows = [
        r for r in report.summarize(report.records(sunday - timedelta(days=29), sunday), now) if r.store == report.ALL
    ]
    digest = Digest(iso_week(monday), monday, scopes, open_alerts, recall_rows, rules.recall.min_sample)
    digest.experiments = _experiments(rules, monday, now)
    digest.markdown = render(digest, rules)
    try:
        from chalicelib.metrics import chart  # matplotlib: only the digest pays for it
    except ImportError:  # the chart layer is not attached (requirements-digest.txt)
        log("digest.chart_unavailable", logging.WARNING, week=digest.week)
        return digest
    digest.chart_png = chart.render(digest, rules)
    return digest


EXPERIMENT_WEEKS = 4  # experiments running, or ended in the last four weeks, are in the digest
MAX_EXPERIMENTS = 5


def _experiments(rules: RuleSet, monday: date, now: datetime) -> list[experiment_report.ExperimentReport]:
    """The reports of the experiments whose window reaches into the four weeks up to the digest's
    Sunday (at most ``MAX_EXPERIMENTS``, the latest started first; the rest: siyu experiments report),
    while experiments.json is switched on."""
    if not rules.experiments.enabled:
        return []
    zone = ZoneInfo(rules.stores.default_timezone)
    since = datetime.combine(monday - timedelta(weeks=EXPERIMENT_WEEKS - 1), datetime.min.time(), zone)
    until = datetime.combine(monday + timedelta(days=7), datetime.min.time(), zone)
    named = [
        (experiment.starts_at, name)
        for name, experiment in rules.experiments.experiments.items()
        if experiment.starts_at < until and experiment.ends_at > since
    ]
    return [experiment_report.build(rules, name, now) for _, name in sorted(named, reverse=True)[:MAX_EXPERIMENTS]]


def _experiment_lines(digest: Digest, rules: RuleSet) -> list[str]:
    if not digest.experiments:
        return []
    lines = ["**实验结果（95%区间）**"]
    for found in digest.experiments:
        for result in found.results:
            d = result.difference
            lift = "暂无数据" if d is None else experiment_report.lift_text(result.metric, d)
            values = {
                "title": found.title,
                "metric": experiment_report.LABELS[result.metric],
                "arm": result.arm,
                "baseline": result.baseline,
                "lift": lift,
                "p": "-" if d is None else f"{d.p_value:.3f}",
                "verdict": result.verdict,
            }
            lines.append("> " + fill(rules.digest.experiments_text, **values))
        if found.polluted:
            lines.append(f"> 注意：{found.polluted}名会员同时参加了≥{found.polluted_at}个实验，结果可能受污染")
    return lines


def _scope(scope: str, name: str, monday: date, sunday: date) -> Scope:
    days = read.days(scope, monday - timedelta(days=7), sunday)
    week: Counter[str] = Counter()
    before: Counter[str] = Counter()
    for day, counts in days.items():
        (week if day >= monday else before).update(counts)
    week["days"] = before["days"] = 7
    cohorts = read.cohorts(scope, monday - timedelta(days=7), sunday)
    cohort: Counter[str] = Counter()
    cohort_before: Counter[str] = Counter()
    for day, counts in cohorts.items():
        (cohort if day >= monday else cohort_before).update(counts)
    daily = {d: c for d, c in days.items() if d >= monday}
    return Scope(scope, name, week, before, cohort, cohort_before, read.totals(scope), daily)


def shown(name: str, value: float | None) -> str:
    suffix, factor = unit(name)
    if value is None:
        return "-"
    return f"{value * factor:.1f}{suffix}" if suffix != "元" else f"{value * factor:.2f}元"


def _change(name: str, now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "环比 -"
    suffix, factor = unit(name)
    delta = (now - before) * factor
    word = "pt" if suffix == "%" else suffix
    return f"环比 {delta:+.1f}{word}"


def _to_target(name: str, value: float | None, rules: RuleSet) -> str:
    target = rules.digest.target_of(name)
    if target is None or value is None:
        return ""
    suffix, factor = unit(name)
    gap = value * factor - float(target)
    good = gap <= 0 if name in kpis.LOWER_IS_BETTER else gap >= 0
    mark = "达标" if good else "未达标"
    word = "pt" if suffix == "%" else suffix
    return f"，目标 {float(target):g}{suffix}，{mark} {gap:+.1f}{word}"


def _kpi_line(scope: Scope, name: str, rules: RuleSet) -> str:
    value = scope.kpi(name)
    before = scope.kpi(name, previous=True)
    colour = (
        "comment"
        if value.value is None
        else ("warning" if "未达标" in _to_target(name, value.value, rules) else "info")
    )
    return (
        f'> {kpis.NAMES[name]} <font color="{colour}">{shown(name, value.value)}</font>'
        f"（{_change(name, value.value, before.value)}{_to_target(name, value.value, rules)}）"
    )


def _tier_benefits(scope: Scope, rules: RuleSet) -> list[str]:
    """The week's cost of tier discounts given at the till, when there was any."""
    w = scope.week
    if not w["tier_discount_fen"]:
        return []
    share = f"{100 * w['tier_discount_fen'] / w['gmv_fen']:.1f}%" if w["gmv_fen"] else "-"
    amount, orders = yuan(w["tier_discount_fen"]), w["tier_discount_orders"]
    return ["> " + fill(rules.digest.tier_benefits_text, amount=amount, orders=orders, share=share)]


DROPPED = {  # chalicelib/delivery/sender.py drop_class
    "window": "客服窗口关闭",
    "no_channel": "无可用渠道",
    "unfollowed": "已取关",
    "blocked": "已拉黑",
    "refused": "拒收订阅",
    "expired": "优惠已过期",
    "cap": "频次上限",
    "payload": "内容超限",
    "merged": "同一人重复",
    "other": "其他",
}


def _delivery(scope: Scope, rules: RuleSet) -> list[str]:
    """The week's member messages: queued, delivered, and why the others were not."""
    w = scope.week
    if not w.get("messages_intended"):
        return []
    why = "、".join(
        f"{label} {w[f'messages_dropped:{name}']}"
        for name, label in DROPPED.items()
        if w.get(f"messages_dropped:{name}")
    )
    values = {
        "intended": w["messages_intended"],
        "delivered": w.get("messages_delivered", 0),
        "rate": f"{100 * w.get('messages_delivered', 0) / w['messages_intended']:.1f}%",
        "dropped": w.get("messages_dropped", 0),
        "why": f"：{why}" if why else "",
    }
    return ["> " + fill(rules.digest.delivery_text, **values)]


def _activity(scope: Scope) -> str:
    w = scope.week
    issued, redeemed = w["coupons_issued"], w["coupons_redeemed"]
    rate = f"{100 * redeemed / issued:.1f}%" if issued else "-"
    # members are persons: ids found to be one person are merged (chalicelib/identity), and said so
    merged = f" · 识别为同一人 {w['persons_merged']}（会员按人计）" if w.get("persons_merged") else ""
    return (
        f"> 新增关注 {w['follows']} · 取关 {w['unfollows']} · 入群 {w['group_joins']}{merged} · 订单 {w['orders']} · "
        f"GMV {yuan(w['gmv_fen'])}元\n> 券 发放 {issued} · 核销 {redeemed}（{rate}）· "
        f"消息 {w['messages_sent']} 条 花费 {yuan(w['message_cost_fen'])}元\n"
        f"> 评价 {w['reviews']} 条 · 差评 {w['reviews_negative']}（超时未响应 {w['tickets_late']} · "
        f"升级 {w['tickets_escalated']}）"
    )


def render(digest: Digest, rules: RuleSet) -> str:
    sunday = digest.monday + timedelta(days=6)
    chain, stores = digest.scopes[0], digest.scopes[1:]
    head = [
        f"## 私域周报 {digest.week}（{digest.monday.month}月{digest.monday.day}日–{sunday.month}月{sunday.day}日）",
        f"**{chain.name}**",
        *(_kpi_line(chain, name, rules) for name in rules.digest.core),
        _activity(chain),
        *_delivery(chain, rules),
        *_tier_benefits(chain, rules),
    ]
    alerts = [f"**未解除预警 {len(digest.open_alerts)} 条**"] + [
        f"> {a.scope} {kpis.NAMES.get(_metric_of(a, rules), a.check)} {LEVEL_NAMES.get(a.level, a.level)}"
        f"（{a.value or '-'}，{a.opened_at:%m-%d} 起）"
        for a in sorted(digest.open_alerts, key=lambda a: a.alert_id)
    ]
    recall = (
        ["**召回效果（近30天，对照组比较）**"]
        + [
            f"> {row.stage}：发送 {row.treated} · 对照 {row.holdout} · 提升 {report.lift_text(row, digest.min_sample)}"
            for row in digest.recall
        ]
        if digest.recall
        else []
    )
    ranking = _ranking(stores, rules)
    experiments = _experiment_lines(digest, rules)
    store_lines = [
        f"**{s.scope} {s.name}**："
        + "，".join(f"{kpis.NAMES[n]} {shown(n, s.kpi(n).value)}" for n in rules.digest.core)
        for s in stores
    ]
    fixed = [line for section in (head, alerts, recall, experiments, ranking) if section for line in (*section, "")]
    fixed.append("**各门店**")
    text = "\n".join(fixed)
    kept: list[str] = []
    for line in store_lines:
        candidate = "\n".join([text, *kept, line, "…（其余门店见 siyu digest）"])
        if len(candidate.encode("utf-8")) > ROBOT_MARKDOWN_BYTES:
            kept.append("…（其余门店见 siyu digest）")
            break
        kept.append(line)
    return "\n".join([text, *kept])


def _metric_of(alert: Alert, rules: RuleSet) -> str:
    return next((c.metric for c in rules.alerts.checks if c.name == alert.check), alert.check)


def _ranking(stores: list[Scope], rules: RuleSet) -> list[str]:
    name = rules.digest.rank_by
    valued = [(s, value) for s in stores if (value := s.kpi(name).value) is not None]
    if len(valued) < 2:
        return []
    valued.sort(key=lambda pair: pair[1], reverse=name not in kpis.LOWER_IS_BETTER)
    n = min(rules.digest.top_bottom, len(valued) // 2 or 1)
    top = "、".join(f"{s.name} {shown(name, v)}" for s, v in valued[:n])
    bottom = "、".join(f"{s.name} {shown(name, v)}" for s, v in valued[-n:])
    return [f"**门店排名（{kpis.NAMES[name]}）**", f"> 前{n}：{top}", f"> 后{n}：{bottom}"]


def stored(week: str) -> tuple[str, bytes] | None:
    item = db.get(Shared, keys.DIGEST, week)
    if item is None:
        return None
    data = json.loads(item.value or "{}")
    return data.get("markdown", ""), base64.b64decode(data.get("chart", ""))


def due_week(rules: RuleSet, now: datetime) -> str | None:
    """The week to send now: last week, once the rule's weekday and hour have come."""
    local = now.astimezone(ZoneInfo(rules.stores.default_timezone))
    monday = local.date() - timedelta(days=local.weekday())
    send_day = monday + timedelta(days=WEEKDAYS.index(rules.digest.weekday))
    hours, minutes = (int(x) for x in rules.digest.at.split(":"))
    if (local.date(), local.hour, local.minute) < (send_day, hours, minutes):
        return None
    return iso_week(monday - timedelta(days=7))


def run(ctx: Context, runner: executor.Runner | None = None) -> tuple[str, list[str]] | None:
    """Timer (hourly): build, store and send last week's digest once its time has come; returns
    the week and the keys of its messages (to queue), None when nothing is due."""
    rules = ctx.rules()
    now = ctx.clock.now()
    week = due_week(rules, now) if rules.digest.active_at(now) else None
    if week is None or stored(week) is not None:
        return None
    digest = build(rules, week_of(week), now)
    applied = executor.execute(plan(digest, rules), keys.digest_message(week, "markdown"), now, runner)
    if applied.outcome is not Outcome.NEW or not applied.messages:
        return None  # another run stored and sent it
    log("digest.sent", week=week, markdown_bytes=len(digest.markdown.encode("utf-8")), png_bytes=len(digest.chart_png))
    return week, applied.messages


def plan(digest: Digest, rules: RuleSet) -> list[Instruction]:
    """Keep the digest under its week and, if it is new, send it to the digest's robot (markdown,
    and the chart as an image when there is one)."""
    value = json.dumps(
        {"markdown": digest.markdown, "chart": base64.b64encode(digest.chart_png).decode("ascii")}, ensure_ascii=False
    )
    kept = KeepDigest(week=digest.week, value=value)
    parts = [("markdown", digest.markdown, {"robot": "markdown"})]
    if digest.chart_png:
        image = {"robot": "image", "image_base64": base64.b64encode(digest.chart_png).decode("ascii")}
        parts.append(("chart", "", image))
    out: list[Instruction] = [kept]
    for part, text, payload in parts:
        out.append(
            QueueMessage(
                message_key=keys.digest_message(digest.week, part),
                member_id=robot_recipient(rules.digest.robot),
                channel="robot",
                category="alert",
                text=text,
                cause="digest",
                event_id=keys.digest_event(digest.week),
                rules_version=rules.version,
                payload=payload,
                when=new(kept),
            )
        )
    return out
