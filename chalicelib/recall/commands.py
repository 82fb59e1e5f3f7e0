"""``siyu recall report|sweep`` and ``siyu groups silent``."""

from __future__ import annotations

import argparse
import json
import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from chalicelib import executor, runtime
from chalicelib.recall import report, silent, sweep


def period(text: str) -> str:
    """``30d`` or ``2026-11-01``: validated here so a typo is a usage error, not a traceback."""
    if re.fullmatch(r"[1-9][0-9]{0,2}d", text):
        return text
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days (30d) or a date (2026-11-01)") from None
    return text


def _since(text: str, today: date) -> date:
    return today - timedelta(days=int(text[:-1])) if text.endswith("d") else date.fromisoformat(text)


def cmd_report(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    rules = ctx.rules()
    now = ctx.clock.now()
    today = now.astimezone(ZoneInfo(rules.stores.default_timezone)).date()
    since = _since(args.since, today)
    rows = report.summarize(report.records(since, today), now)
    if args.json:
        payload = {
            "since": since.isoformat(),
            "until": today.isoformat(),
            "min_sample": rules.recall.min_sample,
            "rows": [row.as_dict(rules.recall.min_sample) for row in rows],
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        print(report.render(rows, since, today, rules.recall.min_sample))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    dry = executor.DryRun() if args.dry_run else None
    result = sweep.run(runtime.context(), budget_s=args.budget, max_pages=args.pages, runner=dry)
    state = "finished" if result.finished else "paused (run again to continue)"
    decided = ", ".join(f"{arm} {count}" for arm, count in sorted(result.decided.items())) or "nobody due"
    if dry is not None:
        for d in result.planned:
            print(f"{d.member_id:<32} {d.stage:<12} {d.arm:<8} {d.reason or ''}")
        print(executor.render(dry.writes))
        state = "dry run, nothing written"
    print(f"sweep {state}: days {', '.join(result.days) or '-'}; read {result.members_read} members; {decided}")
    return 0


def cmd_silent(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    found = silent.silent_members(ctx.rules(), ctx.clock.now())
    if args.json:
        rows = [
            {
                "member_id": s.member_id,
                "store_id": s.store_id,
                "groups": list(s.groups),
                "stage": s.stage,
                "intercepted_at": s.intercepted_at.isoformat(),
            }
            for s in found
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no silent group members past the grace period")
    for s in found:
        print(
            f"{s.member_id:<32} {s.store_id or '-':<8} {s.intercepted_at:%Y-%m-%d} {s.stage:<20} {' '.join(s.groups)}"
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    recall = sub.add_parser("recall", help="lapsed-member recall: report and sweep")
    commands = recall.add_subparsers(dest="action", required=True)
    p = commands.add_parser("report", help="due, sent, held out, returned and the lift, per stage and store")
    p.add_argument("--since", type=period, default="30d", help="30d (days back) or a date (2026-11-01)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_report)
    p = commands.add_parser("sweep", help="run the daily sweep now (the timer does this every 15 minutes)")
    p.add_argument("--pages", type=int, help="stop after this many pages (the next run continues)")
    p.add_argument("--budget", type=float, default=600.0, help="seconds before pausing")
    p.add_argument("--dry-run", action="store_true", help="decide every member due, write nothing, show the plans")
    p.set_defaults(run=cmd_sweep)

    groups = sub.add_parser("groups", help="store groups").add_subparsers(dest="action", required=True)
    p = groups.add_parser("silent", help="group members still silent after the intercept offer (for ops)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_silent)
