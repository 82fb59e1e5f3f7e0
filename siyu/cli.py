"""The ``siyu`` command line: what ops and developers do from a terminal.

    siyu member show OPENID   one member as ops see it (same JSON as GET /admin/members/…)
    siyu member erase OPENID  erase their personal data everywhere (same as DELETE /admin/members/…)
    siyu member merge A B --why TEXT / unlink ID   one person's ids: merge two persons, undo a link
    siyu config               every environment variable, its default and meaning
    siyu outbox               recent messages and their states (--status, --member)
    siyu tables create        create missing tables (local stacks and tests only)
    siyu send follow OPENID   play WeChat against the running stack (also: unfollow, text, join)
    siyu rules check|publish|history|diff|rollback|schema|preview   the rule sets (docs/rules.md)
    siyu recall report|sweep  recall results against the holdout; run the sweep now
    siyu experiments plan|report   A/B tests: the sample size and days they need; their results
    siyu groups silent        group members still silent after the intercept offer
    siyu segments             member segments' sizes per store; evaluate (a pass now); show NAME [--store S]
    siyu alerts | kpis        open threshold alerts; the KPIs of the chain or a store
    siyu digest --week W      a weekly digest (--out FILE.md writes it with its chart)
    siyu points audit|show    the points ledger: every balance re-derived, a member's statement
    siyu checkin lottery      a week's check-in lottery, drawn or reproduced
    siyu tickets              negative-review tickets; respond|resolve|follow-up ID --by NAME
    siyu campaigns calendar|preview|report|run   the content calendar's week; a campaign's reach and results
    siyu simulate             a synthetic chain lived through the real endpoints (virtual clock)

Against the local stack, the CLI reads ``.siyu/local.env`` (written by ``make run``) for any
variable not already set, so it talks to the same DynamoDB Local (``siyu simulate`` excepted: it
starts a stack of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from chalicelib import admin, runtime, settings
from chalicelib.campaigns import commands as campaign_commands
from chalicelib.errors import Conflict, InvalidRules, SiyuError
from chalicelib.experiments import commands as experiment_commands
from chalicelib.identity import commands as identity_commands
from chalicelib.loyalty import commands as loyalty_commands
from chalicelib.metrics import commands as metrics_commands
from chalicelib.privacy import commands as privacy_commands
from chalicelib.recall import commands as recall_commands
from chalicelib.reviews import commands as ticket_commands
from chalicelib.rule_changes import commands as rule_commands
from chalicelib.segments import commands as segment_commands
from chalicelib.state.binding import create_tables
from siyu.local import send
from siyu.simulate import commands as simulate_commands

LOCAL_ENV = settings.PROJECT_DIR / ".siyu" / "local.env"


def _load_local_env(path: Path | None = None) -> bool:
    path = path or LOCAL_ENV
    if os.environ.get("SIYU_STAGE", "local") != "local" or not path.exists():
        return False
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())
    return True


def _member_show(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    view = admin.member_view(args.openid, ctx.clock.now(), ctx.rules().messaging)
    print(json.dumps(view, ensure_ascii=False, indent=2))
    return 0


OUTBOX_STATES = ("pending", "sending", "deferred", "retrying", "sent", "unknown", "dropped", "failed", "replied")


def _outbox(args: argparse.Namespace) -> int:
    from chalicelib.state.models import OutboxMessage

    runtime.context()
    if args.member:
        messages = list(OutboxMessage.by_member.query(args.member, scan_index_forward=False, limit=args.limit))
    else:
        states = [args.status] if args.status else OUTBOX_STATES
        messages = []
        for state in states:
            messages += OutboxMessage.by_status.query(state, scan_index_forward=False, limit=args.limit)
    messages = sorted(messages, key=lambda m: m.created_at, reverse=True)[: args.limit]
    if not messages:
        print("no messages")
    else:
        print("times in UTC")
    for m in messages:
        channel = m.channel if not m.sent_channel or m.sent_channel == m.channel else f"{m.channel}→{m.sent_channel}"
        when = f" until {m.not_before:%m-%d %H:%M}" if m.status in ("deferred", "retrying") and m.not_before else ""
        state = m.status + when
        print(
            f"{m.created_at:%Y-%m-%d %H:%M:%S}  {state:<9}  {m.category:<7} {channel:<22} "
            f"{m.member_id:<24} {m.message_key}  {m.reason or ''}".rstrip()
        )
    return 0


def _config(args: argparse.Namespace) -> int:
    width = max(len(name) for name in settings.VARIABLES)
    for name, (default, meaning) in settings.VARIABLES.items():
        shown = default if default else '""'
        print(f"{name:<{width}}  {meaning} (default {shown})")
    return 0


def _tables_create(args: argparse.Namespace) -> int:
    created = create_tables(settings.current())
    print("created: " + (", ".join(created) if created else "nothing (all tables exist)"))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="siyu", description="siyu: WeChat private-domain automation")
    sub = top.add_subparsers(dest="command", required=True)
    member = sub.add_parser("member", help="members").add_subparsers(dest="action", required=True)
    show = member.add_parser("show", help="show one member as ops see it")
    show.add_argument("openid")
    show.set_defaults(run=_member_show)
    privacy_commands.add_parser(member)
    identity_commands.add_parser(member)
    sub.add_parser("config", help="list the environment variables").set_defaults(run=_config)
    outbox = sub.add_parser("outbox", help="recent messages and their states")
    outbox.add_argument("--status", choices=OUTBOX_STATES)
    outbox.add_argument("--member")
    outbox.add_argument("--limit", type=int, default=30)
    outbox.set_defaults(run=_outbox)
    tables = sub.add_parser("tables", help="tables").add_subparsers(dest="action", required=True)
    tables.add_parser("create", help="create missing tables (local only)").set_defaults(run=_tables_create)
    send.add_parser(sub)
    rule_commands.add_parser(sub)
    recall_commands.add_parser(sub)
    segment_commands.add_parser(sub)
    experiment_commands.add_parser(sub)
    metrics_commands.add_parser(sub)
    loyalty_commands.add_parser(sub)
    ticket_commands.add_parser(sub)
    campaign_commands.add_parser(sub)
    simulate_commands.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "reads_local_env", True) and _load_local_env():
        print(f"(using the local stack's settings from {LOCAL_ENV})", file=sys.stderr)
    try:
        return args.run(args)
    except InvalidRules as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"siyu: {exc.reason}; nothing was changed", file=sys.stderr)
        return 1
    except Conflict as exc:
        print(f"siyu: conflict: {exc.reason}", file=sys.stderr)
        return 3
    except SiyuError as exc:
        print(f"siyu: {exc.reason}", file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. the local stack is not running
        print(f"siyu: {type(exc).__name__}: cannot reach the tables ({exc})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
