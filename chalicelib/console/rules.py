"""The console's rules page: the active version and its history, check as you type, preview,
publish, diff, roll back — through the functions ``siyu rules`` and the admin API use.

- check: ``rules.check.check`` — the same problems, lines, columns and pointers as
  ``siyu rules check`` (the page also validates against the JSON Schemas in the browser, at once);
- preview: ``rule_changes.preview.preview`` over the last N days, the table of ``siyu rules preview``;
- publish and roll back: ``rule_changes.api.publish`` / ``rule_changes.api.activate``, the admin API's own
  functions, with ``If-Match`` naming the version the editor started from — when someone published
  meanwhile they answer 409 and nothing is written; the page keeps the edited text.

Publishing and rolling back are for ops only; every attempt is in the console's audit log.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from chalicelib.console import audit
from chalicelib.console.auth import Principal
from chalicelib.errors import BadRequest, Conflict, InvalidRules
from chalicelib.rule_changes import api as rules_api
from chalicelib.rule_changes import preview
from chalicelib.rules import loader, schema, versions
from chalicelib.rules.check import check
from chalicelib.runtime import Context

MAX_PREVIEW_DAYS = 30


def _body(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def _files(data: dict[str, Any]) -> dict[str, str]:
    files = data.get("files")
    if not isinstance(files, dict) or not files or not all(isinstance(v, str) for v in files.values()):
        raise BadRequest('body needs "files": {"welcome.json": "<the file\'s text>", ...}')
    return {str(name): text for name, text in files.items()}


def show(ctx: Context) -> dict[str, Any]:
    shown = rules_api.show(ctx)
    shown["activations"] = [
        {
            "at": item.created_at.isoformat(),
            "version": f"v{int(item.version)}",
            "previous": f"v{int(item.previous)}" if item.previous else None,
            "reason": item.reason,
            "author": item.author,
            "note": item.note,
        }
        for item in versions.activations(limit=30)
    ]
    return shown


def schemas() -> dict[str, Any]:
    """The JSON Schemas of the rule files (those of ``rules/schema/``, generated from the models)."""
    return {name: json.loads(text) for name, text in schema.generate().items()}


def check_files(raw: bytes) -> dict[str, Any]:
    files = _files(_body(raw))
    _, problems = check(files)
    return {"problems": [p.as_dict() for p in problems], "text": [str(p) for p in problems]}


def preview_files(ctx: Context, raw: bytes) -> dict[str, Any]:
    data = _body(raw)
    days = data.get("days", 7)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_PREVIEW_DAYS:
        raise BadRequest(f"days: 1 to {MAX_PREVIEW_DAYS}")
    candidate = loader.build(_files(data), version="草稿")  # InvalidRules: 400 with every problem
    active = loader.active(ctx.settings)
    until = ctx.clock.now()
    result = preview.preview(candidate, active, until - timedelta(days=days), until, ctx.settings)
    return {**result.as_dict(), "days": days, "text": preview.render(result)}


def _version(text: str) -> int:
    """``v7`` or ``7`` → 7 (ASCII digits only)."""
    value = text.strip().lstrip("vV")
    if not (value.isascii() and value.isdigit() and len(value) <= 8):
        raise BadRequest("a and b name versions, e.g. v3")
    return int(value)


def diff(a: str, b: str) -> dict[str, Any]:
    left, right = _version(a), _version(b)
    names = f"v{left}", f"v{right}"
    return {
        "a": names[0],
        "b": names[1],
        "diff": versions.diff(versions.files_of(left), versions.files_of(right), *names),
    }


def publish(ctx: Context, principal: Principal, raw: bytes, if_match: str | None) -> dict[str, Any]:
    principal.require_ops("publish rules")
    data = _body(raw)
    body = json.dumps({"note": data.get("note") or "", "files": _files(data)}, ensure_ascii=False).encode()
    now = ctx.clock.now()
    try:
        result = rules_api.publish(ctx, principal.user, body, if_match)
    except Conflict:
        audit.record(principal, "rules.publish", f"expected {if_match or '-'}", "conflict", now)
        raise
    except InvalidRules as exc:
        audit.record(
            principal, "rules.publish", f"expected {if_match or '-'}", "refused", now, problems=len(exc.problems)
        )
        raise
    outcome = "ok" if result["changed"] else "unchanged"
    audit.record(principal, "rules.publish", result["active"], outcome, now, previous=result["previous"])
    return result


def rollback(ctx: Context, principal: Principal, version: str, raw: bytes, if_match: str | None) -> dict[str, Any]:
    principal.require_ops("roll back rules")
    data = _body(raw)
    body = json.dumps({"note": str(data.get("note") or "rollback")}, ensure_ascii=False).encode()
    now = ctx.clock.now()
    try:
        result = rules_api.activate(ctx, principal.user, version, body, if_match)
    except Conflict:
        audit.record(principal, "rules.rollback", version, "conflict", now, expected=if_match)
        raise
    outcome = "ok" if result["changed"] else "unchanged"
    audit.record(principal, "rules.rollback", result["active"], outcome, now, previous=result["previous"])
    return result
