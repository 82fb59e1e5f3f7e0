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
from chalicelib.effects import Effect, QueueMessage, RecordOnce, UpdateLoyalty
from chalicelib.events import Kind
from chalicelib.rules.loader import RuleSet

TRIGGERS = frozenset({Kind.JOINED_GROUP})
CAUSE = "koc"

gather = gather_event


def decide(facts: EventFacts, rules: RuleSet, now: datetime) -> list[Effect]:
    """Keep the group's roster: the members the monthly selection ranks."""
    event = facts.event
    if not event.group_id or not event.member_id or not rules.loyalty.koc.enabled:
        return []
    return [RecordOnce(f"group#{event.group_id}", event.member_id, event.member_id, event.event_id, rules.version, now)]


def select(activity: dict[str, int], share_percent: float, min_events: int) -> list[str]:
    """The most active share of a group (rounded up), most active first; ties by member id, so
    the same counts always select the same members."""
    ranked = sorted((m for m, n in activity.items() if n >= min_events), key=lambda m: (-activity[m], m))
    return ranked[: math.ceil(len(activity) * share_percent / 100)]


def monthly_plan(
    group_id: str,
    store_id: str | None,
    month: str,
    helpers: list[str],
    previous: set[str],
    still_helping: set[str],
    rules: RuleSet,
    now: datetime,
) -> list[Effect]:
    """Tag and tell this month's helpers of a group; untag last month's who are not helpers
    anywhere this month (``still_helping``: this month's helpers of every group)."""
    section = rules.loyalty.koc
    tag = frozenset({section.tag})
    event_id = f"koc#{group_id}#{month}"
    plan: list[Effect] = [
        RecordOnce(f"koc#{group_id}", month, None, event_id, rules.version, now, value=json.dumps(helpers))
    ]
    for member_id in helpers:
        key = f"koc#{group_id}#{month}#{member_id}"
        plan.append(UpdateLoyalty(key, member_id, add_tags=tag))
        if member_id not in previous:  # told once when they become helpers, not every month
            plan.append(
                QueueMessage(
                    key,
                    member_id,
                    "wecom_customer",
                    "service",
                    section.text,
                    CAUSE,
                    event_id,
                    rules.version,
                    payload={"group_id": group_id},
                    store_id=store_id,
                )
            )
    for member_id in sorted(previous - still_helping):
        plan.append(UpdateLoyalty(f"koc-out#{group_id}#{month}#{member_id}", member_id, remove_tags=tag))
    return plan
