"""The executor: a plan (``chalicelib.plans``) becomes the store's writes, committed as one
transaction; the dry run describes the same writes and commits nothing.

Three steps, each its own function:

1. ``resolve``: drop what already exists (``existing``: refs the caller or an earlier attempt
   found) and every instruction whose ``when`` does not hold; pure;
2. ``compile``: each instruction into its writes (dispatched on its type: an instruction the
   executor does not know is an error), and the writes of one plan to one item merged into one
   (a transaction may touch an item once);
3. ``commit`` (``Executor``) or describe (``DryRun``).

A failed write says what its failure means: ``exists`` — its key was taken (a coupon issued by a
concurrent event, a record an earlier run wrote): drop the instruction and commit the rest;
``changed`` — what the plan was decided on changed: the caller reads again and decides again;
a guard (``RecordEvent``) — the work is done already. ``execute`` runs resolve → commit until the
plan commits, drops only what exists, or meets a change.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path
from pynamodb.models import Model

from chalicelib import plans
from chalicelib.plans import Instruction, Plan, Ref
from chalicelib.state.models import (
    Alert,
    Coupon,
    EventRecord,
    LoyaltyRecord,
    Member,
    Metric,
    OutboxMessage,
    PointsRecord,
    Recall,
    Shared,
    Ticket,
)
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome, Write

__all__ = ["Applied", "DryRun", "Executor", "Outcome", "Runner", "compile_plan", "execute", "resolve"]

Failure = Literal["exists", "changed", "guard", "never"]
# A recorded message is handed to the queue at once; if that hand-off is lost, the release
# timer finds it on the outbox's due index after this grace.
PICKUP_GRACE = timedelta(seconds=60)
# A message held for its person's identity goes when the identity work releases it, or after
# this at the latest (the release timer), whatever became of the asking.
IDENTITY_HOLD = timedelta(minutes=10)
IDENTITY_HOLD_REASON = "waiting for the person's identity"
SCHEDULED_REASON = "scheduled"
ATTEMPTS = 4


@dataclass(frozen=True)
class Tag:
    instruction: Instruction
    failure: Failure


@dataclass
class Applied:
    """What became of a plan: its outcome, what was written (``plan``, resolved), what was
    dropped because it existed, and for ``ALREADY_DONE`` the guard's item as it was."""

    outcome: Outcome
    plan: Plan = field(default_factory=list)
    dropped: list[Instruction] = field(default_factory=list)
    changed: list[Instruction] = field(default_factory=list)  # CONFLICT: decided on stale facts
    done: Model | None = None  # ALREADY_DONE: the guard's item as stored
    writes: list[dict[str, Any]] = field(default_factory=list)  # the dry run's description

    @property
    def messages(self) -> list[str]:
        """Keys of the messages this plan recorded for the outbox to send."""
        if not self.written:
            return []
        keys_ = [
            i.message_key
            for i in self.plan
            if isinstance(i, plans.QueueMessage) and not i.hold_for_identity and i.not_before is None
        ]
        keys_ += [i.message.message_key for i in self.plan if isinstance(i, plans.RecallDecision) and i.message]
        return keys_

    @property
    def reply(self) -> str | None:
        return reply_of(self.plan) if self.written else None

    @property
    def written(self) -> bool:
        return self.outcome is Outcome.NEW

    def kept(self, instruction: Instruction) -> bool:
        return self.written and instruction in self.plan


def reply_of(plan: Iterable[Instruction]) -> str | None:
    """The passive reply a plan makes (the first ``Reply``; an event answers once)."""
    return next((i.text for i in plan if isinstance(i, plans.Reply)), None)


# --- 1. resolve -------------------------------------------------------------------------------


def resolve(
    plan: Sequence[Instruction], existing: frozenset[Ref] | set[Ref] = frozenset(), skip: frozenset[int] = frozenset()
) -> Plan:
    """The instructions to write: those whose ref is not taken and whose ``when`` holds, in
    order; only the first passive reply. ``skip``: instructions (by ``id``) that found their
    condition failed and create nothing keyed (a consent for a member who is gone)."""
    created: set[Ref] = set()
    kept: Plan = []
    replied = False
    for instruction in plan:
        if id(instruction) in skip or (instruction.ref is not None and instruction.ref in existing):
            continue
        if instruction.when is not None:
            ref, state = instruction.when
            holds = ref in created if state == "new" else ref in existing
            if not holds:
                continue
        if isinstance(instruction, plans.Reply):
            if replied:
                continue
            replied = True
        if instruction.ref is not None:
            created.add(instruction.ref)
        kept.append(instruction)
    return kept


# --- 2. compile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    now: datetime
    touched: frozenset[str]  # members the plan touches (their row exists once it commits)
    reply: str | None


