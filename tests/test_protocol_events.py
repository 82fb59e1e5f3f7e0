"""Wire documents → domain events (canned callbacks under tests/events/)."""

from pathlib import Path

import pytest

from chalicelib.errors import BadRequest
from chalicelib.events import Event, Kind
from chalicelib.protocol import official_account, work, xmlsafe
from chalicelib.protocol.scene import build_scene, parse_scene

EVENTS = Path(__file__).parent / "events"


def load(name: str) -> dict:
    return xmlsafe.parse((EVENTS / name).read_bytes(), 65536)


def test_follow_through_a_store_poster_qr_carries_store_channel_and_inviter():
    event = official_account.to_event(load("oa_subscribe_qr.xml"))
    assert event.kind is Kind.FOLLOWED
    assert (event.member_id, event.store_id, event.channel, event.inviter) == (
        "oNewFollower01",
        "S001",
        "poster",
        "oInviter0001",
    )


def test_scan_by_an_existing_follower_keeps_the_scene_opaque():
    event = official_account.to_event(load("oa_scan.xml"))
    assert event.kind is Kind.SCANNED and event.channel == "qr:123123" and event.store_id is None


def test_template_delivery_reads_msgid_with_capital_d_and_failure_status():
    event = official_account.to_event(load("oa_template_finish.xml"))
    assert event.kind is Kind.TEMPLATE_DELIVERY
    assert event.data == {"channel": "template", "msg_id": "200163836", "status": "failed:user block", "ok": False}


def test_consent_popup_with_several_templates():
    event = official_account.to_event(load("oa_popup_two.xml"))
    assert event.data["items"] == [
        {"template_id": "tplA", "status": "accept"},
        {"template_id": "tplB", "status": "reject"},
    ]


def test_text_message_dedupes_by_msgid():
    fields = load("oa_text.xml")
    event = official_account.to_event(fields)
    assert event.kind is Kind.MESSAGED and event.data["content"] == "签到"
    assert event.event_id == "oa:msg:24381234567890123-1795399200-oMember01"


def test_events_dedupe_by_time_user_key_and_name():
    base = {"FromUserName": "o1", "CreateTime": "100", "MsgType": "event"}
    click = official_account.to_event({**base, "Event": "CLICK", "EventKey": "menu_a"})
    other = official_account.to_event({**base, "Event": "CLICK", "EventKey": "menu_b"})
    assert click.event_id != other.event_id
    assert click == official_account.to_event({**base, "Event": "CLICK", "EventKey": "menu_a"})


def test_unknown_event_types_are_kept_as_unknown():
    event = official_account.to_event(
        {"FromUserName": "o1", "CreateTime": "1", "MsgType": "event", "Event": "some_future_event"}
    )
    assert event.kind is Kind.UNKNOWN and event.data == {"event": "some_future_event"}


@pytest.mark.parametrize(
    "fields",
    [
        {"CreateTime": "1", "MsgType": "event"},
        {"FromUserName": "o", "CreateTime": "x", "MsgType": "text"},
        {"FromUserName": "o", "CreateTime": "1"},
    ],
)
def test_missing_or_broken_required_fields_are_bad_requests(fields):
    with pytest.raises(BadRequest):
        official_account.to_event(fields)


def test_wecom_contact_added_parses_state_as_scene():
    [event] = work.to_events(load("wecom_add_contact.xml"))
    assert event.kind is Kind.CONTACT_ADDED and event.member_id == "wmExternal0001"
    assert (event.store_id, event.channel) == ("S002", "counter")
    assert event.data["staff"] == "zhangsan"


def test_wecom_customer_deleting_staff_is_contact_removed_by_customer():
    [event] = work.to_events(load("wecom_del_follow_user.xml"))
    assert event.kind is Kind.CONTACT_REMOVED and event.data["by"] == "customer"


def test_wecom_group_leave_names_the_member_and_group():
    [event] = work.to_events(load("wecom_group_leave.xml"))
    assert event.kind is Kind.LEFT_GROUP and event.member_id == "wmExternal0001"
    assert event.group_id == "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA" and event.data["scene"] == "0"


def test_wecom_group_join_without_member_list_is_recorded_but_names_nobody():
    [event] = work.to_events(load("wecom_group_join_no_list.xml"))
    assert event.kind is Kind.GROUP_CHANGED and event.member_id is None and event.data["count"] == "2"


def test_event_json_round_trip():
    event = official_account.to_event(load("oa_subscribe_qr.xml"))
    assert Event.from_json(event.to_json()) == event


def test_scene_strings_round_trip_and_respect_the_64_char_limit():
    scene = build_scene(store_id="S001", channel="poster", inviter="o" * 28)
    assert parse_scene("qrscene_" + scene, subscribe=True).inviter == "o" * 28
    with pytest.raises(ValueError):
        build_scene(store_id="S" * 30, channel="c" * 30, inviter="o" * 28)
    assert parse_scene("", subscribe=True).channel is None
