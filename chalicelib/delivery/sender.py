"""The sender: moves one outbox message through its states, exactly once.

    pending ─claim─▶ sending ─▶ sent
                        │  ├──▶ dropped   (offer ended, unfollowed / blocked / refused, cap, bad payload)
                        │  ├──▶ failed    (retries spent, or a configuration error) + one ops alert
                        │  ├──▶ unknown   (the request left, no answer came: reconciled by WeChat's
                        │  │               delivery event, never re-sent blindly)
                        │  └──▶ deferred / retrying (quiet hours, budget, backoff) ─due─▶ sending

A message is claimed by a conditional update (status and lease), so concurrent senders and
queue re-deliveries send it once. Caps and the monthly budget are reserved in one transaction
with the message's own ``reserved`` flag: a re-run never reserves twice, and a cap holds under
any number of concurrent sends to one member.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from pynamodb.expressions.operand import Path

from chalicelib import counters, executor, plans
from chalicelib.clock import SHANGHAI
from chalicelib.delivery import channels, discipline, queue, routes
from chalicelib.delivery.api import ApiError, NotDelivered, OutcomeUnknown, WeChatAPI
from chalicelib.delivery.rate import RateLimiter
from chalicelib.errors import Retryable
from chalicelib.events import robot_of
from chalicelib.logs import log
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.texts import fill_known
from chalicelib.runtime import Context
from chalicelib.state.models import Member, Metric, OutboxMessage, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Write

LEASE = timedelta(minutes=2)
TERMINAL = frozenset({"sent", "dropped", "failed", "unknown", "replied", "done"})  # done: identity work
SENDABLE = ("pending", "deferred", "retrying")
DROP_CODES = {
    40003: "invalid openid",
    43004: "no longer follows the account",
    43019: "blocked the account",
    43101: "refused this subscription message",
}
RETRY_CODES = frozenset({-1, 45009, 45011})
COUNTER_TTL = timedelta(days=9)
ROUTE_LIMITS = {
    "quota#custom#": "customer-service quota of this interaction window used",
    "consent#": "no consent left to this subscription message",
    "mass#": "the group's mass message of today is used (WeCom: one a day, docs/wechat.md §4.5)",
}
NO_RECEIPT = frozenset({"custom", "wecom_customer", "miniprogram_subscribe"})  # accepted = delivered (§3.5, §3.6)
CUSTOM_PER_WINDOW = 5  # customer-service messages per 48 h after a member's message (docs/wechat.md §3.5)


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str = ""


def deliver(ctx: Context, key: str, api: WeChatAPI | None = None) -> Outcome:
    now = ctx.clock.now()
    message = db.get(OutboxMessage, key)
    if message is None:
        log("outbox.unknown_key", key=key)
        return Outcome("missing")
    if message.status in TERMINAL or (
        message.status == "sending" and message.lease_until and message.lease_until > now
    ):
        return Outcome(message.status, "already handled")
    if message.status == "sending" and message.sent_channel:
        # Its sender died after the request to WeChat left: never send it a second time.
        return finish(message, "unknown", "the sender stopped after calling WeChat; awaiting its delivery event", now)
    if message.status in ("deferred", "retrying") and message.not_before and message.not_before > now:
        return Outcome(message.status, "not due yet")
    if not claim(message, now):
        return Outcome("busy", "another sender has it")
    try:
        rules = ctx.rules()
        CHAIN_ZONE.set(ZoneInfo(rules.stores.default_timezone))  # the day a drop is counted on
        member = _member(message.member_id)
        return _send(ctx, message, member, rules, api or WeChatAPI(ctx.settings, ctx.clock))
    except Exception as exc:
        if not message.sent_channel:  # nothing left for WeChat yet: give the message back
            hold(message, "retrying", f"sender error: {type(exc).__name__}", now + timedelta(minutes=1), now)
        raise


def claim(message: OutboxMessage, now: datetime) -> bool:
    """Take a due outbox record for this worker (also identity work: chalicelib/identity/work.py)."""
    abandoned = (OutboxMessage.status == "sending") & (OutboxMessage.lease_until < now)
    actions = [
        OutboxMessage.status.set("sending"),
        OutboxMessage.lease_until.set(now + LEASE),
        OutboxMessage.attempts.add(1),
        OutboxMessage.due.remove(),
        OutboxMessage.updated_at.set(now),
    ]
    return db.update(message, actions, OutboxMessage.status.is_in(*SENDABLE) | abandoned) is db.Outcome.NEW


def _member(member_id: str) -> Member | None:
    if robot_of(member_id) is not None:
        return None
    return db.get(Member, member_id, consistent=False)


def _send(ctx: Context, message: OutboxMessage, member: Member | None, rules: RuleSet, api: WeChatAPI) -> Outcome:
    """The message's first route the member can receive now (chalicelib/delivery/routes.py), the
    next one when WeChat or a quota refuses it there; dropped, with every route's reason, when
    none is left."""
    now = ctx.clock.now()
    messaging = rules.messaging
    zone = rules.stores.zone_of(message.store_id or (member.store_id if member else None))
    planned = routes.planned(message, messaging)
    open_ = [r for r in planned if routes.unreachable(r, member, messaging, now) is None]
    verdict = discipline.judge(
        key=message.message_key,
        category=message.category,
        channel=(open_ or planned)[0].channel,
        now=now,
        zone=zone,
        rules=messaging,
        expires_at=message.expires_at,
        subscribed=None if member is None else member.subscribed != "no",
        blocked=bool(member and member.blocked == "yes"),
    )
    if verdict.action == "drop":
        return finish(message, "dropped", verdict.reason, now)
    if verdict.action == "defer":
        return hold(message, "deferred", verdict.reason, verdict.until or now, now)
    why: list[str] = []
    for n, route in enumerate(planned):
        reason = routes.unreachable(route, member, messaging, now)
        if reason is None:
            last = not any(routes.unreachable(r, member, messaging, now) is None for r in planned[n + 1 :])
            outcome = _via(ctx, Attempt(message, member, rules, api, route, zone, last))
            if outcome.status != NEXT:
                return outcome
            reason = outcome.reason
        why.append(f"{route.channel}: {reason}")
    return finish(message, "dropped", _no_route(message, why), now)


NEXT = "next"  # an outcome of one route: it cannot take the message, the next may


@dataclass(frozen=True)
class Attempt:
    message: OutboxMessage
    member: Member | None
    rules: RuleSet
    api: WeChatAPI
    route: routes.Route
    zone: Any
    last: bool  # no other route is left after this one


def _no_route(message: OutboxMessage, why: list[str]) -> str:
    if len(why) == 1 and message.channel == "custom" and why[0].endswith("customer-service window closed"):
        return "customer-service window closed and the rule names no template"
    if len(why) == 1:
        return why[0].split(": ", 1)[1]
    return "no channel reaches the member now (" + "; ".join(why) + ")"


def _via(ctx: Context, a: Attempt) -> Outcome:
    message, rules, channel, now = a.message, a.rules, a.route.channel, ctx.clock.now()
    messaging = rules.messaging
    template = messaging.templates.get(a.route.template or "") if a.route.template else None
    to = robot_of(message.member_id) or channels.address(channel, message.member_id, a.member.ids if a.member else None)
    try:
        request = channels.build(
            channel, to, message.text, _words(message, messaging), template, channels.client_msg_id(message.message_key)
        )
    except channels.PayloadInvalid as exc:
        return Outcome(NEXT, f"payload: {exc}") if not a.last else finish(message, "dropped", f"payload: {exc}", now)
    zone = a.zone
    paced = _group_slot(message, rules, zone, now) if channel == "wecom_group" else _pacing(message, rules, zone, now)
    if paced is not None:
        return paced
    cost = channels_cost(messaging, channel)
    quota = _platform_quota(channel, message, a, now, template)
    held = _reserve(ctx, message, rules, zone, cost, now, quota, a)
    if held is not None:
        return held
    if (
        channel == "robot"
        and not RateLimiter(
            messaging.robot_per_minute,
            window_s=60,
            max_wait_s=0,
            name=keys.robot_rate(ctx.settings.robot_key(to)[-8:]),
        ).acquire()
    ):
        return hold(message, "retrying", "robot: 20 messages a minute", now + timedelta(minutes=1), now)
    if not RateLimiter(messaging.send_rate_per_second).acquire():
        return hold(message, "retrying", "send rate: no free slot", now + timedelta(seconds=1), now)
    return _call(ctx, a, request, cost)


def _words(message: OutboxMessage, messaging: Any) -> dict[str, Any]:
    """The message's words for its template fields, with its kind's ``kind`` and ``summary``."""
    payload = channels.payload_of(message.payload)
    kind = messaging.kinds.get(message.cause)
    if kind is not None:
        payload.setdefault("kind", kind.title)
        if kind.summary:
            payload.setdefault("summary", fill_known(kind.summary, payload))
    return payload


def _group_slot(message: OutboxMessage, rules: RuleSet, zone: Any, now: datetime) -> Outcome | None:
    """A customer group gets at most one push per slot (morning / evening): the first message in a
    slot takes it (conditional put); others, and messages outside every slot, wait for the next."""
    slots = rules.messaging.group_slots
    slot, day = discipline.group_slot(slots, now, zone)
    if slot is not None:
        marker = Shared(
            keys.COUNTERS,
            keys.group_slot(message.member_id, f"{day:%Y-%m-%d}", slot.name),
            value=message.message_key,
            expires=now + COUNTER_TTL,
        )
        mine = Shared.pk.does_not_exist() | (Shared.value == message.message_key)
        if db.put(marker, mine, if_absent=False) is db.Outcome.NEW:
            return None
        _, start = discipline.group_slot(slots, now + timedelta(minutes=_slot_length(slot)), zone)
        reason = f"the group's {slot.name} slot is taken"
    else:
        start, reason = day, "outside the group push slots"
    spread = discipline.spread_offset(message.message_key, min(rules.messaging.release_spread_minutes, 30))
    return hold(message, "deferred", reason, (start + spread).astimezone(now.tzinfo), now)


def _slot_length(slot: Any) -> int:
    start, end = slot.minutes()
    return (end - start) % (24 * 60)


def _pacing(message: OutboxMessage, rules: RuleSet, zone: Any, now: datetime) -> Outcome | None:
    """Fatigue control from the plans: the same kind of push not more than N days running, and
    promotions at most a share of a member's week. These read counters and decide (they are
    soft limits; the hard per-day / per-week caps are reserved atomically in ``_reserve``)."""
    if message.category == "alert":
        return None
    messaging = rules.messaging
    local_day = now.astimezone(zone).date()
    days = [(local_day - timedelta(days=n)).isoformat() for n in range(1, messaging.same_kind_max_days_running + 1)]
    running = [(keys.COUNTERS, keys.same_kind(message.member_id, message.cause, day)) for day in days]
    today = (keys.COUNTERS, keys.same_kind(message.member_id, message.cause, local_day.isoformat()))
    _, week = discipline.cap_periods(now, zone)
    sent_key, promo_key = keys.sent_in_week(message.member_id, week), keys.promos_in_week(message.member_id, week)
    share_keys = [(keys.COUNTERS, sent_key), (keys.COUNTERS, promo_key)] if message.category == "promo" else []
    found = {(item.pk, item.sk): int(item.tally or 0) for item in Shared.batch_get([*running, today, *share_keys])}
    if all(key in found for key in running) and today not in found:
        tomorrow = discipline.next_local_day(now, zone, messaging.quiet_hours)
        return hold(message, "deferred", f"same kind of push {len(running)} days running", tomorrow, now)
    if share_keys:
        total = found.get((keys.COUNTERS, sent_key), 0)
        promos = found.get((keys.COUNTERS, promo_key), 0)
        if total + 1 >= messaging.promo_share_applies_from and (promos + 1) * 100 > (
            messaging.promo_share_max_percent * (total + 1)
        ):
            return finish(
                message,
                "dropped",
                f"promotions would exceed {messaging.promo_share_max_percent}% of this member's messages this week",
                now,
            )
    return None


def _pacing_counts(message: OutboxMessage, zone: Any, now: datetime) -> list[Write]:
    """What a sent message adds to the counters ``_pacing`` reads (updates for the "sent" transaction)."""
    if message.category == "alert":
        return []
    _, week = discipline.cap_periods(now, zone)
    local_day = now.astimezone(zone).date().isoformat()
    names = [keys.same_kind(message.member_id, message.cause, local_day), keys.sent_in_week(message.member_id, week)]
    if message.category == "promo":
        names.append(keys.promos_in_week(message.member_id, week))
    add = (Shared.tally.add(1), Shared.expires.set(now + COUNTER_TTL))
    return [Write("update", Shared(keys.COUNTERS, name), add) for name in names]


def channels_cost(messaging: Any, channel: str) -> int:
    price = getattr(messaging.prices, channel, 0)
    return int(price * 100)


def _platform_quota(channel: str, message: OutboxMessage, a: Attempt, now: datetime, template: Any) -> Limit | None:
    """WeChat's own quotas as built-in caps (docs/wechat.md §3.3–§3.6): template messages per day per
    account; customer-service messages per member per interaction window (its action's quota in
    messaging.json ``service_windows``); a subscribe message takes one of the member's consents
    (a negative amount: taken only while one is left) when its kind's plan chose it."""
    member, rules = a.member, a.rules
    if channel == "template":
        return keys.template_quota(f"{now:%Y-%m-%d}"), rules.messaging.template_daily_quota, 1
    if channel == "custom" and member and member.service_window_until:
        window = f"{member.service_window_until:%Y%m%d%H%M%S}"
        opened = rules.messaging.window_of(member.service_window_action or "message")
        return keys.custom_quota(message.member_id, window), opened.quota if opened else CUSTOM_PER_WINDOW, 1
    if channel in ("subscribe", "miniprogram_subscribe") and template is not None and a.route.planned:
        return keys.consent(message.member_id, template.template_id), 0, -1
    if channel == "wecom_group":  # one mass message a day per customer group (docs/wechat.md §4.5)
        day = f"{now.astimezone(a.zone):%Y-%m-%d}"
        return keys.group_mass(message.member_id, day), rules.campaigns.group_mass_limit.count, 1
    return None


