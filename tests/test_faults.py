"""Faults: kill the webhook and outbox pipelines between every write and the next, once each, and
let WeChat, the POS, the queue and the timers retry as they would: nothing lost, nothing doubled.

What happens at the n-th DynamoDB write (``Faults``, on botocore's one call path):

- ``raise``: an exception before the write; the code's own handlers still run (the event is
  released, the message given back) and the next try takes it over. Every path, every write;
- ``die``: the process stops before the write: nothing reaches DynamoDB any more (not even the
  record of the failure), WeChat's next try (or the queue, after the sender's lease) does the
  work. The paths whose recovery differs (passive replies, queued messages, the ledger, every
  message kind);
- ``throttle``: from that write on DynamoDB answers "throttled" (through botocore's own retries)
  until the attempt is over; and ``once``: every write is throttled once, botocore's retry passes;
- ``before``: a concurrent writer goes first, the write finds its condition failed.

After each kill the end state must equal the state of an uncrashed run (every item the event
created or changed, counters as deltas, the member's id and coupon codes as placeholders,
processing timestamps left out); a message may instead end "unknown" only if its request left.
Then WeChat's side: every error code of docs/wechat.md §3.2, and requests that get no answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlparse

import botocore.client
import pytest
import requests
from botocore.retries.standard import ExponentialBackoff
from moto.core.botocore_stubber import BotocoreStubber
from urllib3.exceptions import ProtocolError

from chalicelib import executor, jobs, ledger, pipeline, plans, runtime
from chalicelib.delivery import api, channels, queue, sender
from chalicelib.metrics import read
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto
from chalicelib.protocol.inbound import Inbound
from chalicelib.protocol.official_account import OfficialAccount
from chalicelib.recall import sweep
from chalicelib.state.models import MODELS, Coupon, EventRecord, Member, OutboxMessage, Shared
from siyu.local import callbacks
from siyu.local.fake_wechat import FakeWeChat
from tests.conftest import START
from tests.helpers import send

WRITES = frozenset({"PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem", "BatchWriteItem"})
WECHAT_TRIES = 3  # docs/wechat.md §1.4: 5 s apart, 3 tries in total
WECHAT_WAIT = timedelta(seconds=5)
REDRIVE_AFTER = timedelta(minutes=1, seconds=1)  # the redrive timer's grace


class Crash(Exception):
    pass


class Faults:
    """Between the app and DynamoDB: counts the writes, and does something to the n-th from now.

    ``raise``: it raises once; ``die``: it raises, and so does every later request until the
    instance is replaced (``settle``); ``throttle``: from it on DynamoDB answers every write
    "throttled", through botocore's own retries, until disarmed; ``once``: every write is throttled
    once, and botocore's retry goes through; ``before``: a concurrent writer's ``action`` runs
    first, then the write proceeds (and may find its condition failed)."""

    def __init__(self) -> None:
        self.countdown: int | None = None
        self.mode = "raise"
        self.action: Callable[[], Any] | None = None
        self.only = ""
        self.dead = False
        self.throttling = False
        self.recorded: list[str] | None = None
        self.touched: set[str] = set()  # tables written to (by anyone), for ``dump``
        self._throttled_once: set[bytes] = set()

    def arm(self, n: int | None, mode: str = "raise", action: Callable[[], Any] | None = None, only: str = "") -> None:
        """``only``: count just the writes whose description (``describe``) starts with it."""
        self.countdown, self.mode, self.action, self.only = n, mode, action, only
        self.dead = self.throttling = False

    def settle(self) -> None:
        """After a failed attempt: a fresh instance takes over, the throttling has passed (a
        countdown that has not fired goes on)."""
        self.dead = self.throttling = False

    def record(self) -> None:
        self.recorded = []

    def stop_recording(self) -> list[str]:
        recorded, self.recorded = self.recorded or [], None
        return recorded

    def check(self, operation: str, params: dict[str, Any]) -> None:
        if self.dead:
            raise Crash(f"dead: {operation} never sent")
        if operation not in WRITES:
            return
        self.touched.update(_tables(operation, params))
        if self.recorded is not None:
            self.recorded.append(describe(operation, params))
        if self.countdown and describe(operation, params).startswith(self.only):
            self.countdown -= 1
            if self.countdown == 0:
                self.countdown = None
                if self.mode == "throttle":
                    self.throttling = True
                elif self.mode == "before" and self.action is not None:
                    action, self.action = self.action, None
                    action()  # the concurrent writer (its own writes are not counted: the countdown is spent)
                else:
                    self.dead = self.mode == "die"
                    raise Crash(f"injected before {operation}")

    def throttled(self, operation: str, body: bytes) -> bool:
        """Whether DynamoDB answers this HTTP request (one of botocore's attempts) "throttled"."""
        if operation not in WRITES:
            return False
        if self.mode == "once":
            if body in self._throttled_once:
                self._throttled_once.discard(body)
                return False
            self._throttled_once.add(body)
            return True
        return self.throttling


THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    }
).encode()


def _tables(operation: str, params: dict[str, Any]) -> list[str]:
    if operation == "TransactWriteItems":
        return list(dict.fromkeys(next(iter(item.values()))["TableName"] for item in params["TransactItems"]))
    if operation == "BatchWriteItem":
        return list(params["RequestItems"])
    return [params["TableName"]]


def describe(operation: str, params: dict[str, Any]) -> str:
    """``UpdateItem members`` / ``TransactWriteItems events+metrics``: which write, for messages."""
    return f"{operation} {'+'.join(t.removeprefix('siyu-test-') for t in _tables(operation, params))}"


