"""What the pipeline does with the id of an erased member (called right after the member update).

The choice, for the privacy officer and for ops:

- **While the erase runs**, the member's events are answered 503 (``Retryable``): WeChat and the
  POS retry, the redrive timer finishes the rest, and by then the erase is done.
- **Anything from before the erase that arrives after it** (a WeChat retry, a delivery receipt,
  a POS replay, a redriven event) and **anything about the id that is not the member doing
  something** (an unfollow, a receipt of a message sent before) is dropped: the row the update
  just created is removed, the event is forgotten, nothing is counted. An erase does not come
  undone by a late event.
- **The member doing something after the erase** (a follow, a message, an order …: ``ACTIVITY``)
  is a new member: a new profile with no past, counted as a new member. Two things still go by
  the WeChat account rather than the person: gifts the chain gives once per account keep their
  coupon codes in the register (a second follow gets no second welcome gift), and the
  ``members`` / ``followers`` totals, which are history, keep counting the erased member.

The cost is one read, for a member id the update has just created (a first event), never for a
member siyu already knows.
"""

from __future__ import annotations

from pynamodb.exceptions import DeleteError

from chalicelib.errors import Erased, Retryable
from chalicelib.events import ACTIVITY, Event
from chalicelib.metrics.counters import is_new
from chalicelib.privacy import pseudonyms, records
from chalicelib.settings import Settings
from chalicelib.state.conditions import is_condition_failure
from chalicelib.state.models import Member


def admit(settings: Settings, event: Event, member: Member | None) -> None:
    """Return if the event may go on; raise Retryable (erase running) or Erased (drop it)."""
    if member is None:
        return
    if member.erasing:
        raise Retryable("this member is being erased; retry shortly")
    if not is_new(event, member):
        return
    erased = records.latest(pseudonyms.subject(settings.privacy_secret, member.member_id))
    if erased is None:
        return
    done = erased.status == records.COMPLETED and erased.completed_at is not None
    if done and event.kind in ACTIVITY and event.occurred_at > erased.completed_at:  # type: ignore[operator]
        return  # the member is back: a new member
    _remove(member, event)
    if not done:
        raise Retryable("this member is being erased; retry shortly")
    raise Erased("an event of an erased member: dropped")


def _remove(member: Member, event: Event) -> None:
    """The row this very event created (first seen now), and nothing newer."""
    try:
        member.delete(condition=Member.first_seen == event.occurred_at)
    except DeleteError as exc:
        if not is_condition_failure(exc):
            raise
