"""WeChat's reports about messages and consent: delivery results settle the outbox (including
sends whose outcome was unknown), subscription consent updates what the member accepts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib import counters
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.logs import log
from chalicelib.plans import Instruction, RecordConsent, RecordDelivery
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Member, OutboxMessage

TRIGGERS = frozenset({Kind.TEMPLATE_DELIVERY, Kind.SUBSCRIBE_CONSENT})
CAUSE = "deliveries"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    message_key: str | None  # the message the report is about
    unknown: bool  # its send's outcome was unknown until now
    cause: str | None = None  # its kind, to count it delivered (or not): None for staff messages or a repeat


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if not event.member_id:
        return None
    if event.kind is Kind.SUBSCRIBE_CONSENT:
        return Facts(event, event.member_id, None, False)
    message = _message_of(event)
    if message is None:
        return Facts(event, event.member_id, None, False)
    counted = message.delivery is None and counters.to_member(message.member_id, message.sent_channel or "")
    return Facts(
        event, event.member_id, message.message_key, message.status == "unknown", message.cause if counted else None
    )


def _message_of(event: Event) -> OutboxMessage | None:
    """The message WeChat's report names (by its msgid), else the member's message on that channel
    whose outcome is unknown (the send that got no answer)."""
    msg_id = str(event.data.get("msg_id") or "")
    for hit in OutboxMessage.by_wechat_msgid.query(msg_id) if msg_id else []:
        return OutboxMessage.get(hit.message_key, consistent_read=True)
    channel = str(event.data.get("channel") or "template")
    for message in OutboxMessage.by_member.query(str(event.member_id)):
        if message.status == "unknown" and message.sent_channel == channel:
            return message
    return None


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    event = facts.event
    if event.kind is Kind.SUBSCRIBE_CONSENT:
        items = event.data.get("items") or []
        accepted = frozenset(i["template_id"] for i in items if i.get("status") == "accept")
        refused = frozenset(i["template_id"] for i in items if i.get("status") == "reject")
        return [RecordConsent(member_id=facts.member_id, accepted=accepted, refused=refused)]
    data = event.data
    if facts.message_key is None:
        log("delivery.unmatched", channel=str(data.get("channel") or "template"), ok=bool(data.get("ok")))
        return []
    status = str(data.get("status") or "") or ("success" if data.get("ok") else "failed")
    msg_id = str(data.get("msg_id") or "") or None
    return [
        RecordDelivery(
            message_key=facts.message_key,
            status=status,
            msg_id=msg_id,
            at=event.occurred_at,
            settle_unknown=facts.unknown,
            cause=facts.cause,
        )
    ]
