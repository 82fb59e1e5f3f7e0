"""The points catalog (rules/catalog.json; issue 19): points buy a drink, merchandise or a lottery
entry at the till or in the mini program, once per redemption, never overdrawn, never oversold,
within the member's limits; a refusal writes nothing."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib import ledger
from chalicelib.protocol import orders
from chalicelib.rules import loader
from chalicelib.rules.check import check
from chalicelib.state.models import Coupon, EventRecord, LoyaltyRecord, Member
from chalicelib.store import db, keys
from siyu.local import callbacks
from siyu.local.callbacks import Request
from tests.helpers import credit, pos, send

RULES = Path(__file__).resolve().parent.parent / "rules"
KEY = "till-key-s001"  # tests/conftest.py
TILL, MP = "/pos/points/redeem", "/mp/points/redeem"


def item(item_id: str, points: int, **extra) -> dict:
    coupon = {"kind": "item", "title": f"兑换{item_id}", "value_yuan": 20, "valid_days": 30}
    coupon["item"] = {"sku": f"SKU-{item_id}", "name": "美式咖啡"}
    return {"id": item_id, "name": "美式咖啡", "category": "drink", "points": points, "coupon": coupon, **extra}


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    """Use a catalog of these items (the other rule files as shipped)."""

    def use(*items: dict) -> Path:
        directory = tmp_path / "rules"
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(RULES, directory)
        (directory / "catalog.json").write_text(json.dumps({"items": list(items)}, ensure_ascii=False), "utf-8")
        monkeypatch.setenv("SIYU_RULES_DIR", str(directory))
        loader.clear_cache()
        return directory

    return use


def earn(client, aws, clock, openid: str, points: int, order: str | None = None) -> None:
    """A paid order that earns ``points`` (1 point a yuan, rules/loyalty.json)."""
    fields = {"order_id": order or f"O-{openid}", "amount_fen": points * 100, "store_id": "S001"}
    fields["items"] = [{"sku": "T1", "category": "tea", "price_fen": points * 100}]
    assert pos(client, aws, clock, "order_paid", openid, **fields).status_code == 200
    assert ledger.balance_of(openid).points >= points


def code_of(member: str, now: datetime) -> str:
    """The member code the member shows at the till (as the mini program asks it)."""
    from chalicelib import settings
    from chalicelib.protocol import member_code

    return member_code.seal(member, now + timedelta(minutes=3), settings.current().member_code_key)


def at_till(client, clock, member: str, item_id: str, redemption: str, store: str = "S001", key: str = KEY):
    body = {
        "store_id": store,
        "member_code": code_of(member, clock.now()),
        "item_id": item_id,
        "redemption_id": redemption,
    }
    return send(client, callbacks.till_post(TILL, store, key, body, clock.now()))


def redeemed(client, clock, member: str, item_id: str, redemption: str, store: str = "S001") -> dict:
    response = at_till(client, clock, member, item_id, redemption, store, "till-key-s002" if store == "S002" else KEY)
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def in_mini_program(client, aws, clock, payload: dict):
    body = json.dumps(payload).encode()
    timestamp = str(int(clock.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        orders.TIMESTAMP_HEADER: timestamp,
        orders.SIGNATURE_HEADER: orders.sign(aws.orders_hmac_secret, timestamp, body),
    }
    return send(client, Request("POST", MP, headers, body))


def nothing_written(member: str, redemption: str, *counters: tuple[str, str]) -> bool:
    event = keys.catalog_event(redemption)
    code_cause = keys.catalog_coupon(redemption)
    issued = [c for c in Coupon.scan() if c.cause_key == code_cause]
    return (
        db.get(EventRecord, event) is None
        and ledger.entry(member, keys.redeem_points(redemption)) is None
        and not issued
        and all(db.get(LoyaltyRecord, *counter) is None for counter in counters)
    )


def test_the_shipped_catalog_loads_and_a_rule_set_without_it_has_the_catalog_off():
    files = {p.name: p.read_text("utf-8") for p in RULES.glob("*.json")}
    rules = loader.build(files)
    assert {i.id: i.points for i in rules.catalog.items} == {"americano": 300, "tote-bag": 800, "lottery-entry": 50}
    assert rules.catalog.item("tote-bag").stock == 50
    older = loader.build({name: text for name, text in files.items() if name != "catalog.json"})
    assert older.catalog.enabled is False and older.catalog.items == []


def test_a_redemption_debits_once_issues_the_coupon_and_a_retry_answers_the_same(client, aws, clock):
    earn(client, aws, clock, "oBuy", 1000)
    first = redeemed(client, clock, "oBuy", "americano", "R-1")
    assert (first["redeemed"], first["points_spent"], first["balance"], first["duplicate"]) == (True, 300, 700, False)
    coupon = first["coupon"]
    assert (coupon["kind"], coupon["item"]["sku"], coupon["title"]) == ("item", "DRINK-AMERICANO", "积分兑换·美式咖啡")
    again = redeemed(client, clock, "oBuy", "americano", "R-1")  # the till's retry
    assert again == {**first, "duplicate": True}
    assert ledger.balance_of("oBuy").points == 700 and ledger.audit(["oBuy"]) == (1, [])
    stored = Coupon.get(coupon["code"])
    assert (stored.member_id, stored.cause, stored.status) == ("oBuy", "catalog", "issued")
    # the coupon is the till's like any other: it checks and redeems
    check = {"store_id": "S001", "code": coupon["code"], "basket_total_fen": 3000}
    checked = json.loads(send(client, callbacks.till_post("/pos/coupons/check", "S001", KEY, check, clock.now())).body)
    assert (checked["valid"], checked["discount_fen"]) == (True, 2200)


def test_not_enough_points_is_refused_and_nothing_is_written(client, aws, clock):
    earn(client, aws, clock, "oPoor", 799)
    before = Member.get("oPoor").last_active
    answer = redeemed(client, clock, "oPoor", "tote-bag", "R-2")
    assert answer == {"redemption_id": "R-2", "redeemed": False, "reason": "not_enough_points", "duplicate": False}
    redemption = keys.catalog_redemption("till", "S001", "R-2")
    assert nothing_written("oPoor", redemption, keys.catalog_stock("tote-bag", None))
    assert ledger.balance_of("oPoor").points == 799 and Member.get("oPoor").last_active == before
    earn(client, aws, clock, "oPoor", 1, order="O-more")  # the same redemption, asked again, now succeeds
    assert redeemed(client, clock, "oPoor", "tote-bag", "R-2")["redeemed"] is True
    assert ledger.balance_of("oPoor").points == 0 and ledger.audit(["oPoor"]) == (1, [])


def test_a_refusal_after_a_failed_attempt_leaves_nothing_for_the_redrive_to_redeem_later(client, aws, clock):
    from chalicelib import executor, plans
    from chalicelib.events import Event, Kind

    earn(client, aws, clock, "oFail", 100)
    redemption = keys.catalog_redemption("till", "S001", "R-F")
    data = {"item_id": "tote-bag", "redemption": redemption, "month": "2026-11"}
    event = Event(Kind.POINTS_REDEEMED, keys.catalog_event(redemption), "till", clock.now(), "oFail", "S001", data=data)
    failed = plans.FailEvent(event=event, received_at=clock.now(), expires=clock.now() + timedelta(days=1), error="X")
    executor.Executor().run([failed], "test", clock.now())  # an attempt that failed (503) before
    assert redeemed(client, clock, "oFail", "tote-bag", "R-F")["reason"] == "not_enough_points"
    assert db.get(EventRecord, event.event_id) is None


def test_refusals_name_why(client, aws, clock, catalog):
    later = (clock.now() + timedelta(days=1)).isoformat()
    catalog(item("coffee", 10), item("soon", 10, starts_at=later), item("S2-only", 10, stock={"S002": 5}))
    earn(client, aws, clock, "oWhy", 100)
    why = {
        name: redeemed(client, clock, member, item_id, f"R-{name}")["reason"]
        for name, member, item_id in (
            ("unknown_item", "oWhy", "no-such-item"),
            ("not_yet", "oWhy", "soon"),
            ("not_here", "oWhy", "S2-only"),
            ("stranger", "oNobody", "coffee"),
        )
    }
    assert why == {
        "unknown_item": "unknown_item",
        "not_yet": "not_available",
        "not_here": "not_available",
        "stranger": "unknown_member",
    }
    assert db.get(Member, "oNobody") is None  # an unknown member is not made one by asking


def test_the_per_member_limit_holds_per_month_and_ever(client, aws, clock, catalog):
    catalog(item("coffee", 10, limit={"per_month": 2}), item("bag", 10, limit={"ever": 1}))
    earn(client, aws, clock, "oLimit", 200)
    assert [redeemed(client, clock, "oLimit", "coffee", f"C-{n}").get("reason") for n in range(3)] == [
        None,
        None,
        "limit_reached",
    ]
    assert [redeemed(client, clock, "oLimit", "bag", f"B-{n}").get("reason") for n in range(2)] == [
        None,
        "limit_reached",
    ]
    clock.advance(timedelta(days=10))  # 2026-12: a new month for the coffee, never again for the bag
    assert redeemed(client, clock, "oLimit", "coffee", "C-3")["redeemed"] is True
    assert redeemed(client, clock, "oLimit", "bag", "B-2")["reason"] == "limit_reached"
    assert ledger.balance_of("oLimit").points == 200 - 4 * 10
    earn(client, aws, clock, "oOther", 50)  # another member's limits are their own
    assert redeemed(client, clock, "oOther", "bag", "B-9")["redeemed"] is True


def test_per_store_stock_is_counted_per_store(client, aws, clock, catalog):
    catalog(item("draw", 5, stock={"S001": 1, "S002": 2}))
    earn(client, aws, clock, "oStock", 100)
    assert redeemed(client, clock, "oStock", "draw", "D-1", "S001")["redeemed"] is True
    assert redeemed(client, clock, "oStock", "draw", "D-2", "S001")["reason"] == "out_of_stock"
    at_s2 = [redeemed(client, clock, "oStock", "draw", f"D-{n}", "S002") for n in (3, 4, 5)]
    assert [a.get("reason") for a in at_s2] == [None, None, "out_of_stock"]
    assert Coupon.get(at_s2[0]["coupon"]["code"]).stores == {"S002"}  # collected where it was stocked
    assert LoyaltyRecord.get(*keys.catalog_stock("draw", "S001")).number == 1
    assert LoyaltyRecord.get(*keys.catalog_stock("draw", "S002")).number == 2
    assert ledger.balance_of("oStock").points == 100 - 3 * 5


def test_a_stock_raised_in_the_rules_is_available_at_once(client, aws, clock, catalog):
    catalog(item("bag", 10, stock=1))
    earn(client, aws, clock, "oRaise", 100)
    assert redeemed(client, clock, "oRaise", "bag", "G-1")["redeemed"] is True
    assert redeemed(client, clock, "oRaise", "bag", "G-2")["reason"] == "out_of_stock"
    catalog(item("bag", 10, stock=2))
    assert redeemed(client, clock, "oRaise", "bag", "G-2")["redeemed"] is True


def test_the_mini_program_redeems_with_the_order_webhooks_signature(client, aws, clock, catalog):
    catalog({**item("lottery-entry", 50, stock={"S002": 10})})
    earn(client, aws, clock, "oApp", 100)
    payload = {"openid": "oApp", "item_id": "lottery-entry", "redemption_id": "M-1", "store_id": "S002"}
    response = in_mini_program(client, aws, clock, payload)
    answer = json.loads(response.body)
    assert (response.status_code, answer["redeemed"], answer["balance"]) == (200, True, 50)
    assert answer["coupon"]["item"]["sku"] == "SKU-lottery-entry" and answer["coupon"]["stores"] == ["S002"]
    assert json.loads(in_mini_program(client, aws, clock, payload).body)["duplicate"] is True
    no_store = json.loads(
        in_mini_program(client, aws, clock, {**payload, "redemption_id": "M-2"} | {"store_id": None}).body
    )
    assert no_store["reason"] == "not_available"  # a per-store item is collected at a store
    forged = {**payload, "redemption_id": "M-3"}
    body = json.dumps(forged).encode()
    headers = {"Content-Type": "application/json", orders.TIMESTAMP_HEADER: str(int(clock.now().timestamp()))}
    headers[orders.SIGNATURE_HEADER] = "sha256=" + "0" * 64
    assert send(client, Request("POST", MP, headers, body)).status_code == 401
    assert ledger.balance_of("oApp").points == 50


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"member_code": None}, "/member_code"),
        ({"member_code": "MCNOTACODE"}, "member code"),
        ({"item_id": "bad item"}, "/item_id"),
        ({"redemption_id": "R/1"}, "/redemption_id"),
        ({"redemption_id": 7}, "/redemption_id"),
        ({"points": 1}, "/points"),
    ],
)
def test_bad_till_input_is_400_with_the_field_and_writes_nothing(client, aws, clock, change, reason):
    earn(client, aws, clock, "oBad", 1000)
    code = code_of("oBad", clock.now())
    body = {"store_id": "S001", "member_code": code, "item_id": "americano", "redemption_id": "R-9", **change}
    response = send(client, callbacks.till_post(TILL, "S001", KEY, body, clock.now()))
    assert response.status_code == 400 and reason in json.loads(response.body)["reason"]
    assert nothing_written("oBad", keys.catalog_redemption("till", "S001", "R-9"))


def test_rules_check_refuses_a_bad_catalog_with_file_line_and_pointer():
    files = {p.name: p.read_text("utf-8") for p in RULES.glob("*.json")}

    def problems_of(change) -> list:
        data = json.loads(files["catalog.json"])
        change(data)
        text = json.dumps(data, ensure_ascii=False, indent=2)
        return [(p, text.splitlines()[p.line - 1].strip()) for p in check({**files, "catalog.json": text})[1]]

    [(unknown, line)] = problems_of(lambda d: d["items"][2].update(stock={"S001": 5, "S404": 5}))
    assert (unknown.file, unknown.pointer, unknown.message) == (
        "catalog.json",
        "/items/2/stock/S404",
        "store S404 is not in stores.json",
    )
    assert line.startswith('"S404": 5')
    negative = problems_of(lambda d: d["items"][1].update(stock=-1))
    assert [(p.pointer, p.message) for p, _ in negative] == [
        ("/items/1/stock", "stock is a whole number from 0 to 1000000, {store id: number}, or null")
    ]
    [(twice, _)] = problems_of(lambda d: d["items"].append(d["items"][0]))
    assert (twice.pointer, twice.message) == (
        "/items",
        "each item needs its own id: americano is listed more than once",
    )


def test_two_buyers_of_the_last_one_at_once_make_one_winner_and_the_loser_keeps_their_points(live, catalog):
    """On DynamoDB Local over HTTP (moto's transactions do not race)."""
    import requests

    catalog(item("last", 100, stock=1))
    now = datetime.now(UTC)
    buyers = [f"oRace{n}" for n in range(6)]
    for buyer in buyers:
        Member(buyer, store_id="S001", first_seen=now).save()
        credit(buyer, 500, now)

    def redeem(n: int) -> dict:
        code = code_of(buyers[n], datetime.now(UTC))
        body = {"store_id": "S001", "member_code": code, "item_id": "last", "redemption_id": f"L-{n}"}
        signed = callbacks.till_post(TILL, "S001", KEY, body, datetime.now(UTC))
        return requests.post(live.url + signed.path, data=signed.body, headers=signed.headers, timeout=30).json()

    with ThreadPoolExecutor(len(buyers)) as pool:
        answers = list(pool.map(redeem, range(len(buyers))))
    winners = [n for n, a in enumerate(answers) if a["redeemed"]]
    assert len(winners) == 1, answers
    assert {a["reason"] for a in answers if not a["redeemed"]} == {"out_of_stock"}
    assert LoyaltyRecord.get(*keys.catalog_stock("last", None)).number == 1
    assert [ledger.balance_of(b).points for b in buyers] == [400 if n in winners else 500 for n in range(len(buyers))]
    assert ledger.audit(buyers) == (len(buyers), [])
