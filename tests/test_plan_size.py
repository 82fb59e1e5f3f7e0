"""One event, one transaction: DynamoDB takes at most 100 items in a transaction, so the largest
event a member can cause must fit, with room to spare. The executor refuses a larger one rather
than split it (an event split in two could be half applied); this test is what keeps that safe.

It runs the app in process on DynamoDB Local, not moto: the order's read is one TransactGetItems
of 26 items, which AWS and DynamoDB Local take (up to 100) and moto 5.2.5 refuses (it still caps
reads at 25, the limit before September 2022)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from chalicelib import executor, plans, settings
from chalicelib.state.models import Coupon, Member
from chalicelib.store import db
from siyu.local import callbacks
from tests.helpers import pos, send

CODES = 20  # the most coupon codes one order may carry (orders.OrderPaid.coupon_codes)


@pytest.fixture
def client(env, clock, dynamodb_local, monkeypatch) -> Iterator[object]:
    from chalice.test import Client

    from app import app
    from chalicelib.state import binding

    monkeypatch.setenv("SIYU_TABLE_PREFIX", f"siyu-size-{uuid.uuid4().hex[:8]}-")
    monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", dynamodb_local.endpoint)
    binding._bound = None
    binding.create_tables(settings.current())
    with Client(app, stage_name="local") as test_client:
        yield test_client
    binding._bound = None


def test_the_largest_order_a_member_can_place_commits_in_one_transaction_well_under_the_limit(
    client, clock, monkeypatch
):
    aws = settings.current()
    xml = callbacks.oa_event("oBig", "subscribe", int(clock.now().timestamp()), "qrscene_st=S001&ch=poster")
    assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200
    for n in range(19):  # 19 orders of 200 yuan; the 20th reaches 5,000 yuan in 20 orders: 钻卡
        clock.advance(timedelta(hours=1))
        assert pos(client, aws, clock, "order_paid", "oBig", order_id=f"O-{n}", amount_fen=20_000).status_code == 200
    now = clock.now()
    for n in range(CODES):
        gift = plans.IssueCoupon(
            code=f"GIFT{n:04d}",
            member_id="oBig",
            cause="test",
            cause_key=f"gift#{n}",
            event_id="test",
            title="券",
            value_fen=100,
            min_spend_fen=0,
            stores=None,
            expires_at=now + timedelta(days=30),
            rules_version="test",
        )
        db.put(executor.coupon_item(gift, now))
    codes = [f"GIFT{n:04d}" for n in range(CODES)]

    sizes: list[int] = []
    commit = db.commit

    def measured(writes, cause):
        sizes.append(len(writes))
        return commit(writes, cause)

    monkeypatch.setattr(db, "commit", measured)
    clock.advance(timedelta(hours=1))
    answer = pos(client, aws, clock, "order_paid", "oBig", order_id="O-big", amount_fen=120_000, coupon_codes=codes)

    assert answer.status_code == 200
    assert [c["redeemed"] for c in answer.json_body["coupons"]] == [True] * CODES
    assert all(Coupon.get(code).redeemed_order == "O-big" for code in codes)
    assert Member.get("oBig").tier == "钻卡"
    assert len(sizes) == 1, "one event, one transaction"
    assert sizes[0] <= db.MAX_ITEMS // 2, f"{sizes[0]} items: the largest event uses over half the limit"
