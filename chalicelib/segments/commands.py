"""``siyu segments``: sizes per store; ``siyu segments evaluate`` (run a pass now);
``siyu segments show NAME [--store S]`` (its size and a few members)."""

from __future__ import annotations

import argparse
import itertools
import json

from chalicelib import executor, runtime
from chalicelib.errors import BadRequest
from chalicelib.rules.loader import RuleSet
from chalicelib.segments import read, sweep


def cmd_sizes(args: argparse.Namespace) -> int:
    rules = runtime.context().rules()
    found = read.sizes(rules)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    print(render(rules, found))
    last = read.last_full_pass()
    state = "on" if rules.segments.enabled else "off"
    print(f"(segments.json {state}, rules {rules.version}; last full pass: {last or 'none yet'})")
    return 0


def render(rules: RuleSet, found: dict[str, dict[str, int]]) -> str:
    """The sizes as a table: a row per segment, a column per store, and the total."""
    stores = sorted({store for counts in found.values() for store in counts})
    header = ["segment", "title", *stores, "total"]
    rows = [
        [name, rules.segments.segments[name].title, *(str(counts.get(s, 0)) for s in stores), str(sum(counts.values()))]
        for name, counts in found.items()
    ]
    if not rows:
        return "no segments in segments.json"
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in [header, *rows])


def _width(text: str) -> int:
    """Columns a text takes in a terminal: a CJK character takes two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def cmd_evaluate(args: argparse.Namespace) -> int:
    dry = executor.DryRun() if args.dry_run else None
    result = sweep.run(runtime.context(), budget_s=args.budget, max_pages=args.pages, runner=dry)
    if dry is not None:
        for plan in result.planned:
            joined = ",".join(sorted(plan.after - plan.before)) or "-"
            left = ",".join(sorted(plan.before - plan.after)) or "-"
            print(f"{plan.member_id:<32} joins {joined:<24} leaves {left}")
        print(executor.render(dry.writes))
    state = "finished" if result.finished else "paused (run again to continue)"
    if dry is not None:
        state = "dry run, nothing written"
    day = f"full pass of {result.day}" if result.day else "no full pass due"
    print(
        f"segments {state}: {day}; read {result.members_read} members, "
        f"{result.touched} touched since evaluated; {result.changed} changed"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    rules = runtime.context().rules()
    segment = rules.segments.segments.get(args.name)
    if segment is None:
        raise BadRequest(f"segment {args.name} is not in segments.json; segments: {', '.join(rules.segments.segments)}")
    if args.store is not None and args.store not in rules.stores.ids:
        raise BadRequest(f"store {args.store} is not in stores.json")
    members = list(itertools.islice(read.members_of(args.name, args.store), args.limit))
    count = read.size(args.name, args.store)
    if args.json:
        body = {"segment": args.name, "title": segment.title, "store": args.store, "size": count, "members": members}
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    print(f"{args.name} {segment.title}{' · ' + args.store if args.store else ''}: {count} members")
    for member_id in members:
        print(f"  {member_id}")
    if count > len(members):
        print(f"  … and {count - len(members)} more")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    segments = sub.add_parser("segments", help="member segments: sizes per store, evaluate, show one")
    segments.add_argument("--json", action="store_true")
    segments.set_defaults(run=cmd_sizes)
    commands = segments.add_subparsers(dest="action")
    p = commands.add_parser("evaluate", help="run the segments pass now (the timer does this every 15 minutes)")
    p.add_argument("--pages", type=int, help="stop after this many pages (the next run continues)")
    p.add_argument("--budget", type=float, default=600.0, help="seconds before pausing")
    p.add_argument("--dry-run", action="store_true", help="evaluate, write nothing, show the changes")
    p.set_defaults(run=cmd_evaluate)
    p = commands.add_parser("show", help="a segment's size and a few of its members")
    p.add_argument("name")
    p.add_argument("--store", help="only this store's members")
    p.add_argument("--limit", type=int, default=10, help="members listed (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_show)
