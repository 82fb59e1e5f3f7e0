"""A campaign before and after: its reach previewed (members per store who would get it now,
after its rollout, what they can receive and their promotion caps), and what became of it
(queued, sent, dropped by reason, confirmed by the group owner, delivered).

Reads only: membership records (``members``), members by key, cap counters by key, the
campaign's own records (one query) and its outbox messages by key. Never a scan."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.campaigns import calendar, confirm, content, members, pushes
from chalicelib.delivery import discipline, routes
from chalicelib.errors import NotFound
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import Campaign
from chalicelib.state.models import LoyaltyRecord, Member, OutboxMessage, Shared
from chalicelib.store import keys

NO_RECEIPT = frozenset({"custom", "wecom_customer", "miniprogram_subscribe"})  # as the sender counts them
PAST_WEEKS = 8  # a weekly group campaign's report covers its last eight occurrences


def campaign_of(rules: RuleSet, name: str) -> Campaign:
    campaign = rules.campaigns.campaign(name)
    if campaign is None:
        known = ", ".join(c.name for c in rules.campaigns.campaigns) or "none"
        raise NotFound(f"no campaign {name} in campaigns.json (campaigns: {known})")
    return campaign


def preview(rules: RuleSet, name: str, now: datetime, find: members.Finder | None = None) -> dict[str, Any]:
    """Reach per store if the campaign went out now (its window and rollout: as when it starts)."""
    campaign = campaign_of(rules, name)
    if campaign.audience.groups is not None:
        groups = pushes.groups_of(rules, campaign)
        per_store = Counter(store for store, _ in groups)
        owned = Counter(store for store, g in groups if g in rules.campaigns.calendar.owners)
        return {
            "campaign": name,
            "audience": "groups",
            "stores": {s: {"groups": per_store[s], "with_owner": owned[s]} for s in sorted(per_store)},
        }
    find = find or members.segment_members
    when = max(now, campaign.schedule.at or campaign.starts_at or now)  # its rollout as it will start
    stores: dict[str, dict[str, int]] = {}
    seen: set[str] = set()  # a member of two stores' segments is reached once, in the first
    for store_id in members.stores_of(campaign, rules.stores):
        everyone = list(dict.fromkeys(find(campaign.audience.segment or "", store_id)))
        chosen = [m for m in everyone if m not in seen and members.in_campaign(campaign, m, store_id, when)]
        seen.update(chosen)
        reachable, capped = _reachable(rules, campaign, chosen, store_id, now)
        stores[store_id] = {
            "in_segment": len(everyone),
            "in_rollout": len(chosen),
            "reachable": len(reachable),
            "capped": len(capped),
            "reach": len([m for m in reachable if m not in capped]),
        }
    total = sum(s["reach"] for s in stores.values())
    return {"campaign": name, "audience": f"segment {campaign.audience.segment}", "stores": stores, "reach": total}


def _reachable(
    rules: RuleSet, campaign: Campaign, ids: list[str], store_id: str, now: datetime
) -> tuple[list[str], set[str]]:
    """Who can receive the campaign's kind on some channel now, and who has no promotion left today
    or this week (messaging.json ``caps``)."""
    messaging = rules.messaging
    kind = messaging.kinds.get(campaign.kind)
    plan = [routes.Route(ch, kind.template_of(ch)) for ch in kind.channels] if kind else []
    found = {m.member_id: m for m in Member.batch_get(ids)} if ids else {}
    reachable = [
        i for i in ids if i in found and any(routes.unreachable(r, found[i], messaging, now) is None for r in plan)
    ]
    caps = next((c for name, c in messaging.caps.items() if name == "promo"), None)
    if not caps or not reachable:
        return reachable, set()
    day, week = discipline.cap_periods(now, rules.stores.zone_of(store_id))
    limits = {keys.cap(i, "promo", day): caps.per_day for i in reachable} | {
        keys.cap(i, "promo", week): caps.per_week for i in reachable
    }
    used = {item.sk: int(item.tally or 0) for item in Shared.batch_get([(keys.COUNTERS, k) for k in limits])}
    capped = {
        i
        for i in reachable
        for period in (day, week)
        if (limit := limits[keys.cap(i, "promo", period)]) is not None
        and used.get(keys.cap(i, "promo", period), 0) >= limit
    }
    return reachable, capped


def message_keys(rules: RuleSet, campaign: Campaign, now: datetime) -> list[str]:
    """The keys of the campaign's messages so far (computed for groups; its records for members)."""
    if campaign.audience.segment is not None:
        return [r.value for r in LoyaltyRecord.query(keys.campaign_scope(campaign.name)) if r.value]
    slot = campaign.schedule.calendar
    groups = [g for _, g in pushes.groups_of(rules, campaign)]
    if slot is not None:
        return [keys.calendar_push(g, slot.date.isoformat(), slot.slot) for g in groups]
    found = []
    for weeks_ago in range(PAST_WEEKS):
        for occurrence, at in pushes.occurrences(campaign, rules, now - timedelta(weeks=weeks_ago)):
            if at <= now + pushes.LEAD:
                found += [keys.campaign_message(campaign.name, occurrence, g) for g in groups]
    return list(dict.fromkeys(found))


def report(rules: RuleSet, name: str, now: datetime) -> dict[str, Any]:
    campaign = campaign_of(rules, name)
    wanted = message_keys(rules, campaign, now)
    found = list(OutboxMessage.batch_get(wanted)) if wanted else []
    status = Counter(m.status for m in found)
    dropped = Counter((m.reason or "").split(" (", 1)[0] for m in found if m.status == "dropped")
    confirmed = sum(1 for m in found if m.delivery == confirm.CONFIRMED)
    delivered = sum(1 for m in found if _delivered(m))
    return {
        "campaign": name,
        "queued": len(found),
        "waiting": status["pending"] + status["deferred"] + status["retrying"],
        "sent": status["sent"],
        "dropped": sum(dropped.values()),
        "dropped_by_reason": dict(dropped),
        "confirmed": confirmed,
        "delivered": delivered,
    }


def _delivered(message: OutboxMessage) -> bool:
    """A group message when its owner sent it; a member's on acceptance or WeChat's receipt."""
    if message.status != "sent":
        return False
    if message.channel == "wecom_group":
        return message.delivery == confirm.CONFIRMED
    return message.sent_channel in NO_RECEIPT or message.delivery == "success"


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def calendar_rows(rules: RuleSet, monday: date, store_id: str | None = None) -> list[dict[str, str]]:
    """The week's pushes, each with its content's source and text, or MISSING."""
    rows = []
    for day in calendar.week_of(monday):
        for push in calendar.pushes_on(rules, day, store_id):
            said = content.content_for(rules.campaigns, push)
            rows.append(
                {
                    "day": day.isoformat(),
                    "at": push.slot.at,
                    "slot": push.slot.name,
                    "channel": push.slot.channel,
                    "store": push.store_id,
                    "group": push.group_id,
                    "theme": push.holiday or rules.campaigns.calendar.theme_titles.get(push.theme, push.theme),
                    "source": said.source if said else "MISSING",
                    "text": said.text if said else "",
                }
            )
    return rows
