"""Daily check-in (签到): the keyword on the official account or the mini program's check-in
earns points once per member per local calendar day (the member's store's time zone), counts
the streak (a bonus every ``streak_days`` in a row, a badge at ``badge_days``) and enters the
member in the week's lottery (docs/domain.md, "Loyalty").

Exactly once: the day's record ``checkin#<member>`` / ``<local date>`` is written on the
condition that it is absent, and the points post under ``checkin#<local date>``; the reply and
the badge depend on the record being new to this plan. The member carries their latest check-in
and its streak, read with the event. The weekly draw is seeded from the
week and the rule version, and recorded with its entrants, so ``siyu checkin lottery``
reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chalicelib import ledger, offers
from chalicelib.calendars import iso_week, local_day
from chalicelib.duties import points
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, PostPoints, QueueMessage, RecordOnce, Reply, UpdateLoyalty, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import LoyaltyRecord, Member, PointsRecord
from chalicelib.store import db, keys

TRIGGERS = frozenset({Kind.MESSAGED, Kind.CHECKED_IN})
CAUSE = "checkin"


@dataclass(frozen=True)
class Previous:
    day: date
    streak: int


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    home_store: str | None
    recent: tuple[Previous, ...]  # the latest check-ins, newest first
    balance: int


def prefetch(event: Event, settings: Settings) -> list[db.Key]:
    return [(PointsRecord, event.member_id, keys.BALANCE)] if event.member_id else []


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    if event.kind is Kind.MESSAGED and not str(event.data.get("content") or "").strip():
        return None
    recent: tuple[Previous, ...] = ()
    if member.checkin_day:
        recent = (Previous(date.fromisoformat(member.checkin_day), int(member.checkin_streak or 0)),)
    balance = ledger.balance_of(event.member_id, reads).points
    return Facts(event, event.member_id, member.store_id or event.store_id, recent, balance)


def streak_on(day: date, recent: tuple[Previous, ...]) -> int | None:
    """The streak a check-in on ``day`` makes; ``None`` when the member already checked in that
    day (or later: a delayed delivery never rewrites history)."""
    earlier = [p for p in recent if p.day < day]
    if any(p.day >= day for p in recent):
        return None
    if earlier and earlier[0].day == day - timedelta(days=1):
        return earlier[0].streak + 1
    return 1


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    rule = rules.loyalty
    section = rule.checkin
    event = facts.event
    if event.kind is Kind.MESSAGED and str(event.data.get("content") or "").strip() not in section.keywords:
        return []
    if not section.enabled or not in_scope(rule, "loyalty", facts.member_id, facts.home_store, now):
        return []
    zone = rules.stores.zone_of(facts.home_store)
    day = local_day(event.occurred_at, zone)
    streak = streak_on(day, facts.recent)
    if streak is None:
        current = facts.recent[0].streak if facts.recent else 0
        return _already(
            facts, rules, fill(section.already_text, streak=current, points=0, balance=facts.balance, days=current)
        )
    bonus = section.streak_bonus_points if streak % section.streak_days == 0 else 0
    earned = section.points + bonus
    record = RecordOnce(
        pk=keys.checkins_of(facts.member_id),
        sk=day.isoformat(),
        member_id=facts.member_id,
        event_id=event.event_id,
        rules_version=rules.version,
        at=event.occurred_at,
        number=streak,
    )
    plan: list[Instruction] = [
        record,
        UpdateLoyalty(
            key=keys.checkins_of(facts.member_id),
            member_id=facts.member_id,
            checkin_day=day.isoformat(),
            checkin_streak=streak,
            when=new(record),
        ),
        RecordOnce(
            pk=keys.week_entrants(iso_week(day)),
            sk=facts.member_id,
            member_id=facts.member_id,
            event_id=event.event_id,
            rules_version=rules.version,
            at=event.occurred_at,
            when=new(record),
        ),
        PostPoints(
            member_id=facts.member_id,
            key=keys.checkin_points(day.isoformat()),
            delta=earned,
            mode="credit",
            cause=CAUSE,
            event_id=event.event_id,
            rules_version=rules.version,
            at=event.occurred_at,
            expires_on=points.expiry_of(rules, event.occurred_at, facts.home_store),
            note=f"streak {streak}" + (f", bonus {bonus}" if bonus else ""),
            when=new(record),
        ),
    ]
    values = {"streak": streak, "points": earned, "balance": facts.balance + earned, "days": streak}
    text = fill(section.text, **values)
    if streak == section.badge_days:
        badge = frozenset({section.badge})
        plan.append(UpdateLoyalty(key=keys.badge(facts.member_id), member_id=facts.member_id, add_tags=badge))
        text += "\n" + fill(section.badge_text, **values)
    if event.kind is Kind.MESSAGED:
        plan.append(
            Reply(
                message_key=keys.checkin_reply(facts.member_id, day.isoformat()),
                member_id=facts.member_id,
                text=text,
                cause=CAUSE,
                event_id=event.event_id,
                rules_version=rules.version,
                when=new(record),
            )
        )
    elif streak == section.badge_days:  # the mini program shows the check-in itself; the badge is news
        plan.append(
            QueueMessage(
                message_key=keys.checkin_badge(facts.member_id),
                member_id=facts.member_id,
                channel="custom",
                category="service",
                text=fill(section.badge_text, **values),
                cause=CAUSE,
                event_id=event.event_id,
                rules_version=rules.version,
                when=new(record),
                store_id=facts.home_store,
                payload={name: str(value) for name, value in values.items()},
            )
        )
    return plan


def _already(facts: Facts, rules: RuleSet, text: str) -> list[Instruction]:
    if facts.event.kind is not Kind.MESSAGED:
        return []
    event = facts.event
    return [
        Reply(
            message_key=keys.checkin_again(event.event_id),
            member_id=facts.member_id,
            text=text,
            cause=CAUSE,
            event_id=event.event_id,
            rules_version=rules.version,
        )
    ]


# --- the weekly lottery ---------------------------------------------------------------------


@dataclass(frozen=True)
class Draw:
    week: str
    seed: int
    rules_version: str
    entrants: tuple[str, ...]
    winners: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "week": self.week,
                "seed": self.seed,
                "rules_version": self.rules_version,
                "entrants": list(self.entrants),
                "winners": list(self.winners),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Draw:
        raw = json.loads(text)
        return cls(raw["week"], raw["seed"], raw["rules_version"], tuple(raw["entrants"]), tuple(raw["winners"]))


def seed_of(week: str, rules_version: str) -> int:
    """The draw's seed: fixed by the week and the rule version, so anyone can re-draw it."""
    return int.from_bytes(hashlib.sha256(f"checkin-lottery|{week}|{rules_version}".encode()).digest()[:8], "big")


