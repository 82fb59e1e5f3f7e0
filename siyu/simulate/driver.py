"""``siyu simulate``: a synthetic chain lived through siyu's real endpoints on a virtual clock.

The simulation starts its own local stack (the same pieces as ``make run``: the Chalice app over
HTTP on 127.0.0.1, the fake WeChat, DynamoDB Local — its own, in memory, or the DynamoDB that
``SIYU_DYNAMODB_ENDPOINT`` names, whose tables of the run are deleted at its end), with fresh
tables, so a run never touches ``make run``'s data and the same seed gives the same result. It
then lives the days:

- every member's planned events go to ``/wechat/oa``, ``/wechat/work`` or ``/hooks/orders`` as
  WeChat, WeCom and the POS send them (signed, safe-mode encrypted), stamped with the virtual
  time; a 5xx is retried as WeChat would (three tries);
- every 30 virtual minutes the app's own schedule handlers run when their rate says so (those
  of a shorter rate once per 30 minutes), and the outbox is drained through the app's SQS
  handler (synchronously, so runs repeat exactly);
- members read what reached them: the welcome reply and the messages the fake WeChat received
  carry coupon codes, which they show at the till; a lapsed member whom a recall message reached
  comes back more often than one held out;
- a mini-program user shows her member code at the till, which looks her up
  (``/mp/member-code``, then ``GET /pos/members/{code}``) and gives her tier's discount, reported
  with the order as ``tier_discount_fen``;
- the stores' tills ask siyu about a shown coupon (``/pos/coupons/check``, then ``/redeem`` for
  the order, and now and then ``/void`` when the customer cancels and the sale is rung again);
  some orders are at another store than the member's own, so a coupon of one store is refused at
  another; a few older tills only report the codes with the order afterwards;
- store staff answer negative reviews through ``POST /admin/tickets/{id}``, some stores slowly;
- the fake WeChat enforces the platform on the virtual clock (``siyu/local/fake_platform.py``):
  every official-account event the members send also tells it what they did (a follow, an
  unfollow, a message — a check-in by text is one), so the customer-service window, following
  and subscribe consent hold siyu's sends as WeChat would; some followers answer the
  subscribe-message popup (``subscribe_msg_popup_event``, one accept = one send), a few block
  template messages; the outbox is drained right after each event as well (siyu's queue sends
  within seconds, inside the one-minute windows a follow opens), and each slot the receipts
  WeChat owes (``TEMPLATESENDJOBFINISH``, ``subscribe_msg_sent_event``) are posted to ``/wechat/oa``.

Virtual time also paces the send-rate limiters (``rate.use_pace``), which otherwise run on the
wall clock: nothing in a run depends on how fast this machine is.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import requests

from chalicelib import runtime, settings
from chalicelib.clock import FixedClock, to_unix
from chalicelib.delivery import api, queue, rate
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto
from siyu.local import callbacks
from siyu.local.dynamodb import DynamoDBLocal
from siyu.simulate import world
from siyu.simulate.world import ZONE, Persona, Planned

SLOT = timedelta(minutes=30)  # the timers' resolution: jobs of a shorter rate run once a slot
CODE = re.compile(r"SY[A-Z2-7]{10}")
ADMIN_TOKEN = "siyu-simulate-admin-token"
TILL_KEY = "siyu-simulate-till-"  # + the store id: each store's till key
AWAY_SHARE = 0.05  # orders at another store than the member's own
REPORT_ONLY_SHARE = 0.1  # shown coupons an older till only reports with the order
MEMBER_CODE_SHARE = 0.5  # orders of a mini-program user who shows her member code
VOID_SHARE = 0.03
CATALOG_SHARE = 0.15  # orders after which the member spends points on the catalog
CATALOG_ITEMS = (
    "americano",
    "tote-bag",
    "lottery-entry",
)  # till redemptions the customer cancels (the sale is rung again)


@dataclass
class Tally:
    """What the simulation did, as the member side saw it."""

    sent: Counter[str] = field(default_factory=Counter)  # planned events by kind
    statuses: Counter[int] = field(default_factory=Counter)  # HTTP answers
    retried: int = 0
    unanswered: int = 0  # still 5xx after three tries
    staff: Counter[str] = field(default_factory=Counter)  # ticket actions recorded
    returns: Counter[str] = field(default_factory=Counter)  # recalled / held out members who came back
    timer_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # wall time, for tuning
    wechat_received: Counter[str] = field(default_factory=Counter)  # fake WeChat calls by API path
    receipts: int = 0  # delivery receipts posted to siyu
    ids: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # person → ids they used
    # person → ids siyu could learn are theirs (WeChat knows every OA and WeCom id's UnionID; a
    # mini-program id once an order carried it)
    linkable: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    till: Counter[str] = field(default_factory=Counter)  # the tills' calls by outcome


class VirtualPace(rate.Pace):
    """The limiters' clock: virtual time, plus what they have 'slept' (so a wait terminates)."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock, self.slept = clock, 0.0
        super().__init__(self._wall, self._sleep)

    def _wall(self) -> float:
        return self.clock.now().timestamp() + self.slept

    def _sleep(self, seconds: float) -> None:
        self.slept += seconds