@pytest.fixture
def faults(monkeypatch) -> Faults:
    injected = Faults()
    original = botocore.client.BaseClient._make_api_call

    def call(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb":
            injected.check(operation, params)
        return original(client, operation, params)

    def answer(stubber, request):  # DynamoDB's side (moto): a throttled request changes nothing
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        if injected.throttled(operation, request.body or b""):
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, THROTTLED
        return process_request(stubber, request)

    process_request = BotocoreStubber.process_request
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    monkeypatch.setattr(BotocoreStubber, "process_request", answer)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)  # botocore retries at once
    return injected


# --- the tables as data ---------------------------------------------------------------------------

# What legitimately differs between a retried and an uncrashed run: when (and how often) it was
# processed, and the expiry times (TTL) counted from then. Times taken from the event are compared.
VARYING = frozenset(
    {"received_at", "attempts", "error", "lease_until", "updated_at", "created_at", "issued_at", "sent_at"}
    | {"not_before", "expires"}
)
VARYING_IN = {'"group#': {"at"}}  # the group roster (koc.decide) stamps when it was written

Items = dict[tuple[str, str], dict[str, Any]]


def _client():
    return Member._get_connection().connection.client


def _keys() -> dict[str, list[str]]:
    """Each table's key attributes, by table name."""
    keys = {}
    for model in MODELS:
        names = [model._hash_key_attribute().attr_name]
        if model._range_key_attribute() is not None:
            names.append(model._range_key_attribute().attr_name)
        keys[model.Meta.table_name] = names
    return keys


def _key(table: str, item: dict[str, Any], keys: dict[str, list[str]]) -> tuple[str, str]:
    return table, json.dumps([item[name] for name in keys[table]], sort_keys=True, ensure_ascii=False)


def dump(tables: set[str] | None = None) -> Items:
    """Every item of every table (or of ``tables``), raw (DynamoDB JSON), by (table, key)."""
    keys = _keys()
    return {
        _key(table, item, keys): item
        for table in keys
        if tables is None or table in tables
        for page in _client().get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        for item in page["Items"]
    }


def _batch(requests: list[tuple[str, dict[str, Any]]]) -> None:
    for start in range(0, len(requests), 25):
        grouped: dict[str, list[dict[str, Any]]] = {}
        for table, request in requests[start : start + 25]:
            grouped.setdefault(table, []).append(request)
        _client().batch_write_item(RequestItems=grouped)


def wipe(items: Items) -> None:
    keys = _keys()
    _batch(
        [(table, {"DeleteRequest": {"Key": {n: item[n] for n in keys[table]}}}) for (table, _), item in items.items()]
    )


def _substitute(value: Any, names: dict[str, str]) -> Any:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    for raw in sorted(names, key=len, reverse=True):
        text = text.replace(raw, names[raw])
    return json.loads(text)


def restore(items: Items, names: dict[str, str]) -> Items:
    """Write ``items`` into empty tables with ``names`` replaced (a seeded member, cloned under a
    new id); returns what the tables now hold."""
    keys = _keys()
    cloned = [(table, _substitute(item, names)) for (table, _), item in items.items()]
    _batch([(table, {"PutRequest": {"Item": item}}) for table, item in cloned])
    return {_key(table, item, keys): item for table, item in cloned}


def changes(before: Items, after: Items, member: str) -> dict[str, Any]:
    """What happened between two dumps, normalized: new items whole, changed attributes (numbers as
    deltas), removed ones as None; the member id and coupon codes as placeholders."""
    found: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if new is None:
            found[f"{key} removed"] = True
            continue
        change = {}
        for name in sorted(set(old or {}) | set(new)):
            was, now = (old or {}).get(name), new.get(name)
            if name in VARYING or was == now or any(p in key[1] and name in v for p, v in VARYING_IN.items()):
                continue
            if was and now and "N" in was and "N" in now:
                change[name] = {"+": str(Decimal(now["N"]) - Decimal(was["N"]))}
            else:
                change[name] = now
        if change:
            found[" ".join(key) + (" new" if old is None else "")] = change
    return _substitute(found, placeholders(after, member))


def placeholders(items: Items, member: str) -> dict[str, str]:
    names = {member: "<member>"}
    for (table, _), item in items.items():
        if table.endswith("coupons") and member in json.dumps(item, ensure_ascii=False):
            names[item["code"]["S"]] = f"<coupon {item['cause_key']['S'].replace(member, '<member>')}>"
    return names


# --- the paths ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """One webhook delivery of a path: ``seed`` builds what the member had before (once, then
    cloned per run), ``request`` is the delivery WeChat (or the POS) makes and retries."""

    name: str
    request: Callable[[Any, Any, str], callbacks.Request]
    seed: Callable[[Any, Any, Any, str], None] | None = None
    expect: tuple[str, ...] = ()  # tables the uncrashed run must change (the path is not trivial)
    counts: dict[str, int] = field(default_factory=dict)  # some of what it adds to the chain's day
    reply: bool = False
    modes: tuple[str, ...] = ("raise",)  # also "die" / "throttle" where recovery differs (replies, the ledger)


def _now(clock) -> int:
    return int(clock.now().timestamp())


def _order(member: str, order_id: str, amount_fen: int, at, **extra) -> dict:
    return {
        "type": "order_paid",
        "openid": member,
        "store_id": "S001",
        "at": at.isoformat(),
        "order_id": order_id,
        "amount_fen": amount_fen,
        "items": [{"sku": "MT1", "category": "milk-tea", "price_fen": amount_fen}],
        **extra,
    }


def _followed(client, settings, clock, member: str, days_ago: int) -> None:
    clock.set(START - timedelta(days=days_ago))
    xml = callbacks.oa_event(member, "subscribe", _now(clock), "qrscene_st=S001")
    send(client, callbacks.oa_post(settings, xml, clock.now()))


def seed_lapsed_and_recalled(client, settings, clock, member: str) -> None:
    """A follower who last ordered 7 days ago, recalled by this morning's sweep."""
    _followed(client, settings, clock, member, 20)
    clock.set(START - timedelta(days=7))
    send(client, callbacks.order_post(settings, _order(member, f"{member}-old", 3_000, clock.now()), clock.now()))
    clock.set(START - timedelta(minutes=10))  # 09:50 in Shanghai: after the sweep's run_at
    sweep.run(runtime.context())


