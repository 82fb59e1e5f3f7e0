"""Recall attribution: a member with open recall records (treated or held out) who is active
again counts as returned for each record whose attribution window this activity falls in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from chalicelib.effects import Effect, MarkReturned
from chalicelib.events import ACTIVITY, Event
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Member

TRIGGERS = ACTIVITY
CAUSE = "recall_returns"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    open_keys: frozenset[str]


def gather(event: Event, member: Member | None, settings: Settings) -> Facts | None:
    if member is None or not member.recall_open:
        return None
    return Facts(event, member.member_id, frozenset(member.recall_open))


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Effect]:
    at = facts.event.occurred_at
    day = at.astimezone(ZoneInfo(rules.stores.default_timezone)).date().isoformat()
    return [MarkReturned(facts.member_id, key, at, day) for key in sorted(facts.open_keys)]
