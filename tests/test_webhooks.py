"""Each webhook through chalice.test.Client, with moto: what WeChat, WeCom and the POS see,
and what is stored (or, for rejected input, not stored)."""

import json
from datetime import timedelta

import pytest

from chalicelib.clock import SHANGHAI
from chalicelib.metrics import read
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto
from chalicelib.state.models import Coupon, EventRecord, Member, OutboxMessage
from siyu.local import callbacks
from tests.helpers import ADMIN, send


def unix(clock) -> int:
    return int(clock.now().timestamp())


def follow(client, aws, clock, openid="oNew1", key="qrscene_st=S001&ch=poster", **kwargs):
    xml = callbacks.oa_event(openid, "subscribe", unix(clock), key)
    return send(client, callbacks.oa_post(aws, xml, clock.now(), **kwargs))


def reply_text(aws, response) -> str:
    envelope = xmlsafe.parse(response.body, 65536)
    crypto = MessageCrypto(aws.wechat_token, aws.wechat_aes_key, aws.wechat_app_id)
    crypto.check_signature(envelope["MsgSignature"], str(envelope["TimeStamp"]), envelope["Nonce"], envelope["Encrypt"])
    inner = xmlsafe.parse(crypto.decrypt(envelope["Encrypt"]).encode(), 65536)
    assert inner["MsgType"] == "text" and inner["ToUserName"] in ("oNew1", "oNew2", "oBack")
    return inner["Content"]


def nothing_stored() -> bool:
    return not list(EventRecord.scan()) and not list(Member.scan()) and not list(Coupon.scan())


def coupons_of(member_id: str) -> list[Coupon]:
    return list(Coupon.by_member.query(member_id))


# --- official account -------------------------------------------------------------------


def test_url_verification_echoes_echostr(client, aws, clock):
    response = send(client, callbacks.oa_verify(aws, "echo-123", clock.now()))
    assert response.status_code == 200 and response.body == b"echo-123"


def test_url_verification_with_a_wrong_signature_is_forbidden(client, aws, clock):
    request = callbacks.oa_verify(aws, "echo-123", clock.now())
    response = client.http.get(request.path.replace("signature=", "signature=0"))
    assert response.status_code == 403


def test_new_follower_in_safe_mode_gets_an_encrypted_welcome_and_one_coupon(client, aws, clock):
    response = follow(client, aws, clock)
    assert response.status_code == 200
    text = reply_text(aws, response)
    [coupon] = coupons_of("oNew1")
    assert coupon.value_fen == 990 and coupon.min_spend_fen == 0 and coupon.cause == "welcome"
    assert coupon.code in text and "9.9元" in text
    member = Member.get("oNew1")
    assert (member.store_id, member.channel, member.subscribed) == ("S001", "poster", "yes")
    assert member.first_seen == clock.now() and member.last_active == clock.now()


def test_a_retry_of_the_same_delivery_gets_the_same_reply_and_no_second_coupon(client, aws, clock):
    xml = callbacks.oa_event("oNew1", "subscribe", unix(clock), "")
    first = send(client, callbacks.oa_post(aws, xml, clock.now()))
    clock.advance(timedelta(seconds=5))
    retry = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert reply_text(aws, first) == reply_text(aws, retry)
    assert len(coupons_of("oNew1")) == 1
    assert EventRecord.get(f"oa:evt:{unix(clock) - 5}-oNew1--subscribe").status == "done"


def test_unfollow_and_refollow_never_issue_a_second_welcome_coupon(client, aws, clock):
    follow(client, aws, clock, openid="oBack")
    clock.advance(timedelta(days=3))
    send(client, callbacks.oa_post(aws, callbacks.oa_event("oBack", "unsubscribe", unix(clock)), clock.now()))
    assert Member.get("oBack").subscribed == "no"
    clock.advance(timedelta(days=3))
    again = follow(client, aws, clock, openid="oBack", key="")
    assert "已经领过" in reply_text(aws, again)
    assert len(coupons_of("oBack")) == 1
    assert Member.get("oBack").subscribed == "yes"


