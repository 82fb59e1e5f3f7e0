"""Negative-review tickets (差评工单) and their SLA: "1小时响应-24小时处理-72小时追踪" (003 §7.1).

A review at or below ``max_score`` opens one ticket (keyed by the review id) and tells the store's
robot at once. Staff record what they did — ``respond`` (contacted the customer), ``resolve``
(handled), ``follow_up`` (the 72-hour call back, which closes the ticket) — through the admin API
or ``siyu tickets``. The SLA timer takes each step once, when it falls due and still applies:

- ``late``: no response ``respond_minutes`` after the review → the store's robot;
- ``escalated``: not resolved after ``resolve_hours`` → ``escalate_robot`` (ops);
- ``follow_up``: at ``follow_up_hours``, unless already followed up → the store's robot.

The clock starts when the customer wrote the review (the event's time), not when siyu heard of
it. Each step is a plan — the ticket's move (conditioned on the step not yet taken and the status
as read), its robot message and its counter — committed as one transaction, so a step is sent
once however many timers run; ``--dry-run`` shows the plans. ``next_at`` always holds the next
step that applies, so the timer reads only the tickets that are due (the sparse ``by_due`` index).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from chalicelib import counters, executor
from chalicelib.delivery import queue
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.logs import log
from chalicelib.plans import Instruction, MoveTicket, OpenTicket, QueueMessage, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import ReviewSla
from chalicelib.runtime import Context
from chalicelib.state.models import Ticket
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome

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
    now: datetime,
) -> list[Instruction]:
    """The plan to open a ticket (pure): the ticket and, if it is new, the store's message."""
    rule = rules.alerts.reviews
    deadline = _local(opened_at + timedelta(minutes=rule.respond_minutes), rules, store_id)
    lines = [
        f"【新差评】{_place(rules, store_id)} · {score}星",
        f"> 评价编号：{ticket_id}" + (f"，订单：{order_id}" if order_id else ""),
        f'> 请在 <font color="warning">{deadline}</font> 前联系顾客，并记录响应',
        f"> （siyu tickets respond {ticket_id}）",
    ]
    step = next_step("open", set(), opened_at, rule)
    ticket = OpenTicket(
        ticket_id=ticket_id,
        member_id=member_id,
        store_id=store_id,
        score=score,
        order_id=order_id,
        opened_at=opened_at,
        next_at=step[1] if step else None,
        event_id=event_id,
        rules_version=rules.version,
        expires=now + KEEP,
    )
    message = QueueMessage.to_robot(
        keys.ticket_message(ticket_id, "opened"), store_id or rule.escalate_robot, lines, CAUSE, rules.version, store_id
    )
    return [ticket, replace(message, when=new(ticket))]


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
        move = MoveTicket(
            ticket_id=ticket_id,
            expect_status=ticket.status,
            status=target,
            handled_by=by.strip(),
            note=note or None,
            responded_at=now if ticket.responded_at is None else None,
            resolved_at=now if target in ("resolved", "closed") and not ticket.resolved_at else None,
            closed_at=now if target == "closed" else None,
            next_at=step[1] if step else None,
            clear_due=step is None,
        )
        if executor.execute([move], keys.ticket_message(ticket_id, action), now).outcome is Outcome.NEW:
            log("ticket.recorded", ticket=ticket_id, action=action, status=target)
            return get(ticket_id)
        # someone else moved it meanwhile: read again
    raise Conflict(f"ticket {ticket_id} keeps changing; try again")


def get(ticket_id: str) -> Ticket:
    ticket = db.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    return ticket


def run(ctx: Context, runner: executor.Runner | None = None) -> int:
    """The SLA timer (every 5 minutes): take every step that has fallen due; returns the number
    of messages queued (with a ``DryRun`` runner: that would be queued; nothing is written)."""
    rules, now = ctx.rules(), ctx.clock.now()
    queued = []
    for ticket in Ticket.by_due.query("due", Ticket.next_at <= now):
        for _ in STEPS:  # a ticket the timer has not seen for a while may owe several steps
            plan = step_plan(ticket, rules, now)
            applied = executor.execute(plan, keys.ticket_message(ticket.ticket_id, "sla"), now, runner)
            if applied.outcome is not Outcome.NEW or not applied.messages:
                break  # nothing due (the ticket's time moved on), or another timer took the step
            step = next(i.step for i in plan if isinstance(i, MoveTicket))
            log("ticket.step", ticket=ticket.ticket_id, step=step, store=ticket.store_id)
            queued += applied.messages
            if runner is not None and not isinstance(runner, executor.Executor):
                break  # a dry run: the ticket has not moved, its next step is not due yet
            ticket = get(ticket.ticket_id)
            if ticket.due is None or ticket.next_at > now:
                break
    if runner is None or isinstance(runner, executor.Executor):
        queue.enqueue(ctx.settings, queued)
    return len(queued)


def step_plan(ticket: Ticket, rules: RuleSet, now: datetime) -> list[Instruction]:
    """The ticket's next step if it is due (pure): the move, its message and its counter; or, when
    the rules changed since the step was scheduled, only the ticket's new ``next_at``."""
    rule = rules.alerts.reviews
    taken = set(ticket.steps or ())
    step = next_step(ticket.status, taken, ticket.opened_at, rule)
    if step is None or step[1] > now:
        return [_as_read(ticket, next_at=step[1] if step else None, clear_due=step is None)]
    name = step[0]
    following = next_step(ticket.status, taken | {name}, ticket.opened_at, rule)
    move = _as_read(
        ticket,
        step=name,
        next_at=following[1] if following else None,
        clear_due=following is None,
    )
    day = now.astimezone(rules.stores.zone_of(ticket.store_id)).date().isoformat()
    counts = counters.scopes_of(ticket.store_id, Counter({f"tickets_{name}": 1}))
    return [move, _step_message(ticket, name, rules), *counters.counters_of(counts, day)]


def _as_read(
    ticket: Ticket, step: str | None = None, next_at: datetime | None = None, clear_due: bool = False
) -> MoveTicket:
    """A move of the ticket on the condition that its status and its ``next_at`` are as read."""
    return MoveTicket(
        ticket_id=ticket.ticket_id,
        expect_status=ticket.status,
        expect_next_at=ticket.next_at,
        check_next_at=True,
        step=step,
        next_at=next_at,
        clear_due=clear_due,
    )


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
        keys.ticket_message(ticket.ticket_id, step), robot, lines, CAUSE, rules.version, ticket.store_id
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
