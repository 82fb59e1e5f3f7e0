"""WeChat's reports about messages and consent: delivery results settle the outbox (including
sends whose outcome was unknown), subscription consent updates what the member accepts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.effects import Effect, RecordConsent, RecordDelivery
from chalicelib.events import Event, Kind
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.models import Member

TRIGGERS = frozenset({Kind.TEMPLATE_DELIVERY, Kind.SUBSCRIBE_CONSENT})
CAUSE = "deliveries"


@dataclass(frozen=True)
class Facts:
    event: Event


def gather(event: Event, member: Member | None, settings: Settings) -> Facts | None:
    return Facts(event) if event.member_id else None


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Effect]:
    event = facts.event
    member_id = event.member_id or ""
    if event.kind is Kind.TEMPLATE_DELIVERY:
        data = event.data
        return [
            RecordDelivery(
                member_id,
                str(data.get("msg_id") or ""),
                str(data.get("channel") or "template"),
                str(data.get("status") or ""),
                bool(data.get("ok")),
                event.occurred_at,
            )
        ]
    items = event.data.get("items") or []
    accepted = frozenset(i["template_id"] for i in items if i.get("status") == "accept")
    refused = frozenset(i["template_id"] for i in items if i.get("status") == "reject")
    return [RecordConsent(member_id, accepted, refused)]