def seed_three_orders(client, settings, clock, member: str) -> None:
    """Three milk-tea orders (150 yuan) this month, the member then recalled: the next order
    crosses 银卡 (500 yuan, 3 orders), unlocks the invite link (200 yuan), is the fourth milk tea of
    the month (precision push) and counts as the recall's return."""
    _followed(client, settings, clock, member, 20)
    for hours, order in ((3, "a"), (2, "b"), (1, "c")):
        clock.set(START - timedelta(days=7, hours=hours))
        payload = _order(member, f"{member}-{order}", 5_000, clock.now())
        send(client, callbacks.order_post(settings, payload, clock.now()))
    clock.set(START - timedelta(minutes=10))  # 09:50 in Shanghai: after the sweep's run_at
    sweep.run(runtime.context())


def seed_one_order(client, settings, clock, member: str) -> None:
    clock.set(START - timedelta(hours=1))
    send(client, callbacks.order_post(settings, _order(member, f"{member}-r", 8_800, clock.now()), clock.now()))
    clock.set(START)


OCCURRED = START - timedelta(seconds=3)  # the event happened a moment before its delivery
GROUP = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


def _pos(settings, clock, payload: dict) -> callbacks.Request:
    return callbacks.order_post(settings, {"at": OCCURRED.isoformat(), **payload}, clock.now())


def _recall_coupon(member: str) -> str:
    [coupon] = [c for c in Coupon.by_member.query(member) if c.cause == "recall"]
    return coupon.code


PATHS = [
    Path(
        "follow",
        lambda s, clock, m: callbacks.oa_post(
            s, callbacks.oa_event(m, "subscribe", int(OCCURRED.timestamp()), "qrscene_st=S001&ch=poster"), clock.now()
        ),
        counts={"follows": 1, "new_members": 1, "coupons_issued:welcome": 1},
        modes=("raise", "die", "throttle"),  # throttled from that write on: real DynamoDB errors
        expect=("members", "coupons", "outbox", "metrics", "events"),
        reply=True,
    ),
    Path(
        "text",  # the check-in keyword: points, the day's record, the reply
        lambda s, clock, m: callbacks.oa_post(
            s, callbacks.oa_text(m, "签到", int(OCCURRED.timestamp()), 7_001), clock.now()
        ),
        counts={"messages_in": 1, "checkins": 1, "active_members": 1},
        modes=("raise", "die", "throttle"),  # throttled from that write on: real DynamoDB errors
        expect=("members", "points", "loyalty", "outbox", "metrics", "events"),
        reply=True,
    ),
    Path(
        "group_join",
        lambda s, clock, m: callbacks.wecom_post(
            s, callbacks.wecom_group_join(s.wecom_corp_id, GROUP, [m], int(OCCURRED.timestamp())), clock.now()
        ),
        counts={"group_joins": 1, "new_members": 1, "coupons_issued:welcome": 1},
        modes=("raise", "die"),
        expect=("members", "coupons", "outbox", "loyalty", "metrics", "events"),
    ),
    Path(
        "order_paid",
        lambda s, clock, m: _pos(s, clock, _order(m, f"{m}-new", 40_000, OCCURRED)),
        seed=seed_three_orders,
        counts={"orders": 1, "gmv_fen": 40_000, "coupons_issued": 2, "recall_returned": 1},
        expect=("members", "points", "coupons", "outbox", "loyalty", "recalls", "metrics", "events"),
    ),
    Path(
        "order_refunded",
        lambda s, clock, m: _pos(
            s,
            clock,
            {"type": "order_refunded", "openid": m, "order_id": f"{m}-r", "refund_id": "R1", "amount_fen": 3_300},
        ),
        seed=seed_one_order,
        counts={"refunds": 1, "refund_fen": 3_300},
        modes=("raise", "die", "throttle"),  # throttled from that write on: real DynamoDB errors
        expect=("points", "metrics", "events"),
    ),
    Path(
        "review",
        lambda s, clock, m: _pos(s, clock, {"type": "review", "openid": m, "review_id": f"{m}-v", "score": 2}),
        seed=seed_lapsed_and_recalled,
        counts={"reviews": 1, "reviews_negative": 1, "recall_returned": 1},
        expect=("members", "recalls", "metrics", "events"),
    ),
    Path(
        "coupon_redeemed",  # the recall's coupon: redeemed, linked to the recall, the member returned
        lambda s, clock, m: _pos(
            s, clock, {"type": "coupon_redeemed", "openid": m, "coupon_code": _recall_coupon(m), "order_id": f"{m}-x"}
        ),
        seed=seed_lapsed_and_recalled,
        counts={"coupons_redeemed:recall": 1, "recall_returned": 1, "active_members": 1},
        expect=("members", "coupons", "recalls", "metrics", "events"),
    ),
]


# --- running a path ----------------------------------------------------------------------------------


@dataclass
class Run:
    statuses: list[int] = field(default_factory=list)
    reply: str | None = None
    redriven: int = 0


def reply_of(settings, response) -> str | None:
    if b"<Encrypt>" not in response.body:
        return None
    envelope = xmlsafe.parse(response.body, 65536)
    crypto = MessageCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)
    return xmlsafe.parse(crypto.decrypt(envelope["Encrypt"]).encode(), 65536)["Content"]


