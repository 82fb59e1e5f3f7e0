"""Facts shared by duties that need nothing but the event itself."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.events import Event
from chalicelib.facts import Snapshot
from chalicelib.settings import Settings
from chalicelib.state.models import Member


@dataclass(frozen=True)
class EventFacts:
    event: Event


def gather_event(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> EventFacts | None:
    """The event alone, for events that name a member."""
    return EventFacts(event) if event.member_id else None