def compile_plan(plan: Sequence[Instruction], now: datetime) -> list[Write]:
    touched = frozenset(i.member_id for i in plan if isinstance(i, plans.TouchMember))
    ctx = Context(now, touched, reply_of(plan))
    writes: list[Write] = []
    for instruction in combine_counters(plan):
        compiler = COMPILERS.get(type(instruction))
        if compiler is None:
            raise TypeError(f"the executor has no compiler for {type(instruction).__name__}")
        writes += compiler(instruction, ctx)
    return merge(writes)


def combine_counters(plan: Sequence[Instruction]) -> Plan:
    """One ``AddCounters`` per counter item, its counts summed (a transaction cannot add to one
    attribute twice); in place of the first, the other instructions unchanged."""
    sums: dict[tuple[str, str], dict[str, int]] = {}
    expires: dict[tuple[str, str], datetime | None] = {}
    for i in plan:
        if isinstance(i, plans.AddCounters):
            counts = sums.setdefault((i.scope, i.key), {})
            for name, amount in i.counts.items():
                counts[name] = counts.get(name, 0) + amount
            expires[(i.scope, i.key)] = expires.get((i.scope, i.key)) or i.expires
    out: Plan = []
    for i in plan:
        if not isinstance(i, plans.AddCounters):
            out.append(i)
        elif (i.scope, i.key) in sums:
            item = (i.scope, i.key)
            out.append(plans.AddCounters(scope=i.scope, key=i.key, counts=sums.pop(item), expires=expires[item]))
    return out


def merge(writes: Sequence[Write]) -> list[Write]:
    """One write per item: updates of one item become one update (actions together, conditions
    and-ed); two puts or a put and an update of one item are a planning error."""
    merged: dict[tuple[str, Any, Any], Write] = {}
    for write in writes:
        key = (write.table, *_key_of(write.item))
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = write
            continue
        if earlier.kind != "update" or write.kind != "update":
            raise ValueError(f"one plan writes {key[0]} {key[1:]} twice ({earlier.kind}, {write.kind})")
        condition = db.both(earlier.condition, write.condition)
        tags = _tags(earlier) + _tags(write)
        merged[key] = Write("update", earlier.item, earlier.actions + write.actions, condition, tag=tags)
    return list(merged.values())


def _tags(write: Write) -> tuple[Tag, ...]:
    return write.tag if isinstance(write.tag, tuple) else (write.tag,)


_key_of = db.key_of


def _write(kind: db.Kind, item: Model, instruction: Instruction, failure: Failure, **kw: Any) -> Write:
    actions = tuple(kw.pop("actions", ()))
    return Write(
        kind, item, actions, kw.pop("condition", None), guard=failure == "guard", tag=Tag(instruction, failure)
    )


def _put_new(item: Model, instruction: Instruction) -> Write:
    return _write("put", item, instruction, "exists", condition=db.absent(item))


def _exists_unless_touched(member_id: str, ctx: Context) -> Condition | None:
    return None if member_id in ctx.touched else Member.member_id.exists()


# The compilers, one per instruction type.


def _record_event(i: plans.RecordEvent, ctx: Context) -> list[Write]:
    e = i.event
    record = EventRecord(
        e.event_id,
        kind=e.kind.value,
        source=e.source,
        member_id=e.member_id,
        occurred_at=e.occurred_at,
        received_at=i.received_at,
        day=i.received_at.date().isoformat(),
        body=e.to_json(),
        status="done",
        attempts=i.attempts,
        reply=i.reply if i.reply is not None else ctx.reply,
        answer=i.answer,
        expires=i.expires,
    )
    unfinished = EventRecord.event_id.does_not_exist() | (EventRecord.status != "done")
    return [_write("put", record, i, "guard", condition=unfinished)]


def _fail_event(i: plans.FailEvent, ctx: Context) -> list[Write]:
    e = i.event
    record = EventRecord(
        e.event_id,
        kind=e.kind.value,
        source=e.source,
        member_id=e.member_id,
        occurred_at=e.occurred_at,
        received_at=i.received_at,
        day=i.received_at.date().isoformat(),
        body=e.to_json(),
        status="failed",
        error=i.error[:200],
        lease_until=ctx.now,
        stalled="1",
        expires=i.expires,
    )
    unfinished = EventRecord.event_id.does_not_exist() | (EventRecord.status != "done")
    return [_write("put", record, i, "guard", condition=unfinished)]


def _forget_event(i: plans.ForgetEvent, ctx: Context) -> list[Write]:
    return [_write("delete", EventRecord(i.event_id), i, "never")]


def _sets(*pairs: tuple[Any, Any]) -> list[Any]:
    """``attribute.set(value)`` for each pair whose value is given."""
    return [attribute.set(value) for attribute, value in pairs if value is not None]