Limit = tuple[str, int, int]  # (shared counter key, limit, amount)


def _counters(
    message: OutboxMessage, rules: RuleSet, zone: Any, cost_fen: int, now: datetime, quota: Limit | None
) -> list[Limit]:
    """What this message counts against: the member's caps, the month's budget, a platform quota."""
    per_member = message.category != "alert" and message.channel != "wecom_group"
    caps = (
        next((c for name, c in rules.messaging.caps.items() if name == message.category), None) if per_member else None
    )
    day, week = discipline.cap_periods(now, zone)
    counters: list[Limit] = []
    if caps and caps.per_day is not None:
        counters.append((keys.cap(message.member_id, message.category, day), caps.per_day, 1))
    if caps and caps.per_week is not None:
        counters.append((keys.cap(message.member_id, message.category, week), caps.per_week, 1))
    if cost_fen:
        counters.append((keys.budget(f"{now.astimezone(zone):%Y-%m}"), rules.messaging.monthly_budget_fen, cost_fen))
    if quota is not None:
        counters.append(quota)
    return counters


def _reserve(
    ctx: Context,
    message: OutboxMessage,
    rules: RuleSet,
    zone: Any,
    cost_fen: int,
    now: datetime,
    quota: Limit | None,
    a: Attempt,
) -> Outcome | None:
    """Take the caps, platform quota and budget for this message on this route, atomically and
    once, in one transaction with the message's own ``reserved`` flag (which names the route: what
    an earlier attempt reserved on another route is given back first). None = go ahead."""
    route = f"{ROUTE}{a.route.channel}"
    if message.reserved and message.reserved.split("|", 1)[0] != route:
        _release(message, now)
    counters = [] if message.reserved else _counters(message, rules, zone, cost_fen, now, quota)
    if not counters:
        return None
    reservation = "|".join([route, *(f"{key}={amount}" for key, _, amount in counters)])
    flag = (OutboxMessage.reserved.set(reservation),)
    writes = [Write("update", message, flag, OutboxMessage.reserved.does_not_exist(), guard=True)]
    for key, limit, amount in counters:
        if amount < 0:  # a consent taken: only while one is left, and it does not expire
            add: tuple[Any, ...] = (Shared.tally.add(amount),)
            room = Shared.tally >= -amount
        else:
            add = (Shared.tally.add(amount), Shared.expires.set(now + COUNTER_TTL))
            room = Shared.tally.does_not_exist() | (Shared.tally <= limit - amount)
        writes.append(Write("update", Shared(keys.COUNTERS, key), add, room, tag=key))
    committed = db.commit(writes, keys.reservation(message.message_key))
    if committed.outcome is db.Outcome.ALREADY_DONE:
        return None  # reserved by an earlier attempt of this same message
    if committed.outcome is db.Outcome.CONFLICT:
        failed = [str(write.tag) for write in committed.failed]
        if not failed:
            raise Retryable("another send held a counter; retry")
        return _refused(ctx, message, rules, zone, now, failed, a.last)
    message.reserved = reservation
    return None


