"""The findings of an independent, hostile review of siyu (issue 14), one test per claim:
each failed on the code the review saw and passes now."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.clock import SHANGHAI
from chalicelib.events import robot_recipient
from chalicelib.metrics import read
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto
from chalicelib.state.models import Coupon, EventRecord, Member, OutboxMessage
from siyu.local import callbacks
from tests.helpers import ADMIN, pos, send


def unix(clock) -> int:
    return int(clock.now().timestamp())


def follow(client, aws, clock, openid: str = "oNew1", **extra: str):
    xml = callbacks.oa_event(openid, "subscribe", unix(clock), "qrscene_st=S001&ch=poster", **extra)
    return send(client, callbacks.oa_post(aws, xml, clock.now()))


def welcome_code(openid: str) -> str:
    [coupon] = list(Coupon.by_member.query(openid))
    return coupon.code


def redeemed_today(clock) -> int:
    day = clock.now().astimezone(SHANGHAI).date()
    return read.window("S001", day, day).get("coupons_redeemed", 0)


# --- 1. a processed follow answered 503 forever ----------------------------------------------


def hostile_follow(aws, clock, xml: str):
    return callbacks.oa_post(aws, xml, clock.now())


def test_a_follow_with_two_to_user_names_is_refused_before_anything_is_written(client, aws, clock):
    xml = callbacks.oa_event("oTwice", "subscribe", unix(clock), "")
    doubled = xml.replace("</xml>", "<ToUserName><![CDATA[gh_other]]></ToUserName></xml>")
    response = send(client, hostile_follow(aws, clock, doubled))
    assert response.status_code == 400 and "ToUserName" in response.json_body["reason"]
    assert list(EventRecord.scan()) == [] and list(Coupon.scan()) == [] and list(Member.scan()) == []


def test_a_follow_with_a_nested_to_user_name_is_refused_before_anything_is_written(client, aws, clock):
    xml = callbacks.oa_event("oNested", "subscribe", unix(clock), "")
    nested = xml.replace("<ToUserName><![CDATA[gh_siyu_local]]></ToUserName>", "<ToUserName><a>gh</a></ToUserName>")
    assert nested != xml
    response = send(client, hostile_follow(aws, clock, nested))
    assert response.status_code == 400 and list(EventRecord.scan()) == [] and list(Coupon.scan()) == []


def test_every_retry_of_a_well_formed_follow_gets_the_welcome_reply(client, aws, clock):
    xml = callbacks.oa_event("oRetry", "subscribe", unix(clock), "")
    answers = [send(client, hostile_follow(aws, clock, xml)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    crypto = MessageCrypto(aws.wechat_token, aws.wechat_aes_key, aws.wechat_app_id)
    texts = {
        xmlsafe.parse(crypto.decrypt(xmlsafe.parse(a.body, 65536)["Encrypt"]).encode(), 65536)["Content"]
        for a in answers
    }
    assert len(texts) == 1 and welcome_code("oRetry") in texts.pop()


# --- 2. a foreign redeemer burns the owner's redemption --------------------------------------


def test_a_refused_redemption_by_another_member_does_not_block_the_owners(client, aws, clock):
    follow(client, aws, clock, "oOwner")
    code = welcome_code("oOwner")
    clock.advance(timedelta(hours=1))
    foreign = pos(client, aws, clock, "coupon_redeemed", "oThief", coupon_code=code, store_id="S001")
    assert foreign.status_code == 200
    assert foreign.json_body["coupons"] == [{"code": code, "redeemed": False, "reason": "not_this_member"}]
    owner = pos(client, aws, clock, "coupon_redeemed", "oOwner", coupon_code=code, store_id="S001", order_id="O-1")
    assert owner.json_body["duplicate"] is False
    assert owner.json_body["coupons"] == [{"code": code, "redeemed": True}]
    assert Coupon.get(code).status == "redeemed" and redeemed_today(clock) == 1


# --- 3. one coupon redeemed twice ------------------------------------------------------------


def paid(client, aws, clock, order_id: str, code: str, at: datetime):
    body = {"type": "order_paid", "openid": "oOwner", "store_id": "S001", "at": at.isoformat()}
    body |= {"order_id": order_id, "amount_fen": 3000, "coupon_codes": [code]}
    return send(client, callbacks.order_post(aws, body, clock.now()))


def test_two_orders_at_the_same_instant_redeem_a_coupon_once_and_the_second_is_told(client, aws, clock):
    follow(client, aws, clock, "oOwner")
    code = welcome_code("oOwner")
    clock.advance(timedelta(hours=1))
    at = clock.now()
    first = paid(client, aws, clock, "O-A", code, at)
    second = paid(client, aws, clock, "O-B", code, at)
    assert first.json_body["coupons"] == [{"code": code, "redeemed": True}]
    assert second.json_body["coupons"] == [{"code": code, "redeemed": False, "reason": "used", "used_by_order": "O-A"}]
    assert paid(client, aws, clock, "O-A", code, at).json_body["coupons"][0]["redeemed"] is True  # a retry: the same
    assert Coupon.get(code).redeemed_order == "O-A" and redeemed_today(clock) == 1


def test_five_orders_at_once_with_one_coupon_redeem_it_once(live):
    import requests

    from chalicelib import settings

    s = settings.current()
    now = datetime.now(UTC)
    follow_xml = callbacks.oa_event("oFive", "subscribe", int(now.timestamp()), "qrscene_st=S001")
    request = callbacks.oa_post(s, follow_xml, now)
    assert requests.post(live.url + request.path, data=request.body, headers=request.headers).status_code == 200
    code = welcome_code("oFive")

    def order(n: int) -> dict:
        body = {"type": "order_paid", "openid": "oFive", "store_id": "S001", "at": now.isoformat()}
        body |= {"order_id": f"O-{n}", "amount_fen": 3000, "coupon_codes": [code]}
        signed = callbacks.order_post(s, body, now)
        return requests.post(live.url + signed.path, data=signed.body, headers=signed.headers).json()

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(order, range(5)))
    assert sum(a["coupons"][0]["redeemed"] for a in answers) == 1
    day = now.astimezone(SHANGHAI).date()
    assert read.window("S001", day, day).get("coupons_redeemed", 0) == 1


# --- 4. a malformed consent event looks like a broken rule -----------------------------------


def test_a_consent_list_item_with_two_template_ids_is_bad_input_and_alerts_nobody(client, aws, clock, siyu_logs):
    item = "<List><TemplateId>tA</TemplateId><TemplateId>tB</TemplateId><SubscribeStatusString>accept"
    item += "</SubscribeStatusString></List>"
    xml = callbacks.oa_event("oConsent", "subscribe_msg_popup_event", unix(clock))
    xml = xml.replace("</xml>", f"<SubscribeMsgPopupEvent>{item}</SubscribeMsgPopupEvent></xml>")
    response = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert response.status_code == 400 and "TemplateId" in response.json_body["reason"]
    assert list(OutboxMessage.scan()) == [] and list(EventRecord.scan()) == []
    assert "rules.duty_skipped" not in siyu_logs.getvalue()


# --- 5. PII in a log line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fields", "secret"),
    [
        ("profile_updated", {"update_id": "U1", "birthday": "1990-02-30"}, "1990-02-30"),
        ("profile_updated", {"update_id": "U2", "birthday": "13800138000"}, "13800138000"),
        ("profile_updated", {"update_id": "U3", "birthday": "02-31"}, "02-31"),
        ("points_redeemed", {"redemption_id": "R1", "points": 1, "reason": "电话13800138000" * 4}, "13800138000"),
    ],
)
def test_a_refused_personal_field_is_named_never_quoted(client, aws, clock, siyu_logs, kind, fields, secret):
    response = pos(client, aws, clock, kind, "oPrivate", **fields)
    assert response.status_code == 400
    field = next(name for name in fields if name in ("birthday", "reason"))
    assert f"/{field}" in response.json_body["reason"]
    assert secret not in response.json_body["reason"] and secret not in siyu_logs.getvalue()
    assert '"request.rejected"' in siyu_logs.getvalue()


# --- 6. over-long admin ids answer 503 -------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_over_long_member_id_is_refused_at_the_edge_without_a_dynamodb_call(client, aws, method):
    from siyu.metering import Meter

    with Meter() as meter:
        response = getattr(client.http, method.lower())("/admin/members/" + "o" * 3000, headers=ADMIN)
    assert response.status_code == 400 and "member id" in response.json_body["reason"]
    assert sum(meter.calls.values()) == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_over_long_ticket_id_is_refused_at_the_edge_without_a_dynamodb_call(client, aws, method):
    from siyu.metering import Meter

    headers = {**ADMIN, "Content-Type": "application/json"}
    body = json.dumps({"action": "respond", "by": "店长"}) if method == "POST" else None
    with Meter() as meter:
        path = "/admin/tickets/" + "R" * 3000
        response = client.http.post(path, headers=headers, body=body) if body else client.http.get(path, headers=ADMIN)
    assert response.status_code == 400 and "ticket id" in response.json_body["reason"]
    assert sum(meter.calls.values()) == 0


# --- 7. "ops" is a member id -----------------------------------------------------------------


def test_internal_alerts_live_where_no_member_id_can_reach(client, aws, clock):
    # An ops alert (a delivery that failed for good, a broken rule …) is queued for the ops robot.
    from chalicelib.delivery import sender
    from chalicelib.runtime import context

    sender._alert_once(context(), "alert#test#1", "【测试】预警", clock.now(), "v0")
    [alert] = list(OutboxMessage.scan())
    assert alert.member_id == robot_recipient("ops")
    # A till reporting an order for "ops" is a member called ops: it sees and erases nothing of ops.
    assert pos(client, aws, clock, "order_paid", "ops", order_id="O-ops", amount_fen=100).status_code == 200
    view = client.http.get("/admin/members/ops", headers=ADMIN).json_body
    assert view["messages"] == []
    assert client.http.delete("/admin/members/ops", headers=ADMIN).status_code == 200
    assert OutboxMessage.get("alert#test#1").status == "pending"
    # And the robot's own recipient is not a member id anyone can ask for.
    assert client.http.get("/admin/members/robot%2Fops", headers=ADMIN).status_code in (400, 404)
    for openid in ("robot/ops", "robot%2Fops"):
        refused = pos(client, aws, clock, "order_paid", openid, order_id="O-r", amount_fen=100)
        assert refused.status_code == 400


def test_a_scene_naming_an_unknown_store_or_a_malformed_inviter_keeps_the_follow_and_drops_them(client, aws, clock):
    xml = callbacks.oa_event("oScene", "subscribe", unix(clock), "qrscene_st=S999&ch=poster&inv=robot/ops")
    response = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert response.status_code == 200
    member = Member.get("oScene")
    assert (member.store_id, member.inviter, member.channel) == (None, None, "poster")
    assert len(list(Coupon.by_member.query("oScene"))) == 1


def test_an_inviter_is_recorded_only_if_they_are_a_member(client, aws, clock):
    follow(client, aws, clock, "oInviter")
    for openid, inviter in (("oInvited", "oInviter"), ("oClaimed", "oNobody")):
        xml = callbacks.oa_event(openid, "subscribe", unix(clock), f"qrscene_st=S001&inv={inviter}")
        assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200
    assert Member.get("oInvited").inviter == "oInviter" and Member.get("oClaimed").inviter is None


# --- also reported ----------------------------------------------------------------------------


def test_a_members_text_quoting_doctype_reaches_siyu_as_text(client, aws, clock):
    xml = callbacks.oa_text("oQuote", "这个网页开头是 <!DOCTYPE html>，还有 <!ENTITY x>", unix(clock), 771)
    response = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert response.status_code == 200
    assert EventRecord.get(f"oa:msg:771-{unix(clock)}-oQuote").status == "done"
