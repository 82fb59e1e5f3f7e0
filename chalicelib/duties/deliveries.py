"""WeChat's reports about messages and consent: delivery results settle the outbox (including
sends whose outcome was unknown), subscription consent updates what the member accepts."""

from __future__ import annotations

from datetime import datetime

from chalicelib.duties.common import EventFacts, gather_event
from chalicelib.effects import Effect, RecordConsent, RecordDelivery
from chalicelib.events import Kind
from chalicelib.rules.loader import RuleSet

TRIGGERS = frozenset({Kind.TEMPLATE_DELIVERY, Kind.SUBSCRIBE_CONSENT})
CAUSE = "deliveries"


gather = gather_event


def decide(facts: EventFacts, rules: RuleSet, now: datetime) -> list[Effect]:
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
