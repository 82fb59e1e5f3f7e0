"""The welcome duty's decision, without any database."""

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from chalicelib import offers
from chalicelib.duties import welcome
from chalicelib.events import Event, Kind
from chalicelib.plans import IssueCoupon, QueueMessage, Reply
from chalicelib.rules.loader import load_dir

RULES = load_dir(Path(__file__).resolve().parent.parent / "rules")
NOW = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 01:30 on Nov 24 in Shanghai


def facts(kind: Kind = Kind.FOLLOWED, store: str | None = "S001") -> welcome.Facts:
    event = Event(kind, "evt-1", "oa", NOW, "oM1", store_id=store, group_id="g1" if kind is Kind.JOINED_GROUP else None)
    return welcome.Facts(event, "oM1", store, "SYCODE")


def test_a_follow_issues_the_rule_coupon_and_replies_only_if_the_coupon_is_new():
    from chalicelib import executor

    plan = welcome.decide(facts(), RULES, NOW)
    coupon, reply, refollow = plan
    assert isinstance(coupon, IssueCoupon) and coupon.value_fen == 990 and coupon.min_spend_fen == 0
    assert coupon.cause_key == "welcome#oM1" and coupon.rules_version == RULES.version
    assert isinstance(reply, Reply) and reply.when == (("coupon", "SYCODE"), "new")
    assert "9.9元" in reply.text and "SYCODE" in reply.text and "https://" in reply.text
    assert isinstance(refollow, Reply) and refollow.when == (("coupon", "SYCODE"), "taken")
    # resolved as the executor does: the welcome text if the coupon is new, else the re-follow text
    assert executor.resolve(plan) == [coupon, reply]
    assert executor.resolve(plan, {("coupon", "SYCODE")}) == [refollow]


def test_expiry_counts_days_in_the_store_time_zone_and_ends_at_local_midnight():
    coupon = welcome.decide(facts(), RULES, NOW)[0]
    # Issued on Nov 24 Shanghai time; 30 days later is Dec 24, 23:59:59 Shanghai = 15:59:59 UTC.
    assert coupon.expires_at == datetime(2026, 12, 24, 15, 59, 59, tzinfo=UTC)
    assert "2026年12月24日" in welcome.decide(facts(), RULES, NOW)[1].text


def test_a_group_join_queues_the_welcome_for_the_outbox():
    plan = welcome.decide(facts(Kind.JOINED_GROUP), RULES, NOW)
    assert isinstance(plan[1], QueueMessage) and plan[1].channel == "wecom_customer"
    assert plan[1].when == (("coupon", "SYCODE"), "new")


def test_kinds_outside_the_rule_triggers_do_nothing():
    assert welcome.decide(facts(Kind.CONTACT_ADDED), RULES, NOW) == []


def test_a_disabled_rule_does_nothing():
    rules = dataclasses.replace(RULES, welcome=RULES.welcome.model_copy(update={"enabled": False}))
    assert welcome.decide(facts(), rules, NOW) == []


def test_home_store_scope_limits_the_coupon_to_the_members_store():
    coupon_rule = RULES.welcome.coupon.model_copy(update={"store_scope": "home_store", "value_yuan": Decimal("12.5")})
    rules = dataclasses.replace(RULES, welcome=RULES.welcome.model_copy(update={"coupon": coupon_rule}))
    coupon, reply, _ = welcome.decide(facts(store="S002"), rules, NOW)
    assert coupon.stores == frozenset({"S002"}) and coupon.value_fen == 1250 and "12.5元" in reply.text


def test_yuan_reads_like_a_price_tag():
    assert [offers.yuan(f) for f in (990, 1000, 1050, 1)] == ["9.9", "10", "10.5", "0.01"]
