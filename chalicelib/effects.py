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
from typing import Literal

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.logs import log
from chalicelib.state.models import Coupon, OutboxMessage

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


@dataclass(frozen=True)
class RedeemCoupon:
    code: str
    member_id: str
    order_id: str | None
    at: datetime


Effect = IssueCoupon | Reply | QueueMessage | RedeemCoupon


@dataclass
class Applied:
    reply: str | None = None
    coupons: dict[str, CouponOutcome] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def is_condition_failure(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def apply(plan: list[Effect], now: datetime) -> Applied:
    applied = Applied()
    for effect in plan:
        if isinstance(effect, IssueCoupon):
            applied.coupons[effect.code] = _issue(effect, now)
        elif isinstance(effect, RedeemCoupon):
            _redeem(effect)
        elif _condition_holds(effect.when_coupon, applied):
            if isinstance(effect, Reply):
                if applied.reply is None:
                    _record(
                        effect.message_key,
                        effect.member_id,
                        "passive_reply",
                        "service",
                        effect.text,
                        effect.cause,
                        effect.event_id,
                        effect.rules_version,
                        "replied",
                        now,
                    )
                    applied.reply = effect.text
            else:
                _record(
                    effect.message_key,
                    effect.member_id,
                    effect.channel,
                    effect.category,
                    effect.text,
                    effect.cause,
                    effect.event_id,
                    effect.rules_version,
                    "pending",
                    now,
                    effect.payload,
                )
                applied.messages.append(effect.message_key)
    return applied


def _condition_holds(when: tuple[str, CouponOutcome] | None, applied: Applied) -> bool:
    return when is None or applied.coupons.get(when[0]) == when[1]


def _issue(effect: IssueCoupon, now: datetime) -> CouponOutcome:
    coupon = Coupon(
        effect.code,
        member_id=effect.member_id,
        cause=effect.cause,
        cause_key=effect.cause_key,
        event_id=effect.event_id,
        title=effect.title,
        value_fen=effect.value_fen,
        min_spend_fen=effect.min_spend_fen,
        stores=set(effect.stores) if effect.stores else None,
        issued_at=now,
        expires_at=effect.expires_at,
        status="issued",
        rules_version=effect.rules_version,
    )
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


def _redeem(effect: RedeemCoupon) -> None:
    try:
        Coupon(effect.code).update(
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
        log("coupon.redeem_ignored", code=effect.code, reason="unknown, another member's, or redeemed already")


def _record(
    key: str,
    member_id: str,
    channel: str,
    category: str,
    text: str,
    cause: str,
    event_id: str,
    rules_version: str,
    status: str,
    now: datetime,
    payload: dict[str, str] | None = None,
) -> None:
    message = OutboxMessage(
        key,
        member_id=member_id,
        channel=channel,
        category=category,
        text=text,
        payload=json.dumps(payload, ensure_ascii=False) if payload else None,
        cause=cause,
        event_id=event_id,
        rules_version=rules_version,
        status=status,
        created_at=now,
    )
    try:
        message.save(condition=OutboxMessage.message_key.does_not_exist())
    except PutError as exc:
        if not is_condition_failure(exc):
            raise
