"""The content calendar (issue 21, item 3): each store group gets one morning and one evening push a
day, never in business hours (003 §2.2.1), on the weekday's theme (003 §2.2.2) or the holiday's
greeting (002 §3.4); the content is picked stably; a slot without content alerts its store the day
before; parallel timer runs record each push once."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from chalicelib import runtime
from chalicelib.campaigns import calendar, content, pushes
from chalicelib.clock import SHANGHAI, FixedClock
from chalicelib.delivery import sender
from chalicelib.events import robot_recipient
from chalicelib.state.models import OutboxMessage
from tests.helpers import use_rules
from tests.test_rules_check import edit, good, messages

RULES = Path(__file__).resolve().parent.parent / "rules"
GROUPS = {"S001": ["wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "wrS001second"], "S002": ["wrS002only"]}
SPRING_WEEK = date(2027, 2, 1)  # Monday; Saturday 2027-02-06 is 春节
GROUP_PATH = "/cgi-bin/externalcontact/add_msg_template"
ROBOT_PATH = "/cgi-bin/webhook/send"


def three_groups(data: dict) -> None:
    for store in data["stores"]:
        store["groups"] = GROUPS.get(store["id"], [])


def owners(data: dict) -> None:
    data["calendar"]["owners"] = {group: f"owner-{group[-4:]}" for groups in GROUPS.values() for group in groups}


def calendar_rules(tmp_path, monkeypatch):
    """The shipped rules with two groups in S001 and one in S002, each with its owner; ``use``
    edits campaigns.json further (also for tests/test_campaigns.py)."""

    def use(change=None):
        def campaigns(data: dict) -> None:
            owners(data)
            if change is not None:
                change(data)

        use_rules(tmp_path, monkeypatch, {"stores.json": three_groups, "campaigns.json": campaigns})
        monkeypatch.setenv("SIYU_ROBOT_KEYS", "S001=robot-key-s001,S002=robot-key-s002")  # 20 a minute each
        return runtime.context().rules()

    return use


@pytest.fixture
def rules_dir(tmp_path, monkeypatch):
    return calendar_rules(tmp_path, monkeypatch)


def local(day: date, hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return datetime.combine(day, time(int(hours), int(minutes)), SHANGHAI)


def calendar_messages() -> list[OutboxMessage]:
    return [m for m in OutboxMessage.scan() if m.message_key.startswith("calendar#")]


def test_a_calendar_week_gives_each_group_one_morning_and_one_evening_push_none_in_business_hours(
    aws, clock, wechat, rules_dir
):
    rules = rules_dir()
    clock.set(local(SPRING_WEEK, "00:00") - timedelta(days=1))
    while clock.now() < local(SPRING_WEEK, "00:00") + timedelta(days=7):  # the timer, every 6 hours
        pushes.run(runtime.context())
        clock.advance(timedelta(hours=6))
    recorded = calendar_messages()
    days = {m.message_key.split("#")[2] for m in recorded}
    assert days >= {(SPRING_WEEK + timedelta(days=n)).isoformat() for n in range(7)}
    days_of_week = {(SPRING_WEEK + timedelta(days=n)).isoformat() for n in range(7)}
    week = [m for m in recorded if m.message_key.split("#")[2] in days_of_week]
    per_group_day = Counter((m.message_key.split("#")[1], m.message_key.split("#")[2], m.channel) for m in week)
    groups = [g for gs in GROUPS.values() for g in gs]
    for n in range(7):
        day = (SPRING_WEEK + timedelta(days=n)).isoformat()
        for group in groups:
            assert per_group_day[(group, day, "wecom_group")] == 1, (group, day)  # the morning mass message
        for store in GROUPS:
            staff = sum(per_group_day[(g, day, "robot")] for g in GROUPS[store])
            assert staff == len(GROUPS[store]), (store, day)  # the evening post, one per group
    assert len(week) == 7 * len(groups) * 2
    ctx = runtime.context()
    for message in sorted(week, key=lambda m: m.not_before):  # the sender, at each push's time
        clock.set(message.not_before)
        assert sender.deliver(ctx, message.message_key).status == "sent", message.message_key
    banned = rules.messaging.promo_banned_hours
    for message in week:
        at = message.not_before.astimezone(SHANGHAI)
        minute = at.hour * 60 + at.minute
        assert not banned.contains(minute), message.message_key
        slot = next(s for s in rules.messaging.group_slots if s.contains(minute))
        assert slot.name == message.message_key.split("#")[3]
    mass = wechat.sent(GROUP_PATH)
    assert len(mass) == 7 * len(groups)
    assert Counter(r["body"]["chat_id_list"][0] for r in mass) == dict.fromkeys(groups, 7)
    assert {r["body"]["sender"] for r in mass} == {f"owner-{g[-4:]}" for g in groups}
    spring = [r for r in mass if "新春快乐" in r["body"]["text"]["content"]]
    assert len(spring) == len(groups)  # Saturday 2027-02-06: the 春节 greeting, not the weekend theme
    robot = [r["body"]["text"]["content"] for r in wechat.sent(ROBOT_PATH)]
    assert len(robot) == 7 * len(groups) and all("请于21:00发到客户群" in text for text in robot)


def test_a_holiday_greeting_replaces_the_weekday_theme(aws, clock, rules_dir):
    rules = rules_dir()
    saturday, lantern = date(2027, 2, 6), date(2027, 2, 20)
    assert calendar.theme_of(rules.campaigns, saturday - timedelta(days=5)) == ("brand_story", None)
    assert calendar.theme_of(rules.campaigns, saturday) == ("holiday", "春节")
    [morning, *_] = [p for p in calendar.pushes_on(rules, saturday) if p.slot.name == "morning"]
    assert content.content_for(rules.campaigns, morning).text.startswith("新春快乐")  # the day's own piece
    [push, *_] = calendar.pushes_on(rules, lantern)  # 元宵: no piece of its own, the holiday pool
    said = content.content_for(rules.campaigns, push)
    assert push.holiday == "元宵" and said.source.startswith("pool:holiday#") and "节日快乐" in said.text


def test_the_pool_rotates_week_by_week_and_picks_the_same_piece_on_a_rerun(aws, clock, rules_dir):
    rules = rules_dir()
    mondays = [date(2026, 11, 30) + timedelta(weeks=n) for n in range(4)]
    picked = []
    for monday in mondays:
        morning = next(p for p in calendar.pushes_on(rules, monday) if p.slot.name == "morning")
        picked.append(content.content_for(rules.campaigns, morning).text)
        assert content.content_for(rules.campaigns, morning).text == picked[-1]
    assert len(set(picked)) == 2 and picked[0] != picked[1]  # the brand-story pool has two pieces


def test_a_slot_without_content_alerts_its_store_the_day_before_once(aws, clock, rules_dir):
    def no_offer_pieces(data: dict) -> None:
        data["calendar"]["pieces"] = [p for p in data["calendar"]["pieces"] if p.get("theme") != "offer"]

    rules_dir(no_offer_pieces)
    wednesday = date(2026, 12, 2)  # Thursday is the offer day
    clock.set(local(wednesday, "16:59"))
    assert pushes.run(runtime.context()).alerts == 0
    clock.set(local(wednesday, "17:00"))
    first = pushes.run(runtime.context())
    assert first.alerts == 2  # S001 and S002, one alert each naming its groups' slots
    clock.advance(timedelta(minutes=15))
    assert pushes.run(runtime.context()).alerts == 0
    alerts = {m.member_id: m for m in OutboxMessage.scan() if m.message_key.startswith("calendar-missing#")}
    assert set(alerts) == {robot_recipient("S001"), robot_recipient("S002")}
    s001 = alerts[robot_recipient("S001")].text
    assert s001.count("【内容缺失】") == 4 and "2026-12-03" in s001 and "优惠活动" in s001
    assert set(first.queued) == {m.message_key for m in alerts.values()}
    thursday = [m for m in calendar_messages() if m.message_key.split("#")[2] == "2026-12-03"]
    assert thursday == []  # nothing to say: no push recorded for the day


def test_parallel_timer_runs_record_one_push_per_group_slot_and_day(live, rules_dir):
    """On DynamoDB Local (real concurrency): four timer runs at once record each push once."""
    clock = FixedClock(local(date(2026, 12, 2), "07:00"))
    previous = runtime.use_clock(clock)
    try:
        rules_dir()
        ctx = runtime.context()
        with ThreadPoolExecutor(4) as pool:
            runs = list(pool.map(lambda _: pushes.run(ctx), range(4)))
        recorded = calendar_messages()
        assert len(recorded) == len({m.message_key for m in recorded}) == 2 * 3  # today's two slots, three groups
        assert all(r.missing == 0 for r in runs) and sum(r.pushes for r in runs) >= 6
        clock.advance(timedelta(minutes=15))  # the next run (same instant: DynamoDB's token replays the first)
        assert pushes.run(ctx).pushes == 0 and len(calendar_messages()) == 6
    finally:
        runtime.use_clock(previous)


def test_a_scheduled_push_waits_for_its_time_and_expires_with_its_slot(aws, clock, wechat, rules_dir):
    rules_dir()
    day = date(2026, 12, 2)
    clock.set(local(day, "07:00"))
    ctx = runtime.context()
    pushes.run(ctx)
    key = f"calendar#wrS002only#{day.isoformat()}#morning"
    assert OutboxMessage.get(key).status == "deferred" and OutboxMessage.get(key).reason == "scheduled"
    assert sender.deliver(ctx, key).reason == "not due yet"
    clock.set(local(day, "10:00"))  # the owner's morning slot is over: the push is not sent late
    outcome = sender.deliver(ctx, key)
    assert outcome.status == "dropped" and outcome.reason.startswith("expired")
    assert wechat.sent(GROUP_PATH) == []


def test_rules_check_refuses_calendar_slots_in_business_hours_or_outside_their_group_slot():
    def slots(data: dict) -> None:
        data["calendar"]["slots"] = [
            {"name": "morning", "at": "11:00", "channel": "wecom_group"},
            {"name": "lunch", "at": "12:00", "channel": "staff_post"},
        ]

    found = messages(edit(good(), "campaigns.json", slots))
    assert any("/calendar/slots/0/at: 11:00 is outside the morning group slot (08:00-10:00)" in m for m in found)
    assert any("/calendar/slots/0/at: 11:00 is in business hours (10:00-21:00): no group pushes" in m for m in found)
    assert any("/calendar/slots/1/name: slot lunch is not a group slot of messaging.json" in m for m in found)
    assert all(m.startswith("campaigns.json:") for m in found)


def test_rules_check_refuses_unknown_groups_stores_themes_and_a_group_without_owner():
    def wrong(data: dict) -> None:
        data["calendar"]["owners"] = {"wrNoSuchGroup": "li"}
        data["calendar"]["pieces"].append({"theme": "gossip", "text": "八卦", "stores": ["S999"]})

    found = messages(edit(good(), "campaigns.json", wrong))
    assert any("/calendar/owners/wrNoSuchGroup: group wrNoSuchGroup is not in stores.json" in m for m in found)
    assert any("theme gossip is no weekday's theme nor the holiday's" in m for m in found)
    assert any("/stores/0: store S999 is not in stores.json" in m for m in found)
    assert any(m.startswith("stores.json:") and "group wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA has no owner" in m for m in found)
