"""The simulation's experiment (issue 21): a campaign whose true lift the world knows.

The run's rules get one campaign, ``sim_offer``: a message to the segment ``new`` halfway through
the run, tested by the experiment ``sim_offer_test`` (half the members held out: they get only
their exposure). A member of the arm whom the message reaches orders once more within two days
with the chance ``EXTRA_ORDER`` (their own random stream: the rest of their life is unchanged),
on top of whatever they would have ordered anyway. The world therefore knows each arm member's
two outcomes: whether they ordered in the conversion window without the campaign (their own
orders) and whether the campaign's order was what made them convert. The true lift is the mean
of that difference over the arm's exposed members (the effect of being in the arm, reached or
not: what a holdout comparison measures), and siyu's report (``chalicelib/experiments/report.py``)
must find it inside its 95 % interval.

A run too small for the experiment's sample size (``Experiment.plan``) keeps the campaign and
leaves the experiment out, as ``siyu rules check`` would refuse it; the summary says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from siyu.simulate import world
from siyu.simulate.world import ZONE, Persona, Store

CAMPAIGN = "sim_offer"
EXPERIMENT = "sim_offer_test"
MARK = "本周特饮"  # how a member recognises the campaign on her phone (its text, or its title in a template)
TEXT = "【本周特饮】第二杯半价，到店出示本消息即可享受。"
EXTRA_ORDER = 0.35  # a reached arm member orders once more within two days with this chance
CONVERSION_DAYS = 3
EXPECTED_POINTS = 20  # the lift the experiment is planned for (points of conversion)
NEW_SHARE = 0.5  # of the members, those in the segment ``new`` on the campaign's day (a guess for the plan)


def campaign_at(start: datetime, days: int) -> datetime:
    """Halfway through the run, 11:00 local: its conversion window closes before the end."""
    day = start.astimezone(ZONE).date() + timedelta(days=max(1, days // 2))
    return datetime.combine(day, time(11, 0), ZONE)


def experiment_rule(start: datetime, days: int, members: int) -> dict[str, Any]:
    at = campaign_at(start, days)
    return {
        "title": "本周特饮：发 对 不发",
        "campaign": CAMPAIGN,
        "arms": [{"name": "offer", "weight": 1}],
        "holdout_percent": 50,
        "metrics": ["conversion", "order_value"],
        "base_rate": 20,
        "expected_lift": EXPECTED_POINTS,
        "lift": "points",
        "minimum_effect": {"conversion": 2, "order_value": 1},
        "power": 80,
        "starts_at": (at - timedelta(days=1)).isoformat(),
        "ends_at": (at + timedelta(days=CONVERSION_DAYS + 1)).isoformat(),
        "conversion_days": CONVERSION_DAYS,
        "expected_daily_exposures": max(1, int(members * NEW_SHARE)),
    }


def fits(rule: dict[str, Any]) -> bool:
    """Whether the run has the members the experiment's plan needs inside its window."""
    from chalicelib.rules.models import Experiment

    plan = Experiment.model_validate(rule).plan()
    return plan.days_needed <= plan.window_days


def write_rules(rules_dir: Path, chain: list[Store], start: datetime, days: int, members: int) -> bool:
    """The run's campaigns.json (each simulated group's owner, the campaign) and experiments.json
    (the experiment, when the run is large enough for it). Returns whether the experiment runs."""
    path = rules_dir / "campaigns.json"
    campaigns = json.loads(path.read_text(encoding="utf-8"))
    campaigns["calendar"]["owners"] = {s.group: f"sim-staff-{s.id}" for s in chain}
    campaigns["campaigns"] = [
        {
            "name": CAMPAIGN,
            "title": "本周特饮",
            "audience": {"segment": "new"},
            "text": TEXT,
            "schedule": {"at": campaign_at(start, days).isoformat()},
        }
    ]
    path.write_text(json.dumps(campaigns, ensure_ascii=False, indent=2), encoding="utf-8")
    rule = experiment_rule(start, days, members)
    runs = fits(rule)
    path = rules_dir / "experiments.json"
    experiments = json.loads(path.read_text(encoding="utf-8"))
    experiments.update({"enabled": runs, "experiments": {EXPERIMENT: rule} if runs else {}})
    path.write_text(json.dumps(experiments, ensure_ascii=False, indent=2), encoding="utf-8")
    return runs


