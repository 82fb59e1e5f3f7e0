"""What happened after a recall: the member came back, the recall's coupon was redeemed.

Both arms are observed the same way: a held-out member's record is "open" exactly like a
treated one's, so the return rates compare like with like.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.logs import log
from chalicelib.metrics import counters
from chalicelib.state.conditions import cancellation_codes, is_condition_failure
from chalicelib.state.models import Coupon, Member, Recall

COUPON_CAUSES = frozenset({"recall", "challenge"})


def mark_returned(member_id: str, key: str, at: datetime, day: str) -> None:
    """Count the member as returned for the record ``key`` if ``at`` falls inside its window (and
    the day's ``recall_returned`` / ``challenge_completed`` counter with it, in one transaction);
    close the record on the member either way, unless the activity predates the recall (a late
    event) and the window is still ahead."""
    try:
        record: Recall | None = Recall.get(member_id, key, consistent_read=True)
    except Recall.DoesNotExist:
        record = None
    if record is not None and record.returned_at is None:
        if at < record.created_at:
            return  # activity from before the recall arrived late: the window is still open
        if at < record.window_until:
            _returned(record, at, day)
    Member(member_id).update(actions=[Member.recall_open.delete({key})])


def _returned(record: Recall, at: datetime, day: str) -> None:
    name = "challenge_completed" if record.stage == "challenge" else "recall_returned"
    counts = Counter({name: 1, f"{name}:{record.arm}": 1})
    try:
        with TransactWrite(connection=Recall._get_connection().connection) as transaction:
            transaction.update(
                Recall(record.member_id, record.key),
                actions=[Recall.returned_at.set(at)],
                condition=Recall.returned_at.does_not_exist(),
            )
            counters.add(counters.scopes_of(record.store_id, counts), date.fromisoformat(day), transaction)
    except TransactWriteError as exc:
        reasons = cancellation_codes(exc)
        if not reasons or reasons[0] != "ConditionalCheckFailed":
            raise
        return  # counted by a concurrent or earlier attempt
    log("recall.returned", stage=record.stage, arm=record.arm)


def link_redemption(coupon: Coupon) -> None:
    """A recall or challenge coupon was redeemed: note it on the decision that issued it."""
    if coupon.cause not in COUPON_CAUSES or coupon.redeemed_at is None:
        return
    key = record_key_of(coupon.cause_key)
    try:
        Recall(coupon.member_id, key).update(
            actions=[Recall.redeemed_at.set(coupon.redeemed_at), Recall.redeemed_fen.set(coupon.value_fen)],
            condition=Recall.key.exists(),
        )
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise
        log("recall.redemption_unlinked", code=coupon.code)


def cause_key(member_id: str, key: str, cause: str = "recall") -> str:
    return f"{cause}#{member_id}#{key}"


def record_key_of(coupon_cause_key: str) -> str:
    """``recall#<member>#<lapse>#<stage>`` → ``<lapse>#<stage>`` (member ids may not hold '#',
    stage names cannot)."""
    _, lapse, stage = coupon_cause_key.rsplit("#", 2)
    return f"{lapse}#{stage}"
