"""Kill the webhook pipeline between every write and the next, once each, and let WeChat retry:
nothing is lost, nothing is doubled."""

import botocore.client
import pytest

from chalicelib.local import callbacks
from chalicelib.state.models import Coupon, EventRecord, Member, OutboxMessage
from tests.helpers import send

WRITES = frozenset({"PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem"})


class Crash(Exception):
    pass


@pytest.fixture
def crash_at(monkeypatch):
    """``crash_at(n)``: the n-th DynamoDB write from now on fails once (before it is applied)."""
    original = botocore.client.BaseClient._make_api_call
    state = {"countdown": None}

    def call(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb" and operation in WRITES and state["countdown"]:
            state["countdown"] -= 1
            if state["countdown"] == 0:
                state["countdown"] = None
                raise Crash(f"injected before {operation}")
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)

    def arm(n: int | None) -> None:
        state["countdown"] = n  # None disarms

    return arm


def writes_of_a_first_follow(client, aws, clock) -> int:
    counted = {"n": 0}
    original = botocore.client.BaseClient._make_api_call

    def count(client_, operation, params):
        if client_.meta.service_model.service_name == "dynamodb" and operation in WRITES:
            counted["n"] += 1
        return original(client_, operation, params)

    botocore.client.BaseClient._make_api_call = count
    try:
        xml = callbacks.oa_event("oCount", "subscribe", int(clock.now().timestamp()), "")
        send(client, callbacks.oa_post(aws, xml, clock.now()))
    finally:
        botocore.client.BaseClient._make_api_call = original
    return counted["n"]


def test_the_welcome_path_survives_a_crash_before_any_of_its_writes(client, aws, clock, crash_at):
    total = writes_of_a_first_follow(client, aws, clock)
    assert total >= 5  # claim, member, coupon, message record, done
    for n in range(1, total + 1):
        openid = f"oCrash{n}"
        xml = callbacks.oa_event(openid, "subscribe", int(clock.now().timestamp()), "qrscene_st=S001")
        crash_at(n)
        first = send(client, callbacks.oa_post(aws, xml, clock.now()))
        crash_at(None)
        retry = send(client, callbacks.oa_post(aws, xml, clock.now()))  # WeChat's next try
        if first.status_code == 200:  # the crash hit releasing a finished event: nothing to redo
            assert retry.status_code == 200
        else:
            assert first.status_code == 503, (n, first.body)
            assert retry.status_code == 200, (n, retry.body)
        assert b"<Encrypt>" in retry.body, f"crash before write {n}: the retry must still carry the welcome"
        assert len(list(Coupon.by_member.query(openid))) == 1, n
        assert [m.message_key for m in OutboxMessage.by_member.query(openid)] == [f"welcome#{openid}"], n
        assert Member.get(openid).store_id == "S001"
        [record] = [r for r in EventRecord.scan() if r.member_id == openid]
        assert record.status == "done", n


def test_the_group_join_path_survives_a_crash_before_any_of_its_writes(client, aws, clock, crash_at):
    for n in range(1, 6):  # claim, member, coupon, message record, done
        member = f"wmCrash{n}"
        xml = callbacks.wecom_group_join(
            aws.wecom_corp_id, "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", [member], int(clock.now().timestamp())
        )
        crash_at(n)
        send(client, callbacks.wecom_post(aws, xml, clock.now()))
        crash_at(None)
        retry = send(client, callbacks.wecom_post(aws, xml, clock.now()))
        assert retry.status_code == 200 and retry.body == b"success", (n, retry.body)
        assert len(list(Coupon.by_member.query(member))) == 1, n
        [message] = list(OutboxMessage.by_member.query(member))
        assert message.status == "pending" and message.message_key == f"welcome#{member}", n
        assert Member.get(member).groups == {"wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"}
