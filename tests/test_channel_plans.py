"""Every message reaches its member or ops know why (issue 18): each kind of member message has a
channel plan (rules/messaging.json ``kinds``), chosen at send time from what the member can receive
now, against a fake WeChat that holds siyu to the platform (its window, quotas and consent)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib import runtime
from chalicelib.clock import SHANGHAI
from chalicelib.delivery import sender
from chalicelib.metrics import kpis, read
from chalicelib.rules.kinds import KINDS
from chalicelib.state.models import Coupon, OutboxMessage, Shared
from chalicelib.store import keys
from siyu.local import callbacks
from tests.helpers import ADMIN, pos, send
from tests.test_precision_birthday import profile
from tests.test_rules_check import edit, good, messages

PATHS = {"template": "/cgi-bin/message/template/send", "custom": "/cgi-bin/message/custom/send"}
PATHS["subscribe"] = "/cgi-bin/message/subscribe/bizsend"
CAUSES = ("tier", "birthday", "referral")


@pytest.fixture
def platform(wechat, clock):
    """The fake WeChat on siyu's clock, enforcing the window, the quotas and consent."""
    wechat.configure(enforce=True, now=lambda: clock.now().timestamp())
    return wechat


def follower(client, aws, clock, platform, openid: str) -> None:
    """Follows (WeChat's 1-minute window after a follow then passes) and never writes."""
    platform.interacted(openid, "follow")
    xml = callbacks.oa_event(openid, "subscribe", int(clock.now().timestamp()), "qrscene_st=S001")
    assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200
    clock.advance(timedelta(minutes=5))


def becomes_silver_with_a_birthday(client, aws, clock, openid: str) -> None:
    """Three orders of 200 yuan (银卡: 500 yuan and 3 orders; the invite link unlocks at 200) and a
    birthday this month: a tier-up, a referral unlock and a birthday message."""
    for n in range(3):
        items = [{"sku": "T1", "category": "tea", "price_fen": 20_000}]
        fields = {"order_id": f"{openid}-{n}", "amount_fen": 20_000, "items": items, "store_id": "S001"}
        assert pos(client, aws, clock, "order_paid", openid, **fields).status_code == 200
    assert profile(client, aws, clock, openid, "1990-11-30").status_code == 200


def deliver_all(openid: str) -> dict[str, OutboxMessage]:
    ctx = runtime.context()
    found = {m.cause: m for m in OutboxMessage.by_member.query(openid) if m.cause in CAUSES}
    assert set(found) == set(CAUSES), found
    for message in found.values():
        sender.deliver(ctx, message.message_key)
        sender.deliver(ctx, message.message_key)  # a queue re-delivery: sent once all the same
    return {cause: OutboxMessage.get(m.message_key) for cause, m in found.items()}


def sent_to(platform, openid: str, channel: str) -> list[dict]:
    return [r for r in platform.sent(PATHS[channel]) if r["body"].get("touser") == openid]


def test_a_follower_who_never_wrote_gets_her_tier_birthday_and_referral_messages_by_template_once(
    client, aws, clock, platform
):
    follower(client, aws, clock, platform, "oQuiet")
    becomes_silver_with_a_birthday(client, aws, clock, "oQuiet")
    delivered = deliver_all("oQuiet")
    assert {cause: (m.status, m.sent_channel) for cause, m in delivered.items()} == {
        cause: ("sent", "template") for cause in CAUSES
    }
    templates = sent_to(platform, "oQuiet", "template")
    assert len(templates) == 3 and sent_to(platform, "oQuiet", "custom") == []  # each once, none into a closed window
    notice = next(r["body"] for r in templates if r["body"]["template_id"] == "TPL-MEMBER-NOTICE" and "等级" in str(r))
    assert notice["data"]["thing2"]["value"] == "当前等级：银卡"  # the kind's summary, with the message's words
    [coupon] = [c for c in Coupon.by_member.query("oQuiet") if c.cause == "birthday"]
    gift = next(r["body"] for r in templates if r["body"]["template_id"] == "TPL-COUPON-GIFT")
    assert gift["data"]["character_string3"]["value"] == coupon.code
    assert gift["data"]["thing2"]["value"] == "10元银卡生日券"  # {benefit}{title}
    for message in delivered.values():  # each duty passes only words its kind declares
        assert set(json.loads(message.payload or "{}")) <= KINDS[message.cause], message.cause


def test_after_a_consent_the_subscribe_message_goes_once_then_the_template(client, aws, clock, platform):
    follower(client, aws, clock, platform, "oYes")
    platform.consented("oYes", "SUB-MEMBER-NOTICE")
    popup = callbacks.oa_popup("oYes", [("SUB-MEMBER-NOTICE", "accept")], int(clock.now().timestamp()), scene=1)
    assert send(client, callbacks.oa_post(aws, popup, clock.now())).status_code == 200
    assert Shared.get(keys.COUNTERS, keys.consent("oYes", "SUB-MEMBER-NOTICE")).tally == 1
    becomes_silver_with_a_birthday(client, aws, clock, "oYes")
    delivered = deliver_all("oYes")
    channels = sorted(m.sent_channel or "" for cause, m in delivered.items() if cause in ("tier", "referral"))
    assert channels == ["subscribe", "template"]  # one consent, one subscribe message; the other by template
    assert len(sent_to(platform, "oYes", "subscribe")) == 1
    assert Shared.get(keys.COUNTERS, keys.consent("oYes", "SUB-MEMBER-NOTICE")).tally == 0


