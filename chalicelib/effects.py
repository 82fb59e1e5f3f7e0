"""Plans and the one place that applies them.

A duty decides with a pure function and returns a plan: a list of the frozen effects below.
``apply`` carries them out, each exactly once by construction: every effect has a
deterministic key and is written on the condition that the key is absent. A condition failure
means "already done", which is success. Effects can depend on whether a coupon was new to
this event (``when_coupon``), so a retried event repeats its reply while a re-follow does not
earn a second welcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.logs import log
from chalicelib.recall import outcomes, record
from chalicelib.state.items import coupon_item, pending_message
from chalicelib.state.models import Coupon, Member, OutboxMessage

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
    """A passive reply on the official account (the answer to this very callback)."""

    message_key: str
    member_id: str
    text: str
    cause: str
    event_id: str
    rules_version: str
    when_coupon: tuple[str, CouponOutcome] | None = None


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


@dataclass(frozen=True)
class RedeemCoupon:
    code: str
    member_id: str
    order_id: str | None
    at: datetime


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


Effect = (
    IssueCoupon | Reply | QueueMessage | RedeemCoupon | RecordDelivery | RecordConsent | MarkReturned | OpenChallenge
)


@dataclass
class Applied:
    reply: str | None = None
    coupons: dict[str, CouponOutcome] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # causes of the coupons this event issued
    redeemed: list[str] = field(default_factory=list)  # causes of the coupons it redeemed


def is_condition_failure(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def apply(plan: list[Effect], now: datetime) -> Applied:
    applied = Applied()
    for effect in plan:
        if isinstance(effect, IssueCoupon):
            applied.coupons[effect.code] = _issue(effect, now)
            if applied.coupons[effect.code] == "new":
                applied.issued.append(effect.cause)
        elif isinstance(effect, Reply | QueueMessage):
            if _condition_holds(effect.when_coupon, applied):
                _message(effect, now, applied)
        elif isinstance(effect, OpenChallenge):
            opened = record.write(effect.decision, effect.day, now, effect.rules_version)
            if opened == "new" and effect.decision.message:
                applied.messages.append(effect.decision.message.message_key)
        elif isinstance(effect, MarkReturned):
            outcomes.mark_returned(effect.member_id, effect.recall_key, effect.at, effect.day)
        elif isinstance(effect, RedeemCoupon):
            cause = _redeem(effect)
            if cause:
                applied.redeemed.append(cause)
        elif isinstance(effect, RecordDelivery):
            _record_delivery(effect)
        else:
            _record_consent(effect)
    return applied


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
            )
        )
        applied.reply = effect.text


def _condition_holds(when: tuple[str, CouponOutcome] | None, applied: Applied) -> bool:
    return when is None or applied.coupons.get(when[0]) == when[1]


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
        if coupon is None or coupon.member_id != effect.member_id or coupon.redeemed_at != effect.at:
            log("coupon.redeem_ignored", code=effect.code, reason="unknown, another member's, or redeemed already")
            return None
        # This very redemption, recorded by an earlier attempt that died before linking it.
    outcomes.link_redemption(coupon)
    return coupon.cause


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
    """Record a message once: the same key again is a no-op."""
    try:
        message.save(condition=OutboxMessage.message_key.does_not_exist())
    except PutError as exc:
        if not is_condition_failure(exc):
            raise
