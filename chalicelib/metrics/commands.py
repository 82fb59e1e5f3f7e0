"""``siyu alerts`` and ``siyu kpis``: what the threshold checker has open, and the numbers."""

from __future__ import annotations

import argparse
from datetime import timedelta
from zoneinfo import ZoneInfo

from chalicelib import runtime
from chalicelib.counters import CHAIN
from chalicelib.metrics import alerts, kpis, read
from chalicelib.metrics.alerts import LEVEL_NAMES, unit
from chalicelib.state.models import Alert


def cmd_alerts(args: argparse.Namespace) -> int:
    runtime.context()
    found = sorted(Alert.scan(), key=lambda a: (a.status != "open", -a.opened_at.timestamp()))
    if not args.all:
        found = [a for a in found if a.status == "open" or len(found) <= 20][:50]
    if not found:
        print("no alerts")
    for a in found:
        closed = f" closed {a.closed_at:%Y-%m-%d %H:%M}" if a.closed_at else ""
        print(
            f"{a.alert_id:<32} {a.status:<6} {LEVEL_NAMES.get(a.level, a.level):<6} opened {a.opened_at:%Y-%m-%d %H:%M}"
            f"{closed}  escalations {int(a.escalations)}  reminders {int(a.reminders)}  last {a.value or '-'}"
        )
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    rules = ctx.rules()
    today = ctx.clock.now().astimezone(ZoneInfo(rules.stores.default_timezone)).date()
    until = today - timedelta(days=1)
    since = until - timedelta(days=args.days - 1)
    scope = args.store or CHAIN
    counts, cohort, totals = (
        read.window(scope, since, until),
        read.cohort_window(scope, since, until),
        read.totals(scope),
    )
    print(f"{scope} {since.isoformat()} … {until.isoformat()} (times in the chain's zone)")
    for name, formula in kpis.KPIS.items():
        result = formula(cohort if name in kpis.COHORT_KPIS else counts, totals)
        suffix, factor = unit(name)
        shown = "-" if result.value is None else f"{result.value * factor:.1f}{suffix}"
        print(f"  {kpis.NAMES[name]:<6} {shown:>10}   (n={result.sample})")
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chalicelib.metrics import digest

    ctx = runtime.context()
    try:
        monday = digest.week_of(args.week)
    except ValueError as exc:
        print(f"siyu: {exc}")
        return 2
    found = digest.stored(args.week)
    if found is None:
        built = digest.build(ctx.rules(), monday, ctx.clock.now())
        markdown, png = built.markdown, built.chart_png
        note = "(not sent yet: built now from the counters)"
    else:
        markdown, png = found
        note = "(as sent)"
    if args.out:
        out = Path(args.out)
        chart = out.with_suffix(".png")
        image = f"\n\n![每日趋势]({chart.name})\n" if png else "\n"
        out.write_text(markdown + image, encoding="utf-8")
        if png:
            chart.write_bytes(png)
        print(f"wrote {out} and {chart} {note}")
    else:
        print(markdown)
        print(note)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from chalicelib import executor
    from chalicelib.delivery import queue

    ctx = runtime.context()
    dry = executor.DryRun() if args.dry_run else None
    queued = alerts.evaluate(ctx, runner=dry)
    if dry is not None:
        print(executor.render(dry.writes))
        print(f"dry run: {len(queued)} alert message(s) would be queued, nothing written")
        return 0
    queue.enqueue(ctx.settings, queued)
    print(f"{len(queued)} alert message(s) queued")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("digest", help="a weekly digest: print it, or write markdown + chart (--out)")
    p.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47")
    p.add_argument("--out", help="FILE.md; the chart goes beside it as FILE.png")
    p.set_defaults(run=cmd_digest)
    p = sub.add_parser("alerts", help="open and recent threshold alerts; check them now")
    p.add_argument("--all", action="store_true", help="every alert ever opened")
    p.set_defaults(run=cmd_alerts)
    checks = p.add_subparsers(dest="action")
    c = checks.add_parser("check", help="run the threshold checker now (the timer does this hourly)")
    c.add_argument("--dry-run", action="store_true", help="show the transitions and writes; write nothing")
    c.set_defaults(run=cmd_check)
    p = sub.add_parser("kpis", help="the KPIs of the chain or a store over the last days")
    p.add_argument("--store")
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(run=cmd_kpis)
