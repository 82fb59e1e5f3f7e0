"""``siyu rules preview``: what would a candidate rule set do, compared with the active one?

Replays the recorded events of a window through every duty's pure ``decide`` with both rule
sets, against the members as they are now, resolves each plan as the executor would (a coupon
issued before the window, or earlier in the replay, is not issued again, and what depends on it
follows) and hands it to the dry-run executor; then tallies per duty and store: members
reached, coupons and their face value, messages. Nothing is written: the only I/O is reading
events, members and existing coupons.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib import executor
from chalicelib.duties import REGISTRY
from chalicelib.events import Event
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, IssueCoupon, QueueMessage, Ref, Reply
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Coupon, EventRecord, Member

SIDES = ("active", "candidate")


@dataclass
class Tally:
    members: set[str] = field(default_factory=set)
    coupons: int = 0
    face_value_fen: int = 0
    messages: int = 0
    message_cost_fen: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "members": len(self.members),
            "coupons": self.coupons,
            "face_value_fen": self.face_value_fen,
            "messages": self.messages,
            "message_cost_fen": self.message_cost_fen,
        }


@dataclass
class Report:
    since: datetime
    until: datetime
    events: int
    active_version: str
    candidate_version: str
    rows: dict[tuple[str, str], dict[str, Tally]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "events": self.events,
            "active_version": self.active_version,
            "candidate_version": self.candidate_version,
            "rows": [
                {"duty": duty, "store": store, **{side: t.as_dict() for side, t in sides.items()}}
                for (duty, store), sides in sorted(self.rows.items())
            ],
        }


class _Side:
    """One rule set's simulated outcomes: the coupons and messages it would have produced."""

    def __init__(self, rules: RuleSet, since: datetime) -> None:
        self.rules = rules
        self.since = since
        self.created: set[Ref] = set()  # coupons and messages this side's replay made so far
        self.dry_run = executor.DryRun()


def recorded_events(since: datetime, until: datetime):
    day = since.date()
    while day <= until.date():
        query = EventRecord.by_day.query(day.isoformat(), EventRecord.received_at.between(since, until))
        for record in query:
            yield Event.from_json(record.body)
        day += timedelta(days=1)


def preview(candidate: RuleSet, active: RuleSet, since: datetime, until: datetime, settings: Settings) -> Report:
    sides = {"active": _Side(active, since), "candidate": _Side(candidate, since)}
    rows: dict[tuple[str, str], dict[str, Tally]] = defaultdict(lambda: {s: Tally() for s in SIDES})
    reads = Snapshot()  # one cache for the whole replay: members and coupons as they are now
    count = 0
    for event in recorded_events(since, until):
        count += 1
        member = reads.get(Member, event.member_id) if event.member_id else None
        for name, side in sides.items():
            side_event = event
            if event.group_id and not event.store_id:
                side_event = dataclasses.replace(event, store_id=side.rules.stores.store_of_group(event.group_id))
            for duty in REGISTRY:
                if side_event.kind not in duty.TRIGGERS:
                    continue
                facts = duty.gather(side_event, member, reads, settings)
                if facts is None:
                    continue
                plan = duty.decide(facts, side.rules, side_event.occurred_at)
                store = (member.store_id if member else None) or side_event.store_id or "-"
                _tally(plan, side, rows[(duty.CAUSE, store)][name], reads, side_event)
    rows = {key: value for key, value in rows.items() if any(_nonzero(t) for t in value.values())}
    return Report(since, until, count, active.version, candidate.version, rows)


def _nonzero(tally: Tally) -> bool:
    return bool(tally.members or tally.coupons or tally.messages)


def _tally(plan: list[Instruction], side: _Side, tally: Tally, reads: Snapshot, event: Event) -> None:
    existing = set(side.created)
    for instruction in plan:
        if isinstance(instruction, IssueCoupon):
            coupon = reads.get(Coupon, instruction.code)
            if coupon is not None and coupon.issued_at < side.since:
                existing.add(instruction.ref)
    resolved = executor.resolve(plan, existing)
    side.dry_run.run(resolved, event.event_id, event.occurred_at)  # what would be written, checked as the executor does
    for instruction in resolved:
        if isinstance(instruction, IssueCoupon):
            tally.coupons += 1
            tally.face_value_fen += instruction.value_fen
            tally.members.add(instruction.member_id)
        elif isinstance(instruction, Reply | QueueMessage):
            tally.messages += 1
            if isinstance(instruction, QueueMessage):  # passive replies are free
                tally.message_cost_fen += int(getattr(side.rules.messaging.prices, instruction.channel, 0) * 100)
            tally.members.add(instruction.member_id)
        if instruction.ref is not None:
            side.created.add(instruction.ref)


def render(report: Report) -> str:
    lines = [
        f"Preview over {report.since:%Y-%m-%d %H:%M} – {report.until:%Y-%m-%d %H:%M} UTC: "
        f"{report.events} recorded events",
        f"active {report.active_version}  →  candidate {report.candidate_version}",
        "",
        f"{'duty':<12}{'store':<8}{'members':>18}{'coupons':>18}{'face value (yuan)':>32}{'messages':>18}"
        f"{'message cost (yuan)':>30}",
    ]
    for (duty, store), sides in sorted(report.rows.items()):
        a, c = sides["active"], sides["candidate"]
        lines.append(
            f"{duty:<12}{store:<8}{_pair(len(a.members), len(c.members)):>18}{_pair(a.coupons, c.coupons):>18}"
            f"{_money_pair(a.face_value_fen, c.face_value_fen):>32}{_pair(a.messages, c.messages):>18}"
            f"{_money_pair(a.message_cost_fen, c.message_cost_fen):>30}"
        )
    if not report.rows:
        lines.append("(no duty would act on these events under either rule set)")
    total_a = sum(s["active"].face_value_fen for s in report.rows.values())
    total_c = sum(s["candidate"].face_value_fen for s in report.rows.values())
    lines += ["", f"coupon face value in total: {_money_pair(total_a, total_c)}"]
    return "\n".join(lines)


def _pair(a: int, c: int) -> str:
    return f"{a} → {c}" + (f" ({c - a:+d})" if c != a else "")


def _money_pair(a: int, c: int) -> str:
    return f"{a / 100:.2f} → {c / 100:.2f}" + (f" ({(c - a) / 100:+.2f})" if c != a else "")
