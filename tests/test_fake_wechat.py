"""The fake WeChat, when told to enforce the platform, holds a sender to WeChat's rules about users
(docs/wechat.md §3.2–§3.6) and owes the delivery receipts siyu's parser reads (§1.3)."""

from __future__ import annotations

import pytest
import requests

from chalicelib.protocol import official_account, xmlsafe
from siyu.local.fake_wechat import FakeWeChat

CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"
BIZSEND = "/cgi-bin/message/subscribe/bizsend"
MP_SUBSCRIBE = "/cgi-bin/message/subscribe/send"
T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock):
    fake = FakeWeChat(enforce=True, now=clock).start()
    yield fake
    fake.stop()


def send(fake: FakeWeChat, path: str, openid: str, template_id: str = "TPL-A") -> dict:
    body: dict = {"touser": openid, "msgtype": "text", "text": {"content": "hi"}}
    if path != CUSTOM:
        body = {"touser": openid, "template_id": template_id, "data": {"thing1": {"value": "x"}}}
    return requests.post(f"{fake.url}{path}", params={"access_token": fake.token}, json=body, timeout=5).json()


def codes(fake: FakeWeChat, path: str, openid: str, times: int) -> list[int]:
    return [send(fake, path, openid)["errcode"] for _ in range(times)]


def parsed(xml: str):
    return official_account.to_event(xmlsafe.parse(xml.encode(), 65536))


def test_customer_service_outside_any_window_is_refused_45015(fake: FakeWeChat, clock: Clock):
    fake.followed("oA")
    assert codes(fake, CUSTOM, "oA", 1) == [45015]
    fake.interacted("oA", "message")
    clock.at += 48 * 3600  # the window of a message lasts 48 h
    assert codes(fake, CUSTOM, "oA", 1) == [45015]
    assert fake.refusals() == {"45015": {CUSTOM: 2}}


def test_a_message_allows_five_in_48_hours_and_a_new_message_reopens_the_window(fake: FakeWeChat, clock: Clock):
    fake.interacted("oA", "follow", T0 - 3600)
    fake.interacted("oA", "message")
    clock.at += 47 * 3600
    assert codes(fake, CUSTOM, "oA", 6) == [0, 0, 0, 0, 0, 45047]
    fake.interacted("oA", "message")
    assert codes(fake, CUSTOM, "oA", 1) == [0]


def test_a_follow_allows_three_in_a_minute(fake: FakeWeChat, clock: Clock):
    fake.interacted("oA", "follow")
    clock.at += 59
    assert codes(fake, CUSTOM, "oA", 4) == [0, 0, 0, 45047]
    fake.interacted("oB", "scan")
    clock.at += 60
    assert codes(fake, CUSTOM, "oB", 1) == [45015]


def test_the_window_table_is_configurable_and_payment_opens_none_by_default(clock: Clock):
    fake = FakeWeChat(enforce=True, now=clock, windows={"message": (20, 48 * 3600), "payment": (1, 60)}).start()
    try:
        fake.interacted("oA", "message")
        assert codes(fake, CUSTOM, "oA", 6) == [0] * 6
        fake.interacted("oB", "payment")
        assert codes(fake, CUSTOM, "oB", 2) == [0, 45047]
    finally:
        fake.stop()
    default = FakeWeChat(enforce=True, now=clock).start()
    try:
        default.interacted("oA", "payment")
        assert codes(default, CUSTOM, "oA", 1) == [45015]
    finally:
        default.stop()


def test_unfollowed_users_are_refused_43004_for_customer_service_and_templates(fake: FakeWeChat):
    assert codes(fake, TEMPLATE, "oNever", 1) == [43004]
    fake.interacted("oA", "follow")
    assert codes(fake, TEMPLATE, "oA", 1) == [0]
    fake.unfollowed("oA")
    assert codes(fake, CUSTOM, "oA", 1) == [43004]
    assert codes(fake, TEMPLATE, "oA", 1) == [43004]


def test_one_consent_is_one_send_of_that_template(fake: FakeWeChat):
    fake.followed("oA")
    fake.consented("oA", "TPL-A")
    assert send(fake, BIZSEND, "oA", "TPL-B")["errcode"] == 43101  # consent is per template
    assert [send(fake, BIZSEND, "oA", "TPL-A")["errcode"] for _ in range(2)] == [0, 43101]
    fake.consented("oA", "TPL-A")
    fake.consented("oA", "TPL-A")
    fake.refused("oA", "TPL-A")
    assert send(fake, BIZSEND, "oA", "TPL-A")["errcode"] == 43101
    fake.consented("oMp", "TPL-A")  # the mini program's subscribe/send: consent, no follow needed
    assert [send(fake, MP_SUBSCRIBE, "oMp", "TPL-A")["errcode"] for _ in range(2)] == [0, 43101]


def test_accepted_template_and_bizsend_sends_owe_receipts_with_their_msgid(fake: FakeWeChat, clock: Clock):
    fake.followed("oA")
    fake.followed("oBlock")
    fake.blocked("oBlock")
    fake.consented("oA", "TPL-S")
    template = send(fake, TEMPLATE, "oA")["msgid"]
    blocked = send(fake, TEMPLATE, "oBlock")["msgid"]
    subscribe = send(fake, BIZSEND, "oA", "TPL-S")["msgid"]
    send(fake, TEMPLATE, "oNever")  # refused: owes nothing
    receipts = [parsed(xml) for xml in fake.receipts()]
    assert [(e.member_id, e.data["channel"], e.data["msg_id"], e.data["ok"]) for e in receipts] == [
        ("oA", "template", str(template), True),
        ("oBlock", "template", str(blocked), False),
        ("oA", "subscribe", str(subscribe), True),
    ]
    assert receipts[1].data["status"] == "failed:user block"
    assert int(receipts[0].occurred_at.timestamp()) == int(clock.at)
    assert fake.receipts() == []  # popped


def test_over_http_the_fake_learns_users_and_hands_out_receipts(fake: FakeWeChat):
    def control(path: str, body: dict | None = None) -> dict:
        return requests.post(f"{fake.url}/_fake/{path}", json=body or {}, timeout=5).json()

    assert control("interacted", {"openid": "oA", "action": "follow"}) == {"ok": True}
    assert control("consented", {"openid": "oA", "template_id": "TPL-S"}) == {"ok": True}
    assert codes(fake, CUSTOM, "oA", 1) == [0]
    assert send(fake, BIZSEND, "oA", "TPL-S")["errcode"] == 0
    assert control("interacted", {"openid": "oA", "action": "tap"})["errcode"] == 400
    [receipt] = control("receipts")["receipts"]
    assert parsed(receipt).data["channel"] == "subscribe"
    control("unfollowed", {"openid": "oA"})
    assert codes(fake, CUSTOM, "oA", 1) == [43004]
    assert control("refusals") == {"refusals": {"43004": {CUSTOM: 1}}}
    assert control("config", {"enforce": False})["enforce"] is False
    assert codes(fake, CUSTOM, "oA", 1) == [0]


def test_without_enforce_every_send_is_accepted_and_owes_nothing():
    fake = FakeWeChat().start()
    try:
        assert codes(fake, CUSTOM, "oA", 6) == [0] * 6
        assert codes(fake, TEMPLATE, "oA", 1) == [0]
        assert fake.receipts() == [] and fake.refusals() == {}
    finally:
        fake.stop()
