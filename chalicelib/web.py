"""HTTP handlers behind app.py's routes: request → edge protocol → pipeline → response.

Errors map to status codes here and only here: ``SiyuError`` subclasses answer with their
status and reason; anything unexpected is logged with the event id and answered 503, so
WeChat's retry (or the redrive timer) redoes the work. No handler answers 500.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib.errors import BadRequest, InvalidRules, SiyuError
from chalicelib.events import ID_RULE, is_platform_id
from chalicelib.logs import log

if TYPE_CHECKING:
    from chalicelib.protocol.inbound import Inbound
    from chalicelib.runtime import Context

# What a request needs is imported when the first such request arrives: a cold start loads the
# framework and this edge, the first webhook the pipeline, the first admin call the admin view
# (bench/RESULTS.md: the cold import table).

Headers = dict[str, str | list[str]]
TEXT: Headers = {"Content-Type": "text/plain; charset=utf-8"}
XML: Headers = {"Content-Type": "application/xml; charset=utf-8"}
JSON: Headers = {"Content-Type": "application/json; charset=utf-8"}


def inbound(request: Any) -> Inbound:
    from chalicelib.protocol.inbound import Inbound

    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    body = request.raw_body if request.method in ("POST", "PUT") else b""
    return Inbound(request.method, dict(request.query_params or {}), headers, body or b"", route_path(request))


def route_path(request: Any) -> str:
    """The request's path as its route names it, parameters filled in: ``/pos/members/MC…``,
    the same behind any API stage prefix or custom domain mapping (what a GET's signature covers)."""
    params = request.uri_params or {}
    return re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(0))), getattr(request, "path", "") or "")


def to_json(value: Any) -> str:
    """JSON text that encodes as UTF-8 even when a reason quotes input holding a lone surrogate
    (JSON's ``"\\ud800"``): it is written back as the same escape."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def answer(route: str, work: Callable[[], Response]) -> Response:
    try:
        return work()
    except SiyuError as exc:
        log("request.rejected", route=route, status=exc.status, code=exc.code, reason=exc.reason)
        body: dict[str, Any] = {"error": exc.code, "reason": exc.reason}
        if isinstance(exc, InvalidRules):
            body["problems"] = [problem.as_dict() for problem in exc.problems]
        return Response(to_json(body), status_code=exc.status, headers=JSON)
    except Exception as exc:
        # The traceback's frames, not the exception's message: messages may quote member input.
        log(
            "request.error",
            logging.ERROR,
            route=route,
            error=type(exc).__name__,
            where="".join(traceback.format_tb(exc.__traceback__)[-3:]),
        )
        return Response(
            json.dumps({"error": "retry", "reason": "temporary failure, retry"}), status_code=503, headers=JSON
        )


def official_account(request: Any) -> Response:
    from chalicelib import pipeline, runtime
    from chalicelib.protocol.official_account import OfficialAccount

    def work() -> Response:
        ctx = runtime.context()
        now = ctx.clock.now()
        account = OfficialAccount(ctx.settings)
        req = inbound(request)
        if req.method == "GET":
            return Response(account.verify_url(req, now), headers=TEXT)
        received = account.receive(req, now)
        outcome = pipeline.process(ctx, received.event)
        if outcome.reply is None:
            return Response("success", headers=TEXT)
        return Response(account.render_text_reply(received, outcome.reply, now), headers=XML)

    return answer("wechat_oa", work)


def work_callback(request: Any) -> Response:
    from chalicelib import pipeline, runtime
    from chalicelib.protocol.work import WeCom

    def work() -> Response:
        ctx = runtime.context()
        now = ctx.clock.now()
        req = inbound(request)
        wecom = WeCom(ctx.settings)
        if req.method == "GET":
            return Response(wecom.verify_url(req, now), headers=TEXT)
        for event in wecom.receive(req, now):
            pipeline.process(ctx, event)
        return Response("success", headers=TEXT)

    return answer("wechat_work", work)


def order_hook(request: Any) -> Response:
    from chalicelib import pipeline, runtime
    from chalicelib.protocol import orders

    def work() -> Response:
        ctx = runtime.context()
        req = inbound(request)
        orders.authenticate(req, ctx.settings.orders_hmac_secret, ctx.clock.now(), ctx.settings.timestamp_tolerance_s)
        event = orders.parse(req.body, ctx.settings.max_body_bytes)
        outcome = pipeline.process(ctx, event)
        # What the caller must know (redeemed coupons, points, the check-in) was decided with the
        # event and stored with it: a retry answers the same.
        body = {"ok": True, "event_id": event.event_id, "duplicate": outcome.duplicate, **outcome.answer}
        return Response(json.dumps(body, ensure_ascii=False), headers=JSON)

    return answer("orders", work)


def till_coupon(request: Any, action: str, code: str | None = None) -> Response:
    """``POST /pos/coupons/check``, ``/redeem`` and ``/{code}/void``: signed with the till's store key."""
    from chalicelib import runtime
    from chalicelib.protocol import till
    from chalicelib.till import coupons

    def work() -> Response:
        ctx = runtime.context()
        req = inbound(request)
        store = till.authenticate(req, ctx.settings.till_keys, ctx.clock.now(), ctx.settings.timestamp_tolerance_s)
        limit = ctx.settings.max_body_bytes
        body: dict[str, Any]
        if action == "check":
            body = coupons.check(ctx, till.parse(till.Check, req.body, store, limit))
        elif action == "redeem":
            body = coupons.redeem(ctx, till.parse(till.Redeem, req.body, store, limit))
        else:
            body = coupons.void(ctx, till.parse_void(req.body, store, limit, code or ""))
        return Response(to_json(body), headers=JSON)

    return answer(f"till_{action}", work)