ROUTE = "route:"  # the first item of a reservation: the route it was taken for


def _refused(
    ctx: Context, message: OutboxMessage, rules: RuleSet, zone: Any, now: datetime, failed: list[str], last: bool
) -> Outcome:
    """What to do with a message a cap, quota, consent or the budget refused: the route's own limits
    (its customer-service quota, its consents) send it on to the next route."""
    for prefix, reason in ROUTE_LIMITS.items():
        if any(key.startswith(prefix) for key in failed):
            return Outcome(NEXT, reason) if not last else finish(message, "dropped", reason, now)
    if any(key.startswith("budget#") for key in failed):
        month = f"{now.astimezone(zone):%Y-%m}"
        _alert_once(
            ctx,
            keys.ops_alert("budget", month),
            f"【预算】本月模板消息预算已用完（{month}），付费消息暂停发送，请调整预算。",
            now,
            rules.version,
        )
        first_of_next = (now.astimezone(zone).replace(day=28) + timedelta(days=4)).replace(day=1, hour=9, minute=0)
        return hold(message, "deferred", "monthly budget spent", first_of_next, now)
    if any(key.startswith("quota#") for key in failed):
        tomorrow_utc = (now + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
        return hold(message, "deferred", "the account's template quota for today is used", tomorrow_utc, now)
    if message.category == "promo":
        return finish(message, "dropped", "frequency cap reached", now)
    tomorrow = discipline.next_local_day(now, zone, rules.messaging.quiet_hours)
    return hold(message, "deferred", "frequency cap reached today", tomorrow, now)


def release_reservation(message: OutboxMessage, now: datetime) -> None:
    """Give back what an unsent message reserved: the privacy erase deletes such messages."""
    _release(message, now)


def _release(message: OutboxMessage, now: datetime) -> None:
    """Give back what this message reserved (it will not be sent after all): in one transaction
    with the removal of its ``reserved`` flag, so a re-run never gives back twice."""
    if not message.reserved:
        return
    unflag = (OutboxMessage.reserved.remove(),)
    writes = [Write("update", message, unflag, OutboxMessage.reserved == message.reserved, guard=True)]
    for item in message.reserved.split("|"):
        if item.startswith(ROUTE):
            continue
        key, _, amount = item.partition("=")
        writes.append(Write("update", Shared(keys.COUNTERS, key), (Shared.tally.add(-int(amount or 1)),)))
    committed = db.commit(writes, keys.release(message.message_key))
    if committed.outcome is db.Outcome.CONFLICT:
        raise Retryable("another send held a counter; retry")  # ALREADY_DONE: given back by an earlier attempt
    message.reserved = None


def _call(ctx: Context, a: Attempt, request: channels.ApiRequest, cost_fen: int) -> Outcome:
    message, member, rules, api, channel = a.message, a.member, a.rules, a.api, a.route.channel
    now = ctx.clock.now()
    try:
        api.authorize(request.auth)  # the token first: fetching (and storing) it sends nothing of this message
        # From here on the request may reach WeChat: record that first, so a sender that dies after
        # the call is never followed by a second send (the message becomes "unknown" instead).
        db.update(message, [OutboxMessage.sent_channel.set(channel)])
        answer = api.call(request.path, request.body, request.auth, request.robot)
    except OutcomeUnknown as exc:
        if channel == "template":  # WeChat drops a re-sent template with the same client_msg_id
            return _retry(ctx, message, rules, f"no answer ({exc}); safe to resend with client_msg_id", now)
        if not message.sent_channel:  # the token's fetch timed out: nothing of the message left
            return _retry(ctx, message, rules, f"no token ({exc})", now)
        return finish(
            message,
            "unknown",
            f"no answer from WeChat ({exc}); awaiting its delivery event",
            now,
            extra=[OutboxMessage.sent_channel.set(channel)],
        )
    except (NotDelivered, Retryable, ApiError) as exc:  # Retryable: e.g. the token's force-refresh is busy
        # WeChat answered (or was never reached): nothing of this message is in flight, so a failure
        # from here on gives the message back (``deliver``) instead of leaving it "unknown".
        message.sent_channel = None
        if isinstance(exc, ApiError):
            return _api_error(ctx, a, exc, now)
        return _retry(ctx, message, rules, f"not delivered: {exc}", now)
    log("outbox.sent", key=message.message_key, channel=channel, category=message.category, cost_fen=cost_fen)
    msgid = answer.get("msgid")
    message.sent_channel = channel  # what it was sent on: whether its acceptance is its delivery
    return _sent(
        message,
        member,
        rules,
        cost_fen,
        now,
        [
            OutboxMessage.sent_channel.set(channel),
            OutboxMessage.sent_at.set(now),
            OutboxMessage.cost_fen.set(cost_fen),
            OutboxMessage.response.set(json.dumps(answer)),
            *([OutboxMessage.wechat_msgid.set(str(msgid))] if msgid else []),
        ],
    )


def _sent(
    message: OutboxMessage, member: Member | None, rules: RuleSet, cost_fen: int, now: datetime, extra: list
) -> Outcome:
    """WeChat accepted the message: "sent" and every counter it feeds in one transaction, guarded by
    the message's ``counted`` flag, so a sender that dies now never leaves it sent but uncounted."""
    zone = rules.stores.zone_of(message.store_id or (member.store_id if member else None))
    message.cost_fen = cost_fen
    outcome = [
        OutboxMessage.status.set("sent"),
        OutboxMessage.reason.remove(),
        OutboxMessage.due.remove(),
        OutboxMessage.lease_until.remove(),
        OutboxMessage.updated_at.set(now),
        *extra,
    ]
    counted = _count_sent(
        message, ZoneInfo(rules.stores.default_timezone), now, outcome, _pacing_counts(message, zone, now)
    )
    log("outbox.finished", key=message.message_key, status="sent", reason="", counted=counted)
    return Outcome("sent")


def _count_sent(message: OutboxMessage, zone: Any, now: datetime, outcome: list, also: list[Write]) -> bool:
    """ "Sent" and every counter the message feeds, once, guarded by the message's ``counted`` flag
    (its counters of the chain's local day, and the pacing counters). False when an earlier
    attempt counted it already."""
    counts = Counter({"messages_sent": 1, f"messages_sent:{message.category}": 1})
    if counters.to_member(message.member_id, message.channel):
        counts |= _intended(message.cause)
        if message.sent_channel in NO_RECEIPT:
            counts |= Counter({"messages_delivered": 1, f"messages_delivered:{message.cause}": 1})
    counts["message_cost_fen"] += int(message.cost_fen or 0)
    day = now.astimezone(zone).date().isoformat()
    flag = (OutboxMessage.counted.set("yes"), *outcome)
    writes = [Write("update", message, flag, OutboxMessage.counted.does_not_exist(), guard=True)]
    adds = tuple(Path(name).add(n) for name, n in sorted(counts.items()) if n)
    for scope in [keys.CHAIN, *([message.store_id] if message.store_id else [])]:  # as chalicelib.counters keeps them
        writes.append(Write("update", Metric(scope, day), adds))
    writes += also
    committed = db.commit(writes, keys.sent(message.message_key))
    if committed.outcome is db.Outcome.CONFLICT:
        raise Retryable("another send held a counter; retry")
    return committed.outcome is db.Outcome.NEW


def drop_class(reason: str) -> str:
    """What kind of reason a drop has, for the counters (``messages_dropped:<class>``)."""
    for prefix, name in DROP_CLASSES:
        if prefix in reason:
            return name
    return "other"


DROP_CLASSES = (
    ("no channel reaches", "no_channel"),
    ("window", "window"),
    ("45015", "window"),
    ("45047", "window"),
    ("expired", "expired"),
    ("no longer follows", "unfollowed"),
    ("does not follow", "unfollowed"),
    ("43004", "unfollowed"),
    ("blocked", "blocked"),
    ("refused", "refused"),
    ("consent", "refused"),
    ("cap", "cap"),
    ("promotions would exceed", "cap"),
    ("payload", "payload"),
    ("merged", "merged"),
)
WITHDRAWN = frozenset({"merged"})  # a merge found the person has this message (a second welcome) already


def _intended(cause: str) -> Counter[str]:
    """A member message counts as intended once, when it ends: sent (its delivery counted at once or
    by WeChat's receipt) or dropped. Counted with its outcome, under the message's ``counted`` flag,
    so the delivery rate of a day compares messages with their own outcomes."""
    return Counter({"messages_intended": 1, f"messages_intended:{cause}": 1})


CHAIN_ZONE: ContextVar[tzinfo] = ContextVar("chain_zone", default=SHANGHAI)


def _count_dropped(message: OutboxMessage, reason: str, now: datetime, actions: list[Any]) -> bool:
    """A member message's drop and its counters (``messages_dropped`` by reason class and kind), in
    one transaction guarded by the message's ``counted`` flag. False: not counted (not a member's,
    or counted before), the caller writes the message alone."""
    if not counters.to_member(message.member_id, message.channel):
        return False
    day = now.astimezone(CHAIN_ZONE.get()).date().isoformat()
    what = drop_class(reason)
    if what in WITHDRAWN:  # not a message the member should have had: neither intended nor dropped
        counts = Counter({"messages_withdrawn": 1, f"messages_withdrawn:{what}": 1})
    else:
        counts = _intended(message.cause) | Counter(
            {"messages_dropped": 1, f"messages_dropped:{what}": 1, f"messages_dropped:{message.cause}": 1}
        )
    adds = tuple(Path(name).add(n) for name, n in sorted(counts.items()))
    flag = (OutboxMessage.counted.set("yes"), *actions)
    writes = [Write("update", message, flag, OutboxMessage.counted.does_not_exist(), guard=True)]
    writes += [
        Write("update", Metric(scope, day), adds)
        for scope in [keys.CHAIN, *([message.store_id] if message.store_id else [])]
    ]
    return db.commit(writes, keys.dropped(message.message_key)).outcome is db.Outcome.NEW


def _api_error(ctx: Context, a: Attempt, exc: ApiError, now: datetime) -> Outcome:
    message, member, rules, channel = a.message, a.member, a.rules, a.route.channel
    code = exc.errcode
    if code in DROP_CODES:
        template = rules.messaging.templates.get(a.route.template or message.template or "")
        _mark_member(message.member_id, code, template.template_id if template else None, now)
        _as_wechat_sees(member, code, template.template_id if template else None)
        if not a.last:
            return Outcome(NEXT, f"{code}: {DROP_CODES[code]}")
        return finish(
            message,
            "dropped",
            f"{code}: {DROP_CODES[code]}",
            now,
            extra=[OutboxMessage.response.set(json.dumps(exc.response))],
        )
    if code in (45015, 45047) and channel == "custom" and not a.last:
        if member is not None:
            member.service_window_until = None  # as WeChat sees it: the next routes judge without it
        return Outcome(NEXT, f"{code}: {exc.errmsg or 'outside the customer-service window'}")
    if code == 45047:
        tomorrow = discipline.next_local_day(now, rules.stores.zone_of(message.store_id), rules.messaging.quiet_hours)
        return hold(message, "deferred", "45047: too many customer-service messages", tomorrow, now)
    if code == 45015:
        return finish(message, "dropped", "45015: outside the customer-service window, no template", now)
    if code in RETRY_CODES:
        return _retry(ctx, message, rules, f"{code}: {exc.errmsg}", now)
    _alert_once(
        ctx,
        keys.ops_alert("failed", message.message_key),
        f"【发送失败】消息 {message.message_key} 被微信拒绝（{code}），请检查配置。",
        now,
        rules.version,
    )
    return finish(
        message,
        "failed",
        f"{code}: {exc.errmsg}",
        now,
        extra=[OutboxMessage.response.set(json.dumps(exc.response))],
    )


def _retry(ctx: Context, message: OutboxMessage, rules: RuleSet, reason: str, now: datetime) -> Outcome:
    policy = rules.messaging.retry
    attempts = int(message.attempts or 1)
    if attempts >= policy.max_attempts:
        _alert_once(
            ctx,
            keys.ops_alert("dead", message.message_key),
            f"【发送失败】消息 {message.message_key} 重试 {attempts} 次仍失败，已停止：{reason}",
            now,
            rules.version,
        )
        return finish(message, "failed", f"gave up after {attempts} attempts: {reason}", now)
    delay = discipline.backoff(attempts, policy.base_seconds, policy.max_seconds, random.random())
    return hold(message, "retrying", reason, now + delay, now)


def hold(message: OutboxMessage, status: str, reason: str, until: datetime, now: datetime) -> Outcome:
    db.update(
        message,
        [
            OutboxMessage.status.set(status),
            OutboxMessage.reason.set(reason),
            OutboxMessage.due.set("1"),
            OutboxMessage.not_before.set(until),
            OutboxMessage.lease_until.remove(),
            OutboxMessage.updated_at.set(now),
            # A retry is scheduled only when the request did not reach WeChat, or (templates) when a
            # re-send is harmless: the "call started" marker is cleared with it.
            *([OutboxMessage.sent_channel.remove()] if status == "retrying" else []),
        ],
    )
    log("outbox.held", key=message.message_key, status=status, reason=reason, until=until.isoformat())
    return Outcome(status, reason)


def finish(message: OutboxMessage, status: str, reason: str, now: datetime, extra: list | None = None) -> Outcome:
    if status in ("dropped", "failed"):  # whatever an earlier attempt of it reserved is given back
        _release(message, now)
    actions = [
        OutboxMessage.status.set(status),
        OutboxMessage.reason.set(reason) if reason else OutboxMessage.reason.remove(),
        OutboxMessage.due.remove(),
        OutboxMessage.lease_until.remove(),
        OutboxMessage.updated_at.set(now),
        *(extra or []),
    ]
    if not (status == "dropped" and _count_dropped(message, reason, now, actions)):
        db.update(message, actions)
    log("outbox.finished", key=message.message_key, status=status, reason=reason)
    return Outcome(status, reason)


def _as_wechat_sees(member: Member | None, code: int, template_id: str | None) -> None:
    """What WeChat just said of the member, on the member in hand (the later routes judge by it)."""
    if member is None:
        return
    if code == 43004:
        member.subscribed = "no"
    elif code == 43019:
        member.blocked = "yes"
    elif code == 43101 and template_id:
        member.refused_templates = (member.refused_templates or set()) | {template_id}


def _mark_member(member_id: str, code: int, template: str | None, now: datetime) -> None:
    if robot_of(member_id) is not None:
        return
    mark = plans.MarkMember(
        member_id=member_id,
        now=now,
        unsubscribed=code == 43004,
        blocked=code == 43019,
        refused_template=template if code == 43101 else None,  # the template id: what consent events name
    )
    if mark.unsubscribed or mark.blocked or mark.refused_template:
        executor.execute([mark], keys.mark_member(member_id, code), now)


def _alert_once(ctx: Context, key: str, text: str, now: datetime, rules_version: str) -> None:
    """An ops alert through the outbox itself (WeCom robot), recorded once per key."""
    alert = plans.QueueMessage.to_robot(key, "ops", [text], "ops", rules_version)
    queue.enqueue(ctx.settings, executor.execute([alert], key, now).messages)


def handle_batch(ctx: Context, keys: list[str]) -> list[Outcome]:
    api = WeChatAPI(ctx.settings, ctx.clock)
    return [deliver(ctx, key, api) for key in keys]


def release_due(ctx: Context, page: int = 500, budget_s: float = 50.0) -> int:
    """Re-queue every message whose time has come (deferred, retrying, or never picked up),
    page by page, within ``budget_s`` of wall time (the next run picks up the rest)."""
    deadline = time.monotonic() + budget_s
    released = 0
    query = OutboxMessage.due_index.query("1", OutboxMessage.not_before <= ctx.clock.now(), page_size=page)
    batch: list[str] = []
    for item in query:
        batch.append(item.message_key)
        if len(batch) == page:
            released += queue.enqueue(ctx.settings, batch)
            batch = []
            if time.monotonic() > deadline:
                break
    if batch:
        released += queue.enqueue(ctx.settings, batch)
    return released
