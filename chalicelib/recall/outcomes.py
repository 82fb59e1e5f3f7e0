"""What happened after a recall: the member came back, the recall's coupon was redeemed.

Both arms are observed the same way: a held-out member's record is "open" exactly like a
treated one's, so the return rates compare like with like.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import UpdateError

from chalicelib.logs import log
from chalicelib.state.models import Coupon, Member, Recall

COUPON_CAUSES = frozenset({"recall", "challenge"})


def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def mark_returned(member_id: str, key: str, at: datetime) -> None:
    """Count the member as returned for the record ``key`` if ``at`` falls inside its window;
    close the record on the member either way, unless the activity predates the recall (a late
    event) and the window is still ahead."""
    try:
        Recall(member_id, key).update(
            actions=[Recall.returned_at.set(at)],
            condition=Recall.key.exists()
            & Recall.returned_at.does_not_exist()
            & (Recall.created_at <= at)
            & (Recall.window_until > at),
        )
        log("recall.returned", key=key)
    except UpdateError as exc:
        if not _condition_failed(exc):
            raise
        try:
            record: Recall | None = Recall.get(member_id, key, consistent_read=True)
        except Recall.DoesNotExist:
            record = None
        if record is not None and record.returned_at is None and at < record.created_at:
            return  # activity from before the recall arrived late: the window is still open
    Member(member_id).update(actions=[Member.recall_open.delete({key})])


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
        if not _condition_failed(exc):
            raise
        log("recall.redemption_unlinked", code=coupon.code)


def cause_key(member_id: str, key: str, cause: str = "recall") -> str:
    return f"{cause}#{member_id}#{key}"


def record_key_of(coupon_cause_key: str) -> str:
    """``recall#<member>#<lapse>#<stage>`` → ``<lapse>#<stage>`` (member ids may not hold '#',
    stage names cannot)."""
    _, lapse, stage = coupon_cause_key.rsplit("#", 2)
    return f"{lapse}#{stage}"