def deliver_like_wechat(client, settings, clock, request, faults: Faults, n: int | None, mode: str) -> Run:
    """The first try meets the fault; WeChat tries again 5 s later, 3 tries in all, until one is
    answered 200; then, once the lease and the timer's grace have passed, the redrive timer."""
    run = Run()
    faults.arm(n, mode)
    for attempt in range(WECHAT_TRIES):
        if attempt:
            clock.advance(WECHAT_WAIT)
        response = send(client, request)
        faults.arm(None)  # whatever died, the next try runs on a fresh instance
        run.statuses.append(response.status_code)
        if response.status_code == 200:
            run.reply = reply_of(settings, response)
            break
    clock.advance(REDRIVE_AFTER)
    run.redriven = jobs.redrive_stalled_events()
    return run


@dataclass
class Scenario:
    seeded: Items
    template: str
    baseline: dict[str, Any]
    reply: str | None
    writes: list[str]


def prepare(path: Path, client, settings, clock, faults: Faults) -> Scenario:
    template = f"oSeed{path.name.replace('_', '')}"
    if path.seed is not None:
        path.seed(client, settings, clock, template)
    everything = dump()
    wipe(everything)
    seeded = {key: item for key, item in everything.items() if template in json.dumps(item, ensure_ascii=False)}
    member = "oBase"
    before = restore(seeded, seed_names(seeded, template, member))
    faults.touched = {table for table, _ in before}
    clock.set(START)
    faults.record()
    run = deliver_like_wechat(client, settings, clock, path.request(settings, clock, member), faults, None, "raise")
    writes = faults.stop_recording()
    assert run.statuses == [200] and run.redriven == 0, run
    after = dump(faults.touched)
    wipe(after)
    baseline, reply = changes(before, after, member), _substitute(run.reply, placeholders(after, member))
    touched = {key.split(" ")[0].removeprefix("siyu-test-") for key in baseline}
    assert set(path.expect) <= touched, (path.name, sorted(touched))
    [day] = [item for key, item in baseline.items() if key.startswith('siyu-test-metrics [{"S": "chain"}, {"S": "2026')]
    assert {name: int(day[name]["N"]) for name in path.counts if name in day} == path.counts, (path.name, day)
    return Scenario(seeded, template, baseline, reply, writes)


def seed_names(seeded: Items, template: str, member: str) -> dict[str, str]:
    """The template member's id → the clone's; its coupon codes → codes of the clone's own."""
    names = {template: member}
    for (table, _), item in seeded.items():
        if table.endswith("coupons"):
            code = item["code"]["S"]
            names[code] = f"{code[:6]}{member}"
    return names


def replay(path: Path, scenario: Scenario, client, settings, clock, faults: Faults, n: int | None, mode: str):
    member = f"oK{mode[0]}{n}"
    before = restore(scenario.seeded, seed_names(scenario.seeded, scenario.template, member))
    faults.touched = {table for table, _ in before}
    clock.set(START)
    run = deliver_like_wechat(client, settings, clock, path.request(settings, clock, member), faults, n, mode)
    assert ledger.audit([member]) == (1, [])  # the balance is the sum of the entries
    after = dump(faults.touched)  # every table anyone wrote to
    wipe(after)
    run.reply = _substitute(run.reply, placeholders(after, member))
    return run, changes(before, after, member)


def handed_to_outbox(baseline: dict[str, Any]) -> dict[str, Any]:
    """The uncrashed state of an event the redrive timer finished: nobody was left to receive its
    passive reply, so the outbox delivers it (a customer-service message, pending) instead."""
    expected = json.loads(json.dumps(baseline))
    for key, item in expected.items():
        if key.startswith("siyu-test-outbox") and item.get("channel") == {"S": "passive_reply"}:
            item.update(channel={"S": "custom"}, status={"S": "pending"}, due={"S": "1"})
        if key.startswith("siyu-test-events"):
            item.pop("reply", None)
    return expected


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_a_webhook_path_killed_before_any_of_its_writes_ends_as_if_never_killed(path, client, aws, clock, faults):
    scenario = prepare(path, client, aws, clock, faults)
    assert (scenario.reply is not None) == path.reply
    run, state = replay(path, scenario, client, aws, clock, faults, None, "once")  # each write throttled once
    assert run.statuses == [200] and state == scenario.baseline and run.reply == scenario.reply, run
    for mode in path.modes:
        for n, write in enumerate(scenario.writes, start=1):
            where = f"{path.name}: {mode} before write {n} ({write})"
            run, state = replay(path, scenario, client, aws, clock, faults, n, mode)
            assert set(run.statuses) <= {200, 503}, (where, run)  # never 500
            if 200 in run.statuses:  # WeChat got its answer: the reply, not a second one
                assert run.reply == scenario.reply and run.redriven == 0, where
                assert state == scenario.baseline, where
            else:  # every try met the fault (throttled throughout): the timer finished the event
                assert mode == "throttle" and run.redriven == 1, where
                assert state == handed_to_outbox(scenario.baseline), where


# --- the outbox ------------------------------------------------------------------------------------
#
# Every write of the sender (claim, group slot, reservation, rate slots, the "call started" marker,
# the token, the outcome, the counters, holds and releases) killed in turn; the queue redelivers the
# same body, the release timer re-queues what is due, each after the leases have passed.

SHANGHAI_EVENING = START + timedelta(hours=11, minutes=30)  # 21:30 in Shanghai: promotions and group pushes
SEND_PATHS = {
    "template": "/cgi-bin/message/template/send",
    "custom": "/cgi-bin/message/custom/send",
    "wecom_group": "/cgi-bin/externalcontact/add_msg_template",
}
# Shared items that are not about one message: tokens, wall-clock rate slots, locks.
NOT_RESERVATIONS = ("token", "rate#", "robot#", "lock")


