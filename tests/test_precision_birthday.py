"""Precision push (a category bought more than 3 times this month → its coupon, once a month)
and the birthday-month benefit (by tier, once a year, from the profile and the daily timer)."""

from datetime import UTC, datetime, timedelta

from chalicelib import jobs
from chalicelib.duties.precision import period_of
from chalicelib.state.models import Coupon, Member, OutboxMessage
from siyu.local import callbacks
from tests.helpers import pos, send


def pay(client, aws, clock, openid: str, order_id: str, category: str = "milk-tea", amount_fen: int = 1_800):
    items = [{"sku": "MT1", "category": category, "price_fen": amount_fen}]
    answer = pos(client, aws, clock, "order_paid", openid, order_id=order_id, amount_fen=amount_fen, items=items)
    assert answer.status_code == 200


def profile(client, aws, clock, openid: str, birthday: str, update_id: str = "u1"):
    payload = {
        "type": "profile_updated",
        "openid": openid,
        "at": clock.now().isoformat(),
        "update_id": update_id,
        "birthday": birthday,
    }
    return send(client, callbacks.order_post(aws, payload, clock.now()))


def coupons(member_id: str, cause: str) -> list[Coupon]:
    return [c for c in Coupon.by_member.query(member_id) if c.cause == cause]


def test_periods_are_calendar_months_quarters_and_years():
    day = datetime(2026, 11, 23).date()
    assert period_of(day, "month")[0] == "2026-11" and period_of(day, "quarter")[0] == "2026-Q4"
    assert period_of(day, "year")[1].isoformat() == "2026-01-01"


def test_the_fourth_purchase_of_a_category_in_a_month_earns_its_coupon_once(client, aws, clock):
    for i in range(3):
        pay(client, aws, clock, "oPP1", f"PP1-{i}")
    pay(client, aws, clock, "oPP1", "PP1-fruit", category="fruit-tea")
    assert coupons("oPP1", "precision_push") == []  # 3 times is not more than 3
    pay(client, aws, clock, "oPP1", "PP1-3")
    pay(client, aws, clock, "oPP1", "PP1-3")  # the POS retries
    pay(client, aws, clock, "oPP1", "PP1-4")  # a fifth: still one this month
    [coupon] = coupons("oPP1", "precision_push")
    assert coupon.title == "奶茶专享券" and coupon.cause_key == "precision#oPP1#milk-tea#2026-11"
    [message] = [m for m in OutboxMessage.by_member.query("oPP1") if m.cause == "precision_push"]
    assert message.category == "promo" and "您常点的奶茶" in message.text and coupon.code in message.text


def test_a_new_month_counts_afresh(client, aws, clock):
    clock.set(datetime(2026, 11, 30, 4, 0, tzinfo=UTC))
    for i in range(4):
        pay(client, aws, clock, "oPP2", f"PP2-{i}")
    clock.set(datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    for i in range(3):
        pay(client, aws, clock, "oPP2", f"PP2-dec-{i}")
    assert len(coupons("oPP2", "precision_push")) == 1
    pay(client, aws, clock, "oPP2", "PP2-dec-3")
    assert len(coupons("oPP2", "precision_push")) == 2


def test_a_birthday_entered_in_its_month_is_celebrated_at_once_by_tier_once_a_year(client, aws, clock):
    assert profile(client, aws, clock, "oB1", "1990-11-30").status_code == 200
    assert Member.get("oB1").birthday == "11-30"
    [coupon] = coupons("oB1", "birthday")
    assert coupon.title == "生日券" and coupon.value_fen == 500
    profile(client, aws, clock, "oB1", "11-29", update_id="u2")  # corrected: no second gift this year
    jobs.run_loyalty_day()
    assert len(coupons("oB1", "birthday")) == 1
    [message] = [m for m in OutboxMessage.by_member.query("oB1") if m.cause == "birthday"]
    assert "生日快乐！普通会员" in message.text


def test_the_timer_grants_the_birthday_month_benefit_on_the_first_of_the_month(client, aws, clock):
    profile(client, aws, clock, "oB2", "12-15")
    for i in range(3):
        pay(client, aws, clock, "oB2", f"B2-{i}", amount_fen=20_000)  # 银卡
    assert coupons("oB2", "birthday") == []
    clock.set(datetime(2026, 11, 30, 16, 30, tzinfo=UTC))  # Dec 1, 00:30 in Shanghai
    jobs.run_loyalty_day()
    clock.advance(timedelta(hours=1))
    jobs.run_loyalty_day()
    [coupon] = coupons("oB2", "birthday")
    assert coupon.title == "银卡生日券" and coupon.cause_key == "birthday#oB2#2026"


def test_an_impossible_birthday_is_a_clear_400(client, aws, clock):
    response = profile(client, aws, clock, "oB3", "02-30")
    assert response.status_code == 400 and "/birthday" in response.json_body["reason"]
    assert list(Member.scan()) == []
