"""Channel requests and the platform's payload limits, without any network."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.delivery import channels, discipline
from chalicelib.rules.models import GroupSlot, MessagingRule, Template

TEMPLATE = Template(
    channel="template",
    template_id="T1",
    fields={"thing1": "{title}", "character_string2": "{code}"},
    url="https://example.com/x",
)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_template_request_carries_client_msg_id_and_filled_fields():
    request = channels.build("template", "o1", None, {"title": "新人礼券", "code": "SYABC"}, TEMPLATE, "c" * 32)
    assert request.path == "/cgi-bin/message/template/send" and request.auth == "oa"
    assert request.body == {
        "touser": "o1",
        "template_id": "T1",
        "client_msg_id": "c" * 32,
        "url": "https://example.com/x",
        "data": {"thing1": {"value": "新人礼券"}, "character_string2": {"value": "SYABC"}},
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"title": "字" * 21, "code": "x"}, "thing1 has 21 characters, the limit is 20"),
        ({"title": "t", "code": "x" * 33}, "character_string2 has 33 characters"),
        ({"title": "", "code": "x"}, "thing1 would be empty"),
    ],
)
def test_template_fields_over_the_limit_are_refused_before_sending(payload, message):
    with pytest.raises(channels.PayloadInvalid, match=message):
        channels.build("template", "o1", None, payload, TEMPLATE, "id")


def test_robot_markdown_and_image_follow_the_robot_limits():
    markdown = channels.build("robot", "ops", "**红色预警**", {"robot": "markdown"}, None, "id")
    assert markdown.body == {"msgtype": "markdown", "markdown": {"content": "**红色预警**"}}
    with pytest.raises(channels.PayloadInvalid, match="4097 bytes"):
        channels.build("robot", "ops", "x" * 4097, {"robot": "markdown"}, None, "id")
    png = b"\x89PNG fake image bytes"
    image = channels.build(
        "robot", "ops", None, {"robot": "image", "image_base64": base64.b64encode(png).decode()}, None, "id"
    )
    assert image.body["image"]["md5"] == hashlib.md5(png).hexdigest()  # of the raw bytes, not the base64


def test_customer_service_text_is_limited_in_bytes_not_characters():
    channels.build("custom", "o1", "茶" * 682, {}, None, "id")  # 2046 bytes
    with pytest.raises(channels.PayloadInvalid, match="2049 bytes"):
        channels.build("custom", "o1", "茶" * 683, {}, None, "id")


def test_client_msg_id_is_stable_and_32_characters():
    assert channels.client_msg_id("welcome#o1") == channels.client_msg_id("welcome#o1")
    assert len(channels.client_msg_id("welcome#o1")) == 32
    assert channels.client_msg_id("welcome#o1") != channels.client_msg_id("welcome#o2")


def judge(now: datetime, category: str = "service", channel: str = "template") -> discipline.Verdict:
    return discipline.judge(
        key="k",
        category=category,
        channel=channel,
        now=now,
        zone=SHANGHAI,
        rules=MessagingRule(),
        expires_at=None,
        subscribed=True,
        blocked=False,
    )


def test_quiet_hours_wrap_midnight_and_promotions_also_skip_business_hours():
    night = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 00:00 Shanghai
    noon = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 Shanghai
    deferred = judge(night)
    assert deferred.action == "defer" and deferred.until.astimezone(SHANGHAI).hour == 8
    promo = judge(noon, "promo")
    assert promo.action == "defer" and promo.until.astimezone(SHANGHAI).hour == 21  # after business hours
    assert judge(noon).action == "send"
    assert judge(night, "alert", "robot").action == "send"


def test_backoff_doubles_up_to_the_limit_with_jitter():
    assert [discipline.backoff(n, 2, 60, 0.999).total_seconds() for n in (1, 2, 3, 10)] == pytest.approx(
        [2, 4, 8, 60], rel=0.01
    )
    assert discipline.backoff(3, 2, 60, 0.0) == timedelta(seconds=4)


def test_group_slots_name_the_current_slot_or_the_next_start():
    slots = [
        GroupSlot(name="morning", start="08:00", end="10:00"),
        GroupSlot(name="evening", start="21:00", end="22:00"),
    ]
    slot, _ = discipline.group_slot(slots, datetime(2026, 11, 23, 1, 0, tzinfo=UTC), SHANGHAI)  # 09:00
    assert slot.name == "morning"
    slot, start = discipline.group_slot(slots, datetime(2026, 11, 23, 14, 30, tzinfo=UTC), SHANGHAI)  # 22:30
    assert slot is None and start == datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)