def _touch(i: plans.TouchMember, ctx: Context) -> list[Write]:
    actions: list[Any] = [
        Member.first_seen.set(Member.first_seen | i.at),
        Member.origin.set(Member.origin | i.source),
        Member.updated_at.set(i.now),
        *(
            a.set(a | v)
            for a, v in ((Member.store_id, i.store_id), (Member.channel, i.channel), (Member.inviter, i.inviter))
            if v
        ),
        *_sets((Member.service_window_until, i.service_window_until), (Member.subscribed, i.subscribed)),
        *_sets((Member.service_window_action, i.service_window_action)),
        *_sets(
            (Member.subscribed_at if i.subscribed == "yes" else Member.unsubscribed_at, i.at if i.subscribed else None)
        ),
        *([Member.groups.add({i.add_group})] if i.add_group else []),
        *([Member.groups.delete({i.remove_group})] if i.remove_group else []),
        *([Member.order_days.add({i.order_day})] if i.order_day else []),
        *([Member.ids.add({i.platform})] if i.platform else []),
        *([Member.unionid.set(Member.unionid | i.unionid)] if i.unionid else []),
    ]
    # a person merged into another meanwhile is no longer theirs to change: decide again
    condition: Condition = (
        Member.member_id.exists() & Member.erasing.does_not_exist() & Member.merged_into.does_not_exist()
        if i.existed
        else Member.member_id.does_not_exist()
    )
    if i.last_active is not None:
        actions += [Member.last_active.set(i.last_active), Member.active_day.set(str(i.active_day))]
        before = i.previous_active
        condition &= Member.last_active.does_not_exist() if before is None else Member.last_active == before
    return [_write("update", Member(i.member_id), i, "changed", actions=actions, condition=condition)]


def _link_identity(i: plans.LinkIdentity, ctx: Context) -> list[Write]:
    link = Shared(i.pk, "-", value=i.person)
    return [_write("put", link, i, "changed", condition=Shared.pk.does_not_exist())]


def _update_loyalty(i: plans.UpdateLoyalty, ctx: Context) -> list[Write]:
    actions: list[Any] = [
        *_sets(
            (Member.tier, i.tier),
            (Member.tier_since, i.tier_since if i.tier is not None else None),
            (Member.tier_review_on, i.tier_review_on),
            (Member.birthday, i.birthday),
            (Member.checkin_day, i.checkin_day),
            (Member.checkin_streak, i.checkin_streak if i.checkin_day is not None else None),
        ),
        *([Member.loyalty_tags.add(set(i.add_tags))] if i.add_tags else []),
        *([Member.loyalty_tags.delete(set(i.remove_tags))] if i.remove_tags else []),
    ]
    if i.invite_unlocked_at is not None:
        actions.append(Member.invite_unlocked_at.set(Member.invite_unlocked_at | i.invite_unlocked_at))
    if not actions:
        return []
    condition = _exists_unless_touched(i.member_id, ctx)
    if i.expect_tier is not None:
        condition = db.both(
            condition, Member.tier.does_not_exist() if i.expect_tier == "" else Member.tier == i.expect_tier
        )
    return [_write("update", Member(i.member_id), i, "exists", actions=actions, condition=condition)]


def _consent(i: plans.RecordConsent, ctx: Context) -> list[Write]:
    """Refused templates are never sent; each accepted one grants one send (keys.consent, taken by
    the sender's reservation: chalicelib/delivery/sender.py)."""
    actions: list[Any] = []
    if i.refused:
        actions.append(Member.refused_templates.add(set(i.refused)))
    if i.accepted:
        actions += [Member.refused_templates.delete(set(i.accepted)), Member.consented.add(set(i.accepted))]
    if not actions:
        return []
    condition = _exists_unless_touched(i.member_id, ctx)
    grants = [
        _write("update", Shared(keys.COUNTERS, keys.consent(i.member_id, t)), i, "never", actions=[Shared.tally.add(1)])
        for t in sorted(i.accepted)
    ]
    return [_write("update", Member(i.member_id), i, "exists", actions=actions, condition=condition), *grants]


def _mark_member(i: plans.MarkMember, ctx: Context) -> list[Write]:
    actions: list[Any] = [Member.updated_at.set(i.now)]
    if i.unsubscribed:
        actions.append(Member.subscribed.set("no"))
    if i.blocked:
        actions.append(Member.blocked.set("yes"))
    if i.refused_template:
        actions.append(Member.refused_templates.add({i.refused_template}))
    condition = Member.member_id.exists()
    return [_write("update", Member(i.member_id), i, "exists", actions=actions, condition=condition)]


def _close_recalls(i: plans.CloseRecalls, ctx: Context) -> list[Write]:
    condition = _exists_unless_touched(i.member_id, ctx)
    actions = [Member.recall_open.delete(set(i.keys))]
    return [_write("update", Member(i.member_id), i, "exists", actions=actions, condition=condition)]


def coupon_item(i: plans.IssueCoupon, now: datetime) -> Coupon:
    return Coupon(
        i.code,
        member_id=i.member_id,
        cause=i.cause,
        cause_key=i.cause_key,
        event_id=i.event_id,
        title=i.title,
        value_fen=i.value_fen,
        min_spend_fen=i.min_spend_fen,
        stores=set(i.stores) if i.stores else None,
        issued_at=now,
        expires_at=i.expires_at,
        status="issued",
        rules_version=i.rules_version,
        kind=None if i.kind == "amount" else i.kind,
        percent_off=i.percent_off,
        item_sku=i.item_sku,
        item_name=i.item_name,
        valid_from=i.valid_from,
    )


