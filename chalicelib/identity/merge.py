"""Two persons who are one: merged exactly once, resumable, undoable (docs/identity.md, "Merging").

The **survivor** is the older person (the earlier ``first_seen``; on a tie the smaller id). Its
recall clock, recall records and holdout arm stay as they are: the recall experiment has been
measuring that person the longest, and moving them to another arm (or restarting their lapse)
would blur the lift it reports; the newer person's recall state is days old at most.

A merge runs in three steps, each idempotent, so a merge that stops anywhere is finished by
running it again (``siyu member merge`` or the identity task that asked for it):

1. **link** — one transaction: the merge record (on its absence: two merges of the same pair at
   once commit one), the absorbed person's row marked ``merged_into`` (on its being as read: an
   event that changed it meanwhile makes the merge read again, and the event, whose update
   requires the row not to be merged, decides again for the survivor), the survivor's row with
   both persons' facts combined, every id of the absorbed person linked to the survivor, and the
   later welcome gift voided when both were issued and the later one is unused. From here on
   every event of either person is the survivor's; coupons of the absorbed person are the
   survivor's (``absorbed``): redeemable from any of the person's ids.
2. **ledger** — the absorbed person's ledger rows (entries and order items) are copied whole
   into the survivor's partition, each put on its absence (``merged_from`` names where it came
   from; a key the survivor has already gets ``@<absorbed>``): the person's statement, refunds
   of the absorbed person's orders and the tiers' order history read them there. Then one
   transaction posts the absorbed balance to the survivor as one ``merge#<absorbed>#<n>`` entry (an
   ordinary ledger posting: its own exactly-once key, the balance's sequence lock) and marks the
   absorbed balance ``moved_to``. The audit sums a partition's own entries, not the copies
   (``chalicelib/ledger.py``), so it balances at every step. The absorbed rows are deleted last.
3. **done** — the record says so, with what the merge did.

``unlink`` (ops: a mistaken link) undoes one: the absorbed person's rows, ids and ledger come
back (refused when the survivor has spent points the absorbed person brought), the voided gift
is issued again, and the pair is never merged again on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib import codes, counters, executor, ledger, plans
from chalicelib.clock import SHANGHAI
from chalicelib.errors import Conflict, NotFound, Retryable
from chalicelib.logs import log
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state import members
from chalicelib.state.models import Coupon, Member, OutboxMessage, PointsRecord, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome, Write

ATTEMPTS = 5  # reads of the pair before a merge gives up as too contended (it is resumable)
BATCH = 40  # rows per transaction when rows are deleted


@dataclass(frozen=True)
class Merged:
    survivor: str
    absorbed: str
    outcome: str  # merged | already | refused
    reason: str = ""
    voided: tuple[str, ...] = ()
    moved_rows: int = 0


@dataclass
class Record:
    """The merge record (``merge#<absorbed>`` in the shared table), as JSON in ``value``."""

    survivor: str
    absorbed: str
    why: str
    who: str
    at: str
    state: str = "linked"  # linked → done | undone
    ids: list[str] = field(default_factory=list)  # the absorbed person's ids ("<source>/<id>")
    voided: list[str] = field(default_factory=list)  # welcome coupons voided by this merge
    points: int = 0  # what the absorbed ledger brought: its balance, spend and sequence number
    spend_fen: int = 0
    seq: int = 0
    undone_at: str | None = None
    number: int = 1  # the how-many-th merge of this person (a pair merged again after an undo)

    def item(self) -> Shared:
        pk, sk = keys.merge_record(self.absorbed)
        return Shared(pk, sk, value=json.dumps(self.__dict__, ensure_ascii=False, sort_keys=True))

    @classmethod
    def of(cls, item: Shared | None) -> Record | None:
        return cls(**json.loads(item.value)) if item is not None and item.value else None


def record_of(absorbed: str) -> Record | None:
    return Record.of(db.get(Shared, *keys.merge_record(absorbed)))


def current(person_id: str) -> Member | None:
    """The person an id is now: its link, then the row it was merged into (a few hops at most)."""
    link = db.get(Shared, *keys.link(person_id))
    person = link.value if link is not None and link.value else person_id
    for _ in range(3):
        row = db.get(Member, person)
        if row is None or not row.merged_into:
            return row
        person = row.merged_into
    return None


def order(one: Member, other: Member) -> tuple[Member, Member]:
    """(survivor, absorbed): the older person survives (module docstring says why)."""
    far = datetime.max.replace(tzinfo=SHANGHAI)
    first, second = sorted((one, other), key=lambda m: (m.first_seen or far, m.member_id))
    return first, second


def merge(
    one: str,
    other: str,
    *,
    why: str,
    who: str,
    now: datetime,
    settings: Settings,
    rules: RuleSet | None = None,
    by_hand: bool = False,
) -> Merged:
    """Merge the persons of two ids. ``by_hand``: ops ask (``siyu member merge``), which also
    merges a pair ops once unlinked."""
    for _ in range(ATTEMPTS):
        a, b = current(one), current(other)
        if a is None or b is None:
            raise NotFound("no such person: " + ("the first id" if a is None else "the second id"))
        if a.member_id == b.member_id:
            pending = _pending_of(a)
            if pending is not None:
                return _finish(pending, now)
            return Merged(a.member_id, b.member_id, "already")
        survivor, absorbed = order(a, b)
        refusal = _refusal(survivor, absorbed, by_hand)
        if refusal:
            log("identity.merge_refused", reason=refusal)
            return Merged(survivor.member_id, absorbed.member_id, "refused", refusal)
        earlier = db.get(Shared, *keys.merge_record(absorbed.member_id))
        before = Record.of(earlier)
        record = Record(
            survivor=survivor.member_id,
            absorbed=absorbed.member_id,
            why=why,
            who=who,
            at=now.isoformat(),
            ids=sorted(_ids_of(absorbed)),
            number=before.number + 1 if before is not None else 1,
        )
        replaced = earlier if before is not None and before.state == "undone" else None
        writes, record = _link_writes(survivor, absorbed, record, replaced, now, settings, rules)
        committed = db.commit(writes, f"merge#{absorbed.member_id}")
        if committed.outcome is Outcome.NEW:
            log("identity.merged", step="linked", ids=len(record.ids), voided=len(record.voided))
            if record.voided:
                _drop_welcome(absorbed.member_id, now)
            return _finish(record, now)
        # a concurrent merge of the pair, or an event of either person: read again
    raise Retryable("these persons keep changing; run the merge again")


def _refusal(survivor: Member, absorbed: Member, by_hand: bool) -> str:
    if survivor.erasing or absorbed.erasing:
        return "a person is being erased"
    if survivor.unionid and absorbed.unionid and survivor.unionid != absorbed.unionid:
        return "the persons have different UnionIDs"
    if not by_hand and db.get(Shared, *keys.no_merge(survivor.member_id, absorbed.member_id)) is not None:
        return "ops unlinked these persons; they are merged only by hand"
    return ""


def _pending_of(person: Member) -> Record | None:
    """A merge into ``person`` whose ledger step has not finished (a merge stopped midway)."""
    for absorbed in sorted(person.absorbed or ()):
        record = record_of(absorbed)
        if record is not None and record.state == "linked" and record.survivor == person.member_id:
            return record
    return None


def _ids_of(person: Member) -> set[str]:
    own = f"{person.origin or 'oa'}/{person.member_id}"
    return set(person.ids or ()) | {own}


def _platform(id_: str) -> str:
    return id_.split("/", 1)[1]


# How each fact of the two persons combines (docs/identity.md, "What a merge keeps"):
KEEP_OR_FILL = ("unionid", "store_id", "channel", "inviter", "birthday")  # the survivor's; else theirs
UNION = ("groups", "order_days", "refused_templates", "loyalty_tags")
LATEST = ("service_window_until",)
EARLIEST = ("invite_unlocked_at",)


def _combined(survivor: Member, absorbed: Member, now: datetime, rules: RuleSet | None) -> list[Any]:
    """The survivor's update: both persons' facts, combined by rule. The recall state (lapse,
    attempts, open recalls, the challenge arm) stays the survivor's (module docstring)."""
    s, a = survivor, absorbed
    attributes = Member.get_attributes()
    actions: list[Any] = [
        Member.updated_at.set(now),
        Member.ids.add(_ids_of(a) | _ids_of(s)),
        Member.absorbed.add({a.member_id} | set(a.absorbed or ())),
    ]
    for name in KEEP_OR_FILL:
        theirs = getattr(a, name)
        if getattr(s, name) is None and theirs is not None and theirs != s.member_id:
            actions.append(attributes[name].set(theirs))
    for name in UNION:
        if getattr(a, name):
            actions.append(attributes[name].add(set(getattr(a, name))))
    for name, later in [*((n, True) for n in LATEST), *((n, False) for n in EARLIEST)]:
        mine, theirs = getattr(s, name), getattr(a, name)
        if theirs is not None and (mine is None or (theirs > mine if later else theirs < mine)):
            actions.append(attributes[name].set(theirs))
    if a.last_active is not None and (s.last_active is None or a.last_active > s.last_active):
        actions += [Member.last_active.set(a.last_active), Member.active_day.set(str(a.active_day))]
    if a.blocked == "yes":
        actions.append(Member.blocked.set("yes"))
    return actions + _following(s, a) + _loyalty(s, a, rules)


def _following(s: Member, a: Member) -> list[Any]:
    """Following is the official-account id's fact: the person follows if that id does."""
    if a.subscribed is None or s.subscribed == "yes" or (s.subscribed is not None and a.subscribed != "yes"):
        return []
    return [
        Member.subscribed.set(a.subscribed),
        *([Member.subscribed_at.set(a.subscribed_at)] if a.subscribed_at else []),
    ]


def _loyalty(s: Member, a: Member, rules: RuleSet | None) -> list[Any]:
    """The higher tier (with its dates); the streak of the later check-in (same day: the longer)."""
    actions: list[Any] = []
    if _rank(rules, a.tier) > _rank(rules, s.tier):
        actions.append(Member.tier.set(a.tier))
        actions += [Member.tier_since.set(a.tier_since)] if a.tier_since else []
        actions += [Member.tier_review_on.set(a.tier_review_on)] if a.tier_review_on else []
    mine, theirs = (s.checkin_day or "", int(s.checkin_streak or 0)), (a.checkin_day or "", int(a.checkin_streak or 0))
    if a.checkin_day and theirs > mine:
        actions += [Member.checkin_day.set(a.checkin_day), Member.checkin_streak.set(theirs[1])]
    return actions


def _rank(rules: RuleSet | None, tier: str | None) -> int:
    if not tier:
        return -1
    if rules is None:
        return 0
    names = [level.name for level in rules.loyalty.tiers.levels]
    return names.index(tier) if tier in names else 0


def _as_read(member: Member) -> Any:
    """The row is as read: not merged, not being erased, not changed by an event since."""
    condition = Member.member_id.exists() & Member.merged_into.does_not_exist() & Member.erasing.does_not_exist()
    if member.updated_at is None:
        return condition & Member.updated_at.does_not_exist()
    return condition & (Member.updated_at == member.updated_at)


def _link_writes(
    survivor: Member,
    absorbed: Member,
    record: Record,
    replaced: Shared | None,
    now: datetime,
    settings: Settings,
    rules: RuleSet | None,
) -> tuple[list[Write], Record]:
    voided = _welcome_to_void(survivor, absorbed, settings)
    record.voided = [coupon.code for coupon in voided]
    ledger = db.get(PointsRecord, absorbed.member_id, keys.BALANCE)
    if ledger is not None and not ledger.moved_to:
        record.points, record.spend_fen = int(ledger.balance or 0), int(ledger.spend_fen or 0)
        record.seq = int(ledger.seq or 0)
    gone = [
        Member.merged_into.set(survivor.member_id),
        Member.merged_at.set(now),
        Member.updated_at.set(now),
        Member.active_day.remove(),  # out of the recall sweep's index: the survivor is swept
    ]
    # on its absence — or in place of the record, as read, of a merge of this person that ops undid
    fresh = Shared.pk.does_not_exist() if replaced is None else Shared.value == replaced.value
    writes = [
        Write("put", record.item(), condition=fresh),
        Write("update", Member(absorbed.member_id), tuple(gone), _as_read(absorbed)),
        Write(
            "update", Member(survivor.member_id), tuple(_combined(survivor, absorbed, now, rules)), _as_read(survivor)
        ),
    ]
    theirs = members.platform_ids(absorbed) - members.platform_ids(survivor)
    for platform in sorted(theirs):
        writes.append(Write("put", Shared(*keys.link(platform), value=survivor.member_id)))
    if absorbed.unionid:
        writes.append(Write("put", Shared(*keys.unionid_link(absorbed.unionid), value=survivor.member_id)))
    for coupon in voided:
        writes.append(Write("update", Coupon(coupon.code), (Coupon.status.set("void"),), Coupon.status == "issued"))
    day = now.astimezone(rules.stores.zone_of(None) if rules is not None else SHANGHAI).date().isoformat()
    counted = {"persons_merged": 1, **({"welcome_voided": len(voided)} if voided else {})}
    instructions: list[plans.Instruction] = [
        plans.AddCounters(scope=counters.CHAIN, key=day, counts=counted),
        plans.AddCounters(scope=counters.CHAIN, key=keys.TOTAL, counts={"members": -1, "persons_merged": 1}),
    ]
    if absorbed.store_id:
        instructions.append(plans.AddCounters(scope=absorbed.store_id, key=keys.TOTAL, counts={"members": -1}))
    writes += executor.compile_plan(executor.combine_counters(instructions), now)
    return writes, record


def _welcome_to_void(survivor: Member, absorbed: Member, settings: Settings) -> list[Coupon]:
    """Both persons got the welcome gift before anyone knew they were one: the later one goes,
    if it is unused (a used one stays used: the member spent it in good faith)."""
    persons = sorted({m for p in (survivor, absorbed) for m in {p.member_id, *(p.absorbed or ())}})
    found = db.fetch([(Coupon, codes.welcome(person, settings.coupon_secret), None) for person in persons])
    gifts = sorted((c for c in found.values() if isinstance(c, Coupon)), key=lambda c: (c.issued_at, c.code))
    return [gift for gift in gifts[1:] if gift.status == "issued"]


def _drop_welcome(absorbed: str, now: datetime) -> None:
    """The voided gift's message is not sent if it has not gone yet (a WeCom welcome waits for
    the identity work: ``plans.QueueMessage.hold_for_identity``)."""
    unsent = OutboxMessage.status.is_in("pending", "deferred", "retrying")
    actions = [
        OutboxMessage.status.set("dropped"),
        OutboxMessage.reason.set("merged: the person has a welcome gift already"),
        OutboxMessage.due.remove(),
        OutboxMessage.updated_at.set(now),
    ]
    db.update(OutboxMessage(keys.welcome(absorbed)), actions, OutboxMessage.message_key.exists() & unsent)


# --- step 2: the ledger ------------------------------------------------------------------------


def _finish(record: Record, now: datetime) -> Merged:
    moved = _move_ledger(record, now)
    record.state = "done"
    db.save(record.item())
    log("identity.merged", step="done", rows=moved)
    return Merged(record.survivor, record.absorbed, "merged", voided=tuple(record.voided), moved_rows=moved)


def _rows(member_id: str) -> list[PointsRecord]:
    return list(PointsRecord.query(member_id, consistent_read=True))


def _move_ledger(record: Record, now: datetime) -> int:
    survivor, absorbed = record.survivor, record.absorbed
    for _ in range(ATTEMPTS):
        theirs = _rows(absorbed)
        head = next((r for r in theirs if r.sk == keys.BALANCE), None)
        if head is None or head.moved_to:
            _clean(absorbed, theirs)
            return 0
        mine = {r.sk: r for r in _rows(survivor)}
        copied = sum(_copy(row, survivor, absorbed, mine) for row in theirs if row.sk != keys.BALANCE)
        if _settle(record, head, now) is Outcome.NEW:
            _clean(absorbed, _rows(absorbed))
            return copied
    raise Retryable("the ledger keeps changing; run the merge again")


def _copy(row: PointsRecord, survivor: str, absorbed: str, mine: dict[str, PointsRecord]) -> int:
    """Put the row's copy into the survivor's partition once (0: it is there already)."""
    for sk in (row.sk, keys.merged_entry(row.sk, absorbed)):
        there = mine.get(sk)
        if there is not None and there.merged_from == absorbed and there.event_id == row.event_id:
            return 0  # copied by an earlier run
        if there is None:
            values = dict(row.attribute_values)
            values.update(member_id=survivor, sk=sk, merged_from=absorbed)
            copy = PointsRecord(**values)
            if db.put(copy) is Outcome.NEW:
                mine[sk] = copy
                return 1
            mine[sk] = db.get(PointsRecord, survivor, sk) or copy
            return _copy(row, survivor, absorbed, mine)
    raise Conflict(f"the ledger row {row.sk} has no free key in the survivor's ledger")


def _settle(record: Record, head: PointsRecord, now: datetime) -> Outcome:
    """The absorbed balance posted to the survivor (one entry) and the absorbed one closed, together."""
    survivor, absorbed = record.survivor, record.absorbed
    posting = plans.PostPoints(
        member_id=survivor,
        key=keys.merge_points(absorbed, record.number),
        delta=int(head.balance or 0),
        mode="credit",
        cause="merge",
        event_id=f"merge#{absorbed}",
        rules_version="-",
        at=now,
        spend_fen=int(head.spend_fen or 0),
    )
    if ledger.entry(survivor, posting.key) is not None:
        settled: list[plans.Instruction] = []  # posted by an earlier run; close the absorbed one
    else:
        settled = ledger.settle([posting], {survivor: ledger.balance_of(survivor)})
    close = Write(
        "update",
        PointsRecord(absorbed, keys.BALANCE),
        (PointsRecord.moved_to.set(survivor), PointsRecord.balance.set(0)),
        (PointsRecord.seq == int(head.seq or 0)) & PointsRecord.moved_to.does_not_exist(),
    )
    return db.commit([*executor.compile_plan(settled, now), close], f"merge-ledger#{absorbed}").outcome


def _clean(absorbed: str, rows: list[PointsRecord]) -> None:
    """Delete the absorbed ledger's rows (their copies are the survivor's), its balance last."""
    rest = [r for r in rows if r.sk != keys.BALANCE]
    for start in range(0, len(rest), BATCH):
        db.commit([Write("delete", r) for r in rest[start : start + BATCH]], f"merge-clean#{absorbed}#{start}")
    head = next((r for r in rows if r.sk == keys.BALANCE), None)
    if head is not None and head.moved_to:
        db.delete(head)


# --- unlink ------------------------------------------------------------------------------------


def unlink(platform_id: str, *, who: str, now: datetime, settings: Settings) -> dict[str, Any]:
    """Detach a platform id from the person it was linked to (docs/identity.md, "Undoing")."""
    link = db.get(Shared, *keys.link(platform_id))
    own = db.get(Member, platform_id)
    if own is not None and own.merged_into:
        return _undo(own, who, now, settings)
    if link is None or not link.value or link.value == platform_id:
        raise Conflict("this id was never linked to another person")
    person = db.get(Member, link.value)
    ids = {i for i in (person.ids if person else ()) or () if _platform(i) == platform_id}
    writes = [
        Write("put", Shared(*keys.link(platform_id), value=platform_id), condition=Shared.value == link.value),
        Write("put", Shared(*keys.no_merge(link.value, platform_id), value=who)),
    ]
    if ids:
        writes.append(Write("update", Member(link.value), (Member.ids.delete(ids), Member.updated_at.set(now))))
    if db.commit(writes, f"unlink#{platform_id}#{now.isoformat()}").outcome is not Outcome.NEW:
        raise Conflict("the id's link changed meanwhile; look again")
    log("identity.unlinked", kind="id")
    return {"unlinked": platform_id, "from": link.value, "kind": "id"}


def _undo(absorbed: Member, who: str, now: datetime, settings: Settings) -> dict[str, Any]:
    record = record_of(absorbed.member_id)
    if record is None or record.state != "done":
        raise Conflict("the merge of this person is still running; run it to its end first")
    if absorbed.absorbed:
        raise Conflict("this person had absorbed others before: unlink those first")
    survivor = record.survivor
    copies = [r for r in _rows(survivor) if r.merged_from == absorbed.member_id]
    brought = ledger.entry(survivor, keys.merge_points(absorbed.member_id, record.number))
    giving_back = int(brought.delta or 0) if brought is not None else 0
    balance = ledger.balance_of(survivor)
    if balance.points < giving_back:
        short = giving_back - balance.points
        raise Conflict(f"the person has spent {short} of the points that came with this id; refused")
    for row in copies:  # back to the absorbed partition, under their own keys
        values = dict(row.attribute_values)
        values.update(member_id=absorbed.member_id, sk=row.sk.removesuffix("@" + absorbed.member_id))
        values.pop("merged_from", None)
        db.put(PointsRecord(**values))
    writes: list[Write] = [
        Write(
            "update",
            Member(absorbed.member_id),
            (
                Member.merged_into.remove(),
                Member.merged_at.remove(),
                Member.updated_at.set(now),
                *(
                    [Member.active_day.set(members.local_day(absorbed.last_active, SHANGHAI))]
                    if absorbed.last_active
                    else []
                ),
            ),
            Member.merged_into == survivor,
        ),
        Write(
            "update",
            Member(survivor),
            (
                Member.absorbed.delete({absorbed.member_id}),
                *([Member.ids.delete(set(record.ids))] if record.ids else []),
                Member.updated_at.set(now),
            ),
        ),
        Write("put", Shared(*keys.no_merge(survivor, absorbed.member_id), value=who)),
        *[
            Write("delete", Shared(*keys.link(platform)))
            if platform == absorbed.member_id
            else Write("put", Shared(*keys.link(platform), value=absorbed.member_id))
            for platform in sorted({_platform(i) for i in record.ids})
        ],
        *[
            Write("update", Coupon(code), (Coupon.status.set("issued"),), Coupon.status == "void")
            for code in record.voided
        ],
    ]
    if brought is not None:
        back = plans.PostPoints(
            member_id=survivor,
            key=keys.unmerge_points(absorbed.member_id, now),
            delta=-giving_back,
            mode="debit",
            cause="unmerge",
            event_id=f"unmerge#{absorbed.member_id}",
            rules_version="-",
            at=now,
            spend_fen=-record.spend_fen,
        )
        settled = ledger.settle([back], {survivor: balance})
        if not any(isinstance(i, plans.PostPoints) for i in settled):
            raise Conflict("the person's balance no longer covers the points that came with this id; refused")
        writes += executor.compile_plan(settled, now)
        restored = PointsRecord(
            absorbed.member_id, keys.BALANCE, balance=record.points, seq=record.seq, spend_fen=record.spend_fen
        )
        writes.append(Write("put", restored))
    if db.commit(writes, f"unmerge#{absorbed.member_id}#{now.isoformat()}").outcome is not Outcome.NEW:
        raise Conflict("the persons changed meanwhile; run the unlink again")
    for start in range(0, len(copies), BATCH):
        db.commit([Write("delete", r) for r in copies[start : start + BATCH]], f"unmerge-clean#{start}")
    record.state, record.undone_at = "undone", now.isoformat()
    db.save(record.item())
    log("identity.unlinked", kind="merge", rows=len(copies))
    return {"unlinked": absorbed.member_id, "from": survivor, "kind": "merge", "points_returned": giving_back}
