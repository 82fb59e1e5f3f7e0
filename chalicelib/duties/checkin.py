"""Daily check-in (签到): the keyword on the official account or the mini program's check-in
earns points once per member per local calendar day (the member's store's time zone), counts
the streak (a bonus every ``streak_days`` in a row, a badge at ``badge_days``) and enters the
member in the week's lottery (docs/domain.md, "Loyalty").

Exactly once: the day's record ``checkin#<member>`` / ``<local date>`` is written on the
condition that it is absent, and the points post under ``checkin#<local date>``; the reply and
the badge depend on the record being new to this event. The weekly draw is seeded from the
week and the rule version, and recorded with its entrants, so ``siyu checkin lottery``
reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chalicelib.duties import points
from chalicelib.effects import Effect, PostPoints, QueueMessage, RecordOnce, Reply, UpdateLoyalty
from chalicelib.events import Event, Kind
from chalicelib.loyalty import ledger, offers
from chalicelib.loyalty.calendar import iso_week, local_day
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import LoyaltyRecord, Member

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


def gather(event: Event, member: Member | None, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    if event.kind is Kind.MESSAGED and not str(event.data.get("content") or "").strip():
        return None
    records = list(LoyaltyRecord.query(f"checkin#{event.member_id}", scan_index_forward=False, limit=2))
    # A record of this very event was written by an earlier attempt that died: the facts are those
    # from before the event (its check-in is not a previous one, its points not yet in the balance),
    # so the retry plans the same check-in, reply included.
    recent = tuple(
        Previous(date.fromisoformat(r.sk), int(r.number or 0)) for r in records if r.event_id != event.event_id
    )
    balance = ledger.balance_of(event.member_id).points
    for own in (r for r in records if r.event_id == event.event_id):
        posted = ledger.entry(event.member_id, f"checkin#{own.sk}")
        if posted is not None and posted.event_id == event.event_id:
            balance -= int(posted.delta or 0)
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


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Effect]:
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
    record_key = f"checkin#{facts.member_id}|{day.isoformat()}"
    if streak is None:
        current = facts.recent[0].streak if facts.recent else 0
        return _already(
            facts, rules, fill(section.already_text, streak=current, points=0, balance=facts.balance, days=current)
        )
    bonus = section.streak_bonus_points if streak % section.streak_days == 0 else 0
    earned = section.points + bonus
    plan: list[Effect] = [
        RecordOnce(
            f"checkin#{facts.member_id}",
            day.isoformat(),
            facts.member_id,
            event.event_id,
            rules.version,
            event.occurred_at,
            number=streak,
        ),
        RecordOnce(
            f"checkins#{iso_week(day)}",
            facts.member_id,
            facts.member_id,
            event.event_id,
            rules.version,
            event.occurred_at,
        ),
        PostPoints(
            facts.member_id,
            f"checkin#{day.isoformat()}",
            earned,
            "credit",
            CAUSE,
            event.event_id,
            rules.version,
            event.occurred_at,
            expires_on=points.expiry_of(rules, event.occurred_at, facts.home_store),
            note=f"streak {streak}" + (f", bonus {bonus}" if bonus else ""),
        ),
    ]
    values = {"streak": streak, "points": earned, "balance": facts.balance + earned, "days": streak}
    text = fill(section.text, **values)
    if streak == section.badge_days:
        plan.append(UpdateLoyalty(f"badge#{facts.member_id}", facts.member_id, add_tags=frozenset({section.badge})))
        text += "\n" + fill(section.badge_text, **values)
    when = (record_key, "new")
    if event.kind is Kind.MESSAGED:
        plan.append(
            Reply(
                f"checkin#{facts.member_id}#{day.isoformat()}",
                facts.member_id,
                text,
                CAUSE,
                event.event_id,
                rules.version,
                when_record=when,
            )
        )
    elif streak == section.badge_days:  # the mini program shows the check-in itself; the badge is news
        plan.append(
            QueueMessage(
                f"checkin-badge#{facts.member_id}",
                facts.member_id,
                "custom",
                "service",
                fill(section.badge_text, **values),
                CAUSE,
                event.event_id,
                rules.version,
                when_record=when,
                store_id=facts.home_store,
            )
        )
    return plan


def _already(facts: Facts, rules: RuleSet, text: str) -> list[Effect]:
    if facts.event.kind is not Kind.MESSAGED:
        return []
    event = facts.event
    return [Reply(f"checkin-again#{event.event_id}", facts.member_id, text, CAUSE, event.event_id, rules.version)]


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


def lottery_plan(result: Draw, rules: RuleSet, now: datetime, secret: str) -> list[Effect]:
    """Record the draw once; each winner gets the prize coupon and the message, once."""
    section = rules.loyalty.checkin
    event_id = f"lottery#{result.week}"
    draw_key = f"lottery#{result.week}|draw"
    plan: list[Effect] = [
        RecordOnce(f"lottery#{result.week}", "draw", None, event_id, rules.version, now, value=result.to_json())
    ]
    prize = section.lottery_prize
    for member_id in result.winners:
        cause_key = f"lottery#{result.week}#{member_id}"
        text = fill(section.lottery_text, streak=0, points=0, balance=0, days=0)
        if prize is not None:
            zone = rules.stores.zone_of(None)
            today = local_day(now, zone)
            issued = offers.coupon(
                prize, member_id, "checkin_lottery", cause_key, event_id, rules.version, today, zone, None, secret
            )
            code = issued.code
            plan.append(issued)
            text += f"奖品：{prize.title}，券码 {code}。"
        plan.append(
            QueueMessage(
                cause_key,
                member_id,
                "custom",
                "service",
                text,
                "checkin_lottery",
                event_id,
                rules.version,
                when_record=(draw_key, "new"),
            )
        )
    return plan


def latest(member_id: str) -> dict[str, str | int] | None:
    """The member's latest check-in (the mini program's answer): local date and streak."""
    for record in LoyaltyRecord.query(f"checkin#{member_id}", scan_index_forward=False, limit=1):
        return {"day": record.sk, "streak": int(record.number or 0)}
    return None