def _issue(i: plans.IssueCoupon, ctx: Context) -> list[Write]:
    return [_put_new(coupon_item(i, ctx.now), i)]


def _redeem(i: plans.RedeemCoupon, ctx: Context) -> list[Write]:
    actions = [
        Coupon.status.set("redeemed"),
        Coupon.redeemed_at.set(i.at),
        Coupon.redeemed_order.set(i.order_id) if i.order_id else Coupon.redeemed_order.remove(),
        Coupon.redeemed_event.set(i.event_id),
        Coupon.redeemed_store.set(i.store_id) if i.store_id else Coupon.redeemed_store.remove(),
    ]
    condition = Coupon.code.exists() & (Coupon.member_id == i.member_id) & (Coupon.status == "issued")
    return [_write("update", Coupon(i.code), i, "changed", actions=actions, condition=condition)]


def _void_redemption(i: plans.VoidRedemption, ctx: Context) -> list[Write]:
    actions = [
        Coupon.status.set("issued"),
        Coupon.redeemed_at.remove(),
        Coupon.redeemed_order.remove(),
        Coupon.redeemed_event.remove(),
        Coupon.redeemed_store.remove(),
        Coupon.voids.set(i.voids + 1),
        Coupon.voided_order.set(i.order_id),
        Coupon.voided_at.set(i.at),
    ]
    first = Coupon.voids.does_not_exist() if i.voids == 0 else Coupon.voids == i.voids
    condition = (Coupon.status == "redeemed") & (Coupon.redeemed_order == i.order_id) & first
    return [_write("update", Coupon(i.code), i, "changed", actions=actions, condition=condition)]


def _link_redemption(i: plans.LinkRedemption, ctx: Context) -> list[Write]:
    actions = [Recall.redeemed_at.set(i.at), Recall.redeemed_fen.set(i.value_fen)]
    item = Recall(i.member_id, i.recall_key)
    return [_write("update", item, i, "exists", actions=actions, condition=Recall.key.exists())]


def _unlink_redemption(i: plans.UnlinkRedemption, ctx: Context) -> list[Write]:
    actions = [Recall.redeemed_at.remove(), Recall.redeemed_fen.remove()]
    item = Recall(i.member_id, i.recall_key)
    return [_write("update", item, i, "exists", actions=actions, condition=Recall.key.exists())]


def pending_message(i: plans.QueueMessage, now: datetime) -> OutboxMessage:
    """The outbox record of a message to deliver: due for pick-up after ``PICKUP_GRACE``; a
    scheduled one is deferred until its time (the release timer picks it up then)."""
    if i.not_before is not None:
        message = pending_message(dataclasses.replace(i, not_before=None), now)
        message.status, message.reason, message.not_before = "deferred", SCHEDULED_REASON, i.not_before
        return message
    return OutboxMessage(
        i.message_key,
        member_id=i.member_id,
        channel=i.channel,
        category=i.category,
        text=i.text,
        template=i.template,
        payload=json.dumps(dict(i.payload), ensure_ascii=False) if i.payload else None,
        store_id=i.store_id,
        cause=i.cause,
        event_id=i.event_id,
        rules_version=i.rules_version,
        status="deferred" if i.hold_for_identity else "pending",
        reason=IDENTITY_HOLD_REASON if i.hold_for_identity else None,
        created_at=now,
        expires_at=i.expires_at,
        due="1",
        not_before=now + (IDENTITY_HOLD if i.hold_for_identity else PICKUP_GRACE),
    )


def _queue(i: plans.QueueMessage, ctx: Context) -> list[Write]:
    return [_put_new(pending_message(i, ctx.now), i)]


def _reply(i: plans.Reply, ctx: Context) -> list[Write]:
    message = OutboxMessage(
        i.message_key,
        member_id=i.member_id,
        channel="passive_reply",
        category="service",
        text=i.text,
        cause=i.cause,
        event_id=i.event_id,
        rules_version=i.rules_version,
        status="replied",
        created_at=ctx.now,
        sent_at=ctx.now,
        template=i.template,
        payload=json.dumps(dict(i.payload), ensure_ascii=False) if i.payload else None,
    )
    return [_put_new(message, i)]


def _delivery(i: plans.RecordDelivery, ctx: Context) -> list[Write]:
    actions: list[Any] = [OutboxMessage.delivery.set(i.status)]
    if i.msg_id:
        actions.append(OutboxMessage.wechat_msgid.set(i.msg_id))
    condition = OutboxMessage.message_key.exists()
    if i.settle_unknown:
        actions += [
            OutboxMessage.status.set("sent"),
            OutboxMessage.sent_at.set(i.at),
            OutboxMessage.reason.set("reconciled by WeChat's delivery event"),
        ]
        condition &= OutboxMessage.status == "unknown"
    return [_write("update", OutboxMessage(i.message_key), i, "changed", actions=actions, condition=condition)]