def member_code(request: Any) -> Response:
    """``POST /mp/member-code``: the mini program's server, signed as the order webhook is."""
    from chalicelib import runtime
    from chalicelib.protocol import member_code, orders
    from chalicelib.till import members

    def work() -> Response:
        ctx = runtime.context()
        req = inbound(request)
        orders.authenticate(req, ctx.settings.orders_hmac_secret, ctx.clock.now(), ctx.settings.timestamp_tolerance_s)
        body = members.issue(ctx, member_code.parse_request(req.body, ctx.settings.max_body_bytes))
        return Response(to_json(body), headers=JSON)

    return answer("member_code", work)


def till_member(request: Any, code: str) -> Response:
    """``GET /pos/members/{member_code}``: signed with the till's store key over the path."""
    from chalicelib import runtime
    from chalicelib.protocol import till
    from chalicelib.till import members

    def work() -> Response:
        ctx = runtime.context()
        req = inbound(request)
        store = till.authenticate(req, ctx.settings.till_keys, ctx.clock.now(), ctx.settings.timestamp_tolerance_s)
        return Response(to_json(members.look_up(ctx, store, code)), headers=JSON)

    return answer("till_member", work)


def till_points(request: Any) -> Response:
    """``POST /pos/points/redeem``: a catalog item for points, signed with the till's store key."""
    from chalicelib import runtime
    from chalicelib.protocol import till
    from chalicelib.till import points

    def work() -> Response:
        ctx = runtime.context()
        req = inbound(request)
        store = till.authenticate(req, ctx.settings.till_keys, ctx.clock.now(), ctx.settings.timestamp_tolerance_s)
        body = till.parse(till.PointsRedeem, req.body, store, ctx.settings.max_body_bytes)
        return Response(to_json(points.at_till(ctx, body)), headers=JSON)

    return answer("till_points", work)


