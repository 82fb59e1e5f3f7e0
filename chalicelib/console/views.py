"""What the console's pages read: alerts, review tickets, members, the recall report.

Each view reuses the read the CLI and the admin API already make (``siyu alerts``'s scan of the
small alerts table, ``siyu tickets``'s status index, ``admin.member_view``, the points ledger, the
recall report), then keeps only what the principal's stores allow: a store manager's request
for anything of another store is refused here, not merely hidden by the page.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pynamodb.exceptions import DoesNotExist

from chalicelib import admin, ledger
from chalicelib.campaigns import calendar, confirm
from chalicelib.campaigns import report as campaign_report
from chalicelib.console.auth import Principal
from chalicelib.counters import CHAIN
from chalicelib.errors import BadRequest, NotFound
from chalicelib.events import is_platform_id
from chalicelib.experiments import exposure
from chalicelib.experiments import report as experiment_report
from chalicelib.identity import merge
from chalicelib.metrics import kpis
from chalicelib.metrics.alerts import LEVEL_NAMES
from chalicelib.recall import report
from chalicelib.reviews import tickets
from chalicelib.rules.loader import RuleSet
from chalicelib.segments import read as segment_read
from chalicelib.state.models import Alert, Coupon, Member, OutboxMessage, Recall, Ticket
from chalicelib.store import keys

OPEN_TICKETS = ("open", "responded", "resolved")
ALERT_STATUS = {"open": "未解除", "closed": "已解除"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- alerts -------------------------------------------------------------------------------------


def alerts(principal: Principal, rules: RuleSet, now: datetime) -> dict[str, Any]:
    """Open (and among them escalated) alerts, the suppression windows in force, and history."""
    metric_of = {c.name: c.metric for c in rules.alerts.checks}
    rows = []
    for a in sorted(Alert.scan(), key=lambda a: a.opened_at, reverse=True):  # a small table (siyu alerts)
        if not (principal.is_ops if a.scope == CHAIN else principal.sees(a.scope)):
            continue
        metric = metric_of.get(a.check, a.check)
        rows.append(
            {
                "alert_id": a.alert_id,
                "check": a.check,
                "metric": kpis.NAMES.get(metric, metric),
                "scope": a.scope,
                "scope_name": "全连锁" if a.scope == CHAIN else rules.stores.label_of(a.scope),
                "status": a.status,
                "level": a.level,
                "level_name": LEVEL_NAMES.get(a.level, a.level),
                "escalated": a.status == "open" and int(a.escalations) > 0,
                "escalations": int(a.escalations),
                "reminders": int(a.reminders),
                "value": a.value,
                "opened_at": _iso(a.opened_at),
                "notified_at": _iso(a.notified_at),
                "closed_at": _iso(a.closed_at),
            }
        )
    windows = [
        {
            "starts_at": s.starts_at.isoformat(),
            "ends_at": s.ends_at.isoformat(),
            "reason": s.reason,
            "now": s.starts_at <= now < s.ends_at,
        }
        for s in rules.alerts.suppress
    ]
    return {
        "open": [r for r in rows if r["status"] == "open"],
        "history": [r for r in rows if r["status"] != "open"],
        "suppressed": windows,
        "suppressed_now": any(w["now"] for w in windows),
    }


# --- tickets ------------------------------------------------------------------------------------


def _next_at(view: dict[str, Any]) -> str | None:
    step = view["next_step"]
    return step.get("at") if isinstance(step, dict) else None


def ticket_queue(principal: Principal, rules: RuleSet) -> dict[str, Any]:
    """Tickets still open, responded or resolved, the next deadline first (``siyu tickets``)."""
    found = [t for status in OPEN_TICKETS for t in Ticket.by_status.query(status, scan_index_forward=False, limit=200)]
    mine = [t for t in found if principal.sees(t.store_id)]
    views = [{**tickets.view(t, rules), "store_name": rules.stores.label_of(t.store_id or "-")} for t in mine]
    far = "9999"
    views.sort(key=lambda v: _next_at(v) or far)
    return {"tickets": views, "sla": rules.alerts.reviews.model_dump()}


def ticket(principal: Principal, rules: RuleSet, ticket_id: str) -> Ticket:
    found = tickets.get(ticket_id)
    principal.see(found.store_id, f"ticket {ticket_id}")
    return found


# --- members ------------------------------------------------------------------------------------


def _visible_member(principal: Principal, member_id: str) -> Member:
    if not is_platform_id(member_id):
        raise BadRequest("member id: 1-128 letters, digits or _ - . @ :")
    member = merge.current(member_id)  # the person, from any of their ids (chalicelib/identity)
    if member is None:
        raise NotFound(f"no member {member_id}")
    principal.see(member.store_id, "this member")
    return member


def search(principal: Principal, query: str) -> dict[str, Any]:
    """A member by id, or the owner of a coupon code. (siyu keeps no phone numbers: members are
    known by their WeChat / WeCom ids, so there is no phone hash to search by.)"""
    query = query.strip()
    if not query:
        raise BadRequest("q: a member id or a coupon code")
    found: list[tuple[str, str]] = []
    if is_platform_id(query):
        person = merge.current(query)  # any id of a person finds the person
        if person is not None:
            found.append((person.member_id, "member_id"))
        with contextlib.suppress(DoesNotExist):
            found.append((Coupon.get(query).member_id, "coupon_code"))
    hits = []
    for member_id, how in found:
        try:
            member = Member.get(member_id)
        except DoesNotExist:
            continue
        if principal.sees(member.store_id):
            hits.append({"member_id": member_id, "matched": how, "store_id": member.store_id})
    return {"query": query, "members": hits}


def member(principal: Principal, rules: RuleSet, member_id: str, now: datetime) -> dict[str, Any]:
    """One member: ``admin.member_view`` (profile, coupons, messages and their delivery), the
    points statement, the recall decisions about them, their review tickets."""
    member_id = _visible_member(principal, member_id).member_id
    view = admin.member_view(member_id, now, rules.messaging)
    entries = sorted(ledger.entries(member_id), key=lambda e: int(e.seq or 0))
    view["points"] = {
        "balance": view["loyalty"]["points"],
        "entries": [
            {
                "seq": int(e.seq or 0),
                "key": e.sk.removeprefix(keys.ENTRY),
                "delta": int(e.delta or 0),
                "balance_after": int(e.balance_after or 0),
                "cause": e.cause,
                "at": _iso(e.at),
                "expires_on": e.expires_on,
                "merged_from": e.merged_from,  # a merged person's entry, history (its balance: one merge# entry)
            }
            for e in entries
        ],
    }
    view["recalls"] = [
        {
            "key": r.key,
            "stage": r.stage,
            "day": r.day,
            "arm": r.arm,
            "reason": r.reason,
            "coupon_code": r.coupon_code,
            "returned_at": _iso(r.returned_at),
            "redeemed_at": _iso(r.redeemed_at),
            "window_until": _iso(r.window_until),
        }
        for r in Recall.query(member_id)
    ]
    indexed = Ticket.by_member.query(member_id)  # the index holds keys only
    view["tickets"] = [tickets.view(tickets.get(t.ticket_id), rules) for t in indexed]
    view["store_name"] = rules.stores.label_of(view["store_id"]) if view["store_id"] else None
    return view


def erasable(principal: Principal, member_id: str) -> None:
    principal.require_ops("erase a member")
    _visible_member(principal, member_id)


# --- recall -------------------------------------------------------------------------------------


def recall(principal: Principal, rules: RuleSet, now: datetime, days: int) -> dict[str, Any]:
    """``siyu recall report --since <days>d``: per stage and store, with the lift's interval."""
    if not 1 <= days <= 180:
        raise BadRequest("days: 1 to 180")
    until = now.astimezone(ZoneInfo(rules.stores.default_timezone)).date()
    since = until - timedelta(days=days - 1)
    rows = report.summarize(report.records(since, until), now)
    shown = [r for r in rows if (principal.is_ops if r.store == report.ALL else principal.sees(r.store))]
    min_sample = rules.recall.min_sample
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "min_sample": min_sample,
        "rows": [
            {
                **row.as_dict(min_sample),
                "lift_text": report.lift_text(row, min_sample),
                "store_name": "全部门店" if row.store == report.ALL else rules.stores.label_of(row.store),
            }
            for row in shown
        ],
        "text": report.render(shown, since, until, min_sample),
    }