def _post_points(i: plans.PostPoints, ctx: Context) -> list[Write]:
    if not i.settled:
        raise ValueError(f"points {i.key} were not settled against the balance before writing")
    delta = i.delta
    entry = PointsRecord(
        i.member_id,
        keys.entry(i.key),
        seq=i.seq,
        delta=delta,
        balance_after=i.balance_before + delta,
        cause=i.cause,
        event_id=i.event_id,
        rules_version=i.rules_version,
        at=i.at,
        order_id=i.order_id,
        amount_fen=i.amount_fen,
        categories=set(i.categories) or None,
        expires_on=i.expires_on,
        expires_month=i.expires_on[:7] if i.expires_on and delta > 0 else None,
        unrecovered=i.unrecovered or None,
        note=i.note,
    )
    writes = [_write("put", entry, i, "exists", condition=PointsRecord.sk.does_not_exist())]
    if i.order_id and i.order:
        writes.append(_order_step(i, delta))
    return writes


def _order_step(i: plans.PostPoints, delta: int) -> Write:
    item = PointsRecord(i.member_id, keys.order(str(i.order_id)))
    if i.order in ("open", "void"):
        actions = [PointsRecord.earned.set(delta), PointsRecord.reversed.set(0), PointsRecord.event_id.set(i.event_id)]
        if i.order == "open":
            actions += [PointsRecord.amount_fen.set(i.amount_fen or 0), PointsRecord.refunded_fen.set(0)]
        else:
            actions += [PointsRecord.voided.set("yes"), PointsRecord.refunded_fen.set(i.amount_fen or 0)]
        return _write("update", item, i, "changed", actions=actions, condition=PointsRecord.sk.does_not_exist())
    actions = [
        PointsRecord.reversed.set(i.order_reversed - delta),
        PointsRecord.refunded_fen.set(i.order_refunded_fen + (i.amount_fen or 0)),
    ]
    condition = PointsRecord.sk.exists() & (PointsRecord.reversed == i.order_reversed)
    return _write("update", item, i, "changed", actions=actions, condition=condition)


def _set_balance(i: plans.SetBalance, ctx: Context) -> list[Write]:
    actions = [
        PointsRecord.balance.set(i.balance),
        PointsRecord.seq.set(i.seq),
        PointsRecord.spend_fen.set(i.spend_fen),
    ]
    unchanged = PointsRecord.seq.does_not_exist() if i.seq_before == 0 else PointsRecord.seq == i.seq_before
    # a ledger merged into another person's is closed: a posting there would be lost (decide again)
    unchanged &= PointsRecord.moved_to.does_not_exist()
    item = PointsRecord(i.member_id, keys.BALANCE)
    return [_write("update", item, i, "changed", actions=actions, condition=unchanged)]


def _record_once(i: plans.RecordOnce, ctx: Context) -> list[Write]:
    record = LoyaltyRecord(
        i.pk,
        i.sk,
        member_id=i.member_id,
        status=i.status,
        number=i.number,
        value=i.value,
        event_id=i.event_id,
        rules_version=i.rules_version,
        at=i.at,
    )
    return [_write("put", record, i, "exists", condition=LoyaltyRecord.sk.does_not_exist())]


def _count_up_to(i: plans.CountUpTo, ctx: Context) -> list[Write]:
    below = LoyaltyRecord.number < i.limit
    if i.limit > 0:
        below = LoyaltyRecord.number.does_not_exist() | below
    actions: list[Any] = [
        LoyaltyRecord.number.add(1),
        LoyaltyRecord.event_id.set(i.event_id),
        LoyaltyRecord.at.set(i.at),
        *_sets((LoyaltyRecord.member_id, i.member_id)),
    ]
    item = LoyaltyRecord(i.pk, i.sk)
    return [_write("update", item, i, "changed", actions=actions, condition=below)]


def _refuse(i: plans.Refuse, ctx: Context) -> list[Write]:
    return []  # the pipeline commits nothing of a refused event; a dry run shows no write


def _count_invite(i: plans.CountInvite, ctx: Context) -> list[Write]:
    invite = LoyaltyRecord(keys.invitee(i.invitee), keys.INVITE)
    pending = LoyaltyRecord.status == "pending"
    if i.void:
        return [_write("update", invite, i, "exists", actions=[LoyaltyRecord.status.set("void")], condition=pending)]
    ordinal = i.count_before + 1
    unchanged = LoyaltyRecord.number.does_not_exist() if i.count_before == 0 else LoyaltyRecord.number == i.count_before
    counted = [LoyaltyRecord.status.set("counted"), LoyaltyRecord.number.set(ordinal)]
    count = [LoyaltyRecord.number.set(ordinal), LoyaltyRecord.member_id.set(i.inviter)]
    return [
        _write("update", invite, i, "exists", actions=counted, condition=pending),
        _write(
            "update",
            LoyaltyRecord(keys.inviter(i.inviter), keys.COUNT),
            i,
            "changed",
            actions=count,
            condition=unchanged,
        ),
    ]


