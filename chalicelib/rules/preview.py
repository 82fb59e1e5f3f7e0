"""``siyu rules preview``: what would a candidate rule set do, compared with the active one?

Replays the recorded events of a window through every duty's pure ``decide`` with both rule
sets, against the members as they are now, and tallies per duty and store: members reached,
coupons and their face value, messages. Nothing is written: the only I/O is reading events,
members and existing coupons (a coupon issued before the window is not issued again).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.duties import REGISTRY
from chalicelib.effects import IssueCoupon, QueueMessage, Reply
from chalicelib.events import Event
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
        self.issued: set[str] = set()
        self.messages: set[str] = set()


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
    members: dict[str, Member | None] = {}
    existing: dict[str, bool] = {}
    count = 0
    for event in recorded_events(since, until):
        count += 1
        member = _member(event.member_id, members)
        for name, side in sides.items():
            side_event = event
            if event.group_id and not event.store_id:
                side_event = dataclasses.replace(event, store_id=side.rules.stores.store_of_group(event.group_id))
            for duty in REGISTRY:
                if side_event.kind not in duty.TRIGGERS:
                    continue
                facts = duty.gather(side_event, member, settings)
                if facts is None:
                    continue
                plan = duty.decide(facts, side.rules, side_event.occurred_at)
                store = (member.store_id if member else None) or side_event.store_id or "-"
                _tally(plan, side, rows[(duty.CAUSE, store)][name], existing)
    rows = {key: value for key, value in rows.items() if any(_nonzero(t) for t in value.values())}
    return Report(since, until, count, active.version, candidate.version, rows)


def _nonzero(tally: Tally) -> bool:
    return bool(tally.members or tally.coupons or tally.messages)


def _member(member_id: str | None, cache: dict[str, Member | None]) -> Member | None:
    if not member_id:
        return None
    if member_id not in cache:
        try:
            cache[member_id] = Member.get(member_id)
        except DoesNotExist:
            cache[member_id] = None
    return cache[member_id]


def _issued_before(code: str, since: datetime, cache: dict[str, bool]) -> bool:
    if code not in cache:
        try:
            cache[code] = Coupon.get(code).issued_at < since
        except DoesNotExist:
            cache[code] = False
    return cache[code]


def _tally(plan: list, side: _Side, tally: Tally, existing: dict[str, bool]) -> None:
    outcome: dict[str, str] = {}  # coupon code -> "new" | "taken", for this event's plan
    for effect in plan:
        if isinstance(effect, IssueCoupon):
            if effect.code in side.issued or _issued_before(effect.code, side.since, existing):
                outcome[effect.code] = "taken"
                continue
            side.issued.add(effect.code)
            outcome[effect.code] = "new"
            tally.coupons += 1
            tally.face_value_fen += effect.value_fen
            tally.members.add(effect.member_id)
        elif isinstance(effect, Reply | QueueMessage):
            if effect.when_coupon is not None and outcome.get(effect.when_coupon[0]) != effect.when_coupon[1]:
                continue
            if effect.message_key in side.messages:
                continue
            side.messages.add(effect.message_key)
            tally.messages += 1
            if isinstance(effect, QueueMessage):  # passive replies are free
                tally.message_cost_fen += int(getattr(side.rules.messaging.prices, effect.channel, 0) * 100)
            tally.members.add(effect.member_id)


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
