"""Negative-review tickets (差评工单) and their SLA: "1小时响应-24小时处理-72小时追踪" (003 §7.1).

A review at or below ``max_score`` opens one ticket (keyed by the review id) and tells the store's
robot at once. Staff record what they did — ``respond`` (contacted the customer), ``resolve``
(handled), ``follow_up`` (the 72-hour call back, which closes the ticket) — through the admin API
or ``siyu tickets``. The SLA timer takes each step once, when it falls due and still applies:

- ``late``: no response ``respond_minutes`` after the review → the store's robot;
- ``escalated``: not resolved after ``resolve_hours`` → ``escalate_robot`` (ops);
- ``follow_up``: at ``follow_up_hours``, unless already followed up → the store's robot.

The clock starts when the customer wrote the review (the event's time), not when siyu heard of
it. Each step is a conditional update of the ticket (the step not yet taken, the status as read)
in one transaction with its robot message and its counter, so a step is sent once however many
timers run. ``next_at`` always holds the next step that applies, so the timer reads only the
tickets that are due (the sparse ``by_due`` index).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Literal

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.delivery import queue
from chalicelib.effects import OpenTicket, QueueMessage
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.logs import log
from chalicelib.metrics import counters
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import ReviewSla
from chalicelib.runtime import Context
from chalicelib.state.conditions import cancellation_codes, is_condition_failure
from chalicelib.state.items import pending_message
from chalicelib.state.models import OutboxMessage, Ticket

STEPS = ("late", "escalated", "follow_up")
ACTIONS = ("respond", "resolve", "follow_up")
KEEP = timedelta(days=400)
CAUSE = "reviews"

Step = Literal["late", "escalated", "follow_up"]
Action = Literal["respond", "resolve", "follow_up"]

# What an action moves a ticket to, from which statuses. Resolving implies a response.
_MOVES: dict[str, tuple[str, frozenset[str]]] = {
    "respond": ("responded", frozenset({"open"})),
    "resolve": ("resolved", frozenset({"open", "responded"})),
    "follow_up": ("closed", frozenset({"open", "responded", "resolved"})),
}


def due_times(opened_at: datetime, rule: ReviewSla) -> dict[str, datetime]:
    return {
        "late": opened_at + timedelta(minutes=rule.respond_minutes),
        "escalated": opened_at + timedelta(hours=rule.resolve_hours),
        "follow_up": opened_at + timedelta(hours=rule.follow_up_hours),
    }


def next_step(status: str, taken: set[str], opened_at: datetime, rule: ReviewSla) -> tuple[Step, datetime] | None:
    """The next SLA step that still applies to a ticket in ``status``, and when it falls due."""
    applies = {
        "late": status == "open",
        "escalated": status in ("open", "responded"),
        "follow_up": status != "closed",
    }
    when = due_times(opened_at, rule)
    for step in STEPS:
        if step not in taken and applies[step]:
            return step, when[step]  # type: ignore[return-value]
    return None


def opening(
    ticket_id: str,
    member_id: str,
    store_id: str | None,
    score: int,
    order_id: str | None,
    opened_at: datetime,
    event_id: str,
    rules: RuleSet,
) -> OpenTicket:
    """The plan to open a ticket (pure): the ticket and the store's message."""
    rule = rules.alerts.reviews
    deadline = _local(opened_at + timedelta(minutes=rule.respond_minutes), rules, store_id)
    lines = [
        f"【新差评】{_place(rules, store_id)} · {score}星",
        f"> 评价编号：{ticket_id}" + (f"，订单：{order_id}" if order_id else ""),
        f'> 请在 <font color="warning">{deadline}</font> 前联系顾客，并记录响应',
        f"> （siyu tickets respond {ticket_id}）",
    ]
    key = f"ticket#{ticket_id}#opened"
    step = next_step("open", set(), opened_at, rule)
    return OpenTicket(
        ticket_id,
        member_id,
        store_id,
        score,
        order_id,
        opened_at,
        step[1] if step else None,
        event_id,
        rules.version,
        QueueMessage.to_robot(key, store_id or rule.escalate_robot, lines, CAUSE, rules.version, store_id),
    )


