"""Referral (裂变): a member who has spent enough unlocks an invite link; a new follower who
came through it counts for the inviter once the grace period has passed with the invitee still
following; the inviter is rewarded at each rule threshold (1 and 3 friends) (docs/domain.md,
"Referral").

An invite counts once per invitee ever (``invitee#<member>`` is written only if absent), never
for a member seen before (a returning or existing member, or — found out during the grace
period — a person already known from another channel: ``chalicelib/identity``), never for
oneself. The invite is pending until the loyalty timer confirms it after ``grace_days``
(``due#<day>`` agenda); an invitee who unfollowed, or turned out to be a known person, within
the grace period is void. Counting moves the invite and the
inviter's count in one transaction; rewards are keyed by the count reached, so each threshold
pays once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import ledger, offers
from chalicelib.calendars import local_day
from chalicelib.duties import points
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import CountInvite, Instruction, PostPoints, QueueMessage, RecordOnce, UpdateLoyalty, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member
from chalicelib.store import keys

TRIGGERS = frozenset({Kind.FOLLOWED, Kind.ORDER_PAID})
CAUSE = "referral"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    home_store: str | None
    new_member: bool  # first seen by this very event
    inviter_unlocked: bool
    unlocked: bool  # the member's own invite link
    spend_fen: int  # the member's net spend before this event


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None:
        return None
    if event.kind is Kind.FOLLOWED:
        if not event.inviter or event.inviter == event.member_id:
            return None
        inviter = reads.get(Member, event.inviter)
        if inviter is None:
            return None  # a forged or unknown inviter id earns nobody anything
        return Facts(
            event,
            event.member_id,
            member.store_id or event.store_id,
            reads.get(Member, event.member_id) is None,  # no row before this event
            inviter.invite_unlocked_at is not None,
            member.invite_unlocked_at is not None,
            0,
        )
    if member.invite_unlocked_at is not None:
        return None  # unlocked before
    spend = ledger.balance_of(event.member_id, reads).spend_fen + int(event.data.get("amount_fen") or 0)
    return Facts(event, event.member_id, member.store_id or event.store_id, False, False, False, spend)


def invite_link(rules: RuleSet, member_id: str) -> str:
    return f"{rules.loyalty.referral.invite_link}?inv={member_id}"


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    rule = rules.loyalty
    section = rule.referral
    if not section.enabled or not in_scope(rule, "loyalty", facts.member_id, facts.home_store, now):
        return []
    if facts.event.kind is Kind.ORDER_PAID:
        return _unlock(facts, rules)
    return _invite(facts, rules)


def _unlock(facts: Facts, rules: RuleSet) -> list[Instruction]:
    """Spending ``unlock_spend_yuan`` in total unlocks the member's invite link (and says so)."""
    section = rules.loyalty.referral
    event = facts.event
    if facts.spend_fen < section.unlock_spend_fen:
        return []
    key = keys.invite_unlocked(facts.member_id)
    words = {"invite_link": invite_link(rules, facts.member_id), "count": "0"}
    text = fill(section.unlock_text, **words)
    unlocked = UpdateLoyalty(key=key, member_id=facts.member_id, invite_unlocked_at=event.occurred_at)
    return [
        unlocked,
        QueueMessage(
            message_key=key,
            member_id=facts.member_id,
            channel="custom",
            category="service",
            text=text,
            cause=CAUSE,
            event_id=event.event_id,
            rules_version=rules.version,
            when=new(unlocked),
            payload=words,
            store_id=facts.home_store,
        ),
    ]


def _invite(facts: Facts, rules: RuleSet) -> list[Instruction]:
    section = rules.loyalty.referral
    event = facts.event
    inviter = str(event.inviter)
    if not facts.new_member or (section.unlock_spend_fen and not facts.inviter_unlocked):
        return []
    zone = rules.stores.zone_of(facts.home_store)
    due = local_day(event.occurred_at + timedelta(days=section.grace_days), zone) + timedelta(days=1)
    invite = RecordOnce(
        pk=keys.invitee(facts.member_id),
        sk=keys.INVITE,
        member_id=inviter,
        event_id=event.event_id,
        rules_version=rules.version,
        at=event.occurred_at,
        status="pending",
    )
    return [
        invite,
        RecordOnce(
            pk=keys.agenda(due),
            sk=keys.agenda_item("referral", facts.member_id),
            member_id=facts.member_id,
            event_id=event.event_id,
            rules_version=rules.version,
            at=event.occurred_at,
            when=new(invite),
        ),
    ]


# --- confirmation (the loyalty timer) --------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    invitee: str
    inviter: str
    status: str  # pending | counted | void
    ordinal: int  # counted: which invite of the inviter it was
    followed_at: datetime
    unsubscribed_at: datetime | None
    subscribed: bool
    inviter_count: int
    inviter_store: str | None
    existing_person: bool = False  # the invitee turned out to be a person seen before (merged into them)


def confirm(p: Pending, rules: RuleSet, now: datetime, secret: str) -> list[Instruction]:
    """Count a pending invite whose grace period is over, or void it; a counted invite's
    rewards are planned again (idempotent), so a run that stopped halfway completes."""
    section = rules.loyalty.referral
    if p.status == "counted":
        return rewards(p.inviter, p.ordinal, rules, now, secret, p.inviter_store)
    if p.status != "pending":
        return []
    grace_end = p.followed_at + timedelta(days=section.grace_days)
    left = p.unsubscribed_at is not None and p.followed_at <= p.unsubscribed_at <= grace_end
    # a "new friend" is a new person: one who was already a customer on another channel is not
    if left or not p.subscribed or p.existing_person:
        return [CountInvite(invitee=p.invitee, inviter=p.inviter, count_before=p.inviter_count, void=True)]
    count = CountInvite(invitee=p.invitee, inviter=p.inviter, count_before=p.inviter_count)
    return [count, *rewards(p.inviter, p.inviter_count + 1, rules, now, secret, p.inviter_store)]


def rewards(
    inviter: str,
    ordinal: int,
    rules: RuleSet,
    now: datetime,
    secret: str,
    store: str | None,
) -> list[Instruction]:
    """The rule's reward for reaching ``ordinal`` counted invites, keyed by it: paid once."""
    section = rules.loyalty.referral
    reward = next((r for r in section.rewards if r.invites == ordinal), None)
    if reward is None:
        return []
    cause_key = keys.referral_reward(inviter, ordinal)
    event_id = cause_key
    plan: list[Instruction] = []
    zone = rules.stores.zone_of(store)
    if reward.coupon is not None:
        today = local_day(now, zone)
        plan.append(
            offers.coupon(reward.coupon, inviter, CAUSE, cause_key, event_id, rules.version, today, zone, store, secret)
        )
    if reward.points:
        plan.append(
            PostPoints(
                member_id=inviter,
                key=keys.referral_points(ordinal),
                delta=reward.points,
                mode="credit",
                cause=CAUSE,
                event_id=event_id,
                rules_version=rules.version,
                at=now,
                expires_on=points.expiry_of(rules, now, store),
            )
        )
    words = {"count": str(ordinal), "invite_link": invite_link(rules, inviter)}
    text = fill(reward.text, **words)
    plan.append(
        QueueMessage(
            message_key=cause_key,
            member_id=inviter,
            channel="custom",
            category="service",
            text=text,
            cause=CAUSE,
            event_id=event_id,
            rules_version=rules.version,
            store_id=store,
            payload=words,
        )
    )
    return plan