def _save_cursor(i: plans.SaveCursor, ctx: Context) -> list[Write]:
    if i.table == "shared":
        item: Model = Shared(i.pk, i.sk, value=i.value)
    else:
        item = LoyaltyRecord(i.pk, i.sk, value=i.value, at=i.at)
    return [_write("put", item, i, "never")]


KEEP = timedelta(days=400)


def _recall_decision(i: plans.RecallDecision, ctx: Context) -> list[Write]:
    record = Recall(
        i.member_id,
        i.key,
        day=i.day,
        stage=i.stage,
        store_id=i.store_id,
        arm=i.arm,
        reason=i.reason,
        created_at=i.now,
        window_until=i.window_until,
        coupon_code=i.coupon.code if i.coupon else None,
        coupon_fen=i.coupon.value_fen if i.coupon else None,
        message_key=i.message.message_key if i.message else None,
        rules_version=i.rules_version,
        expires=i.now + KEEP,
    )
    writes = [_write("put", record, i, "exists", condition=Recall.key.does_not_exist())]
    if i.arm != "skipped":
        actions, condition = _recall_member(i, ctx)
        writes.append(_write("update", Member(i.member_id), i, "changed", actions=actions, condition=condition))
    if i.coupon is not None:
        writes.append(_write("put", coupon_item(i.coupon, i.now), i, "exists", condition=Coupon.code.does_not_exist()))
    if i.message is not None:
        message = pending_message(i.message, i.now)
        writes.append(_write("put", message, i, "exists", condition=OutboxMessage.message_key.does_not_exist()))
    return writes


def _recall_member(i: plans.RecallDecision, ctx: Context) -> tuple[list[Any], Condition | None]:
    previous = i.previous
    if i.stage == "challenge":
        opened = previous.get("challenge")
        condition = Member.challenge.does_not_exist() if opened is None else Member.challenge == opened
        opening: list[Any] = [
            Member.challenge.set(i.key),
            Member.challenge_arm.set(i.arm),
            Member.challenge_done.remove(),
        ]
        return opening, db.both(_exists_unless_touched(i.member_id, ctx), condition)
    lapse, attempts = previous.get("lapse"), previous.get("attempts")
    unchanged = (Member.recall_lapse.does_not_exist() if lapse is None else Member.recall_lapse == lapse) & (
        Member.recall_attempts.does_not_exist() if attempts is None else Member.recall_attempts == attempts
    )
    actions: list[Any] = [
        Member.recall_lapse.set(i.lapse),
        Member.recall_attempts.set(i.attempts),
        Member.recall_last_at.set(i.now),
        Member.recall_open.add({i.key}),
    ]
    return actions, Member.member_id.exists() & unchanged


def _set_segments(i: plans.SetSegments, ctx: Context) -> list[Write]:
    """The member's sets on their sequence number, and the membership rows that change with them."""
    actions: list[Any] = [
        Member.segments.set(set(i.after)) if i.after else Member.segments.remove(),
        Member.segment_tags.set(set(i.tags)) if i.tags else Member.segment_tags.remove(),
        Member.segments_store.set(i.store),
        Member.segments_version.set(i.rules_version),
        Member.segments_rule.set(i.rule_hash),
        Member.segments_at.set(i.now),
        Member.segments_seq.set(i.seq_before + 1),
    ]
    unchanged = Member.segments_seq.does_not_exist() if i.seq_before == 0 else Member.segments_seq == i.seq_before
    condition = Member.member_id.exists() & Member.erasing.does_not_exist() & unchanged
    writes = [_write("update", Member(i.member_id), i, "changed", actions=actions, condition=condition)]
    moved = i.store_before is not None and i.store_before != i.store
    left = i.before if moved else i.before - i.after
    joined = i.after if moved or i.store_before is None else i.after - i.before
    for name in sorted(left):
        row = LoyaltyRecord(keys.segment(name), keys.segment_member(i.store_before, i.member_id))
        writes.append(_write("delete", row, i, "never"))
    for name in sorted(joined):
        row = LoyaltyRecord(
            keys.segment(name),
            keys.segment_member(i.store, i.member_id),
            member_id=i.member_id,
            rules_version=i.rules_version,
            at=i.now,
        )
        writes.append(_write("put", row, i, "never"))
    return writes


def _mark_returned(i: plans.MarkReturned, ctx: Context) -> list[Write]:
    condition = Recall.key.exists() & Recall.returned_at.does_not_exist()
    item = Recall(i.member_id, i.recall_key)
    writes = [_write("update", item, i, "exists", actions=[Recall.returned_at.set(i.at)], condition=condition)]
    if i.recall_key.endswith("#challenge"):
        writes.append(_write("update", Member(i.member_id), i, "exists", actions=[Member.challenge_done.set("yes")]))
    return writes