def test_the_member_view_shows_what_she_can_receive_now_and_her_unused_consents(client, aws, clock, platform):
    follower(client, aws, clock, platform, "oView")
    popup = callbacks.oa_popup("oView", [("SUB-MEMBER-NOTICE", "accept")], int(clock.now().timestamp()), scene=1)
    assert send(client, callbacks.oa_post(aws, popup, clock.now())).status_code == 200
    reach = client.http.get("/admin/members/oView", headers=ADMIN).json_body["reach"]
    assert reach["channels"] == {
        "custom": "customer-service window closed",
        "template": None,
        "wecom_customer": "not a WeCom contact",
    }
    assert reach["subscribe"]["member_notice_sub"] == {
        "template_id": "SUB-MEMBER-NOTICE",
        "consents": 1,
        "unreachable": None,
    }
    assert reach["subscribe"]["coupon_notice"]["unreachable"] == "no consent to this subscription message"
    assert reach["kinds"]["tier"] == "subscribe" and reach["kinds"]["welcome"] == "template"
    platform.interacted("oView", "message")
    text = callbacks.oa_text("oView", "在吗", int(clock.now().timestamp()), 7101)
    assert send(client, callbacks.oa_post(aws, text, clock.now())).status_code == 200
    reach = client.http.get("/admin/members/oView", headers=ADMIN).json_body["reach"]
    assert reach["service_window"]["open"] is True and reach["service_window"]["opened_by"] == "message"
    assert reach["kinds"]["tier"] == "custom"


def test_a_member_who_just_wrote_gets_the_customer_service_text(client, aws, clock, platform):
    follower(client, aws, clock, platform, "oChat")
    platform.interacted("oChat", "message")
    text = callbacks.oa_text("oChat", "你好", int(clock.now().timestamp()), 7001)
    assert send(client, callbacks.oa_post(aws, text, clock.now())).status_code == 200
    becomes_silver_with_a_birthday(client, aws, clock, "oChat")
    delivered = deliver_all("oChat")
    assert {m.sent_channel for m in delivered.values()} == {"custom"}
    texts = [r["body"]["text"]["content"] for r in sent_to(platform, "oChat", "custom")]
    assert len(texts) == 3 and any(t.startswith("恭喜升级为银卡会员") for t in texts)


def test_delivery_is_counted_intended_delivered_and_dropped_by_reason(client, aws, clock, platform):
    follower(client, aws, clock, platform, "oCount")
    becomes_silver_with_a_birthday(client, aws, clock, "oCount")
    platform.unfollowed("oCount")
    unfollow = callbacks.oa_event("oCount", "unsubscribe", int(clock.now().timestamp()))
    assert send(client, callbacks.oa_post(aws, unfollow, clock.now())).status_code == 200
    delivered = deliver_all("oCount")
    assert {m.status for m in delivered.values()} == {"dropped"}  # unfollowed, and no WeCom: nobody can reach her
    day = clock.now().astimezone(SHANGHAI).date()
    counts = read.window(keys.CHAIN, day, day)
    assert counts["messages_intended"] == 3 + counts["messages_intended:welcome"]  # its welcome was a reply
    assert counts["messages_dropped"] == counts["messages_dropped:unfollowed"] == 3
    assert kpis.delivery_rate(counts, {}).value is not None


def test_the_delivery_rate_compares_each_message_with_its_own_outcome(client, aws, clock, platform):
    """Intended and delivered count the same messages: the welcome reply, and the three template
    messages once WeChat's receipts say they arrived; a rate never above 100 %."""
    follower(client, aws, clock, platform, "oRate")
    becomes_silver_with_a_birthday(client, aws, clock, "oRate")
    day = clock.now().astimezone(SHANGHAI).date()
    queued = read.window(keys.CHAIN, day, day)
    assert queued["messages_intended"] == queued["messages_delivered"] == queued["messages_intended:welcome"] == 1
    deliver_all("oRate")
    sent = read.window(keys.CHAIN, day, day)
    assert (sent["messages_intended"], sent["messages_delivered"]) == (4, 1)  # the templates await their receipts
    for xml in platform.receipts():
        assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200
    counts = read.window(keys.CHAIN, day, day)
    assert (counts["messages_intended"], counts["messages_delivered"]) == (4, 4)
    assert kpis.delivery_rate(counts, {}).value == 1.0


def test_rules_check_refuses_a_kind_no_follower_can_receive_naming_file_line_and_pointer():
    def custom_only(data):
        data["kinds"]["tier"]["channels"] = ["custom"]

    def forgotten(data):
        del data["kinds"]["birthday"]

    found = messages(edit(edit(good(), "messaging.json", custom_only), "messaging.json", forgotten))
    assert any(
        m.startswith("messaging.json:") and "/kinds/tier/channels: no channel reaches a member who only follows" in m
        for m in found
    ), found
    assert any("/kinds: kind birthday has no channel plan" in m for m in found)