@pytest.fixture
def wechat(env, monkeypatch):
    """The fake WeChat on 127.0.0.1, the outbox handing keys to the in-process queue."""
    fake = FakeWeChat().start()
    monkeypatch.setenv("SIYU_WECHAT_API_BASE", fake.url)
    monkeypatch.setenv("SIYU_WECOM_API_BASE", fake.url)
    monkeypatch.setenv("SIYU_OUTBOX_QUEUE", "local")
    api.clear_memory()
    _drain()
    yield fake
    fake.stop()
    api.clear_memory()
    _drain()


def _drain() -> list[str]:
    keys = []
    while not queue.LOCAL.empty():
        keys += queue.LOCAL.get_nowait()
    return keys


def _body(key: str) -> str:
    return json.dumps({"key": key})


@dataclass(frozen=True)
class Outbound:
    """One message the sender delivers: ``setup`` records it (and its member) at the clock's time."""

    name: str
    channel: str
    setup: Callable[[str, str, Any], None]
    at: Any = START
    errcodes: tuple[int, ...] = ()  # the fake WeChat's first answers on the message's send path
    modes: tuple[str, ...] = ("raise", "die")


COUPON_WORDS = {"title": "新人礼券", "value": "9.9", "code": "SYFAULTS", "expires": "2026年12月23日"}


def _message(key: str, member: str, channel: str, category: str, clock, payload=COUPON_WORDS, **fields) -> None:
    message = plans.QueueMessage(
        message_key=key,
        member_id=member,
        channel=channel,
        category=category,
        text="您的新人礼券快到期了",
        cause="faults",
        event_id="evt-faults",
        rules_version="v-faults",
        payload=payload,
        store_id="S001",
        **fields,
    )
    executor.execute([message], key, clock.now())


def _follower(member: str, clock, window: bool = False) -> None:
    window_until = clock.now() + timedelta(hours=40) if window else None
    Member(member, subscribed="yes", store_id="S001", service_window_until=window_until).save()


OUTBOUND = [
    Outbound(
        "template",  # a service template: caps, budget and the template quota reserved; the token fetched
        "template",
        lambda key, m, clock: (
            _follower(m, clock),
            _message(key, m, "custom", "service", clock, template="welcome_gift"),
        ),
        modes=("raise", "die", "throttle"),
    ),
    Outbound(
        "wecom_group",  # a group push: the evening slot taken by a conditional put
        "wecom_group",
        lambda key, m, clock: _message(key, m, "wecom_group", "promo", clock, payload={"sender": "zhangsan"}),
        at=SHANGHAI_EVENING,
    ),
    Outbound(
        "custom_45015",  # WeChat says the window closed: the same message falls back to its template
        "custom",
        lambda key, m, clock: (
            _follower(m, clock, window=True),
            _message(key, m, "custom", "service", clock, template="welcome_gift"),
        ),
        errcodes=(45015,) * 3,  # WeChat keeps saying so
    ),
    Outbound(
        "refused_43004",  # the member unfollowed: dropped, the member marked, the reservations given back
        "template",
        lambda key, m, clock: (
            _follower(m, clock),
            _message(key, m, "template", "service", clock, template="welcome_gift"),
        ),
        errcodes=(43004,) * 3,
        modes=("raise", "die", "throttle"),
    ),
    Outbound(
        "busy_then_sent",  # -1: held for a retry with backoff, released by the timer, then sent
        "template",
        lambda key, m, clock: (
            _follower(m, clock),
            _message(key, m, "template", "service", clock, template="welcome_gift"),
        ),
        errcodes=(-1,),
        modes=("raise",),
    ),
]


@dataclass
class Sent:
    status: str
    delivered: int  # requests for this message the fake WeChat accepted
    refused: int  # … and answered with an error code
    state: dict[str, Any]
    reservations_held: bool  # the caps / budget / quota counters hold exactly what the message reserved
    writes: list[str]  # the sender's and timers' writes (recorded in the uncrashed run)


def send_like_the_queue(key: str, clock, faults: Faults, n: int | None, mode: str) -> str:
    """The queue delivers the message's key, and after a failed batch redelivers the same body once
    the leases have passed; the release timer re-queues what is due (held messages). The n-th
    write from the first delivery on is killed; the instance it kills is replaced."""
    faults.arm(n, mode)
    for _ in range(8):
        try:
            jobs.send_messages([_body(key)])
        except Exception:  # the batch failed: SQS delivers it again
            faults.settle()
        message = OutboxMessage.get(key, consistent_read=True)
        if message.status in sender.TERMINAL:
            break
        clock.advance(max(sender.LEASE, (message.not_before or clock.now()) - clock.now()) + timedelta(seconds=1))
        try:
            jobs.release_due_messages()
        except Exception:
            faults.settle()
        _drain()  # what the timer re-queued is the same key: the next delivery above
    faults.arm(None)
    return OutboxMessage.get(key, consistent_read=True).status


def run_outbound(
    case: Outbound, fake: FakeWeChat, clock, faults: Faults, n: int | None, mode: str, member: str
) -> Sent:
    api.clear_memory()  # every run fetches (and stores) its token: the same writes in the same order
    clock.set(case.at)
    key = f"faults#{member}"
    faults.touched = set()
    case.setup(key, member, clock)
    _drain()
    received = len(fake.sent())
    fake.inject(SEND_PATHS[case.channel], *case.errcodes)
    before = dump(faults.touched)
    if n is None:
        faults.record()
    status = send_like_the_queue(key, clock, faults, n, mode)
    writes = faults.stop_recording()
    after = dump(faults.touched)
    wipe(after)
    refused = len(case.errcodes) - len(fake.injected[SEND_PATHS[case.channel]])
    fake.injected.clear()
    sends = sum(1 for r in fake.sent()[received:] if r["path"] in SEND_PATHS.values())
    state = _substitute(outbox_changes(before, after), {key: "<key>", member: "<member>"})
    return Sent(status, sends - refused, refused, state, reservations_held(after, key), writes)