class Simulation:
    def __init__(
        self,
        stores: int,
        members: int,
        days: int,
        seed: int,
        start: date,
        out: TextIO = sys.stderr,
        progress: bool = True,
    ) -> None:
        self.seed, self.days, self.out, self.progress = seed, days, out, progress
        self.start = datetime.combine(start, datetime.min.time(), ZONE)
        self.chain = world.stores(stores, seed)
        self.people = world.members(members, self.chain, self.start, days, seed)
        self.by_id = {i: p for p in self.people for i in p.ids}
        self.pockets: dict[str, list[str]] = {p.member_id: [] for p in self.people}
        self.used: set[str] = set()
        self.reached: dict[str, datetime] = {}  # when a message last reached each member
        self.tally = Tally()
        self.agenda: list[tuple[datetime, int, Planned]] = []
        self._seq = 0
        self._seen_wechat = 0
        self._seen_recalls: set[tuple[str, str]] = set()

    # -- running -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from siyu.simulate import summary

        saved_env = dict(os.environ)
        workdir = Path(tempfile.mkdtemp(prefix="siyu-simulate-"))
        clock = FixedClock(self.start.astimezone(world.UTC))
        external = os.environ.get("SIYU_DYNAMODB_ENDPOINT")
        self.own_dynamodb = not external
        dynamodb = None if external else DynamoDBLocal().start()
        endpoint = external or (dynamodb.endpoint if dynamodb else "")
        previous_clock, previous_pace = runtime.use_clock(clock), rate.use_pace(VirtualPace(clock))
        stack = None
        try:
            self._environment(workdir, endpoint)
            api.clear_memory()  # tokens of an earlier run in this process belong to another fake WeChat
            stack = self._start_stack()
            self.clock, self.stack = clock, stack
            stack.wechat.configure(enforce=True, now=lambda: self.clock.now().timestamp())
            self.http = requests.Session()
            self._publish_rules()
            began = time.monotonic()
            for n in range(self.days):
                self._live_day(self.start.date() + timedelta(days=n), n, began)
            self._finish_line(began)
            return summary.collect(self)
        finally:
            if stack is not None:
                stack.stop()
            if dynamodb is not None:
                dynamodb.stop()
            elif stack is not None:
                _delete_tables()  # of this run, in the caller's DynamoDB: the next run starts afresh
            runtime.use_clock(previous_clock)
            rate.use_pace(previous_pace)
            os.environ.clear()
            os.environ.update(saved_env)
            settings_reset()
            shutil.rmtree(workdir, ignore_errors=True)

    def _environment(self, workdir: Path, endpoint: str) -> None:
        from siyu.local import stack as local_stack

        run = uuid.uuid4().hex[:6]
        rules_dir = workdir / "rules"
        shutil.copytree(settings.PROJECT_DIR / "rules", rules_dir)
        stores = json.loads((rules_dir / "stores.json").read_text(encoding="utf-8"))
        stores["stores"] = [
            {"id": s.id, "name": s.name, "timezone": "Asia/Shanghai", "groups": [s.group]} for s in self.chain
        ]
        (rules_dir / "stores.json").write_text(json.dumps(stores, ensure_ascii=False, indent=2), encoding="utf-8")
        campaigns = json.loads((rules_dir / "campaigns.json").read_text(encoding="utf-8"))
        campaigns["calendar"]["owners"] = {s.group: f"owner-{s.id}" for s in self.chain}  # who confirms its pushes
        (rules_dir / "campaigns.json").write_text(json.dumps(campaigns, ensure_ascii=False, indent=2), encoding="utf-8")
        for name in list(os.environ):
            if name.startswith("SIYU_"):
                del os.environ[name]
        os.environ.update(
            {
                # in another DynamoDB, tables of their own even beside an unfinished run's
                "SIYU_TABLE_PREFIX": f"siyu-sim{self.seed}-" if self.own_dynamodb else f"siyu-sim{self.seed}-{run}-",
                "SIYU_RULES_DIR": str(rules_dir),
                "SIYU_ADMIN_TOKEN": ADMIN_TOKEN,
                "SIYU_LOG_LEVEL": "WARNING",
                "SIYU_RULES_CACHE_SECONDS": "86400",  # published once, before the first event
                "SIYU_DYNAMODB_ENDPOINT": endpoint,
                "SIYU_TILL_KEYS": ",".join(f"{s.id}={TILL_KEY}{s.id}" for s in self.chain),
            }
        )
        local_stack.apply_local_defaults()
        settings_reset()

    def _start_stack(self):
        from chalicelib.state import binding
        from siyu.local import stack as local_stack

        binding._bound = None
        warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
        stack = local_stack.start(port=0, wechat_port=0, background=False)
        from chalice.local import ChaliceRequestHandler

        ChaliceRequestHandler.log_message = lambda *args: None  # no access log (this process only)
        return stack

    def _publish_rules(self) -> None:
        from chalicelib.rules import loader, versions

        files = loader.read_dir(settings.current().rules_dir)
        versions.publish(files, note="siyu simulate", author="siyu simulate", now=self.clock.now())

    def _live_day(self, day: date, n: int, began: float) -> None:
        for person in self.people:
            for planned in world.day_plan(person, day, self.seed):
                self._schedule(planned)
        slot_start = datetime.combine(day, datetime.min.time(), ZONE)
        for _ in range(int(timedelta(days=1) / SLOT)):
            slot_end = slot_start + SLOT
            while self.agenda and self.agenda[0][0] < slot_end:
                at, _, planned = heapq.heappop(self.agenda)
                self.clock.set(max(at, slot_start))
                self._act(planned)
                self._drain()
            self.clock.set(slot_end)
            self._run_timers(slot_end)
            self._drain()
            self._post_receipts()
            self._read_recalls(slot_end)
            slot_start = slot_end
        self._progress(n + 1, began)

    def _schedule(self, planned: Planned) -> None:
        self._seq += 1
        heapq.heappush(self.agenda, (planned.at, self._seq, planned))

    def _run_timers(self, at: datetime) -> None:
        from siyu.local.timers import scheduled_event

        elapsed = int((at - self.start).total_seconds())
        for job in self.stack.timers.jobs:
            period = job.schedule.value * {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}[job.schedule.unit]
            if period <= SLOT.total_seconds() or elapsed % period == 0:
                began = time.perf_counter()
                job.handler(scheduled_event(job.name, at), None)
                self.tally.timer_seconds[job.name] += time.perf_counter() - began

    def _drain(self) -> None:
        """Send what the outbox queued, through the app's SQS handler, until nothing is queued."""
        handler = sys.modules["app"].send_outbox_messages
        while True:
            keys: list[str] = []
            while True:
                try:
                    keys += queue.LOCAL.get_nowait()
                except queue.stdlib_queue.Empty:
                    break
            if not keys:
                break
            for i in range(0, len(keys), 10):
                handler(queue.sqs_event(keys[i : i + 10]), None)
        self._read_wechat()

    # -- members' side -----------------------------------------------------------------------
    def _act(self, planned: Planned) -> None:
        person, now = planned.member, self.clock.now()
        kind = planned.kind
        self.tally.sent[kind] += 1
        if kind in ("arrive", "arrive_second"):
            self._arrive(person, now, second=kind == "arrive_second")
        elif kind == "order":
            self._order(person, now, planned.detail.get("returning", False))
        elif kind in ("checkin", "text", "unfollow", "popup"):
            self._account(kind, person, planned.detail, now)
        elif kind == "birthday":
            self._pos(person, {"type": "profile_updated", "update_id": "profile-1", "birthday": person.birthday})
        elif kind in ("review", "nps", "refund"):
            self._after_order(kind, person, planned.detail, now)
        elif kind.startswith("staff:"):
            self._staff(kind.split(":", 1)[1], planned.detail["ticket"], planned.detail["by"])

    def _account(self, kind: str, person: Persona, detail: dict[str, Any], now: datetime) -> None:
        """What a member does with the official account (a check-in of a group member goes to the POS)."""
        if kind == "checkin" and person.channel != "oa":
            self._pos(person, {"type": "checked_in", "checkin_id": now.astimezone(ZONE).date().isoformat()})
        elif kind == "checkin":
            self._message(person, "签到", now)
        elif kind == "text":
            rng = world.rng(self.seed, person.member_id, "text", now.isoformat())
            self._message(person, rng.choice(world.TEXTS), now)
        elif kind == "unfollow":
            self.stack.wechat.unfollowed(person.member_id)
            self._oa(callbacks.oa_event(person.member_id, "unsubscribe", to_unix(now)))
        elif kind == "popup":
            self._popup(person, detail, now)

    def _arrive(self, person: Persona, now: datetime, second: bool = False) -> None:
        channel = ("group" if person.channel == "oa" else "oa") if second else person.channel
        member_id = person.second_id if second and person.second_id else person.member_id
        self.stack.wechat.unionids[member_id] = person.unionid  # WeChat knows whose id it is
        self.tally.ids[person.member_id].add(member_id)
        self.tally.linkable[person.member_id].add(member_id)
        if channel == "oa":
            self.stack.wechat.interacted(member_id, "follow", now.timestamp())
            if world.blocks_templates(person, self.seed):
                self.stack.wechat.blocked(member_id)
            scene = f"qrscene_st={person.store.id}&ch=poster"
            reply = self._oa(callbacks.oa_event(member_id, "subscribe", to_unix(now), scene))
            self._read_reply(person, reply)
        else:
            s = settings.current()
            xml = callbacks.wecom_group_join(s.wecom_corp_id, person.store.group, [member_id], to_unix(now))
            self._post(callbacks.wecom_post(s, xml, now))

    def _message(self, person: Persona, text: str, now: datetime) -> None:
        """A follower writes to the account: WeChat opens the customer-service window, then posts it."""
        self.stack.wechat.interacted(person.member_id, "message", now.timestamp())
        self._oa(callbacks.oa_text(person.member_id, text, to_unix(now), self._msg_id(person, now)))

    def _popup(self, person: Persona, detail: dict[str, Any], now: datetime) -> None:
        """The follower answers a subscribe-message popup: WeChat records the answer, then posts it."""
        template_id, accept = str(detail["template_id"]), bool(detail["accept"])
        if accept:
            self.stack.wechat.consented(person.member_id, template_id)
        else:
            self.stack.wechat.refused(person.member_id, template_id)
        choice = [(template_id, "accept" if accept else "reject")]
        self._oa(callbacks.oa_popup(person.member_id, choice, to_unix(now), scene=1))

    def _post_receipts(self) -> None:
        """WeChat's delivery receipts of the sends it accepted, posted as it posts them."""
        for xml in self.stack.wechat.receipts():
            self.tally.receipts += 1
            self._oa(xml)

    def _order(self, person: Persona, now: datetime, returning: bool) -> None:
        rng = world.rng(self.seed, person.member_id, "order", now.isoformat())
        order_id = f"O{self.seed}-{person.member_id[-6:]}-{now:%m%d%H%M}"
        basket = rng.randint(18, 45) * 100
        store = person.store
        if len(self.chain) > 1 and rng.random() < AWAY_SHARE:
            store = rng.choice([s for s in self.chain if s.id != person.store.id])
        amount, codes, tier_discount = basket, [], 0
        if person.mp_id in self.tally.ids[person.member_id] and rng.random() < MEMBER_CODE_SHARE:
            tier_discount = basket * self._tier_percent(person.mp_id, store.id) // 100
            amount = basket - tier_discount
        unused = [code for code in self.pockets[person.member_id] if code not in self.used]
        if unused and rng.random() < (0.9 if returning else 0.6):
            if rng.random() < REPORT_ONLY_SHARE:  # an older till: the order reports the code afterwards
                codes = [unused[-1]]
                self.used.add(unused[-1])
            else:
                order_id, discount = self._till(unused[-1], store.id, order_id, amount, rng)
                amount -= discount
        payload: dict[str, Any] = {
            "type": "order_paid",
            "order_id": order_id,
            "amount_fen": amount,
            "items": [{"sku": f"{person.category}-1", "category": person.category, "price_fen": amount}],
            **({"coupon_codes": codes} if codes else {}),
            **({"tier_discount_fen": tier_discount} if tier_discount else {}),
        }
        openid = person.mp_id if person.mp_id and rng.random() < 0.7 else person.member_id
        if openid == person.mp_id:
            self.tally.ids[person.member_id].add(openid)
            if person.unionid_from and now.astimezone(ZONE).date() >= person.unionid_from:
                payload["unionid"] = person.unionid
                self.tally.linkable[person.member_id].add(openid)
        self._pos(person, payload, openid, store.id)
        if rng.random() < CATALOG_SHARE:  # after paying, she spends points on the catalog
            self._catalog(person, store.id, order_id, rng)
        detail = {"order_id": order_id, "amount_fen": amount}
        for planned in world.after_order(person, now, self.seed, detail):
            self._schedule(planned)

    def _after_order(self, kind: str, person: Persona, detail: dict, now: datetime) -> None:
        order_id = detail["order_id"]
        if kind == "refund":
            self._pos(
                person,
                {"type": "order_refunded", "order_id": order_id, "refund_id": "r1", "amount_fen": detail["amount_fen"]},
            )
        elif kind == "nps":
            score = world.rng(self.seed, "nps", order_id).choice([10, 10, 9, 9, 9, 8, 8, 7, 6, 5, 3])
            self._pos(person, {"type": "nps", "answer_id": f"nps-{order_id}", "score": score})
        else:
            score = world.review_score(person, order_id, self.seed)
            review_id = f"RV-{order_id}"
            self._pos(person, {"type": "review", "review_id": review_id, "order_id": order_id, "score": score})
            if score <= 2:
                for planned in world.staff_work(person.store, review_id, now, self.seed):
                    self._schedule(planned)

    def _staff(self, action: str, ticket_id: str, by: str) -> None:
        body = json.dumps({"action": action, "by": by}, ensure_ascii=False).encode()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
        answer = self.http.post(f"{self.stack.url}/admin/tickets/{ticket_id}", data=body, headers=headers, timeout=30)
        self.tally.statuses[answer.status_code] += 1
        self.tally.staff[f"{action}:{answer.status_code}"] += 1

    def _till(self, code: str, store: str, order_id: str, basket: int, rng: Any) -> tuple[str, int]:
        """The cashier checks the shown coupon, redeems it for the order, and now and then voids it
        (the customer changed the order) and rings the sale again. The order id and the discount."""
        asked = self._till_call(
            "/pos/coupons/check", store, {"store_id": store, "code": code, "basket_total_fen": basket}
        )
        if not asked.get("valid"):
            self.tally.till[f"check refused: {asked.get('reason')}"] += 1
            if asked.get("reason") not in ("below_minimum", "other_store", "not_yet_valid"):
                self.used.add(code)  # the cashier says it cannot be used any more
            return order_id, 0
        self.tally.till["check valid"] += 1
        body = {"store_id": store, "code": code, "order_id": order_id, "basket_total_fen": basket}
        answer = self._till_call("/pos/coupons/redeem", store, body)
        if answer.get("redeemed") and rng.random() < VOID_SHARE:
            voided = self._till_call(
                f"/pos/coupons/{code}/void", store, {"store_id": store, "code": code, "order_id": order_id}
            )
            self.tally.till["void " + ("done" if voided.get("voided") else f"refused: {voided.get('reason')}")] += 1
            order_id = f"{order_id}-B"
            answer = self._till_call("/pos/coupons/redeem", store, {**body, "order_id": order_id})
        self.used.add(code)
        if not answer.get("redeemed"):
            self.tally.till[f"redeem refused: {answer.get('reason')}"] += 1
            return order_id, 0
        self.tally.till["redeemed"] += 1
        return order_id, int(answer["discount_fen"])

    def _catalog(self, person: Persona, store: str, order_id: str, rng: Any) -> None:
        """Points for a catalog item (rules/catalog.json) at the till, named by her member code."""
        asked = self._post(
            callbacks.order_post(settings.current(), {"openid": person.member_id}, self.clock.now(), "/mp/member-code")
        )
        if asked.status_code != 200:
            return
        item = rng.choice(CATALOG_ITEMS)
        body = {
            "store_id": store,
            "member_code": asked.json()["member_code"],
            "item_id": item,
            "redemption_id": f"P{order_id}",
        }
        answer = self._till_call("/pos/points/redeem", store, body)
        self.tally.till["points " + ("redeemed" if answer.get("redeemed") else f"refused: {answer.get('reason')}")] += 1
        if answer.get("redeemed"):
            self.pockets[person.member_id].append(str(answer["coupon"]["code"]))  # used at the till like any other

    def _tier_percent(self, openid: str, store: str) -> int:
        """The member code the mini program shows, scanned by the till: her tier's discount."""
        asked = self._post(
            callbacks.order_post(settings.current(), {"openid": openid}, self.clock.now(), "/mp/member-code")
        )
        if asked.status_code != 200:
            self.tally.till[f"member code: http {asked.status_code}"] += 1
            return 0
        code = asked.json()["member_code"]
        found = self._post(callbacks.till_get(f"/pos/members/{code}", store, f"{TILL_KEY}{store}", self.clock.now()))
        if found.status_code != 200:
            self.tally.till[f"member look-up: http {found.status_code}"] += 1
            return 0
        percent = int(found.json()["discount_percent"])
        self.tally.till["member looked up" + (" (tier discount)" if percent else "")] += 1
        return percent

    def _till_call(self, path: str, store: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self._post(callbacks.till_post(path, store, f"{TILL_KEY}{store}", body, self.clock.now()))
        return answer.json() if answer.status_code == 200 else {"reason": f"http {answer.status_code}"}

    def _pos(
        self, person: Persona, fields: dict[str, Any], openid: str | None = None, store: str | None = None
    ) -> requests.Response:
        payload = {
            "openid": openid or person.member_id,
            "store_id": store or person.store.id,
            "at": self.clock.now().isoformat(),
        }
        return self._post(callbacks.order_post(settings.current(), {**payload, **fields}, self.clock.now()))

    def _oa(self, xml: str) -> requests.Response:
        return self._post(callbacks.oa_post(settings.current(), xml, self.clock.now()))

    def _post(self, request: callbacks.Request) -> requests.Response:
        for _ in range(3):  # WeChat's three tries (the POS retries the same way)
            answer = self.http.request(
                request.method, self.stack.url + request.path, data=request.body, headers=request.headers, timeout=30
            )
            self.tally.statuses[answer.status_code] += 1
            if answer.status_code < 500:
                return answer
            self.tally.retried += 1
        self.tally.unanswered += 1
        return answer

    def _msg_id(self, person: Persona, now: datetime) -> int:
        return int(now.timestamp()) * 100_000 + int(person.member_id[-5:])

    def _read_reply(self, person: Persona, reply: requests.Response) -> None:
        """The member reads the welcome on their phone: WeChat decrypts the passive reply."""
        if reply.status_code != 200 or "<Encrypt>" not in reply.text:
            return
        s = settings.current()
        fields = xmlsafe.parse(reply.content, s.max_body_bytes)
        inner = MessageCrypto(s.wechat_token, s.wechat_aes_key, s.wechat_app_id).decrypt(fields["Encrypt"])
        self.pockets[person.member_id] += CODE.findall(inner)

    def _read_wechat(self) -> None:
        """Members read what the fake WeChat delivered to them; codes go into their pockets."""
        received = self.stack.wechat.sent(since=self._seen_wechat)
        for call in received:
            self.tally.wechat_received[call["path"]] += 1
            text = json.dumps(call["body"], ensure_ascii=False)
            for to in _recipients(call["body"]):
                person = self.by_id.get(to)
                if person is not None:
                    self.pockets[person.member_id] += CODE.findall(text)
                    self.reached[person.member_id] = self.clock.now()
        self._seen_wechat += len(received)

    def _read_recalls(self, at: datetime) -> None:
        """After a sweep: each lapsed member it decided on decides whether to come back — with
        the better odds if a message reached them (treated), the base odds if held out."""
        from chalicelib.state.models import Recall

        if at.astimezone(ZONE).minute != 0:
            return
        today = at.astimezone(ZONE).date()
        for record in Recall.by_day.query(today.isoformat()):
            key = (record.member_id, record.key)
            if key in self._seen_recalls or record.arm == "skipped":
                continue
            self._seen_recalls.add(key)
            person = self.by_id.get(record.member_id)
            if person is None or not person.lapses_on or person.lapses_on > today or person.returns_on:
                continue
            last = self.reached.get(person.member_id)
            reached = record.arm == "treated" and last is not None and last >= record.created_at
            person.returns_on = world.maybe_return(person, today, reached, self.seed)
            if person.returns_on:
                self.tally.returns[record.arm] += 1

    # -- output ------------------------------------------------------------------------------
    def _progress(self, done: int, began: float) -> None:
        if not self.progress:
            return
        width = 30
        filled = int(width * done / self.days)
        elapsed = time.monotonic() - began
        eta = elapsed / done * (self.days - done)
        events = sum(self.tally.sent.values())
        sent = sum(self.tally.wechat_received.values())
        self.out.write(
            f"\r  day {done:>3}/{self.days} [{'#' * filled}{'.' * (width - filled)}] "
            f"events {events:,} · WeChat calls {sent:,} · {elapsed:4.0f} s, ~{eta:3.0f} s left "
        )
        self.out.flush()

    def _finish_line(self, began: float) -> None:
        if self.progress:
            self.out.write(f"\n  lived {self.days} days in {time.monotonic() - began:.0f} s\n")
            self.out.flush()


def _recipients(body: dict[str, Any]) -> list[str]:
    found = [body.get("touser"), *(body.get("external_userid") or [])]
    return [member for member in found if isinstance(member, str)]


def _delete_tables() -> None:
    from chalicelib.state.models import MODELS

    for model in MODELS:
        if model.exists():
            model.delete_table()


def settings_reset() -> None:
    from chalicelib.rules import loader
    from chalicelib.state import binding

    binding._bound = None
    loader.clear_cache()