def test_plain_mode_is_refused_unless_enabled(client, aws, clock, monkeypatch):
    response = follow(client, aws, clock, safe=False)
    assert response.status_code == 403 and b"plain mode" in response.body
    assert nothing_stored()
    monkeypatch.setenv("SIYU_WECHAT_ALLOW_PLAIN", "true")
    response = follow(client, aws, clock, safe=False)
    assert response.status_code == 200
    assert "9.9元" in xmlsafe.parse(response.body, 65536)["Content"]


def test_wrong_signature_is_forbidden_and_stores_nothing(client, aws, clock):
    request = callbacks.oa_post(aws, callbacks.oa_event("oNew1", "subscribe", unix(clock)), clock.now())
    response = client.http.post(
        request.path.replace("msg_signature=", "msg_signature=f"), body=request.body, headers=request.headers
    )
    assert response.status_code == 403 and nothing_stored()


def test_stale_timestamp_is_forbidden(client, aws, clock):
    request = callbacks.oa_post(aws, callbacks.oa_event("oNew1", "subscribe", unix(clock)), clock.now())
    clock.advance(timedelta(seconds=301))
    response = send(client, request)
    assert response.status_code == 403 and b"window" in response.body and nothing_stored()


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Encrypt>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
        b"<xml><Encrypt>" + b"A" * 70000 + b"</Encrypt></xml>",
    ],
    ids=["malformed", "entity", "oversized"],
)
def test_malformed_entity_and_oversized_bodies_are_bad_requests(client, aws, clock, body):
    request = callbacks.oa_post(aws, callbacks.oa_event("oNew1", "subscribe", unix(clock)), clock.now())
    response = client.http.post(request.path, body=body, headers=request.headers)
    assert response.status_code == 400 and nothing_stored()


def test_a_payload_for_another_app_id_is_a_bad_request(client, aws, clock, monkeypatch):
    request = callbacks.oa_post(aws, callbacks.oa_event("oNew1", "subscribe", unix(clock)), clock.now())
    monkeypatch.setenv("SIYU_WECHAT_APP_ID", "wxAnotherAccount")
    response = send(client, request)
    assert response.status_code == 400 and b"receive id" in response.body and nothing_stored()


def test_unknown_event_types_get_success_and_are_recorded(client, aws, clock):
    xml = callbacks.oa_event("oNew1", "some_future_event", unix(clock))
    response = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert response.status_code == 200 and response.body == b"success"
    [record] = list(EventRecord.scan())
    assert record.kind == "unknown" and record.status == "done" and record.expires is not None


def test_a_text_message_moves_last_active_but_issues_nothing(client, aws, clock):
    follow(client, aws, clock)
    clock.advance(timedelta(days=2))
    xml = callbacks.oa_text("oNew1", "你好", unix(clock), 42)
    response = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert response.body == b"success"
    assert Member.get("oNew1").last_active == clock.now() and len(coupons_of("oNew1")) == 1


def test_a_late_event_does_not_move_last_active_back(client, aws, clock):
    follow(client, aws, clock)
    late = clock.now() - timedelta(minutes=3)
    xml = callbacks.oa_event("oNew1", "CLICK", int(late.timestamp()), "menu")
    send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert Member.get("oNew1").last_active == clock.now()


def test_an_unexpected_failure_answers_503_writes_nothing_and_the_retry_completes_once(client, aws, clock, monkeypatch):
    from chalicelib.store import db

    real_commit = db.commit
    calls = {"n": 0}

    def failing_once(writes, cause):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected")  # the worker dies at its one commit
        return real_commit(writes, cause)

    monkeypatch.setattr(db, "commit", failing_once)
    xml = callbacks.oa_event("oNew1", "subscribe", unix(clock), "")
    first = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert first.status_code == 503
    assert coupons_of("oNew1") == [] and list(Member.scan()) == []  # nothing of the event is half applied
    [kept] = list(EventRecord.scan())
    assert kept.status == "failed"  # kept for the redrive timer, should WeChat stop retrying
    retry = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert retry.status_code == 200 and "9.9元" in reply_text(aws, retry)
    assert len(coupons_of("oNew1")) == 1 and EventRecord.get(kept.event_id).status == "done"