# What the fake WeChat hands out (message ids, its answers) differs from run to run.
OUTBOX_VARYING = frozenset({"wechat_msgid", "response", "reason"})


def outbox_changes(before: Items, after: Items) -> dict[str, Any]:
    keep = {
        k: v
        for k, v in after.items()
        if not (k[0].endswith("shared") and (v["pk"]["S"] != "count" or v["sk"]["S"].startswith(NOT_RESERVATIONS)))
    }
    found = changes({k: v for k, v in before.items() if k in keep}, keep, "\u0000")
    for item in found.values():
        for name in OUTBOX_VARYING:
            item.pop(name, None)
        if item.get("status", {"S": "sent"}) != {"S": "sent"}:
            item.pop("sent_channel", None)  # which channel was tried last, for a message not sent
    return found


RESERVED_COUNTERS = ("cap#", "budget#", "quota#", "mass#")  # mass#: a group's mass message of the day


def reservations_held(items: Items, key: str) -> bool:
    """Every cap, budget, quota and group mass-message counter equals what the message holds reserved
    (0 when none)."""
    [message] = [v for (t, _), v in items.items() if t.endswith("outbox") and v["message_key"]["S"] == key]
    reserved = dict(
        (name, int(amount))
        for name, _, amount in (
            p.partition("=") for p in message.get("reserved", {}).get("S", "").split("|") if p and "=" in p
        )
    )
    counts = {
        v["sk"]["S"]: int(v.get("count", {}).get("N", 0))
        for (t, _), v in items.items()
        if t.endswith("shared") and v["pk"]["S"] == "count" and v["sk"]["S"].startswith(RESERVED_COUNTERS)
    }
    return all(counts.get(name, 0) == amount for name, amount in reserved.items()) and all(
        count == reserved.get(name, 0) for name, count in counts.items()
    )


@pytest.mark.parametrize("case", OUTBOUND, ids=[c.name for c in OUTBOUND])
def test_an_outbox_message_killed_before_any_write_reaches_the_member_once(case, aws, clock, wechat, faults):
    base = run_outbound(case, wechat, clock, faults, None, "raise", "oBase")
    writes = base.writes
    assert base.status in ("sent", "dropped") and base.reservations_held, base
    once = run_outbound(case, wechat, clock, faults, None, "once", "oKonce")  # each write throttled once
    assert (once.status, once.delivered, once.state) == (base.status, base.delivered, base.state), once
    for mode in case.modes:
        for n, write in enumerate(writes, start=1):
            where = f"{case.name}: {mode} before write {n} ({write})"
            run = run_outbound(case, wechat, clock, faults, n, mode, f"oK{mode[0]}{n}")
            assert run.delivered <= 1 and run.reservations_held, (where, run)  # never twice, nothing leaked
            if run.status == "unknown":  # the request left and its answer was not recorded: never resent
                assert run.delivered + run.refused >= 1, where
                # A sender that could still write knows what WeChat said; one dead (or throttled) cannot.
                assert mode in ("die", "throttle") or run.delivered == base.delivered, where
            else:
                assert (run.status, run.delivered) == (base.status, base.delivered), where
                assert run.state == base.state, where


# --- a concurrent writer wins the condition: the loser backs off cleanly --------------------------


def _follow_request(settings, clock, member: str) -> callbacks.Request:
    return PATHS[0].request(settings, clock, member)


def test_a_duplicate_delivery_that_loses_the_claim_answers_with_the_winners_reply(client, aws, clock, faults):
    request = _follow_request(aws, clock, "oRace1")
    winner = {}
    faults.arm(1, "before", action=lambda: winner.update(response=send(client, request)))
    loser = send(client, request)  # WeChat's retry, arriving while the first delivery works
    assert winner["response"].status_code == loser.status_code == 200
    assert reply_of(aws, loser) == reply_of(aws, winner["response"]) and "9.9元" in reply_of(aws, loser)
    assert len(list(Coupon.by_member.query("oRace1"))) == 1
    messages = [m.message_key for m in OutboxMessage.by_member.query("oRace1")]
    assert messages == ["identity#unionid#oRace1", "welcome#oRace1"]  # and the UnionID asked once
    day = read.days("chain", START.date(), START.date())[START.date()]
    assert day["follows"] == 1 and day["coupons_issued"] == 1


def test_a_delivery_finding_a_failed_attempts_record_completes_the_event_once(client, aws, clock, faults):
    request = _follow_request(aws, clock, "oRace2")
    query = dict(parse_qsl(request.path.partition("?")[2]))
    event = OfficialAccount(aws).receive(Inbound("POST", query, {}, request.body), clock.now()).event
    # A peer's attempt failed just before this one commits: its record, kept for the redrive timer.
    faults.arm(1, "before", action=lambda: pipeline._keep_for_redrive(runtime.context(), event, "RuntimeError"))
    retry = send(client, request)
    assert retry.status_code == 200 and "9.9元" in reply_of(aws, retry)
    assert len(list(Coupon.by_member.query("oRace2"))) == 1
    assert EventRecord.get(event.event_id).status == "done" and jobs.redrive_stalled_events() == 0


