"""The member at the till (issue 19): the mini program's signed, short-lived member code; the
till's look-up of the person behind it (tier and discount, birthday benefit, points, the coupons
usable at its store); the tier discount an order reports, counted and in the weekly digest."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from chalicelib import executor, plans, runtime
from chalicelib.clock import SHANGHAI
from chalicelib.metrics import digest, read
from chalicelib.protocol import member_code
from chalicelib.rules.models import LoyaltyRule
from chalicelib.state.models import Coupon, Member, PointsRecord, Shared
from chalicelib.store import keys
from siyu.local import callbacks
from siyu.metering import Meter
from tests.helpers import pos, send

KEYS = {"S001": "till-key-s001", "S002": "till-key-s002"}  # tests/conftest.py


def member(member_id: str, clock, *, tier: str | None = "银卡", birthday: str | None = None, days: int = 0) -> None:
    first_seen = clock.now() - timedelta(days=days)
    Member(member_id, store_id="S001", first_seen=first_seen, tier=tier, birthday=birthday).save()


def balance(member_id: str, points: int) -> None:
    PointsRecord(member_id, keys.BALANCE, balance=points, seq=1, spend_fen=0).save()


def coupon(code: str, owner: str, clock, *, stores=None, days=14, starts=0, cause_key=None, status=None) -> str:
    instruction = plans.IssueCoupon(
        code=code,
        member_id=owner,
        cause="precision",
        cause_key=cause_key or f"test#{code}",
        event_id="test",
        title="回归券",
        value_fen=600,
        min_spend_fen=3000,
        stores=frozenset(stores) if stores else None,
        expires_at=clock.now() + timedelta(days=days),
        rules_version="test",
    )
    executor.execute([instruction], f"test#{code}", clock.now() + timedelta(days=starts))
    if status:
        item = Coupon.get(code)
        item.status = status
        item.save()
    return code


def issued(client, aws, clock, openid: str, **extra) -> dict:
    response = send(client, callbacks.order_post(aws, {"openid": openid, **extra}, clock.now(), "/mp/member-code"))
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def look_up(client, clock, code: str, store: str = "S001", key: str | None = None, signed_path: str | None = None):
    path = f"/pos/members/{code}"
    return send(client, callbacks.till_get(path, store, key or KEYS[store], clock.now(), signed_path))


def looked_up(client, clock, code: str, store: str = "S001") -> dict:
    response = look_up(client, clock, code, store)
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def reason(response) -> tuple[int, str]:
    return response.status_code, json.loads(response.body)["reason"]


def test_the_till_sees_tier_discount_birthday_points_and_the_coupons_usable_at_its_store(client, aws, clock):
    member("oMini", clock, birthday="11-30")
    balance("oMini", 120)
    coupon("SYANYSTORE01", "oMini", clock)
    coupon("SYS001ONLY01", "oMini", clock, stores={"S001"})
    coupon("SYS002ONLY01", "oMini", clock, stores={"S002"})
    coupon("SYEXPIRED001", "oMini", clock, days=-1)
    coupon("SYLATER00001", "oMini", clock, starts=2)
    coupon("SYUSED000001", "oMini", clock, status="redeemed")
    coupon("SYVOID000001", "oMini", clock, status="void")
    coupon("SYBDAY000001", "oMini", clock, cause_key=keys.birthday_benefit("oMini", 2026))
    coupon("SYOTHER00001", "oSomeoneElse", clock)
    answer = issued(client, aws, clock, "oMini")
    code = answer["member_code"]
    assert member_code.PATTERN.fullmatch(code) and "oMini" not in code
    assert answer["expires_at"] == (clock.now() + timedelta(seconds=180)).isoformat()

    here = looked_up(client, clock, code, "S001")
    assert (here["tier"], here["discount_percent"], here["points_balance"]) == ("银卡", 10, 120)
    assert [c["code"] for c in here["coupons"]] == ["SYANYSTORE01", "SYBDAY000001", "SYS001ONLY01"]
    assert here["coupons"][0] == {
        "code": "SYANYSTORE01",
        "kind": "amount",
        "title": "回归券",
        "value_fen": 600,
        "min_spend_fen": 3000,
        "valid_from": clock.now().isoformat(),
        "expires_at": (clock.now() + timedelta(days=14)).isoformat(),
    }
    assert here["birthday_benefit"]["code"] == "SYBDAY000001" and here["birthday_benefit"]["status"] == "unused"
    there = looked_up(client, clock, code, "S002")  # S002's own key, S002's coupons
    assert [c["code"] for c in there["coupons"]] == ["SYANYSTORE01", "SYBDAY000001", "SYS002ONLY01"]
    assert here["member_ref"] == there["member_ref"] and "oMini" not in here["member_ref"]
    again = issued(client, aws, clock, "oMini")["member_code"]
    assert again != code and looked_up(client, clock, again)["member_ref"] == here["member_ref"]  # a new code, one ref


def test_the_birthday_benefit_is_shown_in_the_birthday_month_only_and_says_when_not_issued(client, aws, clock):
    members = ("oNovember", "oDecember")
    member("oNovember", clock, tier="金卡", birthday="11-05")
    member("oDecember", clock, tier="金卡", birthday="12-05")
    november, december = (looked_up(client, clock, issued(client, aws, clock, m)["member_code"]) for m in members)
    assert november["birthday_benefit"] == {  # rules/loyalty.json: gold's birthday gift is a drink
        "kind": "item",
        "title": "金卡生日饮品",
        "value_fen": 3200,
        "item": {"sku": "DRINK-BIRTHDAY", "name": "生日特饮"},
        "status": "not_issued",
        "code": None,
    }
    assert (november["tier"], november["discount_percent"], november["points_balance"]) == ("金卡", 12, 0)
    assert december["birthday_benefit"] is None


def test_a_look_up_is_two_requests_and_writes_nothing_an_issue_one(client, aws, clock, monkeypatch):
    member("oCount", clock)
    coupon("SYCOUNT00001", "oCount", clock)
    monkeypatch.setenv("SIYU_RULES_CACHE_SECONDS", "300")  # as deployed: the active rules' pointer is cached
    issued(client, aws, clock, "oCount")
    with Meter() as meter:
        code = issued(client, aws, clock, "oCount")["member_code"]
    assert dict(meter.calls) == {"TransactGetItems": 1}
    with Meter() as meter:
        assert len(looked_up(client, clock, code)["coupons"]) == 1
    assert dict(meter.calls) == {"TransactGetItems": 1, "Query": 1}


def test_an_expired_code_is_refused_saying_so(client, aws, clock):
    member("oLate", clock)
    code = issued(client, aws, clock, "oLate")["member_code"]
    clock.advance(timedelta(seconds=179))
    assert look_up(client, clock, code).status_code == 200
    clock.advance(timedelta(seconds=1))
    status, why = reason(look_up(client, clock, code))
    assert status == 400 and why.startswith("member code expired at ")


def test_a_code_altered_or_sealed_with_a_key_siyu_does_not_hold_is_refused(client, aws, clock):
    member("oForged", clock)
    code = issued(client, aws, clock, "oForged")["member_code"]
    altered = code[:20] + ("A" if code[20] != "A" else "B") + code[21:]
    expires = clock.now() + timedelta(minutes=3)
    foreign = member_code.seal("oForged", expires, "someone-elses-key")
    for bad in (altered, foreign):
        assert reason(look_up(client, clock, bad)) == (
            400,
            "member code does not verify: altered, or not issued by siyu's current keys",
        )
    previous = member_code.seal("oForged", expires, "test-member-code-key-before")  # the key before a rotation
    assert look_up(client, clock, previous).status_code == 200
    for malformed in ("MCABC", code.lower(), "SY" + code[2:], code + "1"):
        assert look_up(client, clock, malformed).status_code == 400, malformed


def test_the_signature_covers_the_path_and_the_key_acts_for_its_store(client, aws, clock):
    member("oPath", clock)
    member("oOther", clock)
    mine, theirs = (issued(client, aws, clock, m)["member_code"] for m in ("oPath", "oOther"))
    replayed = look_up(client, clock, theirs, signed_path=f"/pos/members/{mine}")
    assert reason(replayed) == (401, "till signature does not match this store's keys")
    assert look_up(client, clock, mine, "S001", key=KEYS["S002"]).status_code == 401
    assert look_up(client, clock, mine, "S002", key=KEYS["S001"]).status_code == 401
    stale = callbacks.till_get(f"/pos/members/{mine}", "S001", KEYS["S001"], clock.now() - timedelta(minutes=10))
    assert send(client, stale).status_code == 401


def test_a_merged_or_linked_id_shows_its_person(client, aws, clock):
    from chalicelib.identity import merge

    member("oEarlier", clock, tier="钻卡", days=30)
    member("oLater", clock, tier=None)
    balance("oEarlier", 500)
    coupon("SYEARLIER001", "oEarlier", clock)
    coupon("SYLATER00002", "oLater", clock)
    merge.merge("oLater", "oEarlier", why="test", who="ops", now=clock.now(), settings=aws)
    person = looked_up(client, clock, issued(client, aws, clock, "oLater")["member_code"])
    assert (person["tier"], person["discount_percent"]) == ("钻卡", 15)
    assert [c["code"] for c in person["coupons"]] == ["SYEARLIER001", "SYLATER00002"]
    assert person["points_balance"] == 500 + 0
    Shared(*keys.unionid_link("uEarlier"), value="oEarlier").save()  # a new mini-program openid of theirs
    new_id = looked_up(client, clock, issued(client, aws, clock, "oMiniNew", unionid="uEarlier")["member_code"])
    assert new_id["member_ref"] == person["member_ref"]
    stale = member_code.seal("oLater", clock.now() + timedelta(minutes=3), aws.member_code_key)  # sealed before
    assert looked_up(client, clock, stale)["member_ref"] == person["member_ref"]
    Shared(*keys.link("oLinkedOnly"), value="oEarlier").save()  # an id with a link and no row of its own
    Member("oHalfway", merged_into="oEarlier").save()  # a row merged, its link not written yet
    for other in ("oLinkedOnly", "oHalfway"):
        assert looked_up(client, clock, issued(client, aws, clock, other)["member_code"])["tier"] == "钻卡", other


def test_an_unknown_member_is_404_and_bad_requests_are_400_or_401(client, aws, clock):
    assert reason(send(client, callbacks.order_post(aws, {"openid": "oNobody"}, clock.now(), "/mp/member-code"))) == (
        404,
        "no member with this openid",
    )
    ghost = member_code.seal("oGhost", clock.now() + timedelta(minutes=3), aws.member_code_key)
    assert look_up(client, clock, ghost).status_code == 404
    for body in ({"openid": "o/1"}, {"openid": "oA", "phone": "138"}, {}):
        response = send(client, callbacks.order_post(aws, body, clock.now(), "/mp/member-code"))
        assert response.status_code == 400, body
    unsigned = callbacks.order_post(aws, {"openid": "oA"}, clock.now(), "/mp/member-code")
    unsigned.headers["x-siyu-signature"] = "sha256=00"
    assert send(client, unsigned).status_code == 401


def test_an_orders_tier_discount_is_counted_for_its_store_and_day_and_in_the_digest(client, aws, clock):
    for n, discount in enumerate((350, 0, 500)):
        paid = pos(
            client, aws, clock, "order_paid", "oBuyer", order_id=f"O-{n}", amount_fen=3150, store_id="S001",
            tier_discount_fen=discount,
        )  # fmt: skip
        assert paid.status_code == 200, paid.body
    day = clock.now().astimezone(SHANGHAI).date()
    for scope in ("S001", "chain"):
        counts = read.window(scope, day, day)
        assert (counts["tier_discount_fen"], counts["tier_discount_orders"]) == (850, 2)
    assert read.window("S002", day, day).get("tier_discount_fen", 0) == 0
    text = digest.build(runtime.context().rules(), date(2026, 11, 23), clock.now() + timedelta(days=7)).markdown
    assert "> 会员等级折扣 8.5元（2单，占GMV 9.0%）" in text
    for bad in (-1, True, 12.5, 10**9):
        refused = pos(client, aws, clock, "order_paid", "oBuyer", order_id="O-bad", amount_fen=1, tier_discount_fen=bad)
        assert refused.status_code == 400 and "/tier_discount_fen" in json.loads(refused.body)["reason"]


def test_the_till_rules_are_bounded():
    with pytest.raises(ValueError):
        LoyaltyRule.model_validate({"till": {"member_code_ttl_seconds": 29}})
    with pytest.raises(ValueError):
        LoyaltyRule.model_validate({"tiers": {"levels": [{"name": "普通", "discount_percent": 51}]}})
    assert LoyaltyRule.model_validate({}).till.member_code_ttl_seconds == 180


def test_the_official_accounts_menu_key_is_answered_with_the_link_to_the_member_code(client, aws, clock):
    from chalicelib.protocol import xmlsafe
    from chalicelib.protocol.crypto import MessageCrypto

    def click(key: str, created: int) -> bytes:
        xml = callbacks.oa_event("oFollower", "CLICK", created, event_key=key)
        response = send(client, callbacks.oa_post(aws, xml, clock.now()))
        assert response.status_code == 200
        return response.body

    answered = click("MEMBER_CODE", int(clock.now().timestamp()))
    envelope = xmlsafe.parse(answered, 65536)
    crypto = MessageCrypto(aws.wechat_token, aws.wechat_aes_key, aws.wechat_app_id)
    text = xmlsafe.parse(crypto.decrypt(envelope["Encrypt"]).encode(), 65536)["Content"]
    assert text == "请点击打开会员码，在收银台出示：https://example.com/siyu/member-code"
    assert click("OTHER_MENU", int(clock.now().timestamp()) + 1) == b"success"
