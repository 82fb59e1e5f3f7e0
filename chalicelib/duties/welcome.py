"""Welcome (新人礼 / 入群礼): a new follower or new group member gets a welcome message and a
no-threshold coupon, once per person ever (docs/domain.md, "Welcome"): the person of every id
they use (``chalicelib/identity``), and of every person merged into them.

The coupon's code is derived from ``welcome#<member>`` and read with the event: a re-follow
finds it taken and gets the re-follow text; a concurrent event that issues it first makes this
plan's coupon taken at commit, and the plan commits the re-follow text instead.

welcome.json may be under an experiment (experiments.json ``rule_change``): the member's group
gets its version of the file (``experiments.assign.variant``), and the member's exposure is
recorded with the coupon, only when the coupon is new (a re-follow is not a second exposure).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from chalicelib import codes
from chalicelib.events import Event, Kind
from chalicelib.experiments import assign, exposure
from chalicelib.facts import Snapshot
from chalicelib.identity import resolve
from chalicelib.offers import offer
from chalicelib.plans import Instruction, QueueMessage, Reply, new, taken
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import WelcomeRule
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Coupon, Member
from chalicelib.store import db, keys

TRIGGERS = frozenset({Kind.FOLLOWED, Kind.JOINED_GROUP, Kind.CONTACT_ADDED})
CAUSE = "welcome"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    home_store: str | None
    code: str
    identity_pending: bool = False  # the person's UnionID is being asked of WeChat (chalicelib/identity)


def code_of(member_id: str, settings: Settings) -> str:
    return codes.welcome(member_id, settings.coupon_secret)


def prefetch(event: Event, settings: Settings) -> list[db.Key]:
    return [(Coupon, code_of(event.member_id, settings), None)] if event.member_id else []


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    code = code_of(event.member_id, settings)
    # once per person: a person merged into this one may have had theirs (chalicelib/identity),
    # read together, in one request
    merged = [(Coupon, code_of(other, settings), None) for other in sorted(member.absorbed or ())]
    reads.fetch(merged)
    if reads.get(Coupon, code) is not None or any(reads.get(*key) is not None for key in merged):
        reads.existing.add(("coupon", code))
    pending = not member.unionid and resolve.asks(event)
    return Facts(event, event.member_id, member.store_id or event.store_id, code, pending)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    tested = assign.variant(rules, "welcome.json", facts.member_id, now, facts.home_store)
    rule = tested.rule if tested is not None and isinstance(tested.rule, WelcomeRule) else rules.welcome
    event = facts.event
    if event.kind.value not in rule.triggers or not in_scope(rule, CAUSE, facts.member_id, facts.home_store, now):
        return []
    given = offer(
        rule.coupon,
        code=facts.code,
        member_id=facts.member_id,
        cause=CAUSE,
        cause_key=keys.welcome(facts.member_id),
        event_id=event.event_id,
        home_store=facts.home_store,
        zone=rules.stores.zone_of(facts.home_store),
        now=now,
        rules_version=rules.version,
    )
    coupon, expires_at = given.coupon, given.coupon.expires_at
    text = fill(rule.text, **given.words, questionnaire_url=rule.questionnaire_url or "")
    plan: list[Instruction] = [coupon]
    if tested is not None:
        seen = exposure.expose(
            rules, tested.experiment, facts.member_id, tested.arm, now, event.event_id, facts.home_store
        )
        plan.append(dataclasses.replace(seen, when=new(coupon)))
    if event.kind is Kind.FOLLOWED:
        plan.append(
            Reply(
                message_key=keys.welcome(facts.member_id),
                member_id=facts.member_id,
                text=text,
                cause=CAUSE,
                event_id=event.event_id,
                rules_version=rules.version,
                when=new(coupon),
                template=rule.template,
                payload=given.words,
            )
        )
        if rule.refollow_text:
            plan.append(
                Reply(
                    message_key=keys.refollow(event.event_id),
                    member_id=facts.member_id,
                    text=rule.refollow_text,
                    cause=CAUSE,
                    event_id=event.event_id,
                    rules_version=rules.version,
                    when=taken(coupon),
                )
            )
    else:
        # Group members and WeCom contacts have no passive reply: the outbox delivers it, as a
        # WeCom 1:1 message to the external contact, until the offer ends.
        plan.append(
            QueueMessage(
                message_key=keys.welcome(facts.member_id),
                member_id=facts.member_id,
                channel="wecom_customer",
                category="service",
                text=text,
                cause=CAUSE,
                event_id=event.event_id,
                rules_version=rules.version,
                payload={"group_id": event.group_id or ""},
                when=new(coupon),
                store_id=facts.home_store,
                expires_at=expires_at,
                hold_for_identity=facts.identity_pending,
            )
        )
    return plan
