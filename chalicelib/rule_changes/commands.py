"""``siyu rules …``: check, publish, history, diff, rollback, schema, preview."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from chalicelib import runtime
from chalicelib.errors import NotFound
from chalicelib.rule_changes import preview
from chalicelib.rules import loader, schema, versions
from chalicelib.rules.check import check
from chalicelib.settings import PROJECT_DIR

DEFAULT_DIR = PROJECT_DIR / "rules"


def _author(args: argparse.Namespace) -> str:
    return args.author or os.environ.get("SIYU_AUTHOR") or getpass.getuser()


def _files(spec: str) -> tuple[str, dict[str, str]]:
    """A rule set named by ``active``, ``v7`` / ``7``, or a directory."""
    if spec == "active":
        pointer = versions.active_pointer()
        if pointer is None:
            raise NotFound("no version is active yet (the bundled rules/ are in use)")
        return f"v{int(pointer.version)}", versions.files_of(int(pointer.version))
    number = spec[1:] if spec[:1] in ("v", "V") else spec
    if number.isdigit() and not Path(spec).is_dir():
        return f"v{int(number)}", versions.files_of(int(number))
    return spec.rstrip("/"), loader.read_dir(Path(spec))


def cmd_check(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    files = loader.read_dir(directory)
    _, problems = check(files)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s); nothing was changed.", file=sys.stderr)
        return 1
    print(f"{directory}: {len(files)} rule files, no problems (content {loader.content_hash(files)[:12]})")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    files = loader.read_dir(Path(args.dir))
    result = versions.publish(
        files, note=args.note, author=_author(args), now=ctx.clock.now(), expected_active=args.expect_version
    )
    if not result.changed:
        print(f"nothing to publish: {args.dir} is identical to the active v{result.version}")
    else:
        was = f"v{result.previous}" if result.previous else "the bundled rules"
        print(f"published and activated v{result.version} (was {was})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    runtime.context()
    pointer = versions.active_pointer()
    active = int(pointer.version) if pointer else None
    records = versions.history()
    if not records:
        print("no published versions yet: the bundled rules/ are in use")
    for record in records:
        mark = "*" if int(record.version) == active else " "
        print(
            f"{mark} v{int(record.version):<4} {record.created_at:%Y-%m-%d %H:%M} UTC  {record.author:<12} "
            f"{(record.content_hash or '')[:12]}  {record.note}"
        )
    activations = versions.activations(limit=args.limit)
    if activations:
        print("\nrecent activations:")
        for item in activations:
            was = f"v{int(item.previous)}" if item.previous else "bundled"
            print(
                f"  {item.created_at:%Y-%m-%d %H:%M} UTC  {item.reason:<8} {was} → v{int(item.version)}  "
                f"by {item.author}  {item.note or ''}"
            )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    runtime.context()
    a_name, a = _files(args.a)
    b_name, b = _files(args.b)
    text = versions.diff(a, b, a_name, b_name)
    print(text if text else f"{a_name} and {b_name} are identical")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    number = int(args.version.lstrip("vV"))
    result = versions.activate(number, author=_author(args), now=ctx.clock.now(), note=args.note)
    if not result.changed:
        print(f"v{number} is already active")
    else:
        print(f"activated v{number} (was v{result.previous})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    directory = Path(args.dir) / "schema"
    if args.check:
        stale = [
            name
            for name, text in schema.generate().items()
            if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
        ]
        for name in stale:
            print(f"{directory / name} is stale: run `siyu rules schema`")
        return 1 if stale else 0
    written = schema.write(directory)
    print("wrote " + ", ".join(written) if written else "schemas are up to date")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    ctx = runtime.context()
    candidate = loader.build(loader.read_dir(Path(args.dir)), version=str(args.dir).rstrip("/"))
    active = loader.active(ctx.settings)
    until = ctx.clock.now()
    report = preview.preview(candidate, active, until - timedelta(days=args.days), until, ctx.settings)
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if args.json else preview.render(report))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    rules = sub.add_parser("rules", help="check, publish, roll back and preview rule sets")
    commands = rules.add_subparsers(dest="action", required=True)

    p = commands.add_parser("check", help="report every problem of a rule directory (exit 1 if any)")
    p.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
    p.set_defaults(run=cmd_check)

    p = commands.add_parser("publish", help="validate, store as a new version, activate")
    p.add_argument("dir")
    p.add_argument("--note", required=True, help="why (shown in history)")
    p.add_argument("--author")
    p.add_argument("--expect-version", type=int, help="refuse unless this version is active")
    p.set_defaults(run=cmd_publish)

    p = commands.add_parser("history", help="published versions and recent activations")
    p.add_argument("--limit", type=int, default=10)
    p.set_defaults(run=cmd_history)

    p = commands.add_parser("diff", help="difference of two rule sets: active, vN, or a directory")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(run=cmd_diff)

    p = commands.add_parser("rollback", help="activate an earlier version")
    p.add_argument("version")
    p.add_argument("--note", default="rollback")
    p.add_argument("--author")
    p.set_defaults(run=cmd_rollback)

    p = commands.add_parser("schema", help="regenerate rules/schema/ from the code's rule models")
    p.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
    p.add_argument("--check", action="store_true", help="exit 1 if a committed schema is stale")
    p.set_defaults(run=cmd_schema)

    p = commands.add_parser("preview", help="what a candidate rule set would do, against the active one")
    p.add_argument("dir")
    p.add_argument("--days", type=int, default=7, help="window of recorded events (default 7)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_preview)
