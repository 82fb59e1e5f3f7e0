"""``siyu campaigns calendar | preview | report | run``."""

from __future__ import annotations

import argparse
from datetime import date

from chalicelib import runtime
from chalicelib.campaigns import calendar, pushes, report
from chalicelib.delivery import queue


def week_arg(text: str) -> date:
    """``2026-W49`` or a date in the week: validated here so a typo is a usage error."""
    try:
        return calendar.parse_week(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give an ISO week (2026-W49) or a date (2026-12-02)") from None


def cmd_calendar(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    rules = ctx.rules()
    monday = args.week or calendar.week_of(ctx.clock.now().astimezone(rules.stores.zone_of(args.store)).date())[0]
    rows = report.calendar_rows(rules, monday, args.store)
    if args.json:
        print(report.dumps({"week": f"{monday:%G-W%V}", "pushes": rows}))
        return 0
    if not rows:
        print(f"{monday:%G-W%V}: no calendar pushes (the calendar is off, or no store has a group)")
        return 0
    print(f"{monday:%G-W%V}")
    for r in rows:
        what = "MISSING" if r["source"] == "MISSING" else r["text"][:40]
        where = f"{r['store']:<6} {r['group']:<32}"
        print(f"{r['day']} {r['at']} {r['slot']:<8} {r['channel']:<11} {where} {r['theme']:<16} {what}")
    missing = sum(r["source"] == "MISSING" for r in rows)
    print(f"{len(rows)} pushes, {missing} without content")
    return 1 if missing and args.strict else 0


def cmd_preview(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    print(report.dumps(report.preview(ctx.rules(), args.name, ctx.clock.now())))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    print(report.dumps(report.report(ctx.rules(), args.name, ctx.clock.now())))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    result = pushes.run(ctx)
    queue.enqueue(ctx.settings, result.queued)
    print(
        f"calendar pushes recorded {result.pushes}, slots without content {result.missing}, "
        f"alerts {result.alerts}, campaign messages {result.campaign_messages}"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    campaigns = sub.add_parser("campaigns", help="the content calendar and campaigns (campaigns.json)")
    commands = campaigns.add_subparsers(dest="action", required=True)
    p = commands.add_parser("calendar", help="a week's pushes per group and slot, with their content or MISSING")
    p.add_argument("--week", type=week_arg, help="2026-W49 or a date in the week (default: this week)")
    p.add_argument("--store", help="one store")
    p.add_argument("--strict", action="store_true", help="exit 1 when a push has no content")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_calendar)
    p = commands.add_parser("preview", help="a campaign's reach before it starts: members per store")
    p.add_argument("name")
    p.set_defaults(run=cmd_preview)
    p = commands.add_parser("report", help="a campaign's messages: queued, sent, dropped, confirmed, delivered")
    p.add_argument("name")
    p.set_defaults(run=cmd_report)
    p = commands.add_parser("run", help="run the campaigns timer now (it runs every 15 minutes)")
    p.set_defaults(run=cmd_run)
