"""Plans and the one place that applies them.

A duty decides with a pure function and returns a plan: a list of the frozen effects below.
``apply`` carries them out, each exactly once by construction: every effect has a
deterministic key and is written on the condition that the key is absent. A condition failure
means "already done", which is success. Effects can depend on whether a coupon was new to
this event (``when_coupon``), so a retried event repeats its reply while a re-follow does not
earn a second welcome.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.errors import Retryable
from chalicelib.events import robot_recipient
from chalicelib.logs import log
from chalicelib.loyalty import ledger
from chalicelib.loyalty.ledger import Posting as PostPoints
from chalicelib.recall import outcomes, record
from chalicelib.state.conditions import cancellation_codes, is_condition_failure
from chalicelib.state.items import coupon_item, pending_message
from chalicelib.state.models import Coupon, LoyaltyRecord, Member, OutboxMessage

CouponOutcome = Literal["new", "taken"]


@dataclass(frozen=True)
class IssueCoupon:
    code: str
    member_id: str
    cause: str
    cause_key: str
    event_id: str
    title: str
    value_fen: int
    min_spend_fen: int
    stores: frozenset[str] | None
    expires_at: datetime
    rules_version: str


@dataclass(frozen=True)
class Reply:
    """A passive reply on the official account (the answer to this very callback). When nobody is
    left to answer (``later``), the outbox delivers it: ``template`` and ``payload`` are for then."""

    message_key: str
    member_id: str
    text: str
    cause: str
    event_id: str
    rules_version: str
    when_coupon: tuple[str, CouponOutcome] | None = None
    when_record: tuple[str, str] | None = None  # (record / points key, outcome) of this plan
    template: str | None = None
    payload: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueMessage:
    """A message for the outbox to deliver later (no passive reply exists on this channel)."""

    message_key: str
    member_id: str
    channel: str
    category: Literal["service", "promo", "alert"]
    text: str
    cause: str
    event_id: str
    rules_version: str
    payload: dict[str, str] = field(default_factory=dict)
    when_coupon: tuple[str, CouponOutcome] | None = None
    template: str | None = None  # messaging.json template: the channel, or the fallback of "custom"
    store_id: str | None = None
    expires_at: datetime | None = None
    when_record: tuple[str, str] | None = None  # (record / points key, outcome) of this plan

    @classmethod
    def to_robot(
        cls, key: str, robot: str, lines: list[str], cause: str, rules_version: str, store_id: str | None = None
    ) -> QueueMessage:
        """A markdown message for a staff group's robot (alerts, review tickets): its key is its
        event, so a retried timer queues it once. ``robot`` names the robot (``ops``, a store id)."""
        return cls(
            message_key=key,
            member_id=robot_recipient(robot),
            channel="robot",
            category="alert",
            text="\n".join(lines),
            cause=cause,
            event_id=key,
            rules_version=rules_version,
            payload={"robot": "markdown"},
            store_id=store_id,
        )


@dataclass(frozen=True)
class RedeemCoupon:
    """Redeem a coupon for its member: once, by the one event (an order, a till's report) that
    gets there first; the same event again (a retry) finds it its own."""

    code: str
    member_id: str
    order_id: str | None
    at: datetime
    event_id: str


@dataclass(frozen=True)
class MarkReturned:
    """The member was active again: an open recall record (treated or held out) counts them as
    returned if this activity falls inside its attribution window."""

    member_id: str
    recall_key: str
    at: datetime
    day: str = ""  # the local day of the return, for the daily counters


@dataclass(frozen=True)
class OpenChallenge:
    """Open a low-repurchase challenge (``chalicelib.duties.challenge``): its record, the member's
    pointer to it and, for an invited member, the invitation, in one transaction."""

    decision: Any  # chalicelib.recall.decide.Decision
    day: str
    rules_version: str


@dataclass(frozen=True)
class RecordDelivery:
    """WeChat's later word on a message it accepted (TEMPLATESENDJOBFINISH, subscribe_msg_sent)."""

    member_id: str
    msg_id: str
    channel: str  # template | subscribe
    status: str
    ok: bool
    at: datetime


@dataclass(frozen=True)
class RecordConsent:
    member_id: str
    accepted: frozenset[str]
    refused: frozenset[str]


@dataclass(frozen=True)
class RecordOnce:
    """A loyalty fact written once by its key (a check-in, an invite, a draw, an agenda item).
    Its outcome (``new`` / ``taken``) is keyed ``<pk>|<sk>`` for ``when_record``."""

    pk: str
    sk: str
    member_id: str | None
    event_id: str
    rules_version: str
    at: datetime
    status: str | None = None
    number: int | None = None
    value: str | None = None

    @property
    def key(self) -> str:
        return f"{self.pk}|{self.sk}"


@dataclass(frozen=True)
class UpdateLoyalty:
    """Loyalty fields of a member, set only if the tier is still ``expect_tier`` (``""`` = none
    yet): two events that both upgrade a member upgrade (and notify) once. Outcome under ``key``."""

    key: str
    member_id: str
    expect_tier: str | None = None  # None: no condition
    tier: str | None = None
    tier_since: datetime | None = None
    tier_review_on: str | None = None
    add_tags: frozenset[str] = frozenset()
    remove_tags: frozenset[str] = frozenset()
    birthday: str | None = None
    invite_unlocked_at: datetime | None = None


@dataclass(frozen=True)
class CountInvite:
    """An invite whose grace period passed: the invitee's record moves pending → counted and the
    inviter's count n → n + 1 in one transaction, so each invitee counts once and the count has
    no gaps. The ordinal (n + 1) is kept on the invite: its rewards can be re-planned exactly."""

    invitee: str
    inviter: str
    count_before: int
    void: bool = False  # the invitee left within the grace period: pending → void, no count

    @property
    def key(self) -> str:
        return f"invitee#{self.invitee}|-"


@dataclass(frozen=True)
class OpenTicket:
    """Open a negative review's ticket with the store's first robot message, once
    (``chalicelib.reviews.tickets``)."""

    ticket_id: str
    member_id: str
    store_id: str | None
    score: int
    order_id: str | None
    opened_at: datetime
    next_at: datetime | None  # the first SLA step
    event_id: str
    rules_version: str
    message: QueueMessage


Effect = (
    IssueCoupon
    | Reply
    | QueueMessage
    | RedeemCoupon
    | RecordDelivery
    | RecordConsent
    | PostPoints
    | RecordOnce
    | UpdateLoyalty
    | CountInvite
    | MarkReturned
    | OpenChallenge
    | OpenTicket
)


@dataclass
class Applied:
    reply: str | None = None
    coupons: dict[str, CouponOutcome] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # causes of the coupons this event issued
    redeemed: list[str] = field(default_factory=list)  # causes of the coupons it redeemed
    records: dict[str, str] = field(default_factory=dict)  # points / record keys → new | taken | refused


def apply(plan: list[Effect], now: datetime) -> Applied:
    applied = Applied()
    for effect in plan:
        if isinstance(effect, IssueCoupon):
            applied.coupons[effect.code] = _issue(effect, now)
            if applied.coupons[effect.code] == "new":
                applied.issued.append(effect.cause)
        elif isinstance(effect, Reply | QueueMessage):
            if _condition_holds(effect.when_coupon, applied) and _record_holds(effect.when_record, applied):
                _message(effect, now, applied)
        elif isinstance(effect, PostPoints | RecordOnce | UpdateLoyalty | CountInvite):
            applied.records[effect.key] = _loyalty(effect)
        elif isinstance(effect, OpenChallenge | MarkReturned):
            _recall(effect, now, applied)
        elif isinstance(effect, RedeemCoupon):
            cause = _redeem(effect)
            if cause:
                applied.redeemed.append(cause)
        elif isinstance(effect, RecordDelivery):
            _record_delivery(effect)
        elif isinstance(effect, OpenTicket):
            _ticket(effect, now, applied)
        else:
            _record_consent(effect)
    return applied


def _recall(effect: OpenChallenge | MarkReturned, now: datetime, applied: Applied) -> None:
    if isinstance(effect, MarkReturned):
        outcomes.mark_returned(effect.member_id, effect.recall_key, effect.at, effect.day)
        return
    opened = record.write(effect.decision, effect.day, now, effect.rules_version)
    if opened == "new" and effect.decision.message:
        applied.messages.append(effect.decision.message.message_key)


def later(reply: Reply) -> QueueMessage:
    """A reply whose callback is no longer waiting (the redrive timer finished the event): a
    customer-service message instead, through the reply's template outside the 48-hour window."""
    return QueueMessage(
        reply.message_key,
        reply.member_id,
        "custom",
        "service",
        reply.text,
        reply.cause,
        reply.event_id,
        reply.rules_version,
        payload=dict(reply.payload),
        when_coupon=reply.when_coupon,
        template=reply.template,
        when_record=reply.when_record,
    )


def _ticket(effect: OpenTicket, now: datetime, applied: Applied) -> None:
    from chalicelib.reviews import tickets  # tickets builds QueueMessages: imported late

    if tickets.open_ticket(effect, now) == "new":
        applied.messages.append(effect.message.message_key)


def _message(effect: Reply | QueueMessage, now: datetime, applied: Applied) -> None:
    if isinstance(effect, QueueMessage):
        _record(pending_message(effect, now))
        applied.messages.append(effect.message_key)
    elif applied.reply is None:
        _record(
            OutboxMessage(
                effect.message_key,
                member_id=effect.member_id,
                channel="passive_reply",
                category="service",
                text=effect.text,
                cause=effect.cause,
                event_id=effect.event_id,
                rules_version=effect.rules_version,
                status="replied",
                created_at=now,
                sent_at=now,
                template=effect.template,
                payload=json.dumps(effect.payload, ensure_ascii=False) if effect.payload else None,
            )
        )
        applied.reply = effect.text


def _condition_holds(when: tuple[str, CouponOutcome] | None, applied: Applied) -> bool:
    return when is None or applied.coupons.get(when[0]) == when[1]


def _loyalty(effect: PostPoints | RecordOnce | UpdateLoyalty | CountInvite) -> str:
    """Loyalty effects: each reports ``new`` / ``taken`` (/ ``refused``) under its key."""
    if isinstance(effect, PostPoints):
        return ledger.post(effect)
    if isinstance(effect, RecordOnce):
        return _record_once(effect)
    if isinstance(effect, UpdateLoyalty):
        return _update_loyalty(effect)
    return _count_invite(effect)


def _record_holds(when: tuple[str, str] | None, applied: Applied) -> bool:
    return when is None or applied.records.get(when[0]) == when[1]


def _record_once(effect: RecordOnce) -> str:
    record = LoyaltyRecord(
        effect.pk,
        effect.sk,
        member_id=effect.member_id,
        status=effect.status,
        number=effect.number,
        value=effect.value,
        event_id=effect.event_id,
        rules_version=effect.rules_version,
        at=effect.at,
    )
    try:
        record.save(condition=LoyaltyRecord.sk.does_not_exist())
    except PutError as exc:
        if not is_condition_failure(exc):
            raise
        existing = LoyaltyRecord.get(effect.pk, effect.sk, consistent_read=True)
        return "new" if existing.event_id == effect.event_id else "taken"
    return "new"


def _count_invite(effect: CountInvite) -> str:
    ordinal = effect.count_before + 1
    invite = LoyaltyRecord(f"invitee#{effect.invitee}", "-")
    if effect.void:
        try:
            invite.update(actions=[LoyaltyRecord.status.set("void")], condition=LoyaltyRecord.status == "pending")
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise
            return "taken"
        log("referral.void", inviter=effect.inviter)
        return "new"
    try:
        with TransactWrite(connection=LoyaltyRecord._get_connection().connection) as transaction:
            transaction.update(
                LoyaltyRecord(f"invitee#{effect.invitee}", "-"),
                actions=[LoyaltyRecord.status.set("counted"), LoyaltyRecord.number.set(ordinal)],
                condition=LoyaltyRecord.status == "pending",
            )
            unchanged = (
                LoyaltyRecord.number.does_not_exist()
                if effect.count_before == 0
                else LoyaltyRecord.number == effect.count_before
            )
            transaction.update(
                LoyaltyRecord(f"inviter#{effect.inviter}", "count"),
                actions=[LoyaltyRecord.number.set(ordinal), LoyaltyRecord.member_id.set(effect.inviter)],
                condition=unchanged,
            )
    except TransactWriteError as exc:
        reasons = cancellation_codes(exc)
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return "taken"  # counted (or voided) already
        raise Retryable("the inviter's count changed meanwhile; the next run counts it") from exc
    log("referral.counted", inviter=effect.inviter, ordinal=ordinal)
    return "new"


def _update_loyalty(effect: UpdateLoyalty) -> str:
    actions = []
    if effect.tier is not None:
        actions += [Member.tier.set(effect.tier), Member.tier_since.set(effect.tier_since)]
    if effect.tier_review_on is not None:
        actions.append(Member.tier_review_on.set(effect.tier_review_on))
    if effect.add_tags:
        actions.append(Member.loyalty_tags.add(set(effect.add_tags)))
    if effect.remove_tags:
        actions.append(Member.loyalty_tags.delete(set(effect.remove_tags)))
    if effect.birthday is not None:
        actions.append(Member.birthday.set(effect.birthday))
    if effect.invite_unlocked_at is not None:
        actions.append(Member.invite_unlocked_at.set(Member.invite_unlocked_at | effect.invite_unlocked_at))
    if not actions:
        return "new"
    condition = Member.member_id.exists()
    if effect.expect_tier == "":
        condition &= Member.tier.does_not_exist()
    elif effect.expect_tier is not None:
        condition &= Member.tier == effect.expect_tier
    try:
        Member(effect.member_id).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise
        return _loyalty_refused(effect)
    return "new"


def _loyalty_refused(effect: UpdateLoyalty) -> str:
    try:
        member = Member.get(effect.member_id, consistent_read=True)
    except Member.DoesNotExist:
        return "taken"  # no such member (any more: an erased brand helper, say)
    # Done by an earlier attempt of this same decision: still this event's change.
    same = effect.tier is not None and member.tier == effect.tier and member.tier_since == effect.tier_since
    return "new" if same else "taken"


def _issue(effect: IssueCoupon, now: datetime) -> CouponOutcome:
    coupon = coupon_item(effect, now)
    try:
        coupon.save(condition=Coupon.code.does_not_exist())
    except PutError as exc:
        if not is_condition_failure(exc):
            raise
        existing = Coupon.get(effect.code, consistent_read=True)
        # Issued by this same event on an earlier attempt: still this event's coupon.
        return "new" if existing.event_id == effect.event_id else "taken"
    log(
        "coupon.issued",
        code=effect.code,
        cause=effect.cause,
        value_fen=effect.value_fen,
        rules_version=effect.rules_version,
    )
    return "new"


def _redeem(effect: RedeemCoupon) -> str | None:
    """Redeem the coupon; its cause when this redemption is this event's (also on a retry)."""
    coupon = Coupon(effect.code)
    try:
        coupon.update(
            actions=[
                Coupon.status.set("redeemed"),
                Coupon.redeemed_at.set(effect.at),
                Coupon.redeemed_order.set(effect.order_id) if effect.order_id else Coupon.redeemed_order.remove(),
                Coupon.redeemed_event.set(effect.event_id),
            ],
            condition=Coupon.code.exists() & (Coupon.member_id == effect.member_id) & (Coupon.status == "issued"),
        )
        log("coupon.redeemed", code=effect.code)
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise
        try:
            coupon = Coupon.get(effect.code, consistent_read=True)
        except Coupon.DoesNotExist:
            coupon = None
        if coupon is None or coupon.redeemed_event != effect.event_id:
            log("coupon.redeem_refused", code=effect.code, reason=refusal(coupon, effect.member_id))
            return None
        # This very redemption, recorded by an earlier attempt that died before linking it.
    outcomes.link_redemption(coupon)
    return coupon.cause


def refusal(coupon: Coupon | None, member_id: str) -> str:
    """Why a coupon cannot be redeemed by this member now (for logs and the till's answer)."""
    if coupon is None:
        return "unknown"
    if coupon.member_id != member_id:
        return "not_this_member"
    if coupon.status == "redeemed":
        return "used"
    return coupon.status


def _record_delivery(effect: RecordDelivery) -> None:
    """Attach WeChat's delivery status to the message it names; a message whose send outcome was
    unknown (no answer came) is matched by member and channel and settled as sent."""
    keys = [m.message_key for m in OutboxMessage.by_wechat_msgid.query(effect.msg_id)] if effect.msg_id else []
    if not keys:
        unknown = [
            m
            for m in OutboxMessage.by_member.query(effect.member_id)
            if m.status == "unknown" and m.sent_channel == effect.channel
        ]
        keys = [unknown[0].message_key] if unknown else []
    if not keys:
        log("delivery.unmatched", channel=effect.channel, ok=effect.ok)
        return
    actions = [OutboxMessage.delivery.set(effect.status or ("success" if effect.ok else "failed"))]
    if effect.msg_id:
        actions.append(OutboxMessage.wechat_msgid.set(effect.msg_id))
    OutboxMessage(keys[0]).update(actions=actions)
    try:
        OutboxMessage(keys[0]).update(
            actions=[
                OutboxMessage.status.set("sent"),
                OutboxMessage.sent_at.set(effect.at),
                OutboxMessage.reason.set("reconciled by WeChat's delivery event"),
            ],
            condition=OutboxMessage.status == "unknown",
        )
        log("delivery.reconciled", key=keys[0])
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise


def _record_consent(effect: RecordConsent) -> None:
    actions = []
    if effect.refused:
        actions.append(Member.refused_templates.add(set(effect.refused)))
    if effect.accepted:
        actions.append(Member.refused_templates.delete(set(effect.accepted)))
    if actions:
        Member(effect.member_id).update(actions=actions)


def _record(message: OutboxMessage) -> None:
    """Record a message once: the same key again is a no-op, except that a reply recorded by an
    earlier attempt of the same event, which never reached the member, is replaced (``later``)."""
    unsent_reply = (OutboxMessage.status == "replied") & (OutboxMessage.event_id == message.event_id)
    try:
        message.save(condition=OutboxMessage.message_key.does_not_exist() | unsent_reply)
    except PutError as exc:
        if not is_condition_failure(exc):
            raise
