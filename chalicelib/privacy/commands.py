"""``siyu member erase OPENID [--dry-run]``: the same erase as ``DELETE /admin/members/{id}``.

Prints the erase as JSON (status, pseudonym, rows changed per table). Exit status: 0 erased (or
planned, with ``--dry-run``), 1 unknown member or a row busy right now (run it again shortly),
3 another run of the same erase holds it (cli.py maps the error tree).
"""

from __future__ import annotations

import argparse
import json

from chalicelib import runtime
from chalicelib.privacy import erase


def cmd_erase(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    result = erase.plan(ctx, args.openid) if args.dry_run else erase.erase(ctx, args.openid, requested_by="cli")
    print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    return 0


def add_parser(member: argparse._SubParsersAction) -> None:
    p = member.add_parser("erase", help="erase one member's personal data from every table (README: Privacy)")
    p.add_argument("openid")
    p.add_argument("--dry-run", action="store_true", help="count what the erase would change; change nothing")
    p.set_defaults(run=cmd_erase)
