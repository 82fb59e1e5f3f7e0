"""HTTP handlers of the console (``GET /console`` and ``/console/api/…``), one per route of
app.py. Each resolves the principal, does its work through the modules beside it, and answers
JSON; errors map to status codes in ``chalicelib.web.answer``, the one place. Like the webhooks'
handlers, each imports its work when first called (bench/RESULTS.md: the cold import table).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib import web

if TYPE_CHECKING:
    from chalicelib.console.auth import Principal
    from chalicelib.runtime import Context

JSON: web.Headers = {"Content-Type": "application/json; charset=utf-8"}


def _answer(request: Any, route: str, work: Callable[[Context, Principal], Any]) -> Response:
    """A console API call: the principal (Cognito claims in AWS, the local login token elsewhere),
    the work, its JSON answer; errors through ``web.answer`` like every other route."""
    from chalicelib import runtime
    from chalicelib.console import auth

    def run() -> Response:
        ctx = runtime.context()
        answer = work(ctx, auth.authenticate(ctx.settings, request))
        if isinstance(answer, Response):
            return answer
        return Response(web.to_json(answer), headers={**JSON, "Cache-Control": "no-store"})

    return web.answer(route, run)


def _query(request: Any, name: str) -> str | None:
    return (request.query_params or {}).get(name)


def _int(request: Any, name: str, default: int) -> int:
    text = _query(request, name)
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 6 else default


def _if_match(request: Any) -> str | None:
    return {k.lower(): v for k, v in (request.headers or {}).items()}.get("if-match")


# --- the page -----------------------------------------------------------------------------------


def page(request: Any) -> Response:
    from chalicelib import settings
    from chalicelib.console import static

    return web.answer("console_page", lambda: static.index(settings.current().console_login_url))


def asset(request: Any, name: str) -> Response:
    from chalicelib.console import static

    return web.answer("console_asset", lambda: static.asset(name))


# --- reads --------------------------------------------------------------------------------------


def me(request: Any) -> Response:
    from chalicelib.console import board

    def work(ctx: Context, who: Principal) -> dict[str, Any]:
        rules = ctx.rules()
        return {**who.as_dict(), "scopes": board.scopes_of(who, rules), "rules_version": rules.version}

    return _answer(request, "console_me", work)


def kpis(request: Any) -> Response:
    from chalicelib.console import board

    return _answer(
        request,
        "console_kpis",
        lambda ctx, who: board.board(
            who, ctx.rules(), ctx.clock.now(), _query(request, "scope"), _query(request, "week")
        ),
    )


def alerts(request: Any) -> Response:
    from chalicelib.console import views

    return _answer(request, "console_alerts", lambda ctx, who: views.alerts(who, ctx.rules(), ctx.clock.now()))


def tickets(request: Any) -> Response:
    from chalicelib.console import views

    return _answer(request, "console_tickets", lambda ctx, who: views.ticket_queue(who, ctx.rules()))


def ticket(request: Any, ticket_id: str) -> Response:
    from chalicelib.console import actions

    return _answer(
        request, "console_ticket", lambda ctx, who: actions.ticket_view(ctx, who, web.valid_ticket_id(ticket_id))
    )


def search(request: Any) -> Response:
    from chalicelib.console import views

    return _answer(request, "console_search", lambda ctx, who: views.search(who, _query(request, "q") or ""))


def member(request: Any, member_id: str) -> Response:
    from chalicelib.console import views

    return _answer(
        request, "console_member", lambda ctx, who: views.member(who, ctx.rules(), member_id, ctx.clock.now())
    )


def recall(request: Any) -> Response:
    from chalicelib.console import views

    return _answer(
        request,
        "console_recall",
        lambda ctx, who: views.recall(who, ctx.rules(), ctx.clock.now(), _int(request, "days", 30)),
    )


def campaigns(request: Any) -> Response:
    from chalicelib.console import views

    return _answer(
        request,
        "console_campaigns",
        lambda ctx, who: views.campaigns(who, ctx.rules(), ctx.clock.now(), _query(request, "week")),
    )


def experiments(request: Any) -> Response:
    from chalicelib.console import views

    return _answer(
        request,
        "console_experiments",
        lambda ctx, who: views.experiments(who, ctx.rules(), ctx.clock.now(), _query(request, "name")),
    )


def rules(request: Any) -> Response:
    from chalicelib.console import rules as console_rules

    return _answer(request, "console_rules", lambda ctx, who: console_rules.show(ctx))


def rule_schemas(request: Any) -> Response:
    from chalicelib.console import rules as console_rules

    return _answer(request, "console_rule_schemas", lambda ctx, who: console_rules.schemas())


def rules_diff(request: Any) -> Response:
    from chalicelib.console import rules as console_rules

    return _answer(
        request,
        "console_rules_diff",
        lambda ctx, who: console_rules.diff(_query(request, "a") or "", _query(request, "b") or ""),
    )


def audit_log(request: Any) -> Response:
    from chalicelib.console import audit

    return _answer(request, "console_audit", lambda ctx, who: {"entries": audit.recent(who, ctx.clock.now())})


# --- checks and changes -------------------------------------------------------------------------


def rules_check(request: Any) -> Response:
    from chalicelib.console import rules as console_rules

    return _answer(request, "console_rules_check", lambda ctx, who: console_rules.check_files(request.raw_body or b""))


def rules_preview(request: Any) -> Response:
    from chalicelib.console import rules as console_rules

    return _answer(
        request, "console_rules_preview", lambda ctx, who: console_rules.preview_files(ctx, request.raw_body or b"")
    )


def rules_publish(request: Any) -> Response:
    from chalicelib.console import rules as console_rules

    return _answer(
        request,
        "console_rules_publish",
        lambda ctx, who: console_rules.publish(ctx, who, request.raw_body or b"", _if_match(request)),
    )


def rules_rollback(request: Any, version: str) -> Response:
    from chalicelib.console import rules as console_rules

    return _answer(
        request,
        "console_rules_rollback",
        lambda ctx, who: console_rules.rollback(ctx, who, version, request.raw_body or b"", _if_match(request)),
    )


def ticket_record(request: Any, ticket_id: str) -> Response:
    from chalicelib.console import actions

    return _answer(
        request,
        "console_ticket_record",
        lambda ctx, who: actions.record_ticket(ctx, who, web.valid_ticket_id(ticket_id), request.raw_body or b""),
    )


def member_erase(request: Any, member_id: str) -> Response:
    from chalicelib.console import actions

    def work(ctx: Context, who: Principal) -> Response:
        status, body = actions.erase_member(ctx, who, web.valid_member_id(member_id), request.raw_body or b"")
        return Response(json.dumps(body, ensure_ascii=False), status_code=status, headers=JSON)

    return _answer(request, "console_member_erase", work)
