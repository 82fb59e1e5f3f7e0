"""The group owner's confirmation of a company mass message (``check_group_pushes``, every 30
minutes). ``add_msg_template`` only creates a task; the group gets the message when its owner
sends it in the WeCom client. siyu asks WeCom for each of today's and yesterday's group pushes
it sent (``get_groupmsg_task``, then ``get_groupmsg_send_result`` for the owner: docs/wechat.md
§4.5) and records the answer on the outbox message (``delivery``): ``confirmed`` (the group got
it), ``not_sent:limit`` (it had another mass message that day), ``not_sent:<status>``. The keys
of the pushes are computed from the rules (no scan)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from chalicelib import executor
from chalicelib.campaigns import calendar, pushes
from chalicelib.delivery.api import WeChatAPI
from chalicelib.errors import ApiError, NotDelivered, OutcomeUnknown
from chalicelib.logs import log
from chalicelib.plans import RecordDelivery
from chalicelib.rules.loader import RuleSet
from chalicelib.runtime import Context
from chalicelib.state.models import OutboxMessage
from chalicelib.store import keys

TASK_PATH = "/cgi-bin/externalcontact/get_groupmsg_task"
RESULT_PATH = "/cgi-bin/externalcontact/get_groupmsg_send_result"
CONFIRMED = "confirmed"
RESULTS = {1: CONFIRMED, 2: "not_sent:not_a_friend", 3: "not_sent:limit"}
OWNER_SENT = 2  # get_groupmsg_task status: 0 not sent, 2 sent


def group_push_keys(rules: RuleSet, now: datetime) -> list[str]:
    """The keys of the group mass messages of yesterday and today (calendar pushes, group campaigns)."""
    zone = rules.stores.zone_of(None)
    today = now.astimezone(zone).date()
    found: list[str] = []
    for day in (today - timedelta(days=1), today):
        found += [
            keys.calendar_push(p.group_id, day.isoformat(), p.slot.name)
            for p in calendar.pushes_on(rules, day)
            if p.slot.channel == "wecom_group"
        ]
    for campaign in rules.campaigns.campaigns:
        if campaign.audience.groups is None:
            continue
        for occurrence, at in pushes.occurrences(campaign, rules, now):
            if now - timedelta(days=2) <= at <= now:
                found += [
                    keys.campaign_message(campaign.name, occurrence, g) for _, g in pushes.groups_of(rules, campaign)
                ]
    return found


def run(ctx: Context, api: WeChatAPI | None = None) -> int:
    """Poll the owners' confirmations; returns how many were recorded."""
    rules, now = ctx.rules(), ctx.clock.now()
    wanted = group_push_keys(rules, now)
    if not wanted:
        return 0
    api = api or WeChatAPI(ctx.settings, ctx.clock)
    recorded = 0
    for message in OutboxMessage.batch_get(wanted):
        if (
            message.status != "sent"
            or not message.wechat_msgid
            or (message.delivery or "").startswith(("confirmed", "not_sent"))
        ):
            continue
        verdict = poll(api, message)
        if verdict is None:
            continue
        record = RecordDelivery(
            message_key=message.message_key, status=verdict, msg_id=None, at=now, settle_unknown=False
        )
        executor.execute([record], f"confirm#{message.message_key}", now)
        log("campaigns.confirmed", key=message.message_key, status=verdict)
        recorded += 1
    return recorded


def poll(api: WeChatAPI, message: OutboxMessage) -> str | None:
    """WeCom's word on one group message: None while the owner has not sent it (or WeCom is away)."""
    owner = _owner(message)
    try:
        tasks = api.call(TASK_PATH, {"msgid": message.wechat_msgid, "limit": 1000}, "wecom").get("task_list") or []
        if not any(t.get("userid") == owner and t.get("status") == OWNER_SENT for t in tasks):
            return None
        body = {"msgid": message.wechat_msgid, "userid": owner, "limit": 1000}
        sent = api.call(RESULT_PATH, body, "wecom").get("send_list") or []
    except (ApiError, NotDelivered, OutcomeUnknown) as exc:
        log("campaigns.confirm_failed", key=message.message_key, error=type(exc).__name__)
        return None
    for row in sent:
        if row.get("chat_id") == message.member_id and int(row.get("status") or 0):
            return RESULTS.get(int(row["status"]), f"not_sent:{row['status']}")
    return None


def _owner(message: OutboxMessage) -> str | None:
    return json.loads(message.payload or "{}").get("sender")
