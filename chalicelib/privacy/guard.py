"""What the pipeline does with the id of an erased member (decided on the event's reads, before
anything is written).

The choice, for the privacy officer and for ops:

- **While the erase runs**, the member's events are answered 503 (``Retryable``): WeChat and the
  POS retry, the redrive timer finishes the rest, and by then the erase is done.
- **Anything from before the erase that arrives after it** (a WeChat retry, a delivery receipt,
  a POS replay, a redriven event) and **anything about the id that is not the member doing
  something** (an unfollow, a receipt of a message sent before) is dropped: nothing is written,
  nothing is counted, the event is kept nowhere. An erase does not come undone by a late event.
- **The member doing something after the erase** (a follow, a message, an order …: ``ACTIVITY``)
  is a new member: a new profile with no past, counted as a new member. Two things still go by
  the WeChat account rather than the person: gifts the chain gives once per account keep their
  coupon codes in the register (a second follow gets no second welcome gift), and the
  ``members`` / ``followers`` totals, which are history, keep counting the erased member.

The erase leaves a tombstone keyed by the id's keyed hash (``Shared("erased", <subject>)``), read
with the event's other items in the same request: it costs no request of its own.
"""

from __future__ import annotations

from chalicelib.counters import is_new
from chalicelib.errors import Erased, Retryable
from chalicelib.events import ACTIVITY, Event
from chalicelib.privacy import pseudonyms
from chalicelib.privacy.records import COMPLETED
from chalicelib.settings import Settings
from chalicelib.state.models import Member, Shared
from chalicelib.store import db, keys


def tombstone_key(settings: Settings, member_id: str) -> db.Key:
    return (Shared, keys.ERASED, pseudonyms.subject(settings.privacy_secret, member_id))


def admit(event: Event, before: Member | None, member: Member | None, tombstone: Shared | None) -> None:
    """Return if the event may go on; raise Retryable (erase running) or Erased (drop it).
    ``member``: the member as this event would leave them."""
    if member is None:
        return
    if before is not None and before.erasing:
        raise Retryable("this member is being erased; retry shortly")
    if not is_new(before, member) or tombstone is None:
        return
    done = tombstone.value == COMPLETED and tombstone.valid_until is not None
    if done and event.kind in ACTIVITY and event.occurred_at > tombstone.valid_until:
        return  # the member is back: a new member
    if not done:
        raise Retryable("this member is being erased; retry shortly")
    raise Erased("an event of an erased member: dropped")
