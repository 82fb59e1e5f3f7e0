"""The loyalty duties' decisions, without any database: facts and rules in, a plan out."""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from chalicelib.duties import checkin, points, referral, tiers
from chalicelib.events import Event, Kind
from chalicelib.plans import CountInvite, IssueCoupon, PostPoints, QueueMessage, RecordOnce, Reply, UpdateLoyalty
from chalicelib.rules.loader import load_dir

RULES = load_dir(Path(__file__).resolve().parent.parent / "rules")
NOW = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # 00:30 on Nov 24 in Shanghai


def off(section: str):
    rule = RULES.loyalty
    return dataclasses.replace(
        RULES, loyalty=rule.model_copy(update={section: getattr(rule, section).model_copy(update={"enabled": False})})
    )


def order_event(amount_fen=10_000, items=()):
    data = {"order_id": "O1", "amount_fen": amount_fen, "items": list(items), "coupon_codes": []}
    return Event(Kind.ORDER_PAID, "orders:paid:O1", "orders", NOW, "oM", store_id="S001", data=data)


def test_an_order_plans_one_keyed_credit_with_its_expiry_in_store_time():
    facts = points.Facts(
        order_event(items=[{"sku": "a", "series": "SERIES-SIGNATURE", "qty": 2}]), "oM", "S001", None, None
    )
    [posting] = points.decide(facts, RULES, NOW)
    assert isinstance(posting, PostPoints) and posting.key == "earn#O1" and posting.delta == 110
    assert posting.mode == "credit" and posting.order == "open" and posting.spend_fen == 10_000
    assert posting.expires_on == "2027-11-30"  # earned on Nov 24 Shanghai time


def test_points_off_earns_nothing_but_refunds_and_redemptions_still_apply():
    assert points.decide(points.Facts(order_event(), "oM", "S001", None, None), off("points"), NOW) == []
    redeem = Event(Kind.POINTS_REDEEMED, "x", "orders", NOW, "oM", data={"redemption_id": "X1", "points": 5})
    [posting] = points.decide(points.Facts(redeem, "oM", None, None, None), off("points"), NOW)
    assert posting.mode == "debit" and posting.delta == -5


def test_refund_reversal_is_proportional_cumulative_and_capped():
    order = points.OrderState(earned=100, reversed=0, refunded_fen=0, amount_fen=10_000, voided=False)
    assert points.reversal(order, 2_500) == 25
    half = dataclasses.replace(order, reversed=25, refunded_fen=2_500)
    assert points.reversal(half, 7_500) == 75 and points.reversal(half, 99_999) == 75
    assert points.reversal(dataclasses.replace(order, reversed=100, refunded_fen=10_000), 1) == 0


def checkin_facts(text="签到", recent=()):
    event = Event(Kind.MESSAGED, "oa:msg:1", "oa", NOW, "oM", data={"msg_type": "text", "content": text})
    return checkin.Facts(event, "oM", None, tuple(recent), balance=40)


def test_a_check_in_plans_the_day_the_week_entry_the_points_and_a_reply_only_if_new():
    day_record, latest, week_record, posting, reply = checkin.decide(checkin_facts(), RULES, NOW)
    assert isinstance(day_record, RecordOnce) and (day_record.pk, day_record.sk) == ("checkin#oM", "2026-11-24")
    assert isinstance(latest, UpdateLoyalty) and (latest.checkin_day, latest.checkin_streak) == ("2026-11-24", 1)
    assert isinstance(week_record, RecordOnce) and week_record.pk == "checkins#2026-W48"
    assert isinstance(posting, PostPoints) and posting.key == "checkin#2026-11-24" and posting.delta == 1
    assert posting.expires_on == "2027-11-30"  # check-in points expire like any other
    new_day = (("record", "checkin#oM|2026-11-24"), "new")
    assert reply.when == new_day and posting.when == new_day and week_record.when == new_day
    assert isinstance(reply, Reply) and "获得1积分，当前共41积分" in reply.text


def test_the_hundredth_day_plans_the_badge_and_a_seventh_day_the_bonus():
    yesterday = date(2026, 11, 23)
    plan = checkin.decide(checkin_facts(recent=[checkin.Previous(yesterday, 99)]), RULES, NOW)
    assert any(isinstance(e, UpdateLoyalty) and e.add_tags == frozenset({"百日打卡"}) for e in plan)
    plan = checkin.decide(checkin_facts(recent=[checkin.Previous(yesterday, 6)]), RULES, NOW)
    assert [e.delta for e in plan if isinstance(e, PostPoints)] == [11]


def test_a_second_check_in_the_same_day_only_replies():
    [reply] = checkin.decide(checkin_facts(recent=[checkin.Previous(date(2026, 11, 24), 3)]), RULES, NOW)
    assert isinstance(reply, Reply) and "已连续签到3天" in reply.text
    assert checkin.decide(checkin_facts(text="签到吧"), RULES, NOW) == []
    assert checkin.decide(checkin_facts(), off("checkin"), NOW) == []


def pending(**changes):
    base = referral.Pending(
        invitee="oF",
        inviter="oI",
        status="pending",
        ordinal=0,
        followed_at=NOW - timedelta(days=8),
        unsubscribed_at=None,
        subscribed=True,
        inviter_count=0,
        inviter_store=None,
    )
    return dataclasses.replace(base, **changes)


def test_an_invite_counts_after_grace_and_its_reward_is_keyed_by_the_count_reached():
    count, coupon, message = referral.confirm(pending(), RULES, NOW, "secret")
    assert isinstance(count, CountInvite) and not count.void and count.count_before == 0
    assert isinstance(coupon, IssueCoupon) and coupon.cause_key == "referral#oI#1" and coupon.value_fen == 500
    assert isinstance(message, QueueMessage) and message.message_key == "referral#oI#1"
    assert [type(e) for e in referral.confirm(pending(inviter_count=1), RULES, NOW, "secret")] == [CountInvite]


def test_an_invitee_who_left_within_grace_is_void():
    left = pending(unsubscribed_at=NOW - timedelta(days=5), subscribed=True)
    [void] = referral.confirm(left, RULES, NOW, "secret")
    assert isinstance(void, CountInvite) and void.void


def test_the_tier_is_the_highest_whose_spend_and_orders_the_period_reaches():
    orders = tuple((NOW - timedelta(days=d), 30_000) for d in (1, 2, 400))  # the third is too old
    standing = tiers.Standing("oM", None, None, orders, "secret")
    assert tiers.earned_tier(RULES.loyalty, standing, NOW).name == "普通"  # 600 yuan but 2 orders
    standing = dataclasses.replace(standing, orders=(*orders, (NOW, 100)))
    assert tiers.earned_tier(RULES.loyalty, standing, NOW).name == "银卡"


def test_a_review_downgrades_with_notice_and_a_stale_review_does_nothing():
    standing = tiers.Standing("oM", None, "金卡", (), "secret")
    day = date(2026, 11, 24)
    plan = tiers.review(standing, "2026-11-24", day, RULES, NOW)
    change = plan[0]
    assert isinstance(change, UpdateLoyalty) and change.tier == "普通" and change.expect_tier == "金卡"
    assert change.remove_tags == frozenset({"early_access"})
    [message] = [e for e in plan if isinstance(e, QueueMessage)]
    assert "由金卡调整为普通" in message.text and not any(isinstance(e, IssueCoupon) for e in plan)
    assert tiers.review(standing, "2026-12-01", day, RULES, NOW) == []
