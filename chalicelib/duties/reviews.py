"""Negative review (差评): a review at or below ``alerts.json`` ``reviews.max_score`` opens a
ticket and tells the store at once; the SLA timer does the rest (``chalicelib.reviews.tickets``).

Every negative review counts, so the rule's rollout percentage does not apply; its switch, time
window and pilot stores do. The ticket is keyed by the review id: a retried or duplicated review
opens one ticket and sends one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction
from chalicelib.reviews import tickets
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Member

TRIGGERS = frozenset({Kind.REVIEWED})
CAUSE = tickets.CAUSE


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    store_id: str | None


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if event.member_id is None:
        return None
    return Facts(event, event.member_id, event.store_id or (member.store_id if member else None))


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    rule = rules.alerts
    data = facts.event.data
    score = int(data["score"])
    if not rule.active_at(now) or not rule.reviews.enabled or score > rule.reviews.max_score:
        return []
    if rule.pilot_stores and facts.store_id not in rule.pilot_stores:
        return []
    return tickets.opening(
        str(data["review_id"]),
        facts.member_id,
        facts.store_id,
        score,
        data.get("order_id"),
        facts.event.occurred_at,
        facts.event.event_id,
        rules,
        now,
    )