def open_ticket(effect: OpenTicket, now: datetime) -> Literal["new", "taken"]:
    """Write the ticket and its message once: a retried review finds the ticket taken."""
    ticket = Ticket(
        effect.ticket_id,
        member_id=effect.member_id,
        store_id=effect.store_id,
        score=effect.score,
        order_id=effect.order_id,
        opened_at=effect.opened_at,
        status="open",
        due="due" if effect.next_at else None,
        next_at=effect.next_at,
        event_id=effect.event_id,
        rules_version=effect.rules_version,
        expires=now + KEEP,
    )
    try:
        with TransactWrite(connection=Ticket._get_connection().connection) as transaction:
            transaction.save(ticket, condition=Ticket.ticket_id.does_not_exist())
            transaction.save(pending_message(effect.message, now), condition=OutboxMessage.message_key.does_not_exist())
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in cancellation_codes(exc):
            return "taken"
        raise
    log("ticket.opened", ticket=effect.ticket_id, store=effect.store_id, score=effect.score)
    return "new"


def record(ticket_id: str, action: Action, by: str, note: str | None, rules: RuleSet, now: datetime) -> Ticket:
    """Staff record an action. Repeating an action already recorded changes nothing (a retried
    request); an action that would move the ticket back (respond after resolve) is a conflict."""
    if action not in _MOVES:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
    if not by.strip() or len(by) > 40:
        raise BadRequest("by: who handled the ticket, 1-40 characters")
    if note is not None and len(note) > 500:
        raise BadRequest("note: at most 500 characters")
    target, sources = _MOVES[action]
    for _ in range(3):
        ticket = get(ticket_id)
        if ticket.status == target:
            return ticket
        if ticket.status not in sources:
            raise Conflict(f"ticket {ticket_id} is {ticket.status}; it cannot be marked {target}")
        step = next_step(target, set(ticket.steps or ()), ticket.opened_at, rules.alerts.reviews)
        actions = [Ticket.status.set(target), Ticket.handled_by.set(by.strip())]
        actions += [Ticket.note.set(note)] if note else []
        actions += [Ticket.responded_at.set(now)] if ticket.responded_at is None else []
        actions += [Ticket.resolved_at.set(now)] if target in ("resolved", "closed") and not ticket.resolved_at else []
        actions += [Ticket.closed_at.set(now)] if target == "closed" else []
        actions += [Ticket.due.set("due"), Ticket.next_at.set(step[1])] if step else [Ticket.due.remove()]
        try:
            ticket.update(actions=actions, condition=Ticket.status == ticket.status)
        except UpdateError as exc:
            if is_condition_failure(exc):
                continue  # someone else moved it meanwhile: read again
            raise
        log("ticket.recorded", ticket=ticket_id, action=action, status=target)
        return ticket
    raise Conflict(f"ticket {ticket_id} keeps changing; try again")


def get(ticket_id: str) -> Ticket:
    try:
        return Ticket.get(ticket_id, consistent_read=True)
    except Ticket.DoesNotExist:
        raise NotFound(f"no ticket {ticket_id}") from None


def run(ctx: Context) -> int:
    """The SLA timer (every 5 minutes): take every step that has fallen due; returns the number
    of messages queued."""
    rules, now = ctx.rules(), ctx.clock.now()
    queued = []
    for ticket in Ticket.by_due.query("due", Ticket.next_at <= now):
        for _ in STEPS:  # a ticket the timer has not seen for a while may owe several steps
            key = _take_step(ticket, rules, now)
            if not key:
                break
            queued.append(key)
            ticket = get(ticket.ticket_id)
            if ticket.due is None or ticket.next_at > now:
                break
    queue.enqueue(ctx.settings, queued)
    return len(queued)


