"""What ops see of one member, and the admin credential check."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from chalicelib import ledger
from chalicelib.delivery import routes
from chalicelib.errors import NotFound, Unauthorized
from chalicelib.identity import merge
from chalicelib.offers import yuan
from chalicelib.rules.models import MessagingRule
from chalicelib.settings import Settings
from chalicelib.state.models import Coupon, Member, OutboxMessage, Shared
from chalicelib.store import keys


def authorize(settings: Settings, authorization: str | None, iam_caller: str | None) -> str:
    """Who is asking. In AWS the IAM authorizer has already verified the caller (its ARN is in
    the request context); outside AWS a bearer token from ``SIYU_ADMIN_TOKEN`` is required.
    An unset token closes the admin routes rather than opening them."""
    if iam_caller and settings.stage != "local":
        return iam_caller
    if not settings.admin_token:
        raise Unauthorized("admin routes are closed: SIYU_ADMIN_TOKEN is not set")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    if not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
        raise Unauthorized("wrong admin token")
    return "admin-token"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def member_view(member_id: str, now: datetime, messaging: MessagingRule) -> dict[str, Any]:
    """The person ``member_id`` is (any of their ids), with what every person merged into them had,
    and what they can receive now (``reach``: chalicelib/delivery/routes.py)."""
    found = merge.current(member_id)
    if found is None:
        raise NotFound(f"no member {member_id}")
    member = found
    member_id = member.member_id
    persons = [member_id, *sorted(member.absorbed or ())]
    coupons = [
        {
            "code": c.code,
            "title": c.title,
            "value": yuan(int(c.value_fen)),
            "value_fen": c.value_fen,
            "min_spend_fen": c.min_spend_fen,
            "cause": c.cause,
            "status": "expired" if c.status == "issued" and c.expires_at < now else c.status,
            "stores": sorted(c.stores) if c.stores else "all",
            "issued_at": _iso(c.issued_at),
            "expires_at": _iso(c.expires_at),
            "redeemed_at": _iso(c.redeemed_at),
            "rules_version": c.rules_version,
        }
        for person in persons
        for c in Coupon.by_member.query(person)
    ]
    messages = [
        {
            "key": m.message_key,
            "channel": m.channel,
            "category": m.category,
            "cause": m.cause,
            "status": m.status,
            "reason": m.reason,
            "created_at": _iso(m.created_at),
            "sent_at": _iso(m.sent_at),
            "delivery": m.delivery,  # WeChat's later receipt (success / failed:…), when it came
            "rules_version": m.rules_version,
        }
        for person in persons
        for m in OutboxMessage.by_member.query(person)
    ]
    return {
        "member_id": member.member_id,
        "origin": member.origin,
        "subscribed": member.subscribed == "yes",
        "store_id": member.store_id,
        "channel": member.channel,
        "inviter": member.inviter,
        "groups": sorted(member.groups or []),
        "first_seen": _iso(member.first_seen),
        "last_active": _iso(member.last_active),
        "subscribed_at": _iso(member.subscribed_at),
        "unsubscribed_at": _iso(member.unsubscribed_at),
        "person": _person(member),
        "coupons": coupons,
        "messages": messages,
        "reach": _reach(member, messaging, now),
        "loyalty": {  # issue 7
            "points": ledger.balance_of(member_id).points,
            "tier": member.tier,
            "tier_review_on": member.tier_review_on,
            "tags": sorted(member.loyalty_tags or []),
            "birthday": member.birthday,
            "invite_unlocked": member.invite_unlocked_at is not None,
        },
        "segments": {  # issue 21: as of the member's latest evaluation (chalicelib/segments)
            "segments": sorted(member.segments or []),
            "tags": sorted(member.segment_tags or []),
            "evaluated_at": _iso(member.segments_at),
            "rules_version": member.segments_version,
        },
    }


def _reach(member: Member, messaging: MessagingRule, now: datetime) -> dict[str, Any]:
    """``routes.reach``, with the unused consents of the templates the member accepted (one batch read;
    none for a member who never accepted one)."""
    accepted = {t.template_id for t in messaging.templates.values() if t.channel in routes.SUBSCRIBE_CHANNELS}
    accepted &= set(member.consented or ())
    template_of = {keys.consent(member.member_id, t): t for t in sorted(accepted)}
    found = Shared.batch_get([(keys.COUNTERS, sk) for sk in template_of]) if template_of else []
    grants = {template_of[item.sk]: int(item.tally or 0) for item in found}
    return routes.reach(member, messaging, now, grants)


def _person(member: Member) -> dict[str, Any]:
    """The person's ids, UnionID and merges: who merged what, when and why (chalicelib/identity)."""
    merges = []
    for absorbed in sorted(member.absorbed or ()):
        record = merge.record_of(absorbed)
        if record is not None:
            merges.append(
                {
                    "absorbed": absorbed,
                    "why": record.why,
                    "who": record.who,
                    "at": record.at,
                    "state": record.state,
                    "welcome_voided": record.voided,
                    "points_brought": record.points,
                }
            )
    return {
        "ids": sorted(member.ids or []),
        "unionid": member.unionid,
        "merged": merges,
    }
