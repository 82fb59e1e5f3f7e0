"""The person of an event (docs/identity.md, "Finding the person").

A person is keyed by the first platform id siyu saw of them (so a member who only ever used one
channel is exactly what they were before persons existed). Every other id of theirs has a link
in the shared table, ``link#<id>`` → person; a UnionID has one too, ``unionid#<u>`` → person.
The event's one read fetches its platform id's link (and its UnionID's, when it carries one)
with everything else; only an event of a linked id reads once more, the person's own items.

The decision, on what was read:

1. the id's link names the person; without one the id is its own person (a merged-away
   person's row names the one it became);
2. a new id that carries a UnionID already linked is that person from its first event: no new
   member, no second welcome gift;
3. what the event teaches is recorded in its own commit, each on the link's absence: the new
   id's link, the person's UnionID; an id whose UnionID belongs to another person asks for a
   merge (``chalicelib.identity.merge``), which runs off the webhook's path;
4. an official-account follower or WeCom contact whose UnionID is unknown gets it asked of
   WeChat, off the webhook's path, once per id (``chalicelib.identity.learn``).

``person_of`` finds the person the same way for a caller that only reads (the member code of
``chalicelib/till``): the id's row and links in one request, and what the caller needs of the
person with them; a linked or merged id reads its person's row once more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib import plans
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.logs import log
from chalicelib.plans import Instruction
from chalicelib.state.models import Member, Shared
from chalicelib.store import db, keys

CHANNEL = "identity"  # the outbox channel of identity work (jobs.py hands it to chalicelib.identity.work)
ASKS = frozenset({Kind.FOLLOWED, Kind.CONTACT_ADDED, Kind.JOINED_GROUP})  # events that may ask WeChat
SOURCES_THAT_ASK = frozenset({"oa", "wecom"})  # the order webhook sends the UnionID itself
HOPS = 3  # link → person → the person it was merged into: never more in a consistent store


@dataclass(frozen=True)
class Resolved:
    event: Event  # with ``member_id`` the person, ``via`` the platform id when they differ
    plan: list[Instruction]  # what the event teaches about identity, for its commit
    final: bool  # False: the person's own items are still to be read


def unionid_of(event: Event) -> str | None:
    value = event.data.get("unionid")
    return str(value) if value else None


def prefetch(event: Event) -> list[db.Key]:
    """The links the event's first read fetches."""
    platform = event.platform_id
    if not platform:
        return []
    wanted: list[db.Key] = [(Shared, *keys.link(platform))]
    unionid = unionid_of(event)
    if unionid:
        wanted.append((Shared, *keys.unionid_link(unionid)))
    return wanted


def person_of(
    platform_id: str, unionid: str | None = None, also: Iterable[db.Key] = ()
) -> tuple[Member | None, Snapshot]:
    """The person ``platform_id`` is now (None: siyu knows no such member), and the snapshot it
    was found in: one request for the id's row, its link, its UnionID's link and ``also``."""
    wanted: list[db.Key] = [(Member, platform_id, None), (Shared, *keys.link(platform_id))]
    if unionid:
        wanted.append((Shared, *keys.unionid_link(unionid)))
    reads = Snapshot.read([*wanted, *also])
    link = reads.get(Shared, *keys.link(platform_id))
    owner = reads.get(Shared, *keys.unionid_link(unionid)) if unionid else None
    row = reads.get(Member, link.value if link is not None and link.value else platform_id)
    if row is None and link is None and owner is not None and owner.value:
        row = reads.get(Member, owner.value)  # a new id of a known person: theirs already
    for _ in range(HOPS):
        if row is None or not row.merged_into:
            return row, reads
        row = reads.get(Member, row.merged_into)
    return None, reads


def resolve(event: Event, reads: Snapshot, rules_version: str) -> Resolved:
    """The person the event belongs to, decided on ``reads``. Not final when that person is not
    the one whose items were read: the caller reads theirs and asks again."""
    platform = event.platform_id
    if not platform:
        return Resolved(event, [], True)
    link = reads.get(Shared, *keys.link(platform))
    unionid = unionid_of(event)
    owner = reads.get(Shared, *keys.unionid_link(unionid)) if unionid else None
    person = link.value if link is not None and link.value else platform
    row: Member | None = None
    for _ in range(HOPS):
        if (Member, person, None) not in reads.items:
            return _moved(event, person, platform)
        row = reads.get(Member, person)
        if row is not None and row.merged_into:
            person = row.merged_into
        elif row is None and link is None and owner is not None and owner.value and owner.value != person:
            person = owner.value  # a new id of a known person: theirs from its first event
        else:
            break
    if person != event.member_id:
        return _moved(event, person, platform)
    return Resolved(event, _lessons(event, link, row, owner, rules_version), True)


def _moved(event: Event, person: str, platform: str) -> Resolved:
    moved = dataclasses.replace(event, member_id=person, via=platform if person != platform else None)
    return Resolved(moved, [], False)


def _lessons(
    event: Event, link: Shared | None, person: Member | None, owner: Shared | None, version: str
) -> list[Instruction]:
    assert event.member_id is not None
    platform, unionid = event.platform_id, unionid_of(event)
    if unionid and person is not None and person.unionid and person.unionid != unionid:
        # a person has one UnionID: another one for them is the sender's mistake, not a lesson
        log("identity.unionid_mismatch", field="unionid", kind=event.kind.value)
        unionid, owner = None, None
    plan: list[Instruction] = []
    if platform and platform != event.member_id and link is None:
        plan.append(plans.LinkIdentity(pk=keys.link(platform)[0], person=event.member_id))
    if unionid and owner is None:
        plan.append(plans.LinkIdentity(pk=keys.unionid_link(unionid)[0], person=event.member_id))
    if unionid and owner is not None and owner.value and owner.value != event.member_id:
        plan.append(merge_task(event.member_id, owner.value, "unionid", event.event_id, version))
    known = (person is not None and person.unionid) or unionid
    if not known and platform and asks(event):
        plan.append(_ask(event, platform, version))
    return plan


def asks(event: Event) -> bool:
    """This event has its id's UnionID asked of WeChat (when the person has none yet)."""
    return event.kind in ASKS and event.source in SOURCES_THAT_ASK


def merge_task(one: str, other: str, why: str, event_id: str, version: str) -> plans.QueueMessage:
    first, second = sorted((one, other))
    return plans.QueueMessage(
        message_key=keys.identity_task("merge", f"{first}#{second}"),
        member_id=one,
        channel=CHANNEL,
        category="service",
        text="",
        cause="merge",
        event_id=event_id,
        rules_version=version,
        payload={"persons": f"{first} {second}", "why": why},
    )


def _ask(event: Event, platform: str, version: str) -> plans.QueueMessage:
    assert event.member_id is not None
    return plans.QueueMessage(
        message_key=keys.identity_task("unionid", platform),
        member_id=event.member_id,
        channel=CHANNEL,
        category="service",
        text="",
        cause="unionid",
        event_id=event.event_id,
        rules_version=version,
        payload={"platform_id": platform, "source": event.source},
    )
