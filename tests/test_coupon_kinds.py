"""Coupon kinds (issue 19): a fixed amount, a percentage off with a cap, a free item — each with its
minimum spend, store scope and validity window — from rules to the member's text to the till."""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib import executor, offers
from chalicelib.clock import SHANGHAI
from chalicelib.rules.models import CouponSpec
from chalicelib.state.models import Coupon, Member, OutboxMessage
from tests.test_precision_birthday import profile
from tests.test_rules_check import edit, good, messages
from tests.test_till import asked, redeemed


def issue(spec: CouponSpec, code: str, clock, owner: str = "oKind") -> str:
    given = offers.offer(
        spec,
        code=code,
        member_id=owner,
        cause="precision",
        cause_key=f"test#{code}",
        event_id="test",
        home_store="S001",
        zone=SHANGHAI,
        now=clock.now(),
        rules_version="test",
    )
    executor.execute([given.coupon], f"test#{code}", clock.now())
    Member(owner, store_id="S001", first_seen=clock.now()).save()
    return code


PERCENT = CouponSpec(kind="percent", title="九折券", value_yuan=20, percent_off=10, valid_days=7)
ITEM = CouponSpec(kind="item", title="饮品券", value_yuan=18, item={"sku": "LATTE", "name": "拿铁"}, valid_days=7)


def test_a_percent_coupon_takes_its_share_of_the_basket_up_to_its_cap(client, aws, clock):
    code = issue(PERCENT, "SYPCT0000001", clock)
    small = asked(client, clock, code, basket=5_999)
    assert (small["kind"], small["percent_off"], small["discount_fen"]) == ("percent", 10, 599)  # rounded down
    assert asked(client, clock, code, basket=50_000)["discount_fen"] == 2_000  # the cap
    done = redeemed(client, clock, code, "T-P1", basket=30_000)
    assert (done["redeemed"], done["discount_fen"], done["kind"]) == (True, 2_000, "percent")


def test_a_free_item_coupon_names_its_item_and_takes_off_at_most_its_price(client, aws, clock):
    code = issue(ITEM, "SYITEM000001", clock)
    answer = asked(client, clock, code, basket=3_000)
    assert (answer["item"], answer["discount_fen"]) == ({"sku": "LATTE", "name": "拿铁"}, 1_800)
    assert asked(client, clock, code, basket=1_500)["discount_fen"] == 1_500
    assert redeemed(client, clock, code, "T-I1", basket=3_000)["item"]["sku"] == "LATTE"


def test_a_coupon_usable_from_a_later_day_is_not_yet_valid_until_that_local_midnight(client, aws, clock):
    clock.set(datetime(2026, 11, 23, 14, 0, tzinfo=SHANGHAI))
    code = issue(CouponSpec(title="次日券", value_yuan=5, starts_after_days=1, valid_days=7), "SYNEXT000001", clock)
    assert asked(client, clock, code)["reason"] == "not_yet_valid"
    clock.set(datetime(2026, 11, 23, 23, 59, tzinfo=SHANGHAI))
    assert asked(client, clock, code)["reason"] == "not_yet_valid"
    clock.advance(timedelta(minutes=1))
    answer = asked(client, clock, code)
    assert answer["valid"] is True and answer["valid_from"].startswith("2026-11-23T16:00:00")  # 00:00 Shanghai


def test_the_members_text_says_what_each_kind_gives():
    day = datetime(2026, 11, 23, 12, tzinfo=SHANGHAI)
    words = [
        offers.offer(spec, code="C", member_id="m", cause="c", cause_key="k", event_id="e", home_store=None,
                     zone=SHANGHAI, now=day, rules_version="v").words["benefit"]
        for spec in (CouponSpec(value_yuan=9.9, valid_days=7), PERCENT, ITEM)
    ]  # fmt: skip
    assert words == ["9.9元", "9折（最高减20元）", "免费拿铁"]


def test_a_diamond_members_birthday_gift_is_the_percent_coupon_the_rules_give(client, aws, clock):
    Member("oDiamond", store_id="S001", tier="钻卡", first_seen=clock.now()).save()
    assert profile(client, aws, clock, "oDiamond", "1990-11-30").status_code == 200
    [coupon] = [c for c in Coupon.by_member.query("oDiamond") if c.cause == "birthday"]
    assert (coupon.kind, int(coupon.percent_off), int(coupon.value_fen)) == ("percent", 20, 5_000)
    [message] = [m for m in OutboxMessage.by_member.query("oDiamond") if m.cause == "birthday"]
    assert "8折（最高减50元）钻卡生日折扣券" in message.text


def test_rules_check_refuses_a_kind_without_its_fields_naming_the_place():
    def percent_without_share(data):
        data["tiers"]["levels"][1]["coupon"]["kind"] = "percent"

    def item_with_a_share(data):
        data["tiers"]["levels"][2]["coupon"].update(kind="item", percent_off=10)

    found = messages(edit(edit(good(), "loyalty.json", percent_without_share), "loyalty.json", item_with_a_share))
    assert any(
        m.startswith("loyalty.json:") and "/tiers/levels/1/coupon: percent_off is given for kind percent" in m
        for m in found
    )
    assert any("/tiers/levels/2/coupon: percent_off is given for kind percent, and only for it" in m for m in found)
    assert len(found) == 2, found