def _open_ticket(i: plans.OpenTicket, ctx: Context) -> list[Write]:
    ticket = Ticket(
        i.ticket_id,
        member_id=i.member_id,
        store_id=i.store_id,
        score=i.score,
        order_id=i.order_id,
        opened_at=i.opened_at,
        status="open",
        due="due" if i.next_at else None,
        next_at=i.next_at,
        event_id=i.event_id,
        rules_version=i.rules_version,
        expires=i.expires,
    )
    return [_put_new(ticket, i)]


def _move_ticket(i: plans.MoveTicket, ctx: Context) -> list[Write]:
    actions: list[Any] = []
    condition = Ticket.status == i.expect_status
    if i.check_next_at:
        condition &= Ticket.next_at == i.expect_next_at
    if i.step:
        actions.append(Ticket.steps.add({i.step}))
        condition &= ~Ticket.steps.contains(i.step)
    if i.status:
        actions.append(Ticket.status.set(i.status))
    actions += _sets(
        (Ticket.handled_by, i.handled_by),
        (Ticket.note, i.note),
        (Ticket.responded_at, i.responded_at),
        (Ticket.resolved_at, i.resolved_at),
        (Ticket.closed_at, i.closed_at),
    )
    if i.next_at is not None:
        actions += [Ticket.due.set("due"), Ticket.next_at.set(i.next_at)]
    elif i.clear_due:
        actions.append(Ticket.due.remove())
    return [_write("update", Ticket(i.ticket_id), i, "changed", actions=actions, condition=condition)]


def _move_alert(i: plans.MoveAlert, ctx: Context) -> list[Write]:
    if i.transition == "open":
        alert = Alert(
            i.alert_id,
            check=i.check,
            scope=i.scope,
            status="open",
            level=i.level,
            opened_at=i.now,
            notified_at=i.now,
            escalations=0,
            reminders=0,
            value=i.value,
        )
        condition = Alert.alert_id.does_not_exist() | (Alert.status == "closed")
        return [_write("put", alert, i, "changed", condition=condition)]
    condition = (Alert.status == "open") & (Alert.opened_at == i.expect_opened_at)
    if i.transition == "escalate":
        condition &= Alert.level == i.expect_level
        actions = [Alert.level.set(i.level), Alert.notified_at.set(i.now), Alert.escalations.add(1)]
    elif i.transition == "remind":
        condition &= Alert.notified_at == i.expect_notified_at
        actions = [Alert.notified_at.set(i.now), Alert.reminders.add(1)]
    else:
        actions = [Alert.status.set("closed"), Alert.closed_at.set(i.now)]
    actions.append(Alert.value.set(i.value))
    return [_write("update", Alert(i.alert_id), i, "changed", actions=actions, condition=condition)]


def _keep_digest(i: plans.KeepDigest, ctx: Context) -> list[Write]:
    return [_put_new(Shared(keys.DIGEST, i.week, value=i.value), i)]


def _add_counters(i: plans.AddCounters, ctx: Context) -> list[Write]:
    actions: list[Any] = [Path(name).add(amount) for name, amount in sorted(i.counts.items()) if amount]
    if not actions:
        return []
    if i.expires is not None:
        actions.append(Metric.expires.set(i.expires))
    return [_write("update", Metric(i.scope, i.key), i, "never", actions=actions)]


def _mark_active(i: plans.MarkActive, ctx: Context) -> list[Write]:
    marker = Metric(keys.active(i.day), i.member_id, expires=i.expires)
    return [_write("put", marker, i, "exists", condition=Metric.key.does_not_exist())]


COMPILERS: dict[type[Instruction], Callable[[Any, Context], list[Write]]] = {
    plans.RecordEvent: _record_event,
    plans.FailEvent: _fail_event,
    plans.ForgetEvent: _forget_event,
    plans.TouchMember: _touch,
    plans.LinkIdentity: _link_identity,
    plans.UpdateLoyalty: _update_loyalty,
    plans.RecordConsent: _consent,
    plans.MarkMember: _mark_member,
    plans.CloseRecalls: _close_recalls,
    plans.IssueCoupon: _issue,
    plans.RedeemCoupon: _redeem,
    plans.LinkRedemption: _link_redemption,
    plans.VoidRedemption: _void_redemption,
    plans.UnlinkRedemption: _unlink_redemption,
    plans.QueueMessage: _queue,
    plans.Reply: _reply,
    plans.RecordDelivery: _delivery,
    plans.PostPoints: _post_points,
    plans.SetBalance: _set_balance,
    plans.RecordOnce: _record_once,
    plans.CountInvite: _count_invite,
    plans.CountUpTo: _count_up_to,
    plans.Refuse: _refuse,
    plans.SaveCursor: _save_cursor,
    plans.RecallDecision: _recall_decision,
    plans.MarkReturned: _mark_returned,
    plans.SetSegments: _set_segments,
    plans.OpenTicket: _open_ticket,
    plans.MoveTicket: _move_ticket,
    plans.MoveAlert: _move_alert,
    plans.KeepDigest: _keep_digest,
    plans.AddCounters: _add_counters,
    plans.MarkActive: _mark_active,
}


