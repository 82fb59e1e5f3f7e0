"""The low-repurchase challenge (003 §5.3): "order N days in a row and earn a reward".

A paid order from a member known for ``min_member_days`` who ordered on few days lately
(``max_order_days`` within ``lookback_days``, this order included) opens a challenge: the member is invited, or held out
by the same stable hash as the recall holdout. The challenge counts the local days with an
order from the invitation day on; ``consecutive_days`` in a row inside ``window_days`` completes
it — for both arms, so the completion rates compare — and a treated member gets the reward,
once (its coupon code is derived from the challenge). One challenge per ``cooldown_days``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from chalicelib import codes
from chalicelib.clock import UTC
from chalicelib.counters import counters_of, scopes_of
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.offers import chinese_date, offer, yuan
from chalicelib.plans import Instruction, MarkReturned, QueueMessage, RecallDecision, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import bucket, in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member, Recall
from chalicelib.store import keys

TRIGGERS = frozenset({Kind.ORDER_PAID})
CAUSE = "challenge"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    store_id: str | None
    order_days: frozenset[str]
    first_seen: datetime | None
    open_key: str | None  # the member's latest challenge
    open_arm: str | None
    open_returned: bool
    open_store: str | None
    secret: str


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    arm, returned, store = member.challenge_arm, member.challenge_done == "yes", member.store_id
    if member.challenge and arm is None:  # opened before the member carried the arm: read the record
        opened = reads.get(Recall, member.member_id, member.challenge)
        if opened is not None:
            arm, returned, store = opened.arm, opened.returned_at is not None, opened.store_id
    return Facts(
        event,
        member.member_id,
        member.store_id or event.store_id,
        frozenset(member.order_days or ()),
        member.first_seen,
        member.challenge,
        arm,
        returned,
        store,
        settings.coupon_secret,
    )


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    rule = rules.recall.challenge
    zone = rules.stores.zone_of(facts.store_id)
    today = facts.event.occurred_at.astimezone(zone).date()
    if facts.open_key is not None and facts.open_arm is not None:
        opened = date.fromisoformat(facts.open_key.split("#")[0])
        if today < opened + timedelta(days=rule.window_days):
            return [] if facts.open_returned else _progress(facts, rules, opened, today, now)
        if today < opened + timedelta(days=rule.cooldown_days):
            return []
    if not rule.enabled or not in_scope(rules.recall, CAUSE, facts.member_id, facts.store_id, now):
        return []
    if facts.first_seen is None or facts.first_seen > facts.event.occurred_at - timedelta(days=rule.min_member_days):
        return []
    recent = [
        d for d in facts.order_days if today - timedelta(days=rule.lookback_days) < date.fromisoformat(d) <= today
    ]
    if not recent or len(recent) > rule.max_order_days:
        return []
    return _invite(facts, rules, today, now)


def _progress(facts: Facts, rules: RuleSet, opened: date, today: date, now: datetime) -> list[Instruction]:
    rule = rules.recall.challenge
    if _longest_run(facts.order_days, opened, today) < rule.consecutive_days:
        return []
    key = facts.open_key or ""
    mark = MarkReturned(member_id=facts.member_id, recall_key=key, at=facts.event.occurred_at)
    counts = Counter({"challenge_completed": 1, f"challenge_completed:{facts.open_arm}": 1})
    chain_day = facts.event.occurred_at.astimezone(ZoneInfo(rules.stores.default_timezone)).date().isoformat()
    plan: list[Instruction] = [mark, *counters_of(scopes_of(facts.open_store, counts), chain_day, when=new(mark))]
    if facts.open_arm != "treated":
        return plan
    reward_key = keys.recall_cause(facts.member_id, key, CAUSE)
    given = offer(
        rule.reward,
        code=codes.derive(reward_key, facts.secret),
        member_id=facts.member_id,
        cause=CAUSE,
        cause_key=reward_key,
        event_id=facts.event.event_id,
        home_store=facts.store_id,
        zone=rules.stores.zone_of(facts.store_id),
        now=now,
        rules_version=rules.version,
    )
    words = {**given.words, "days": str(rule.consecutive_days), "deadline": ""}
    text = fill(rule.reward_text, **words)
    message = _message(facts, rules, keys.challenge_reward(reward_key), text, "service", given.coupon.expires_at, words)
    return [*plan, given.coupon, replace(message, when=new(given.coupon))]


def _invite(facts: Facts, rules: RuleSet, today: date, now: datetime) -> list[Instruction]:
    rule = rules.recall.challenge
    zone = rules.stores.zone_of(facts.store_id)
    key = keys.recall_record(today.isoformat(), CAUSE)
    last_day = today + timedelta(days=rule.window_days - 1)
    window_until = datetime.combine(last_day, time(23, 59, 59), zone).astimezone(UTC)
    held_out = bucket(f"{CAUSE}-holdout#{today.isoformat()}", facts.member_id) < rules.recall.holdout_percent
    message = None
    if not held_out:
        words = {
            "days": str(rule.consecutive_days),
            "deadline": chinese_date(last_day),
            "value": yuan(rule.reward.value_fen),
            "title": rule.reward.title,
            "min_spend": yuan(rule.reward.min_spend_fen),
            "code": "",
            "expires": "",
        }
        text = fill(rule.invite_text, **words)
        message = _message(
            facts, rules, keys.recall_cause(facts.member_id, key, CAUSE), text, "promo", window_until, words
        )
    arm: Literal["treated", "holdout"] = "holdout" if held_out else "treated"
    decision = RecallDecision(
        member_id=facts.member_id,
        key=key,
        day=today.isoformat(),
        lapse=today.isoformat(),
        stage=CAUSE,
        arm=arm,
        store_id=facts.store_id,
        window_until=window_until,
        attempts=0,
        now=now,
        rules_version=rules.version,
        message=message,
        previous={"challenge": facts.open_key},
    )
    counts = Counter({"challenge_due": 1, f"challenge_{arm}": 1})
    return [decision, *counters_of(scopes_of(facts.store_id, counts), today.isoformat(), when=new(decision))]


def _longest_run(order_days: frozenset[str], first: date, last: date) -> int:
    best = run = 0
    day = first
    while day <= last:
        run = run + 1 if day.isoformat() in order_days else 0
        best = max(best, run)
        day += timedelta(days=1)
    return best


def _message(
    facts: Facts, rules: RuleSet, key: str, text: str, category: str, expires: datetime, words: dict[str, str]
) -> QueueMessage:
    return QueueMessage(
        message_key=key,
        member_id=facts.member_id,
        channel="wecom_customer" if facts.event.source == "wecom" else "custom",
        category=category,  # type: ignore[arg-type]
        text=text,
        cause=CAUSE,
        event_id=facts.event.event_id,
        rules_version=rules.version,
        store_id=facts.store_id,
        expires_at=expires,
        template=rules.recall.challenge.template,
        payload=words,
    )