def test_redrive_finishes_an_event_whose_retries_never_came(client, aws, clock, monkeypatch):
    from chalicelib import jobs
    from chalicelib.store import db

    real_commit = db.commit

    def down(writes, cause):
        if not cause.startswith("failed#"):
            raise RuntimeError("down")
        return real_commit(writes, cause)

    monkeypatch.setattr(db, "commit", down)
    follow(client, aws, clock)
    assert coupons_of("oNew1") == []
    monkeypatch.setattr(db, "commit", real_commit)
    clock.advance(timedelta(minutes=5))
    assert jobs.redrive_stalled_events() == 1
    assert len(coupons_of("oNew1")) == 1
    assert jobs.redrive_stalled_events() == 0


# --- WeCom --------------------------------------------------------------------------------


def test_wecom_url_verification_returns_the_decrypted_echo(client, aws, clock):
    response = send(client, callbacks.wecom_verify(aws, "5927782489442352469", clock.now()))
    assert response.status_code == 200 and response.body == b"5927782489442352469"


def test_new_group_member_gets_one_coupon_and_a_queued_welcome(client, aws, clock):
    xml = callbacks.wecom_group_join(aws.wecom_corp_id, "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", ["wmA", "wmB"], unix(clock))
    response = send(client, callbacks.wecom_post(aws, xml, clock.now()))
    assert response.status_code == 200 and response.body == b"success"
    for member_id in ("wmA", "wmB"):
        assert len(coupons_of(member_id)) == 1
        member = Member.get(member_id)
        assert member.store_id == "S001" and member.groups == {"wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"}
        ask, message = sorted(OutboxMessage.by_member.query(member_id), key=lambda m: m.message_key)
        assert ask.message_key == f"identity#unionid#{member_id}" and ask.channel == "identity"
        # the welcome waits for WeChat's answer on who the member is (docs/identity.md)
        assert message.status == "deferred" and message.channel == "wecom_customer" and "9.9元" in message.text
    # Leaving and joining again: no second gift.
    clock.advance(timedelta(days=1))
    send(client, callbacks.wecom_post(aws, xml.replace(str(unix(clock) - 86400), str(unix(clock))), clock.now()))
    assert len(coupons_of("wmA")) == 1


def test_wecom_with_a_wrong_signature_is_forbidden(client, aws, clock):
    request = callbacks.wecom_post(
        aws, callbacks.wecom_group_join(aws.wecom_corp_id, "c", ["wmA"], unix(clock)), clock.now()
    )
    response = client.http.post(
        request.path.replace("msg_signature=", "msg_signature=0"), body=request.body, headers=request.headers
    )
    assert response.status_code == 403 and nothing_stored()


# --- orders -------------------------------------------------------------------------------


def order(aws, clock, payload):
    return callbacks.order_post(
        aws, {"openid": "oNew1", "store_id": "S001", "at": clock.now().isoformat(), **payload}, clock.now()
    )


def test_a_redeemed_welcome_coupon_shows_as_redeemed(client, aws, clock):
    follow(client, aws, clock)
    [coupon] = coupons_of("oNew1")
    clock.advance(timedelta(days=1))
    response = send(
        client, order(aws, clock, {"type": "coupon_redeemed", "coupon_code": coupon.code, "order_id": "O-9"})
    )
    assert response.status_code == 200 and response.json_body["duplicate"] is False
    view = client.http.get("/admin/members/oNew1", headers=ADMIN).json_body
    assert view["coupons"][0]["status"] == "redeemed"
    assert view["last_active"] == clock.now().isoformat()


def test_an_order_paid_with_a_coupon_redeems_it_once(client, aws, clock):
    follow(client, aws, clock)
    [coupon] = coupons_of("oNew1")
    clock.advance(timedelta(days=1))
    codes = [coupon.code, "SYNOSUCHCODE1"]  # an unknown code beside it is ignored
    paid = {"type": "order_paid", "order_id": "O-10", "amount_fen": 2600, "coupon_codes": codes}
    assert send(client, order(aws, clock, paid)).status_code == 200
    assert send(client, order(aws, clock, paid)).json_body["duplicate"] is True
    redeemed = Coupon.get(coupon.code)
    assert (redeemed.status, redeemed.redeemed_order) == ("redeemed", "O-10")
    day = clock.now().astimezone(SHANGHAI).date()
    assert read.window("S001", day, day)["coupons_redeemed:welcome"] == 1


