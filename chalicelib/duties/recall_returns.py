"""Recall attribution: a member with open recall records (treated or held out) who is active
again counts as returned for each record whose attribution window this activity falls in, and
the records leave the member's open list. Both arms are observed the same way: a held-out
member's record is open exactly like a treated one's, so the return rates compare like with like.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from chalicelib.counters import counters_of, scopes_of
from chalicelib.events import ACTIVITY, Event
from chalicelib.facts import Snapshot
from chalicelib.plans import CloseRecalls, Instruction, MarkReturned, new
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Member, Recall

TRIGGERS = ACTIVITY
CAUSE = "recall_returns"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    records: tuple[tuple[str, Recall | None], ...]  # each open key and its record (None: gone)


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or not member.recall_open:
        return None
    open_keys = sorted(member.recall_open)
    reads.fetch([(Recall, member.member_id, key) for key in open_keys])
    return Facts(event, member.member_id, tuple((key, reads.get(Recall, member.member_id, key)) for key in open_keys))


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    at = facts.event.occurred_at
    day = at.astimezone(ZoneInfo(rules.stores.default_timezone)).date().isoformat()
    plan: list[Instruction] = []
    closed = []
    for key, record in facts.records:
        if record is not None and record.returned_at is None and at < record.created_at:
            continue  # activity from before the recall arrived late: the window is still ahead
        closed.append(key)
        if record is None or record.returned_at is not None or at >= record.window_until:
            continue
        mark = MarkReturned(member_id=facts.member_id, recall_key=key, at=at)
        name = "challenge_completed" if record.stage == "challenge" else "recall_returned"
        counts = Counter({name: 1, f"{name}:{record.arm}": 1})
        plan += [mark, *counters_of(scopes_of(record.store_id, counts), day, when=new(mark))]
    if closed:
        plan.append(CloseRecalls(member_id=facts.member_id, keys=frozenset(closed)))
    return plan