def draw(week: str, entrants: list[str], winners: int, rules_version: str, seed: int | None = None) -> Draw:
    """Pure: the same week, entrants, count and seed always give the same winners."""
    seed = seed_of(week, rules_version) if seed is None else seed
    pool = sorted(set(entrants))
    chosen = random.Random(seed).sample(pool, k=min(winners, len(pool)))
    return Draw(week, seed, rules_version, tuple(pool), tuple(chosen))


def redraw(recorded: Draw) -> Draw:
    """A recorded draw drawn again from its seed and its pool as recorded (the pool was sorted
    when drawn, and an erased entrant's pseudonym keeps the place of the id it replaced)."""
    chosen = random.Random(recorded.seed).sample(list(recorded.entrants), k=len(recorded.winners))
    return Draw(recorded.week, recorded.seed, recorded.rules_version, recorded.entrants, tuple(chosen))


def lottery_plans(result: Draw, rules: RuleSet, now: datetime, secret: str) -> list[list[Instruction]]:
    """Record the draw once; each winner gets the prize coupon and the message, once — a plan for
    the draw and one per winner (a week may have more winners than one transaction holds)."""
    section = rules.loyalty.checkin
    event_id = keys.lottery(result.week)
    draw_record = RecordOnce(
        pk=keys.lottery(result.week),
        sk=keys.DRAW,
        member_id=None,
        event_id=event_id,
        rules_version=rules.version,
        at=now,
        value=result.to_json(),
    )
    parts: list[list[Instruction]] = [[draw_record]]
    prize = section.lottery_prize
    for member_id in result.winners:
        cause_key = keys.lottery_prize(result.week, member_id)
        text = fill(section.lottery_text, streak=0, points=0, balance=0, days=0)
        part: list[Instruction] = []
        words: dict[str, str] = {}
        if prize is not None:
            zone = rules.stores.zone_of(None)
            today = local_day(now, zone)
            issued = offers.coupon(
                prize, member_id, "checkin_lottery", cause_key, event_id, rules.version, today, zone, None, secret
            )
            part.append(issued)
            text += f"奖品：{prize.title}，券码 {issued.code}。"
            words = offers.offer_words(issued, zone)
        part.append(
            QueueMessage(
                message_key=cause_key,
                member_id=member_id,
                channel="custom",
                category="service",
                text=text,
                cause="checkin_lottery",
                event_id=event_id,
                rules_version=rules.version,
                when=new(part[0]) if part else None,
                payload=words,
            )
        )
        parts.append(part)
    return parts


def latest(member_id: str) -> dict[str, str | int] | None:
    """The member's latest check-in (the mini program's answer): local date and streak."""
    for record in LoyaltyRecord.query(keys.checkins_of(member_id), scan_index_forward=False, limit=1):
        return {"day": record.sk, "streak": int(record.number or 0)}
    return None
