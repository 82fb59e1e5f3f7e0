"""Identity work, off the webhook's path: asking WeChat for a UnionID, and merging two persons.

The pipeline records each piece of work in the outbox (channel ``identity``, keyed once per
subject: ``keys.identity_task``), so it has the outbox's guarantees: handed to the queue at once,
re-queued by the release timer if the hand-off is lost or the work failed, claimed by one
worker at a time. ``jobs.send_messages`` hands these keys here instead of to the sender.

Asking (docs/unionid.md): an official-account follower's ``cgi-bin/user/info``, a WeCom
contact's ``cgi-bin/externalcontact/get``, through the delivery's API client (its token cache
and refresh). A UnionID the answer carries is recorded on the person (``learn``): linked on
its absence, or — when another person has it already — the two are merged. An answer without
one (an account not bound to an Open Platform account, a WeCom user, an unfollowed member) is
final: the person stays as they are.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from chalicelib import executor
from chalicelib.delivery import channels, queue, sender
from chalicelib.delivery.api import WeChatAPI
from chalicelib.delivery.rate import RateLimiter
from chalicelib.errors import ApiError, DeliveryError, NotFound, Retryable
from chalicelib.events import is_platform_id
from chalicelib.identity import merge
from chalicelib.logs import log
from chalicelib.runtime import Context
from chalicelib.state.models import Member, OutboxMessage, Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome, Write

RETRY = timedelta(minutes=5)  # after a failed ask (or no free rate slot)
MAX_ATTEMPTS = 6
# Answers that say "no such user here" (docs/unionid.md): final, nothing to learn.
GONE = frozenset({40003, 46004, 84061, 40096})
ASK: dict[str, tuple[str, str, Literal["oa", "wecom"]]] = {
    "oa": ("/cgi-bin/user/info", "openid", "oa"),
    "wecom": ("/cgi-bin/externalcontact/get", "external_userid", "wecom"),
}


def is_task(key: str) -> bool:
    return key.startswith(keys.IDENTITY)


def handle(ctx: Context, key: str, api: WeChatAPI | None = None) -> str:
    """Do one piece of identity work; returns the record's state afterwards."""
    now = ctx.clock.now()
    task = db.get(OutboxMessage, key)
    if task is None or task.status in sender.TERMINAL:
        return task.status if task is not None else "missing"
    if task.not_before and task.not_before > now and task.status != "pending":
        return task.status
    if not sender.claim(task, now):
        return "busy"
    try:
        reason = _do(ctx, task, api or WeChatAPI(ctx.settings, ctx.clock), now)
    except (Retryable, DeliveryError) as exc:
        if int(task.attempts or 0) + 1 >= MAX_ATTEMPTS:
            sender.finish(task, "failed", f"gave up: {type(exc).__name__}", now)
            log("identity.task_failed", logging.WARNING, cause=task.cause, error=type(exc).__name__)
            return "failed"
        sender.hold(task, "retrying", type(exc).__name__, now + RETRY, now)
        return "retrying"
    sender.finish(task, "done", reason, now)
    if task.cause == "unionid":
        _release(ctx, task.member_id, now)
    return "done"


def _release(ctx: Context, person: str, now: datetime) -> None:
    """The welcome held for this person's identity goes now (unless a merge dropped it)."""
    held = db.get(OutboxMessage, keys.welcome(person))
    if held is None or held.status != "deferred" or held.reason != executor.IDENTITY_HOLD_REASON:
        return
    actions = [OutboxMessage.status.set("pending"), OutboxMessage.reason.remove(), OutboxMessage.not_before.set(now)]
    condition = (OutboxMessage.status == "deferred") & (OutboxMessage.reason == executor.IDENTITY_HOLD_REASON)
    if db.update(held, actions, condition) is Outcome.NEW:
        queue.enqueue(ctx.settings, [held.message_key])


def _do(ctx: Context, task: OutboxMessage, api: WeChatAPI, now: datetime) -> str:
    payload = channels.payload_of(task.payload)
    if task.cause == "merge":
        one, other = str(payload.get("persons", "")).split(" ", 1)
        try:
            done = merge.merge(
                one,
                other,
                why=str(payload.get("why", "")),
                who="siyu",
                now=now,
                settings=ctx.settings,
                rules=ctx.rules(),
            )
        except NotFound:
            return "a person is gone (erased)"
        return f"{done.outcome}: {done.reason}" if done.reason else done.outcome
    platform, source = str(payload.get("platform_id", "")), str(payload.get("source", ""))
    if source not in ASK or not is_platform_id(platform):
        return "nothing to ask"
    path, name, auth = ASK[source]
    # as paced as the sends (messaging.json's send rate), in a limiter of its own: another API
    if not RateLimiter(ctx.rules().messaging.send_rate_per_second, name="identity-rate").acquire():
        raise Retryable("identity asks: no free slot this second")
    try:
        answer = api.query(path, {name: platform, **({"lang": "zh_CN"} if source == "oa" else {})}, auth)
    except ApiError as exc:
        if exc.errcode in GONE:
            return f"WeChat knows no such user ({exc.errcode})"
        raise
    contact = answer.get("external_contact") if source == "wecom" else answer
    unionid = str((contact or {}).get("unionid") or "")
    if not unionid:
        return "WeChat gave no UnionID"
    if not is_platform_id(unionid):
        return "WeChat's UnionID is not an id"
    return learn(ctx, platform, unionid, now)


def learn(ctx: Context, platform_id: str, unionid: str, now: datetime) -> str:
    """Record that ``platform_id``'s person has ``unionid``: link it, or merge with its owner."""
    for _ in range(merge.ATTEMPTS):
        person = merge.current(platform_id)
        if person is None:
            return "the person is gone"
        owner = db.get(Shared, *keys.unionid_link(unionid))
        if owner is not None and owner.value and owner.value != person.member_id:
            done = merge.merge(
                person.member_id,
                owner.value,
                why="unionid",
                who="wechat",
                now=now,
                settings=ctx.settings,
                rules=ctx.rules(),
            )
            return f"{done.outcome}: {done.reason}" if done.reason else done.outcome
        if owner is not None:
            return "known"
        writes = [
            Write(
                "put", Shared(*keys.unionid_link(unionid), value=person.member_id), condition=Shared.pk.does_not_exist()
            ),
            Write(
                "update",
                Member(person.member_id),
                (Member.unionid.set(unionid), Member.updated_at.set(now)),
                Member.member_id.exists() & Member.merged_into.does_not_exist() & Member.unionid.does_not_exist(),
            ),
        ]
        if db.commit(writes, f"unionid#{unionid}").outcome is Outcome.NEW:
            log("identity.learned")
            return "linked"
    raise Retryable("the person keeps changing; the task is retried")
