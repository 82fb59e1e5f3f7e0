"""The official account's menu entry to the member code (会员码): a click on the menu item whose
key is loyalty.json ``till.menu_key`` is answered with ``till.menu_text``, which links to the
mini program's page that shows the code (the code itself is asked by the mini program's server,
``POST /mp/member-code``: a passive reply lives on in the chat, a code must not). One reply per
click, keyed by the click's event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, Reply
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member
from chalicelib.store import keys

TRIGGERS = frozenset({Kind.CLICKED})
CAUSE = "member_code"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if event.member_id is None or event.source != "oa" or not event.data.get("key"):
        return None
    return Facts(event, event.member_id)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    till = rules.loyalty.till
    if not till.menu_key or facts.event.data.get("key") != till.menu_key:
        return []
    return [
        Reply(
            message_key=keys.member_code_reply(facts.event.event_id),
            member_id=facts.member_id,
            text=fill(till.menu_text, link=till.link),
            cause=CAUSE,
            event_id=facts.event.event_id,
            rules_version=rules.version,
        )
    ]
