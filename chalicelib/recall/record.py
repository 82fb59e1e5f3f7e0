"""Carry out one recall decision in one DynamoDB transaction: the decision record (on the
condition it is new), the member's recall state (on the condition it is as the sweep read it),
and for a treated member the coupon and the outbox message. All or nothing: a sweep that dies
anywhere and runs again finds either nothing written (and decides again) or the record (and
moves on), never a coupon without its message or a message sent twice."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.logs import log
from chalicelib.metrics import counters
from chalicelib.state.conditions import cancellation_codes
from chalicelib.state.items import coupon_item, pending_message
from chalicelib.state.models import Coupon, Member, OutboxMessage, Recall

if TYPE_CHECKING:
    from chalicelib.recall.decide import Decision

KEEP = timedelta(days=400)
Written = Literal["new", "done", "changed"]


def write(decision: Decision, day: str, now: datetime, rules_version: str) -> Written:
    """``new``: written now; ``done``: an earlier run wrote it; ``changed``: the member changed
    since the sweep read them (read again and decide again)."""
    record = Recall(
        decision.member_id,
        decision.key,
        day=day,
        stage=decision.stage,
        store_id=decision.store_id,
        arm=decision.arm,
        reason=decision.reason,
        created_at=now,
        window_until=decision.window_until,
        coupon_code=decision.coupon.code if decision.coupon else None,
        coupon_fen=decision.coupon.value_fen if decision.coupon else None,
        message_key=decision.message.message_key if decision.message else None,
        rules_version=rules_version,
        expires=now + KEEP,
    )
    try:
        with TransactWrite(connection=Recall._get_connection().connection) as transaction:
            transaction.save(record, condition=Recall.key.does_not_exist())
            if decision.arm != "skipped":
                transaction.update(Member(decision.member_id), **_member_update(decision, now))
            if decision.coupon is not None:
                transaction.save(coupon_item(decision.coupon, now), condition=Coupon.code.does_not_exist())
            if decision.message is not None:
                message = pending_message(decision.message, now)
                transaction.save(message, condition=OutboxMessage.message_key.does_not_exist())
            counters.add(counters.scopes_of(decision.store_id, _counts(decision)), date.fromisoformat(day), transaction)
    except TransactWriteError as exc:
        # One reason per item in PynamoDB's order: the puts (record, coupon, message), then the
        # updates (member, counters).
        reasons = cancellation_codes(exc)
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return "done"
        member = 1 + (decision.coupon is not None) + (decision.message is not None)
        if decision.arm != "skipped" and len(reasons) > member and reasons[member] == "ConditionalCheckFailed":
            return "changed"
        raise
    log("recall.decided", stage=decision.stage, arm=decision.arm, reason=decision.reason, store=decision.store_id)
    return "new"


def _counts(decision: Decision) -> Counter[str]:
    """``recall_due`` / ``recall_treated`` / ``recall_holdout`` / ``recall_skipped`` (and the same
    with ``challenge_``), plus the coupon issued."""
    prefix = "challenge" if decision.stage == "challenge" else "recall"
    counts = Counter({f"{prefix}_due": 1, f"{prefix}_{decision.arm}": 1})
    if decision.coupon is not None:
        counts.update({"coupons_issued": 1, f"coupons_issued:{decision.coupon.cause}": 1})
    return counts


def _member_update(decision: Decision, now: datetime) -> dict:
    previous = decision.previous
    if decision.stage == "challenge":
        opened = previous.get("challenge")
        return {
            "actions": [Member.challenge.set(decision.key)],
            "condition": Member.challenge.does_not_exist() if opened is None else Member.challenge == opened,
        }
    unchanged = (
        Member.recall_lapse.does_not_exist()
        if previous.get("lapse") is None
        else Member.recall_lapse == previous["lapse"]
    ) & (
        Member.recall_attempts.does_not_exist()
        if previous.get("attempts") is None
        else Member.recall_attempts == previous["attempts"]
    )
    return {
        "actions": [
            Member.recall_lapse.set(decision.lapse),
            Member.recall_attempts.set(decision.attempts),
            Member.recall_last_at.set(now),
            Member.recall_open.add({decision.key}),
        ],
        "condition": Member.member_id.exists() & unchanged,
    }
