"""The till API (issue 19, first part): a cashier checks a coupon against a basket and redeems it
once, with a key that acts for its own store only."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import executor, plans
from chalicelib.clock import SHANGHAI
from chalicelib.metrics import read
from chalicelib.state.models import Coupon, EventRecord, Member
from chalicelib.store import db
from siyu.local import callbacks
from tests.helpers import send

KEY = "till-key-s001"  # tests/conftest.py: S001 has two keys (rotation), S002 one
NEXT_KEY = "till-key-s001-next"
CHECK, REDEEM = "/pos/coupons/check", "/pos/coupons/redeem"


def coupon(code: str, clock, *, owner="oTill", value=600, min_spend=0, stores=None, days=14, starts=0) -> str:
    issued = clock.now() + timedelta(days=starts)
    instruction = plans.IssueCoupon(
        code=code,
        member_id=owner,
        cause="precision",
        cause_key=f"test#{code}",
        event_id="test",
        title="回归券",
        value_fen=value,
        min_spend_fen=min_spend,
        stores=frozenset(stores) if stores else None,
        expires_at=clock.now() + timedelta(days=days),
        rules_version="test",
    )
    executor.execute([instruction], f"test#{code}", issued)
    Member(owner, store_id="S001", first_seen=clock.now()).save()
    return code


def till(client, clock, path: str, body: dict, store: str = "S001", key: str = KEY):
    return send(client, callbacks.till_post(path, store, key, body, clock.now()))


def asked(client, clock, code: str, basket: int = 5000, store: str = "S001", **extra) -> dict:
    response = till(client, clock, CHECK, {"store_id": store, "code": code, "basket_total_fen": basket, **extra}, store)
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def redeemed(client, clock, code: str, order: str, basket: int = 5000, store: str = "S001", key: str = KEY) -> dict:
    body = {"store_id": store, "code": code, "order_id": order, "basket_total_fen": basket}
    response = till(client, clock, REDEEM, body, store, key)
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def redeemed_today(clock, scope: str = "S001") -> int:
    day = clock.now().astimezone(SHANGHAI).date()
    return int(read.window(scope, day, day).get("coupons_redeemed", 0))


def test_a_check_says_what_the_coupon_takes_off_or_why_not(client, aws, clock):
    coupon("SYGOOD000001", clock, value=600, min_spend=3000, stores={"S001"})
    coupon("SYSMALL00001", clock, value=600)
    coupon("SYOLD0000001", clock, days=-1)
    coupon("SYLATER00001", clock, starts=2)
    coupon("SYTHERE00001", clock, stores={"S002"})
    valid = asked(client, clock, "SYGOOD000001", basket=3500)
    assert (valid["valid"], valid["discount_fen"], valid["min_spend_fen"]) == (True, 600, 3000)
    assert asked(client, clock, "SYSMALL00001", basket=450)["discount_fen"] == 450  # never more than the basket
    assert asked(client, clock, "SYGOOD000001", basket=2999)["reason"] == "below_minimum"
    assert asked(client, clock, "SYOLD0000001")["reason"] == "expired"
    assert asked(client, clock, "SYLATER00001")["reason"] == "not_yet_valid"
    assert asked(client, clock, "SYTHERE00001")["reason"] == "other_store"
    assert asked(client, clock, "SYNOSUCH0001")["reason"] == "unknown"
    redeemed(client, clock, "SYSMALL00001", "T-1")
    used = asked(client, clock, "SYSMALL00001")
    assert (used["valid"], used["reason"], used["used_by_order"]) == (False, "used", "T-1")
    assert Coupon.get("SYGOOD000001").status == "issued"  # a check changes nothing


def test_a_coupon_is_redeemed_once_a_retry_answers_the_same_another_order_is_told(client, aws, clock):
    code = coupon("SYONCE000001", clock, value=800, min_spend=3000)
    small = redeemed(client, clock, code, "T-10", basket=2000)
    assert (small["redeemed"], small["reason"]) == (False, "below_minimum")
    assert db.get(EventRecord, f"till:redeem:{code}:T-10") is None  # nothing written: fix the basket, ask again
    first = redeemed(client, clock, code, "T-10", basket=4000)
    assert (first["redeemed"], first["discount_fen"], first["duplicate"]) == (True, 800, False)
    again = redeemed(client, clock, code, "T-10", basket=4000)  # the till's retry
    assert (again["redeemed"], again["discount_fen"], again["duplicate"]) == (True, 800, True)
    other = redeemed(client, clock, code, "T-11", basket=4000)
    assert (other["redeemed"], other["reason"], other["used_by_order"]) == (False, "used", "T-10")
    assert Coupon.get(code).redeemed_order == "T-10" and redeemed_today(clock) == 1
    assert Member.get("oTill").last_active == clock.now()  # a visit to the store


def test_a_coupon_of_a_member_merged_into_another_is_redeemed_for_the_person(client, aws, clock):
    from chalicelib.identity import merge

    code = coupon("SYMERGED0001", clock, owner="oLater")
    Member("oEarlier", store_id="S001", first_seen=clock.now() - timedelta(days=30)).save()
    merge.merge("oLater", "oEarlier", why="test", who="ops", now=clock.now(), settings=aws)
    assert redeemed(client, clock, code, "T-20")["redeemed"] is True
    assert Member.get("oEarlier").last_active == clock.now()  # the person's visit, not the merged row's


def test_a_store_key_acts_for_its_own_store_only(client, aws, clock):
    code = coupon("SYKEYS000001", clock)
    body = {"store_id": "S001", "code": code, "basket_total_fen": 1000}
    assert till(client, clock, CHECK, body, key=NEXT_KEY).status_code == 200  # the next key works during rotation
    refused = {
        "S001's key, signed as S002": till(client, clock, CHECK, {**body, "store_id": "S002"}, "S002", KEY),
        "S002's key, for S001": till(client, clock, CHECK, body, "S001", "till-key-s002"),
        "S002's key, body for S001": till(client, clock, CHECK, body, "S002", "till-key-s002"),
        "no such store": till(client, clock, CHECK, {**body, "store_id": "S999"}, "S999", KEY),
    }
    statuses = {name: (r.status_code, json.loads(r.body)["reason"]) for name, r in refused.items()}
    assert statuses == {
        "S001's key, signed as S002": (401, "till signature does not match this store's keys"),
        "S002's key, for S001": (401, "till signature does not match this store's keys"),
        "S002's key, body for S001": (403, "this till's key is for another store"),
        "no such store": (401, "no till key for this store (SIYU_TILL_KEYS)"),
    }
    stale = callbacks.till_post(CHECK, "S001", KEY, body, clock.now() - timedelta(minutes=10))
    assert send(client, stale).status_code == 401


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"basket_total_fen": "5000"}, "/basket_total_fen"),
        ({"basket_total_fen": -1}, "/basket_total_fen"),
        ({"basket_total_fen": 10**12}, "/basket_total_fen"),
        ({"basket_total_fen": True}, "/basket_total_fen"),
        ({"basket_total_fen": 12.5}, "/basket_total_fen"),
        ({"code": "sy-not-a-code"}, "/code"),
        ({"order_id": "T/1"}, "/order_id"),
        ({"cashier": "Li"}, "/cashier"),
    ],
)
def test_bad_input_is_400_with_the_field_and_writes_nothing(client, aws, clock, change, reason):
    code = coupon("SYBAD0000001", clock)
    body = {"store_id": "S001", "code": code, "order_id": "T-30", "basket_total_fen": 5000, **change}
    response = till(client, clock, REDEEM, body)
    assert response.status_code == 400 and reason in json.loads(response.body)["reason"]
    assert Coupon.get(code).status == "issued" and db.get(EventRecord, f"till:redeem:{code}:T-30") is None


def test_not_json_and_nan_are_refused(client, aws, clock):
    for raw in (b"not json", b'{"store_id": "S001", "code": "SYABCDEF", "basket_total_fen": NaN}'):
        timestamp = str(int(clock.now().timestamp()))
        from chalicelib.protocol import till as till_protocol

        request = callbacks.Request(
            "POST",
            CHECK,
            {
                "Content-Type": "application/json",
                till_protocol.STORE_HEADER: "S001",
                till_protocol.TIMESTAMP_HEADER: timestamp,
                till_protocol.SIGNATURE_HEADER: till_protocol.signature(KEY, timestamp, raw),
            },
            raw,
        )
        assert send(client, request).status_code == 400


def test_two_tills_redeeming_one_coupon_at_once_make_one_winner(live):
    import requests

    from chalicelib import settings

    now = datetime.now(UTC)

    class Clock:
        def now(self):
            return now

    code = coupon("SYRACE000001", Clock())
    s = settings.current()
    assert s.till_keys

    def redeem(n: int) -> dict:
        body = {"store_id": "S001", "code": code, "order_id": f"R-{n}", "basket_total_fen": 5000}
        signed = callbacks.till_post(REDEEM, "S001", KEY if n % 2 else NEXT_KEY, body, datetime.now(UTC))
        return requests.post(live.url + signed.path, data=signed.body, headers=signed.headers, timeout=30).json()

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(redeem, range(6)))
    winners = [a for a in answers if a["redeemed"]]
    assert len(winners) == 1
    assert {a["used_by_order"] for a in answers if not a["redeemed"]} == {winners[0]["order_id"]}
    assert Coupon.get(code).redeemed_order == winners[0]["order_id"]


def voided(client, clock, code: str, order: str, store: str = "S001", key: str = KEY, path_code: str | None = None):
    body = {"store_id": store, "code": code, "order_id": order}
    return till(client, clock, f"/pos/coupons/{path_code or code}/void", body, store, key)


def test_a_cancelled_orders_coupon_is_given_back_once_and_can_be_used_again(client, aws, clock):
    code = coupon("SYVOID000001", clock, value=500)
    assert redeemed(client, clock, code, "T-40")["redeemed"] is True
    clock.advance(timedelta(minutes=29))
    first = json.loads(voided(client, clock, code, "T-40").body)
    assert (first["voided"], first["duplicate"]) == (True, False)
    again = json.loads(voided(client, clock, code, "T-40").body)  # the till's retry
    assert (again["voided"], again["duplicate"]) == (True, True)
    assert redeemed_today(clock) == 0  # the day's redemptions no longer count it
    assert asked(client, clock, code)["valid"] is True and Coupon.get(code).voids == 1
    assert redeemed(client, clock, code, "T-41")["redeemed"] is True  # the re-rung sale
    assert redeemed(client, clock, code, "T-40")["reason"] == "used"
    assert json.loads(voided(client, clock, code, "T-41").body)["voided"] is True  # a second void is its own
    assert redeemed(client, clock, code, "T-40")["redeemed"] is True  # the original order, rung once more
    assert Coupon.get(code).voids == 2 and redeemed_today(clock) == 1


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("another order", "other_order"),
        ("another store's till", "other_store"),
        ("after the window", "window_closed"),
        ("never redeemed", "not_redeemed"),
        ("no such coupon", "unknown"),
    ],
)
def test_a_void_is_refused_with_its_reason_and_writes_nothing(client, aws, clock, how, reason):
    code = coupon("SYVOID000002", clock, stores=None)
    if how != "never redeemed":
        redeemed(client, clock, code, "T-50")
    order, store, key = "T-50", "S001", KEY
    if how == "another order":
        order = "T-51"
    if how == "another store's till":
        store, key = "S002", "till-key-s002"
    if how == "after the window":
        clock.advance(timedelta(minutes=31))  # rules/loyalty.json: till.void_window_minutes 30
    if how == "no such coupon":
        code = "SYNOSUCH0002"
    before = Coupon.get(code).attribute_values if how != "no such coupon" else None
    response = voided(client, clock, code, order, store, key)
    assert response.status_code == 200 and json.loads(response.body)["reason"] == reason
    assert db.get(EventRecord, f"till:void:{code}:{order}:0") is None
    assert (Coupon.get(code).attribute_values if before is not None else None) == before


def test_a_void_whose_body_names_another_coupon_than_its_path_is_400(client, aws, clock):
    code = coupon("SYVOID000003", clock)
    redeemed(client, clock, code, "T-60")
    response = voided(client, clock, code, "T-60", path_code="SYVOID000004")
    assert response.status_code == 400 and "code" in json.loads(response.body)["reason"]
    assert Coupon.get(code).status == "redeemed"


def test_a_redeem_for_an_order_already_refunded_is_409_and_writes_nothing(client, aws, clock):
    from tests.helpers import pos

    code = coupon("SYREFUND0001", clock)
    paid = {
        "order_id": "T-70",
        "amount_fen": 3000,
        "items": [{"sku": "MT1", "category": "milk-tea", "price_fen": 3000}],
    }
    assert pos(client, aws, clock, "order_paid", "oTill", **paid).status_code == 200
    refund = {"order_id": "T-70", "refund_id": "R-1", "amount_fen": 3000}
    assert pos(client, aws, clock, "order_refunded", "oTill", **refund).status_code == 200
    body = {"store_id": "S001", "code": code, "order_id": "T-70", "basket_total_fen": 3000}
    response = till(client, clock, REDEEM, body)
    assert response.status_code == 409 and "refunded" in json.loads(response.body)["reason"]
    assert Coupon.get(code).status == "issued" and db.get(EventRecord, f"till:redeem:{code}:T-70") is None
    assert redeemed(client, clock, code, "T-71")["redeemed"] is True  # another order may use it