def test_another_members_coupon_cannot_be_redeemed(client, aws, clock):
    follow(client, aws, clock)
    [coupon] = coupons_of("oNew1")
    request = callbacks.order_post(
        aws,
        {
            "type": "coupon_redeemed",
            "coupon_code": coupon.code,
            "openid": "oSomeoneElse",
            "at": clock.now().isoformat(),
        },
        clock.now(),
    )
    assert send(client, request).status_code == 200
    assert Coupon.get(coupon.code).status == "issued"


def test_a_bad_order_hmac_is_unauthorized_and_stores_nothing(client, aws, clock):
    request = order(aws, clock, {"type": "order_paid", "order_id": "O-1", "amount_fen": 100})
    response = client.http.post(request.path, body=request.body + b" ", headers=request.headers)
    assert response.status_code == 401 and nothing_stored()


def test_a_malformed_order_names_the_field(client, aws, clock):
    response = send(client, order(aws, clock, {"type": "order_paid", "order_id": "O-1", "amount_fen": "lots"}))
    assert response.status_code == 400 and "/amount_fen" in response.json_body["reason"] and nothing_stored()


def test_the_same_order_twice_is_one_event(client, aws, clock):
    payload = {"type": "order_paid", "order_id": "O-1", "amount_fen": 1200}
    first = send(client, order(aws, clock, payload))
    second = send(client, order(aws, clock, payload))
    assert (first.json_body["duplicate"], second.json_body["duplicate"]) == (False, True)


# --- admin --------------------------------------------------------------------------------


def test_admin_member_view_needs_the_token(client, aws, clock):
    follow(client, aws, clock)
    assert client.http.get("/admin/members/oNew1").status_code == 401
    wrong = client.http.get("/admin/members/oNew1", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    view = client.http.get("/admin/members/oNew1", headers=ADMIN).json_body
    assert view["coupons"][0]["value"] == "9.9" and view["coupons"][0]["status"] == "issued"
    assert view["subscribed"] is True and view["store_id"] == "S001"


def test_admin_is_closed_when_no_token_is_configured(client, aws, clock, monkeypatch):
    monkeypatch.setenv("SIYU_ADMIN_TOKEN", "")
    response = client.http.get("/admin/members/oNew1", headers={"Authorization": "Bearer "})
    assert response.status_code == 401


def test_admin_unknown_member_is_404(client, aws, clock):
    response = client.http.get("/admin/members/oNobody", headers=ADMIN)
    assert response.status_code == 404 and json.loads(response.body)["error"] == "not_found"


def test_an_expired_coupon_shows_as_expired(client, aws, clock):
    follow(client, aws, clock)
    clock.advance(timedelta(days=32))
    view = client.http.get("/admin/members/oNew1", headers=ADMIN).json_body
    assert view["coupons"][0]["status"] == "expired"


def test_a_refollow_after_redemption_leaves_the_redeemed_coupon_alone(client, aws, clock):
    follow(client, aws, clock)
    [coupon] = coupons_of("oNew1")
    send(client, order(aws, clock, {"type": "coupon_redeemed", "coupon_code": coupon.code}))
    clock.advance(timedelta(days=1))
    send(client, callbacks.oa_post(aws, callbacks.oa_event("oNew1", "unsubscribe", unix(clock)), clock.now()))
    clock.advance(timedelta(days=1))
    follow(client, aws, clock, key="")
    [after] = coupons_of("oNew1")
    assert after.status == "redeemed" and after.issued_at == coupon.issued_at


def test_a_production_stage_without_its_secrets_refuses_work_instead_of_using_public_defaults(aws, clock, monkeypatch):
    from chalice.test import Client

    from app import app

    monkeypatch.delenv("SIYU_COUPON_SECRET")
    with Client(app, stage_name="prod") as prod:  # the prod stage's config sets SIYU_STAGE=prod
        response = follow(prod, aws, clock)
    assert response.status_code == 503 and b"SIYU_COUPON_SECRET" in response.body
    assert nothing_stored()
