"""``siyu tickets``: negative-review tickets, and recording what staff did about one.

siyu tickets [--status S] [--json]          open, responded and resolved tickets (or status S)
siyu tickets respond|resolve|follow-up ID --by NAME [--note TEXT]
"""

from __future__ import annotations

import argparse
import json

from chalicelib import runtime
from chalicelib.reviews import tickets
from chalicelib.state.models import Ticket

STATUSES = ("open", "responded", "resolved", "closed")


def cmd_list(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    rules = ctx.rules()
    statuses = [args.status] if args.status else list(STATUSES[:3])
    found = [t for status in statuses for t in Ticket.by_status.query(status, scan_index_forward=False, limit=100)]
    found.sort(key=lambda t: t.opened_at)
    if args.json:
        print(json.dumps([tickets.view(t, rules) for t in found], ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no tickets")
        return 0
    zone = rules.stores.zone_of(None)
    print(f"times in {zone.key}")
    for t in found:
        step = tickets.next_step(t.status, set(t.steps or ()), t.opened_at, rules.alerts.reviews)
        ahead = f"next: {step[0]} at {step[1].astimezone(zone):%m-%d %H:%M}" if step else "no step ahead"
        taken = ",".join(sorted(t.steps or ())) or "-"
        print(
            f"{t.ticket_id:<20} {t.status:<9} {t.store_id or '-':<6} {int(t.score)}★ "
            f"opened {t.opened_at.astimezone(zone):%m-%d %H:%M}  steps {taken:<24} {ahead}"
        )
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    rules = ctx.rules()
    ticket = tickets.record(args.ticket_id, args.action, args.by, args.note, rules, ctx.clock.now())
    print(f"{ticket.ticket_id}: {ticket.status}")
    return 0


def cmd_sla(args: argparse.Namespace) -> int:
    from chalicelib import executor

    dry = executor.DryRun() if args.dry_run else None
    queued = tickets.run(runtime.context(), runner=dry)
    if dry is not None:
        print(executor.render(dry.writes))
        print(f"dry run: {queued} SLA message(s) would be queued, nothing written")
    else:
        print(f"{queued} SLA message(s) queued")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tickets", help="negative-review tickets; record a response, resolution or follow-up")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_list)
    actions = p.add_subparsers(dest="action")
    for action, help_text in (
        ("respond", "staff contacted the customer"),
        ("resolve", "the complaint is handled"),
        ("follow-up", "the follow-up call is done: closes the ticket"),
    ):
        a = actions.add_parser(action, help=help_text)
        a.add_argument("ticket_id")
        a.add_argument("--by", required=True, help="who did it (name or staff id)")
        a.add_argument("--note")
        a.set_defaults(run=cmd_record, action=action.replace("-", "_"))
    a = actions.add_parser("sla", help="take the SLA steps that are due now (the timer does this every 5 minutes)")
    a.add_argument("--dry-run", action="store_true", help="show the steps and writes; write nothing")
    a.set_defaults(run=cmd_sla)