def _take_step(ticket: Ticket, rules: RuleSet, now: datetime) -> str | None:
    rule = rules.alerts.reviews
    taken = set(ticket.steps or ())
    step = next_step(ticket.status, taken, ticket.opened_at, rule)
    condition = (Ticket.status == ticket.status) & (Ticket.next_at == ticket.next_at)
    if step is None or step[1] > now:  # the rules changed since: only move the ticket's next_at
        actions = [Ticket.due.set("due"), Ticket.next_at.set(step[1])] if step else [Ticket.due.remove()]
        try:
            ticket.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise
        return None
    name = step[0]
    following = next_step(ticket.status, taken | {name}, ticket.opened_at, rule)
    actions = [Ticket.steps.add({name})]
    actions += [Ticket.next_at.set(following[1])] if following else [Ticket.due.remove()]
    message = _step_message(ticket, name, rules)
    day = now.astimezone(rules.stores.zone_of(ticket.store_id)).date()
    try:
        with TransactWrite(connection=Ticket._get_connection().connection) as transaction:
            transaction.update(ticket, actions=actions, condition=condition & ~Ticket.steps.contains(name))
            transaction.save(pending_message(message, now), condition=OutboxMessage.message_key.does_not_exist())
            counters.add(counters.scopes_of(ticket.store_id, Counter({f"tickets_{name}": 1})), day, transaction)
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in cancellation_codes(exc):
            return None  # another timer took this step
        raise
    log("ticket.step", ticket=ticket.ticket_id, step=name, store=ticket.store_id)
    return message.message_key


def _step_message(ticket: Ticket, step: str, rules: RuleSet) -> QueueMessage:
    rule = rules.alerts.reviews
    place = _place(rules, ticket.store_id)
    written = _local(ticket.opened_at, rules, ticket.store_id)
    about = f"> 评价编号：{ticket.ticket_id}（{int(ticket.score)}星，{written}）"
    if step == "late":
        lines = [f"【差评超时未响应】{place}", about, f"> 已超过{rule.respond_minutes}分钟未记录响应，请立即联系顾客。"]
        robot = ticket.store_id or rule.escalate_robot
    elif step == "escalated":
        state = "已响应未处理" if ticket.status == "responded" else "未响应"
        lines = [f"【差评升级】{place}", about, f"> {rule.resolve_hours}小时未处理完毕（{state}），请区域负责人介入。"]
        robot = rule.escalate_robot
    else:
        lines = [f"【差评回访提醒】{place}", about, f"> 已满{rule.follow_up_hours}小时，请回访顾客并记录回访。"]
        robot = ticket.store_id or rule.escalate_robot
    return QueueMessage.to_robot(
        f"ticket#{ticket.ticket_id}#{step}", robot, lines, CAUSE, rules.version, ticket.store_id
    )


def _place(rules: RuleSet, store_id: str | None) -> str:
    return rules.stores.label_of(store_id) if store_id else "门店未知"


def _local(at: datetime, rules: RuleSet, store_id: str | None) -> str:
    return f"{at.astimezone(rules.stores.zone_of(store_id)):%m-%d %H:%M}"


def view(ticket: Ticket, rules: RuleSet) -> dict[str, object]:
    """A ticket as staff see it (the admin API's answer, ``siyu tickets --json``)."""
    step = next_step(ticket.status, set(ticket.steps or ()), ticket.opened_at, rules.alerts.reviews)
    times = {name: getattr(ticket, name) for name in ("opened_at", "responded_at", "resolved_at", "closed_at")}
    return {
        "ticket_id": ticket.ticket_id,
        "member_id": ticket.member_id,
        "store_id": ticket.store_id,
        "score": int(ticket.score),
        "order_id": ticket.order_id,
        "status": ticket.status,
        **{name: at.isoformat() if at else None for name, at in times.items()},
        "steps_taken": sorted(ticket.steps or ()),
        "next_step": {"step": step[0], "at": step[1].isoformat()} if step else None,
        "handled_by": ticket.handled_by,
    }