# --- campaigns, the content calendar, segments ----------------------------------------------------


def campaigns(principal: Principal, rules: RuleSet, now: datetime, week: str | None) -> dict[str, Any]:
    """``siyu campaigns calendar`` for a week with each push's state, the campaigns with their
    report (ops), and the segments' sizes (``siyu segments``), of the principal's stores."""
    zone = rules.stores.zone_of(None)
    try:
        monday = calendar.parse_week(week) if week else calendar.week_of(now.astimezone(zone).date())[0]
    except ValueError:
        raise BadRequest("week: an ISO week (2026-W49) or a date in it (2026-12-02)") from None
    rows = [r for r in campaign_report.calendar_rows(rules, monday) if principal.sees(r["store"])]
    wanted = [keys.calendar_push(r["group"], r["day"], r["slot"]) for r in rows]
    found = {m.message_key: m for m in OutboxMessage.batch_get(wanted)} if wanted else {}
    pushes = [
        {
            **row,
            "state": message.status if (message := found.get(key)) else "planned",
            "confirmed": bool(message and message.delivery == confirm.CONFIRMED),
            "store_name": rules.stores.label_of(row["store"]),
        }
        for row, key in zip(rows, wanted, strict=True)
    ]
    listed = []
    for campaign in rules.campaigns.campaigns if principal.is_ops else []:
        listed.append(
            {
                "name": campaign.name,
                "title": campaign.title,
                "audience": campaign.audience.model_dump(exclude_none=True),
                "schedule": campaign.schedule.model_dump(mode="json", exclude_none=True),
                "active": rules.campaigns.enabled and campaign.active_at(now),
                "experiment": exposure.experiment_of(rules, campaign.name),
                **campaign_report.report(rules, campaign.name, now),
            }
        )
    sizes = segment_read.sizes(rules)
    segments = [
        {
            "name": name,
            "title": segment.title,
            "stores": {s: n for s, n in sizes.get(name, {}).items() if principal.sees(s)},
        }
        for name, segment in rules.segments.segments.items()
    ]
    return {
        "week": f"{monday:%G-W%V}",
        "calendar_on": rules.campaigns.enabled and rules.campaigns.calendar.enabled,
        "pushes": pushes,
        "missing": sum(r["source"] == "MISSING" for r in rows),
        "campaigns": listed,
        "segments": segments,
        "store_names": {s.id: rules.stores.label_of(s.id) for s in rules.stores.stores if principal.sees(s.id)},
    }


# --- experiments --------------------------------------------------------------------------------


def experiments(principal: Principal, rules: RuleSet, now: datetime, name: str | None) -> dict[str, Any]:
    """``siyu experiments report [NAME]`` with each one's plan: chain-wide numbers, for ops."""
    principal.require_ops("read the experiments")
    defined = rules.experiments.experiments
    if name is not None and name not in defined:
        raise NotFound("name: experiments.json has no such experiment")
    names = [name] if name else sorted(defined)
    found = [experiment_report.build(rules, n, now) for n in names]
    return {
        "enabled": rules.experiments.enabled,
        "experiments": [
            {
                **r.as_dict(),
                "plan_text": experiment_report.plan_text(r.name, defined[r.name]),
                "text": experiment_report.render(r),
            }
            for r in found
        ],
    }
