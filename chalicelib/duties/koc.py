"""KOC (品牌体验官): each month, the most active ``share_percent`` (default 30%) of each store
group's members are tagged brand helpers and told so; a helper who is not among them the next
month loses the tag (docs/domain.md, "Precision push and segments").

Activity is the number of events siyu received from the member in the month (messages,
check-ins, orders, clicks …), read from the events table's member index. The group's members
are those who joined it (``group#<chat id>`` roster, written here on each join) and are still in
it. The month's helpers are recorded per group (``koc#<chat id>`` / ``<month>``), which is how
the next month knows whom to untag.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

from chalicelib.duties.common import EventFacts, gather_event
from chalicelib.events import Kind
from chalicelib.plans import Instruction, QueueMessage, RecordOnce, UpdateLoyalty
from chalicelib.rules.loader import RuleSet
from chalicelib.store import keys

TRIGGERS = frozenset({Kind.JOINED_GROUP})
CAUSE = "koc"

gather = gather_event


def decide(facts: EventFacts, rules: RuleSet, now: datetime) -> list[Instruction]:
    """Keep the group's roster: the members the monthly selection ranks."""
    event = facts.event
    if not event.group_id or not event.member_id or not rules.loyalty.koc.enabled:
        return []
    return [
        RecordOnce(
            pk=keys.roster(event.group_id),
            sk=event.member_id,
            member_id=event.member_id,
            event_id=event.event_id,
            rules_version=rules.version,
            at=now,
        )
    ]


def select(activity: dict[str, int], share_percent: float, min_events: int) -> list[str]:
    """The most active share of a group (rounded up), most active first; ties by member id, so
    the same counts always select the same members."""
    ranked = sorted((m for m, n in activity.items() if n >= min_events), key=lambda m: (-activity[m], m))
    return ranked[: math.ceil(len(activity) * share_percent / 100)]


def monthly_plans(
    group_id: str,
    store_id: str | None,
    month: str,
    helpers: list[str],
    previous: set[str],
    still_helping: set[str],
    rules: RuleSet,
    now: datetime,
) -> list[list[Instruction]]:
    """Tag and tell this month's helpers of a group; untag last month's who are not helpers
    anywhere this month (``still_helping``: this month's helpers of every group). A plan for the
    month's list and one per member (a group holds more members than one transaction)."""
    section = rules.loyalty.koc
    tag = frozenset({section.tag})
    event_id = keys.helpers_month(group_id, month)
    parts: list[list[Instruction]] = [
        [
            RecordOnce(
                pk=keys.helpers(group_id),
                sk=month,
                member_id=None,
                event_id=event_id,
                rules_version=rules.version,
                at=now,
                value=json.dumps(helpers),
            )
        ]
    ]
    for member_id in helpers:
        key = keys.helper(group_id, month, member_id)
        part: list[Instruction] = [UpdateLoyalty(key=key, member_id=member_id, add_tags=tag)]
        if member_id not in previous:  # told once when they become helpers, not every month
            part.append(
                QueueMessage(
                    message_key=key,
                    member_id=member_id,
                    channel="wecom_customer",
                    category="service",
                    text=section.text,
                    cause=CAUSE,
                    event_id=event_id,
                    rules_version=rules.version,
                    payload={"group_id": group_id},
                    store_id=store_id,
                )
            )
        parts.append(part)
    for member_id in sorted(previous - still_helping):
        untag = UpdateLoyalty(key=keys.helper_out(group_id, month, member_id), member_id=member_id, remove_tags=tag)
        parts.append([untag])
    return parts
