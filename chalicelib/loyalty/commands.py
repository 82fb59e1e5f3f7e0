"""``siyu points …`` and ``siyu checkin …``: what ops check from a terminal.

siyu points audit [--member M]   re-derive every balance from its ledger; exit 1 on any difference
siyu points show MEMBER          a member's balance and statement (every entry, oldest first)
"""

from __future__ import annotations

import argparse
import json
import sys

from chalicelib import ledger, runtime
from chalicelib.store import keys


def cmd_audit(args: argparse.Namespace) -> int:
    runtime.context()
    checked, differences = ledger.audit(args.member or None)
    for d in differences:
        print(
            f"{d.member_id}: balance {d.balance} but the entries sum to {d.ledger_sum} "
            f"(balance seq {d.seq}, {d.entries} entries counted)"
        )
    print(f"audited {checked} member(s): " + (f"{len(differences)} difference(s)" if differences else "balanced"))
    return 1 if differences else 0


def cmd_show(args: argparse.Namespace) -> int:
    runtime.context()
    balance = ledger.balance_of(args.member)
    rows = sorted(ledger.entries(args.member), key=lambda e: int(e.seq or 0))
    if args.json:
        out = {
            "member_id": args.member,
            "balance": balance.points,
            "spend_fen": balance.spend_fen,
            "entries": [
                {
                    "seq": int(e.seq or 0),
                    "key": e.sk.removeprefix(keys.ENTRY),
                    "delta": int(e.delta or 0),
                    "balance_after": int(e.balance_after or 0),
                    "cause": e.cause,
                    "at": e.at.isoformat() if e.at else None,
                    "expires_on": e.expires_on,
                    "unrecovered": int(e.unrecovered or 0),
                    "rules_version": e.rules_version,
                }
                for e in rows
            ],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"{args.member}: {balance.points} points, net spend {balance.spend_fen / 100:.2f} yuan (times in UTC)")
    for e in rows:
        extra = f"  unrecovered {int(e.unrecovered)}" if e.unrecovered else ""
        expires = f"  expires after {e.expires_on}" if e.expires_on else ""
        print(
            f"{int(e.seq or 0):>5}  {e.at:%Y-%m-%d %H:%M}  {int(e.delta or 0):>+7}  = {int(e.balance_after or 0):>7}"
            f"  {e.cause:<8} {e.sk.removeprefix(keys.ENTRY)}  {e.rules_version}{expires}{extra}"
        )
    if not rows:
        print("no entries", file=sys.stderr)
    return 0


def cmd_lottery(args: argparse.Namespace) -> int:
    from chalicelib.duties import checkin
    from chalicelib.loyalty import daily

    ctx = runtime.context()
    recorded = daily.recorded_draw(args.week)
    if recorded is None and not args.draw:
        print(f"week {args.week} has not been drawn yet; --draw draws it (once the week is over)")
        return 1
    if recorded is None:
        recorded = daily.lottery(daily.Day(ctx), ctx.rules(), ctx.clock.now(), args.week)
        if recorded is None:
            print("the check-in lottery is off in the active rules: nothing drawn")
            return 1
        print(f"drew week {args.week}")
    again = checkin.redraw(recorded)
    entrants = len(recorded.entrants)
    print(f"week {recorded.week}: seed {recorded.seed} (rules {recorded.rules_version}), {entrants} entrants")
    for rank, winner in enumerate(recorded.winners, 1):
        print(f"  {rank}. {winner}")
    same = again.winners == recorded.winners
    print("reproduced from the seed and entrants: " + ("yes" if same else "NO — the recorded draw differs"))
    return 0 if same else 1


def cmd_day(args: argparse.Namespace) -> int:
    from chalicelib import executor
    from chalicelib.loyalty import daily

    dry = executor.DryRun() if args.dry_run else None
    done = daily.run(runtime.context(), runner=dry)
    if dry is not None:
        print(executor.render(dry.writes))
    print(
        ("dry run: " if dry is not None else "") + (", ".join(f"{k} {v}" for k, v in done.items()) or "nothing to do")
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    points = sub.add_parser("points", help="the points ledger").add_subparsers(dest="action", required=True)
    p = points.add_parser("audit", help="check that every balance equals the sum of its ledger (exit 1 if not)")
    p.add_argument("--member", action="append", help="only this member (repeatable)")
    p.set_defaults(run=cmd_audit)
    p = points.add_parser("show", help="a member's balance and statement")
    p.add_argument("member")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_show)
    lottery = sub.add_parser("checkin", help="daily check-in").add_subparsers(dest="action", required=True)
    p = lottery.add_parser("lottery", help="a week's check-in lottery: show and reproduce, or --draw")
    p.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47")
    p.add_argument("--draw", action="store_true", help="draw the week now if it is over and not drawn")
    p.set_defaults(run=cmd_lottery)
    loyalty = sub.add_parser("loyalty", help="the loyalty timer").add_subparsers(dest="action", required=True)
    p = loyalty.add_parser("day", help="run the loyalty day now (the timer does this hourly)")
    p.add_argument("--dry-run", action="store_true", help="show every step's plans and writes; write nothing")
    p.set_defaults(run=cmd_day)