def test_a_posting_that_loses_the_balance_to_a_concurrent_one_rereads_and_posts(client, aws, clock, faults):
    first = _pos(aws, clock, _order("oRace3", "oRace3-1", 12_000, OCCURRED))
    second = _pos(aws, clock, _order("oRace3", "oRace3-2", 3_000, OCCURRED))
    faults.arm(1, "before", action=lambda: send(client, second), only="TransactWriteItems")
    assert send(client, first).status_code == 200
    assert ledger.balance_of("oRace3").points == 150 and len(ledger.entries("oRace3", "earn#")) == 2
    assert ledger.audit(["oRace3"]) == (1, [])


def test_a_member_active_twice_at_once_counts_one_active_member(client, aws, clock, faults):
    first = callbacks.oa_post(aws, callbacks.oa_text("oRace4", "你好", int(OCCURRED.timestamp()), 8_001), clock.now())
    second = callbacks.oa_post(aws, callbacks.oa_text("oRace4", "在吗", int(OCCURRED.timestamp()), 8_002), clock.now())
    faults.arm(1, "before", action=lambda: send(client, second), only="TransactWriteItems")
    assert send(client, first).status_code == 200
    day = read.days("chain", START.date(), START.date())[START.date()]
    assert day["messages_in"] == 2 and day["active_members"] == 1


def test_a_sender_that_loses_the_claim_to_another_sends_nothing(aws, clock, wechat, faults):
    clock.set(SHANGHAI_EVENING)
    _follower("oRace5", clock)
    _message("race", "oRace5", "template", "service", clock, template="welcome_gift")
    ctx = runtime.context()
    won = {}
    faults.arm(1, "before", action=lambda: won.update(outcome=sender.deliver(ctx, "race")), only="UpdateItem outbox")
    [lost] = sender.handle_batch(ctx, ["race"])  # its claim finds the message taken
    assert (won["outcome"].status, lost.status) == ("sent", "busy")
    assert OutboxMessage.get("race").status == "sent" and len(wechat.sent(SEND_PATHS["template"])) == 1
    assert Shared.get("count", "cap#oRace5#service#2026-11-23").tally == 1  # reserved once


def test_a_welcome_finished_by_the_redrive_timer_reaches_the_follower_through_the_outbox(
    client, aws, clock, wechat, faults, monkeypatch
):
    from chalicelib.store import db

    real_commit = db.commit

    def down_for_the_event(writes, cause):  # every try's commit fails; the record of the failure is kept
        if not cause.startswith("failed#"):
            raise ConnectionError("DynamoDB unreachable from this instance")
        return real_commit(writes, cause)

    monkeypatch.setattr(db, "commit", down_for_the_event)
    statuses = []
    for _ in range(WECHAT_TRIES):
        statuses.append(send(client, _follow_request(aws, clock, "oLate")).status_code)
        clock.advance(WECHAT_WAIT)
    monkeypatch.setattr(db, "commit", real_commit)
    clock.advance(REDRIVE_AFTER)
    assert statuses == [503, 503, 503] and jobs.redrive_stalled_events() == 1  # nobody received the passive reply
    assert _drain() == ["welcome#oLate", "identity#unionid#oLate"]  # the timer handed them to the outbox
    jobs.send_messages([_body("welcome#oLate")])
    [sent] = wechat.sent(SEND_PATHS["template"])  # past the follow's 1-minute window: its template
    [coupon] = Coupon.by_member.query("oLate")
    assert sent["body"]["touser"] == "oLate" and sent["body"]["data"]["character_string3"]["value"] == coupon.code
    assert OutboxMessage.get("welcome#oLate").status == "sent"


# --- WeChat's answers: every error code of docs/wechat.md §3.2, and no answer at all --------------------


@dataclass(frozen=True)
class Expect:
    status: str
    sends: int  # requests on the send paths
    member: dict[str, Any] = field(default_factory=dict)  # member fields afterwards
    alert: bool = False  # one ops alert queued
    then: str = ""  # "sent": a later delivery sends it; "refused": the member's next message goes unsent


CODES = [  # (errcode, message, what a member / ops notice)  — docs/wechat.md §3.2's action in the comment
    (-1, "template", Expect("retrying", 1, then="sent")),  # system busy: retry with backoff
    (40001, "template", Expect("sent", 2)),  # token not latest: fetch again once, resend
    (40014, "template", Expect("sent", 2)),  # invalid token: same
    (42001, "template", Expect("sent", 2)),  # token expired: same
    (40003, "template", Expect("dropped", 1)),  # invalid openid: drop, no retry
    (43004, "template", Expect("dropped", 1, {"subscribed": "no"}, then="refused")),  # unfollowed: drop, mark
    (43019, "template", Expect("dropped", 1, {"blocked": "yes"}, then="refused")),  # blocked us: drop
    (43101, "template", Expect("dropped", 1, {"refused_templates": {"TPL-WELCOME-GIFT"}}, then="refused")),
    (45009, "template", Expect("retrying", 1, then="sent")),  # quota: back off, no hot loop
    (45015, "custom", Expect("sent", 2)),  # outside the window: its template instead
    (45015, "custom_bare", Expect("dropped", 1)),  # … and without one, dropped
    (45047, "custom", Expect("sent", 2)),  # too many without interaction: its template instead
    (45047, "custom_bare", Expect("deferred", 1)),  # … or held until the next day (and the next interaction)
    (47003, "template", Expect("failed", 1, alert=True)),  # argument invalid: fix the payload
    (40037, "template", Expect("failed", 1, alert=True)),  # invalid template_id: configuration error
    (48001, "template", Expect("failed", 1, alert=True)),  # API unauthorised: configuration error
]


def _outbound(key: str, member: str, kind: str, clock) -> None:
    if kind == "template":
        _follower(member, clock)
        _message(key, member, "template", "service", clock, template="welcome_gift")
    else:  # a customer-service message in the window, with or without a template to fall back to
        _follower(member, clock, window=True)
        _message(key, member, "custom", "service", clock, template="welcome_gift" if kind == "custom" else None)


