"""Welcome (新人礼 / 入群礼): a new follower or new group member gets a welcome message and a
no-threshold coupon, once per member ever (docs/domain.md, "Welcome").

The coupon's code is derived from ``welcome#<member>``, so the coupon write itself decides
"first time ever": a re-follow, a retry, or a concurrent duplicate finds the code taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib import codes
from chalicelib.effects import Effect, QueueMessage, Reply
from chalicelib.events import Event, Kind
from chalicelib.offers import offer
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member

TRIGGERS = frozenset({Kind.FOLLOWED, Kind.JOINED_GROUP, Kind.CONTACT_ADDED})
CAUSE = "welcome"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    home_store: str | None
    code: str


def gather(event: Event, member: Member | None, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    return Facts(
        event,
        event.member_id,
        member.store_id or event.store_id,
        codes.derive(cause_key(event.member_id), settings.coupon_secret),
    )


def cause_key(member_id: str) -> str:
    return f"{CAUSE}#{member_id}"


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Effect]:
    rule = rules.welcome
    event = facts.event
    if event.kind.value not in rule.triggers or not in_scope(rule, CAUSE, facts.member_id, facts.home_store, now):
        return []
    given = offer(
        rule.coupon,
        code=facts.code,
        member_id=facts.member_id,
        cause=CAUSE,
        cause_key=cause_key(facts.member_id),
        event_id=event.event_id,
        home_store=facts.home_store,
        zone=rules.stores.zone_of(facts.home_store),
        now=now,
        rules_version=rules.version,
    )
    coupon, expires_at = given.coupon, given.coupon.expires_at
    text = fill(rule.text, **given.words, questionnaire_url=rule.questionnaire_url or "")
    plan: list[Effect] = [coupon]
    if event.kind is Kind.FOLLOWED:
        plan.append(
            Reply(
                cause_key(facts.member_id),
                facts.member_id,
                text,
                CAUSE,
                event.event_id,
                rules.version,
                when_coupon=(facts.code, "new"),
                template=rule.template,
                payload=given.words,
            )
        )
        if rule.refollow_text:
            plan.append(
                Reply(
                    f"refollow#{event.event_id}",
                    facts.member_id,
                    rule.refollow_text,
                    CAUSE,
                    event.event_id,
                    rules.version,
                    when_coupon=(facts.code, "taken"),
                )
            )
    else:
        # Group members and WeCom contacts have no passive reply: the outbox delivers it, as a
        # WeCom 1:1 message to the external contact, until the offer ends.
        plan.append(
            QueueMessage(
                cause_key(facts.member_id),
                facts.member_id,
                "wecom_customer",
                "service",
                text,
                CAUSE,
                event.event_id,
                rules.version,
                payload={"group_id": event.group_id or ""},
                when_coupon=(facts.code, "new"),
                store_id=facts.home_store,
                expires_at=expires_at,
            )
        )
    return plan
