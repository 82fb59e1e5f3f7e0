"""``siyu simulate --stores 3 --members 2000 --days 35 --seed 7 [--start 2026-10-19] [--json F]``"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from chalicelib.errors import BadRequest


def cmd_simulate(args: argparse.Namespace) -> int:
    from siyu.simulate import summary
    from siyu.simulate.driver import Simulation

    for name, low, high in (("stores", 1, 50), ("members", 1, 100_000), ("days", 1, 366)):
        if not low <= getattr(args, name) <= high:
            raise BadRequest(f"--{name} must be between {low} and {high}")
    try:
        start = date.fromisoformat(args.start)
    except ValueError:
        raise BadRequest(f"--start {args.start}: a date like 2026-10-19") from None
    print(
        f"simulating {args.members} members of {args.stores} stores for {args.days} days from {start} "
        f"(seed {args.seed}) through a fresh local stack on 127.0.0.1…",
        file=sys.stderr,
    )
    result = Simulation(args.stores, args.members, args.days, args.seed, start, progress=not args.quiet).run()
    print(summary.render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0 if all(check["ok"] for check in result["invariants"].values()) else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="live a synthetic chain through the real endpoints on a virtual clock")
    p.add_argument("--stores", type=int, default=3)
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--days", type=int, default=35)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default="2026-10-19", help="the first day (a Monday keeps weeks whole)")
    p.add_argument("--json", help="also write the summary as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # Its own stack and settings: make run's (.siyu/local.env, its DynamoDB endpoint) are not read.
    p.set_defaults(run=cmd_simulate, reads_local_env=False)
