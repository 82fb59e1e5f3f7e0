"""Tiers: up at once with a message and the tier's coupon; down only at the period end, with
notice; a refund never downgrades on the spot."""

from datetime import UTC, datetime

from chalicelib import jobs
from chalicelib.state.models import Coupon, LoyaltyRecord, Member, OutboxMessage
from tests.helpers import pos


def pay(client, aws, clock, openid: str, order_id: str, amount_fen: int):
    assert pos(client, aws, clock, "order_paid", openid, order_id=order_id, amount_fen=amount_fen).status_code == 200


def refund(client, aws, clock, openid: str, order_id: str, amount_fen: int):
    fields = {"order_id": order_id, "refund_id": f"R-{order_id}", "amount_fen": amount_fen}
    assert pos(client, aws, clock, "order_refunded", openid, **fields).status_code == 200


def tier_messages(member_id: str) -> list[OutboxMessage]:
    return [m for m in OutboxMessage.by_member.query(member_id) if m.cause == "tier"]


def test_reaching_silver_upgrades_at_once_with_a_message_and_the_coupon_once(client, aws, clock):
    pay(client, aws, clock, "oT1", "T1-1", 20_000)
    pay(client, aws, clock, "oT1", "T1-2", 20_000)
    assert Member.get("oT1").tier is None  # 400 yuan: not yet
    pay(client, aws, clock, "oT1", "T1-3", 20_000)
    pay(client, aws, clock, "oT1", "T1-3", 20_000)  # the POS retries
    member = Member.get("oT1")
    assert member.tier == "银卡" and member.tier_review_on == "2027-11-23"
    [message] = tier_messages("oT1")
    assert "恭喜升级为银卡会员！近期消费600元" in message.text
    [coupon] = [c for c in Coupon.by_member.query("oT1") if c.cause == "tier"]
    assert coupon.title == "银卡专享券"
    assert LoyaltyRecord.get("due#2027-11-23", "tier#oT1").member_id == "oT1"


def test_gold_brings_the_early_access_tag(client, aws, clock):
    for i in range(10):
        pay(client, aws, clock, "oT2", f"T2-{i}", 25_000)
    member = Member.get("oT2")
    assert member.tier == "金卡" and "early_access" in member.loyalty_tags


def test_a_refund_never_downgrades_on_the_spot(client, aws, clock):
    for i in range(3):
        pay(client, aws, clock, "oT3", f"T3-{i}", 20_000)
    refund(client, aws, clock, "oT3", "T3-0", 20_000)
    pay(client, aws, clock, "oT3", "T3-9", 100)
    assert Member.get("oT3").tier == "银卡"


def test_the_period_end_downgrades_with_notice_or_keeps_the_tier(client, aws, clock):
    for member in ("oDown", "oKeep"):
        for i in range(3):
            pay(client, aws, clock, member, f"{member}-{i}", 20_000)
    clock.set(datetime(2027, 10, 1, 4, 0, tzinfo=UTC))
    for i in range(3):  # oKeep spends again within the year
        pay(client, aws, clock, "oKeep", f"oKeep-again-{i}", 20_000)
    clock.set(datetime(2027, 11, 9, 4, 0, tzinfo=UTC))  # 14 days before the review
    jobs.run_loyalty_day()
    jobs.run_loyalty_day()
    [warning] = [m for m in tier_messages("oDown") if "复核" in m.text]
    assert "您的银卡会员将于2027年11月23日复核" in warning.text and "将调整为普通" in warning.text
    assert not [m for m in tier_messages("oKeep") if "复核" in m.text]  # oKeep keeps the tier
    clock.set(datetime(2027, 11, 22, 4, 0, tzinfo=UTC))
    jobs.run_loyalty_day()
    assert Member.get("oDown").tier == "银卡"  # not before the review day
    clock.set(datetime(2027, 11, 23, 4, 0, tzinfo=UTC))
    jobs.run_loyalty_day()
    jobs.run_loyalty_day()
    down = Member.get("oDown")
    assert down.tier == "普通" and down.tier_review_on == "2028-11-22"
    notices = [m for m in tier_messages("oDown") if "调整为普通（" in m.text]
    assert len(notices) == 1 and "由银卡调整为普通（2027年11月23日起）" in notices[0].text
    keep = Member.get("oKeep")
    assert keep.tier == "银卡" and keep.tier_review_on == "2028-11-22"
    assert len(tier_messages("oKeep")) == 1  # only the first upgrade: no warning, no notice
