"""Records built from planned effects: the coupon and the outbox message as stored. Shared by the
effect applier and the transactions that write several records at once (recall)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.state.models import Coupon, OutboxMessage

if TYPE_CHECKING:
    from chalicelib.effects import IssueCoupon, QueueMessage

# A recorded message is handed to the queue at once; if that hand-off is lost, the release
# timer finds it on the outbox's due index after this grace.
PICKUP_GRACE = timedelta(seconds=60)


def pending_message(effect: QueueMessage, now: datetime) -> OutboxMessage:
    """The outbox record of a message to deliver: due for pick-up after ``PICKUP_GRACE``."""
    return OutboxMessage(
        effect.message_key,
        member_id=effect.member_id,
        channel=effect.channel,
        category=effect.category,
        text=effect.text,
        template=effect.template,
        payload=json.dumps(effect.payload, ensure_ascii=False) if effect.payload else None,
        store_id=effect.store_id,
        cause=effect.cause,
        event_id=effect.event_id,
        rules_version=effect.rules_version,
        status="pending",
        created_at=now,
        expires_at=effect.expires_at,
        due="1",
        not_before=now + PICKUP_GRACE,
    )


def coupon_item(effect: IssueCoupon, now: datetime) -> Coupon:
    return Coupon(
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