@pytest.mark.parametrize(("code", "kind", "expect"), CODES, ids=[f"{c}-{k}" for c, k, _ in CODES])
def test_each_wechat_error_code_gets_its_action(code, kind, expect, aws, clock, wechat):
    clock.set(SHANGHAI_EVENING - timedelta(hours=3))  # 18:30: not quiet
    path = SEND_PATHS["template" if kind == "template" else "custom"]
    _outbound("m1", "oCode", kind, clock)
    wechat.inject(path, code)
    outcome = sender.deliver(runtime.context(), "m1")
    sends = [r for r in wechat.sent() if r["path"] in SEND_PATHS.values()]
    assert (outcome.status, len(sends)) == (expect.status, expect.sends), outcome
    member = Member.get("oCode")
    assert {name: getattr(member, name) for name in expect.member} == expect.member
    alerts = [m.message_key for m in OutboxMessage.scan() if m.category == "alert"]
    assert alerts == (["alert#failed#m1"] if expect.alert else [])
    held = Shared.get("count", "cap#oCode#service#2026-11-23").tally
    assert held == (1 if outcome.status in ("sent", "retrying", "deferred") else 0)  # given back when dropped
    if code in (40001, 40014, 42001):  # fetched once more in normal mode; WeChat handed back the refused
        assert wechat.token_calls == {"normal": 2, "force": 1}  # token, so one forced refresh (api.py)
    message = OutboxMessage.get("m1")
    if expect.status in ("retrying", "deferred"):
        assert message.not_before > clock.now()  # no hot loop
    if expect.then == "sent":
        clock.set(message.not_before)
        assert sender.deliver(runtime.context(), "m1").status == "sent"
    if expect.then == "refused":
        _message("m2", "oCode", "template", "service", clock, template="welcome_gift")
        assert sender.deliver(runtime.context(), "m2").status == "dropped"
    assert len([r for r in wechat.sent() if r["path"] in SEND_PATHS.values()]) == expect.sends + (expect.then == "sent")


class FlakyTransport(requests.adapters.HTTPAdapter):
    """The road to the (fake) WeChat, failing the first request to ``path``: it reaches WeChat
    and the answer is lost (``read_timeout``, ``reset``), or it never connects."""

    def __init__(self, path: str, fault: str) -> None:
        super().__init__()
        self.path, self.fault = path, fault

    def send(self, request, **kwargs):
        if self.fault and urlparse(request.url).path == self.path:
            fault, self.fault = self.fault, ""
            if fault == "connect_timeout":
                raise requests.ConnectTimeout(request=request)
            super().send(request, **kwargs)  # WeChat gets it (and acts on it) …
            if fault == "read_timeout":
                raise requests.ReadTimeout(request=request)
            reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
            raise requests.ConnectionError(reset, request=request)  # … the answer never comes back
        return super().send(request, **kwargs)


def _to(channel: str, key: str, clock) -> None:
    """Record one message on ``channel``."""
    if channel in ("template", "subscribe", "miniprogram_subscribe", "custom"):
        _follower("oSlow", clock, window=channel == "custom")
        _message(key, "oSlow", channel, "service", clock, template=None if channel == "custom" else "welcome_gift")
        return
    recipient = {"wecom_customer": "wmSlow", "wecom_group": GROUP, "robot": "ops"}[channel]
    category = {"wecom_group": "promo", "robot": "alert"}.get(channel, "service")
    _message(
        key, recipient, channel, category, clock, payload={"sender": "zhangsan"} if channel == "wecom_group" else {}
    )


CHANNEL_PATHS = channels.PATHS
TIMEOUTS = [
    *[(channel, fault) for channel in CHANNEL_PATHS for fault in ("read_timeout", "reset")],
    ("template", "connect_timeout"),
    ("custom", "connect_timeout"),
    ("template", "token_timeout"),
    ("wecom_customer", "token_timeout"),
]


@pytest.mark.parametrize(("channel", "fault"), TIMEOUTS, ids=[f"{c}-{f}" for c, f in TIMEOUTS])
def test_no_answer_from_wechat_is_never_a_second_send(channel, fault, aws, clock, wechat):
    clock.set(START - timedelta(minutes=90))  # 08:30 in Shanghai: the groups' morning slot, not quiet
    _to(channel, "slow", clock)
    token_path = "/cgi-bin/gettoken" if channel.startswith("wecom") else "/cgi-bin/stable_token"
    path = token_path if fault == "token_timeout" else CHANNEL_PATHS[channel]
    http = requests.Session()
    http.mount("http://", FlakyTransport(path, "read_timeout" if fault == "token_timeout" else fault))
    ctx = runtime.context()
    first = sender.deliver(ctx, "slow", api.WeChatAPI(ctx.settings, ctx.clock, http))
    clock.advance(timedelta(minutes=30))  # past every lease and backoff; the queue and the timer come again
    again = sender.deliver(ctx, "slow")
    requests_sent = wechat.sent(CHANNEL_PATHS[channel])
    if fault in ("read_timeout", "reset") and channel != "template":
        # It may have been delivered: "unknown" until WeChat's delivery event says so, never resent.
        assert (first.status, again.status, len(requests_sent)) == ("unknown", "unknown", 1)
    elif fault in ("read_timeout", "reset"):
        # A template is resent under the same client_msg_id: WeChat drops the copy.
        assert (first.status, again.status, len(requests_sent)) == ("retrying", "sent", 2)
        assert len({r["body"]["client_msg_id"] for r in requests_sent}) == 1
    else:  # it never left (no connection, no token): sent once later
        assert (first.status, again.status, len(requests_sent)) == ("retrying", "sent", 1)