@dataclass
class Effect:
    """What the campaign did to the members it reached, and every member's orders (the truth)."""

    seed: int
    reached: dict[str, datetime] = field(default_factory=dict)  # person → when the message reached her
    orders: dict[str, list[tuple[datetime, bool]]] = field(default_factory=dict)  # person → (at, by the campaign)

    def read(self, person: Persona, now: datetime) -> world.Planned | None:
        """The member reads the campaign's message; maybe she comes for it (once)."""
        if person.member_id in self.reached:
            return None
        self.reached[person.member_id] = now
        r = world.rng(self.seed, person.member_id, "campaign", CAMPAIGN)
        if r.random() >= EXTRA_ORDER:
            return None
        local = (now + timedelta(hours=r.uniform(2, 40))).astimezone(ZONE)
        if not 8 <= local.hour < 21:  # in opening hours: the next morning
            day = local.date() + timedelta(days=1 if local.hour >= 21 else 0)
            local = datetime.combine(day, time(9, r.randrange(60)), ZONE)
        return world.Planned(local, person, "order", {"returning": False, "campaign": True})

    def ordered(self, person: Persona, at: datetime, by_campaign: bool) -> None:
        self.orders.setdefault(person.member_id, []).append((at, by_campaign))

    def made_convert(self, person: Persona, exposed: datetime) -> bool:
        """The campaign's order fell in her window and she would not have ordered there anyway."""
        until = exposed + timedelta(days=CONVERSION_DAYS)
        window = [by for at, by in self.orders.get(person.member_id, []) if exposed < at <= until]
        return any(window) and not any(not by for by in window)


def result(sim: Any, runs: bool) -> dict[str, Any]:
    """The experiment's report as siyu gives it, next to the world's true lift."""
    from chalicelib import runtime
    from chalicelib.experiments import report

    if not runs:
        return {"ran": False, "why": "too few members for the experiment's sample size"}
    now = sim.clock.now()
    rules = runtime.context().rules()
    found = report.build(rules, EXPERIMENT, now)
    closed = [e for e in report.exposures(EXPERIMENT) if e.at + timedelta(days=CONVERSION_DAYS) <= now]
    arm = [e for e in closed if e.arm == "offer"]
    effects = [sim.effect.made_convert(sim.by_id[e.member_id], e.at) for e in arm if e.member_id in sim.by_id]
    true_lift = sum(effects) / len(effects) if effects else 0.0
    conversion = next((r for r in found.results if r.metric == "conversion" and r.arm == "offer"), None)
    measured = conversion.difference if conversion else None
    return {
        "ran": True,
        "exposed": dict(found.exposed),
        "reached": len(sim.effect.reached),
        "design_chance": EXTRA_ORDER,
        "true_lift": round(true_lift, 4),
        "measured": measured.as_dict() if measured else None,
        "verdict": conversion.verdict if conversion else None,
        "inside": bool(measured and measured.low <= true_lift <= measured.high),
        "report": report.render(found),
    }


def render(found: dict[str, Any]) -> list[str]:
    if not found.get("ran"):
        return [f"experiment {EXPERIMENT}: not run ({found.get('why')})"]
    measured = found["measured"] or {}
    lines = [
        f"experiment {EXPERIMENT}: exposed {found['exposed']}, messages read {found['reached']}",
        f"  true lift of conversion (the world's): {_points(found['true_lift'])}",
    ]
    if measured:
        lines.append(
            f"  siyu's report: {_points(measured['lift'])} "
            f"[{_points(measured['low'])}, {_points(measured['high'])}], p = {measured['p_value']:.3g}, "
            f"{found['verdict']}; the true lift is {'inside' if found['inside'] else 'OUTSIDE'} the interval"
        )
    return lines


def _points(share: float) -> str:
    return f"{Decimal(str(share * 100)).quantize(Decimal('0.1'))} pp"
