"""``siyu experiments plan NAME`` (the sample size and the days it needs) and ``siyu experiments
report [NAME]`` (results per metric and arm; docs/rules.md, "Experiments")."""

from __future__ import annotations

import argparse
import json

from chalicelib import runtime
from chalicelib.errors import NotFound
from chalicelib.experiments import report
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import Experiment


def _named(rules: RuleSet, name: str) -> Experiment:
    found = rules.experiments.experiments.get(name)
    if found is None:
        known = ", ".join(sorted(rules.experiments.experiments)) or "none"
        raise NotFound(f"experiments.json has no experiment {name}; it has: {known}")
    return found


def cmd_plan(args: argparse.Namespace) -> int:
    rules = runtime.context().rules()
    experiment = _named(rules, args.name)
    if args.json:
        print(json.dumps({"name": args.name, **experiment.plan().model_dump()}, ensure_ascii=False, indent=2))
    else:
        print(report.plan_text(args.name, experiment))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    rules = ctx.rules()
    names = [args.name] if args.name else sorted(rules.experiments.experiments)
    for name in names:
        _named(rules, name)
    reports = [report.build(rules, name, ctx.clock.now()) for name in names]
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
    elif not reports:
        print("experiments.json defines no experiment")
    else:
        print("\n\n".join(report.render(r) for r in reports))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    experiments = sub.add_parser("experiments", help="A/B tests: the sample size they need, their results")
    commands = experiments.add_subparsers(dest="action", required=True)
    p = commands.add_parser("plan", help="members each group needs and the days that takes")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_plan)
    p = commands.add_parser("report", help="per metric and arm: lift, 95%% interval, p-value, verdict")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_report)
