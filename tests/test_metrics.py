"""Counters are written once per event as events are processed, and the KPIs are the formulas
their docstrings give (each checked on its hand-worked example)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib import pipeline, runtime
from chalicelib.events import Event, Kind
from chalicelib.metrics import kpis, read
from chalicelib.state.models import OutboxMessage
from siyu.local import callbacks
from siyu.metering import Meter
from tests.helpers import send

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TODAY = date(2026, 11, 23)


def test_every_kpi_matches_its_hand_worked_example():
    assert kpis.interaction_rate({"active_members": 120, "days": 2}, {"members": 1000}).value == 0.06
    assert kpis.conversion_rate({"orders": 30, "active_members": 200}, {}).value == 0.15
    churn = kpis.churn_rate({"unfollows": 5, "follows": 40}, {"followers": 1035})
    assert churn.value == 0.005 and churn.sample == 1000
    assert kpis.repurchase_rate({"repeat_orders": 12, "orders": 40}, {}).value == 0.3
    assert kpis.average_order_value({"gmv_fen": 104_000, "orders": 40}, {}).value == 2600
    assert kpis.coupon_redemption_rate({"coupons_redeemed": 6, "coupons_issued": 120}, {}).value == 0.05
    assert kpis.retention_d1({"new_members": 80, "retained_d1": 56}, {}).value == 0.7
    assert kpis.retention_d7({"new_members": 80, "retained_d7": 20}, {}).value == 0.25
    answers = {"nps_answers": 50, "nps_promoters": 25, "nps_detractors": 10}
    assert kpis.nps(answers, {}) == kpis.Value(30.0, 50)
    assert kpis.conversion_rate({}, {}) == kpis.Value(None, 0)  # nothing to divide by: no value


def event(kind: Kind, member: str, at: datetime, event_id: str | None = None, **data) -> Event:
    return Event(
        kind, event_id or f"{kind.value}:{member}:{at.timestamp()}", "oa", at, member, store_id="S001", data=data
    )


def day(scope: str = "chain", on: date = TODAY) -> Counter:
    return read.days(scope, on, on).get(on, Counter())


def test_a_new_follower_is_counted_once_for_the_chain_and_the_store_even_when_retried(aws, clock):
    ctx = runtime.context()
    follow = event(Kind.FOLLOWED, "oNew", NOW, "oa:follow:oNew")
    pipeline.process(ctx, follow)
    pipeline.process(ctx, follow)  # WeChat's retry: answered from the event's record
    for scope in ("chain", "S001"):
        counts = day(scope)
        assert counts["follows"] == 1 and counts["new_members"] == 1 and counts["active_members"] == 1
        assert counts["coupons_issued"] == 1 and counts["coupons_issued:welcome"] == 1
    assert read.totals("chain")["members"] == 1 and read.totals("chain")["followers"] == 1


def test_an_event_that_died_after_its_commit_is_not_counted_again_when_retried(aws, clock, monkeypatch):
    from chalicelib.delivery import queue

    ctx = runtime.context()
    real_enqueue, calls = queue.enqueue, {"n": 0}

    def dies_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("Lambda died after its commit, before it answered")
        return real_enqueue(*args, **kwargs)

    monkeypatch.setattr(queue, "enqueue", dies_once)
    paid = event(Kind.ORDER_PAID, "oBuyer", NOW, "orders:paid:A1", order_id="A1", amount_fen=2600, items=[])
    with pytest.raises(ConnectionError):
        pipeline.process(ctx, paid)
    pipeline.process(ctx, paid)  # the POS retries
    counts = day()
    assert counts["orders"] == 1 and counts["gmv_fen"] == 2600 and counts["interactions"] == 1


def test_active_members_count_each_member_once_a_day_and_feed_day_one_retention(aws, clock):
    ctx = runtime.context()
    for minute in range(3):
        pipeline.process(ctx, event(Kind.MESSAGED, "oChatty", NOW + timedelta(minutes=minute)))
    pipeline.process(ctx, event(Kind.CLICKED, "oOther", NOW))
    counts = day()
    assert counts["active_members"] == 2 and counts["interactions"] == 4 and counts["messages_in"] == 3
    tomorrow = NOW + timedelta(days=1)
    pipeline.process(ctx, event(Kind.MESSAGED, "oChatty", tomorrow))
    pipeline.process(ctx, event(Kind.MESSAGED, "oChatty", tomorrow + timedelta(hours=1)))
    assert day(on=TODAY + timedelta(days=1))["active_members"] == 1
    cohort = read.cohort_window("chain", TODAY, TODAY)
    assert cohort["new_members"] == 2 and cohort["retained_d1"] == 1
    assert kpis.retention_d1(cohort, {}).value == 0.5


def test_a_day_is_the_local_day_in_shanghai(aws, clock):
    ctx = runtime.context()
    late = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # 00:30 on the 24th in Shanghai
    pipeline.process(ctx, event(Kind.MESSAGED, "oNight", late))
    assert day(on=date(2026, 11, 24))["messages_in"] == 1 and day()["messages_in"] == 0


def test_repeat_orders_refunds_reviews_and_nps_from_the_pos(client, aws, clock):
    at = clock.now()

    def post(body: dict) -> int:
        return send(client, callbacks.order_post(aws, {"openid": "oPos", "at": at.isoformat(), **body}, at)).status_code

    assert post({"type": "order_paid", "order_id": "B1", "amount_fen": 1800}) == 200
    clock.set(at + timedelta(days=1))
    at = clock.now()
    assert post({"type": "order_paid", "order_id": "B2", "amount_fen": 2400}) == 200
    assert post({"type": "order_refunded", "order_id": "B2", "refund_id": "R1", "amount_fen": 400}) == 200
    assert post({"type": "review", "review_id": "V1", "order_id": "B2", "score": 2}) == 200
    for i, score in enumerate((10, 9, 7, 3)):
        assert post({"type": "nps", "answer_id": f"N{i}", "score": score}) == 200
    assert post({"type": "nps", "answer_id": "N9", "score": 11}) == 400
    counts = day(on=TODAY + timedelta(days=1))
    assert counts["orders"] == 1 and counts["repeat_orders"] == 1 and counts["gmv_fen"] == 2400
    assert counts["refunds"] == 1 and counts["refund_fen"] == 400
    assert counts["reviews"] == 1 and counts["reviews_negative"] == 1
    assert kpis.nps(counts, {}) == kpis.Value(25.0, 4)  # (2 promoters − 1 detractor) / 4


def test_a_sent_message_is_counted_once_with_its_cost(aws, clock):
    message = OutboxMessage(
        "m1",
        member_id="oM",
        channel="template",
        category="promo",
        cause="recall",
        rules_version="v1",
        status="sent",
        created_at=NOW,
        store_id="S002",
        cost_fen=10,
    )
    message.save()
    from zoneinfo import ZoneInfo

    from chalicelib.delivery import sender

    for _ in range(2):  # the sender's "sent" transaction, run again (a redelivered batch)
        sender._count_sent(OutboxMessage.get("m1"), ZoneInfo("Asia/Shanghai"), NOW, [], [])
    counts = day("S002")
    assert counts["messages_sent"] == 1 and counts["messages_sent:promo"] == 1 and counts["message_cost_fen"] == 10


def test_a_week_of_counters_is_seven_items_read_however_many_events(aws, clock):
    ctx = runtime.context()
    for i in range(40):
        pipeline.process(ctx, event(Kind.MESSAGED, f"oW{i % 7}", NOW - timedelta(days=i % 7, minutes=i)))
    with Meter() as meter:
        week = read.window("S001", TODAY - timedelta(days=6), TODAY)
    assert week["messages_in"] == 40 and week["days"] == 7
    assert meter.items_read["siyu-test-metrics"] == 7 and sum(meter.calls.values()) == 1
    assert json.dumps(week)  # plain numbers, ready for a report