# --- 3. carry out -----------------------------------------------------------------------------


class Runner(Protocol):
    def run(self, plan: Plan, cause: str, now: datetime) -> Applied: ...


class Executor:
    """Writes a resolved plan in one transaction."""

    def run(self, plan: Plan, cause: str, now: datetime) -> Applied:
        writes = compile_plan(plan, now)
        committed = db.commit(writes, cause)
        if committed.outcome is Outcome.NEW:
            return Applied(Outcome.NEW, list(plan))
        tags = [tag for write in committed.failed for tag in _tags(write)]
        if committed.outcome is Outcome.ALREADY_DONE:
            guard = next(w for w in committed.failed if w.guard)
            return Applied(Outcome.ALREADY_DONE, list(plan), done=committed.old_of(guard, type(guard.item)))
        exists = [t.instruction for t in tags if t.failure == "exists"]
        changed = [t.instruction for t in tags if t.failure in ("changed", "never")]
        if not tags:  # another transaction held an item at that moment
            changed = list(plan)
        return Applied(Outcome.CONFLICT, list(plan), dropped=exists, changed=changed)


class DryRun:
    """Describes the writes a plan would make; writes nothing (``--dry-run``, the rules preview)."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    def run(self, plan: Plan, cause: str, now: datetime) -> Applied:
        described = [_describe(write) for write in compile_plan(plan, now)]
        self.writes += described
        return Applied(Outcome.NEW, list(plan), writes=described)


def render(writes: Sequence[dict[str, Any]]) -> str:
    """A dry run's writes, one line each: ``update members ["o1"] (TouchMember, UpdateLoyalty)``."""
    if not writes:
        return "(nothing would be written)"
    return "\n".join(
        f"{w['op']:<6} {w['table']:<28} {json.dumps(w['key'], ensure_ascii=False, default=str)}"
        f"  ({', '.join(w['for'])})"
        for w in writes
    )


def _describe(write: Write) -> dict[str, Any]:
    hash_key, range_key = _key_of(write.item)
    what = sorted({type(t.instruction).__name__ for t in _tags(write)})
    return {
        "table": write.table,
        "op": write.kind,
        "key": [hash_key, range_key] if range_key else [hash_key],
        "for": what,
    }


def execute(
    plan: Sequence[Instruction],
    cause: str,
    now: datetime,
    runner: Runner | None = None,
    existing: frozenset[Ref] | set[Ref] = frozenset(),
    settle: Callable[[Plan], Plan] | None = None,
) -> Applied:
    """Resolve and commit until the plan commits: what turns out to exist is dropped (with what
    depends on it) and the rest committed again; a change of what the plan was decided on
    (``CONFLICT``) or a done guard is returned to the caller. ``settle``: a last pure step on the
    resolved plan before it is written (the ledger settles postings against the balance)."""
    runner = runner or Executor()
    known: set[Ref] = set(existing)
    skip: set[int] = set()
    dropped: list[Instruction] = []
    applied = Applied(Outcome.CONFLICT)
    for _ in range(ATTEMPTS):
        resolved = resolve(plan, known, frozenset(skip))
        if settle is not None:
            resolved = resolve(settle(resolved), known, frozenset(skip))
        applied = runner.run(resolved, cause, now)
        applied.dropped = dropped + applied.dropped
        if applied.outcome is not Outcome.CONFLICT or applied.changed:
            return applied
        dropped = applied.dropped
        known |= {i.ref for i in dropped if i.ref is not None}
        skip |= {id(i) for i in dropped if i.ref is None}
    return applied


# --- a paged pass's place (the recall sweep, the segments pass) -----------------------------------

PASS_DONE = "done"  # the saved place of a pass that read its last page


def pass_place(cursor_key: str) -> tuple[bool, dict[str, Any] | None]:
    """Where a paged pass stands: (whether it is done, the key its next page starts after)."""
    saved_item = db.get(Shared, keys.SWEEP, cursor_key)
    saved = saved_item.value if saved_item is not None else None
    if saved == PASS_DONE:
        return True, None
    return False, json.loads(saved) if saved else None


def save_place(cursor_key: str, last_key: dict[str, Any] | None, now: datetime, runner: Runner | None = None) -> bool:
    """Save a paged pass's place after a page: where the next starts, or done after the last
    (``last_key`` None). Returns whether the pass is done."""
    value = json.dumps(last_key) if last_key else PASS_DONE
    saved = plans.SaveCursor(table="shared", pk=keys.SWEEP, sk=cursor_key, value=value, at=now)
    execute([saved], cursor_key, now, runner)
    return not last_key