def mini_program_points(request: Any) -> Response:
    """``POST /mp/points/redeem``: a catalog item for points, signed like the order webhook."""
    from chalicelib import runtime
    from chalicelib.protocol import orders
    from chalicelib.till import points

    def work() -> Response:
        ctx = runtime.context()
        req = inbound(request)
        orders.authenticate(req, ctx.settings.orders_hmac_secret, ctx.clock.now(), ctx.settings.timestamp_tolerance_s)
        body = orders.parse_redeem(req.body, ctx.settings.max_body_bytes)
        return Response(to_json(points.in_mini_program(ctx, body)), headers=JSON)

    return answer("mp_points", work)


def _iam_caller(request: Any) -> str | None:
    identity = (request.context or {}).get("identity") or {}
    return identity.get("userArn") or None


def valid_member_id(member_id: str) -> str:
    """A path's member id, checked before any read: DynamoDB refuses over-long keys (2,048 bytes),
    and no member id holds characters outside ``ID_PATTERN`` (robots' recipients among them)."""
    if not is_platform_id(member_id):
        raise BadRequest(f"member id must be {ID_RULE}")
    return member_id


def valid_ticket_id(ticket_id: str) -> str:
    """A ticket is keyed by its review's id: an order-webhook id (``orders.Id``)."""
    from chalicelib.protocol import orders

    if not orders.is_id(ticket_id):
        raise BadRequest(f"ticket id must be 1 to {orders.ID_MAX} letters, digits or _ - . :")
    return ticket_id


def admin_member(request: Any, member_id: str) -> Response:
    from chalicelib import admin

    def view(ctx: Any, caller: str) -> dict[str, Any]:
        return admin.member_view(valid_member_id(member_id), ctx.clock.now(), ctx.rules().messaging)

    return _admin(request, "admin_member", view)


def admin_erase_member(request: Any, member_id: str) -> Response:
    """200 with the rows changed per table; 202 when the time budget ran out first (call again)."""
    from chalicelib.privacy import erase

    def work(ctx: Context, caller: str) -> Response:
        result = erase.erase(ctx, valid_member_id(member_id), caller, budget_s=erase.API_BUDGET_S)
        status = 200 if result.erased else 202
        return Response(json.dumps(result.as_dict(), ensure_ascii=False), status_code=status, headers=JSON)

    return _admin(request, "admin_erase_member", work)


def _admin(request: Any, route: str, work: Callable[[Context, str], Any]) -> Response:
    from chalicelib import admin, runtime

    def run() -> Response:
        ctx = runtime.context()
        caller = admin.authorize(ctx.settings, request.headers.get("authorization"), _iam_caller(request))
        answer = work(ctx, caller)
        if isinstance(answer, Response):
            return answer
        return Response(to_json(answer), headers=JSON)

    return answer(route, run)


def admin_rules_get(request: Any) -> Response:
    from chalicelib.rule_changes import api as rules_api

    return _admin(request, "admin_rules_get", lambda ctx, caller: rules_api.show(ctx))


def admin_rules_put(request: Any) -> Response:
    from chalicelib.rule_changes import api as rules_api

    return _admin(
        request,
        "admin_rules_put",
        lambda ctx, caller: rules_api.publish(ctx, caller, request.raw_body or b"", request.headers.get("if-match")),
    )


def admin_rules_activate(request: Any, version: str) -> Response:
    from chalicelib.rule_changes import api as rules_api

    return _admin(
        request,
        "admin_rules_activate",
        lambda ctx, caller: rules_api.activate(
            ctx, caller, version, request.raw_body or b"", request.headers.get("if-match")
        ),
    )


def admin_ticket_get(request: Any, ticket_id: str) -> Response:
    from chalicelib.reviews import api as tickets_api

    return _admin(request, "admin_ticket_get", lambda ctx, caller: tickets_api.show(ctx, valid_ticket_id(ticket_id)))


def admin_ticket_record(request: Any, ticket_id: str) -> Response:
    from chalicelib.reviews import api as tickets_api

    return _admin(
        request,
        "admin_ticket_record",
        lambda ctx, caller: tickets_api.record(ctx, caller, valid_ticket_id(ticket_id), request.raw_body or b""),
    )
