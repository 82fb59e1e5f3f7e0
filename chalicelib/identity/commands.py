"""``siyu member merge ID ID --why TEXT`` and ``siyu member unlink ID``: ops' hands on identity.

``merge`` joins two persons ops know to be one (the same steps as a UnionID merge, recorded with
the reason given); ``unlink`` undoes a mistaken link (docs/identity.md, "Undoing"). Both print
JSON; a refusal exits 1 with the reason (cli.py maps the error tree).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from chalicelib import runtime
from chalicelib.errors import Conflict
from chalicelib.identity import merge


def cmd_merge(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    now = ctx.clock.now()
    done = merge.merge(
        args.first, args.second, why=args.why, who="cli", now=now, settings=ctx.settings, rules=ctx.rules()
    )
    print(json.dumps(asdict(done), ensure_ascii=False, indent=2))
    if done.outcome == "refused":
        raise Conflict(done.reason)
    return 0


def cmd_unlink(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    undone = merge.unlink(args.id, who="cli", now=ctx.clock.now(), settings=ctx.settings)
    print(json.dumps(undone, ensure_ascii=False, indent=2))
    return 0


def add_parser(member: argparse._SubParsersAction) -> None:
    p = member.add_parser("merge", help="merge two persons ops know to be one (docs/identity.md)")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--why", required=True, help="recorded with the merge (who asked, on what evidence)")
    p.set_defaults(run=cmd_merge)
    p = member.add_parser("unlink", help="undo a mistaken link of an id to a person (docs/identity.md)")
    p.add_argument("id")
    p.set_defaults(run=cmd_unlink)
