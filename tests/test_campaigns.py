"""Campaigns (issue 21, item 2): a segment campaign sends each member once, through the outbox's
caps and what the member can receive; its reach is previewed before it starts and reported after;
a customer group gets one mass message a day (docs/wechat.md §4.5), the owner's confirmation is
recorded; rules check refuses a campaign naming what does not exist."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from chalicelib import runtime
from chalicelib.campaigns import confirm, pushes, report
from chalicelib.clock import FixedClock
from chalicelib.delivery import sender
from chalicelib.state.models import LoyaltyRecord, Member, OutboxMessage, Shared
from chalicelib.store import keys
from siyu import cli
from tests.test_calendar import GROUP_PATH, GROUPS, calendar_rules, local
from tests.test_rules_check import edit, good, messages

DAY = date(2026, 12, 2)
TEMPLATE_PATH = "/cgi-bin/message/template/send"
SEGMENT = {"S001": ["oA", "oB", "oC", "oD"], "S002": ["oB", "oE"]}  # oB is in both stores' segment
WINTER = {
    "name": "winter_tea",
    "title": "冬日暖饮",
    "audience": {"segment": "lapsed"},
    "text": "冬日暖饮上新，回来喝一杯吧。",
    "link": "https://example.com/siyu/winter",
    "schedule": {"at": "2026-12-02T09:00:00+08:00"},
}


@pytest.fixture
def rules_dir(tmp_path, monkeypatch):
    return calendar_rules(tmp_path, monkeypatch)


def find(segment: str, store_id: str) -> list[str]:
    assert segment == "lapsed"
    return SEGMENT.get(store_id, [])


def with_campaigns(*campaigns: dict):
    def change(data: dict) -> None:
        data["campaigns"] = list(campaigns)

    return change


def members() -> None:
    for member_id, store in (("oA", "S001"), ("oB", "S001"), ("oD", "S001"), ("oE", "S002")):
        Member(member_id, subscribed="yes", store_id=store, ids={f"oa/{member_id}"}).save()
    Member("oC", subscribed="no", store_id="S001", ids={"oa/oC"}).save()  # unfollowed: no channel reaches her
    day, week = f"{DAY:%Y-%m-%d}", f"{DAY:%G-W%V}"
    Shared(keys.COUNTERS, keys.cap("oD", "promo", day), tally=1).save()  # had today's promotion
    Shared(keys.COUNTERS, keys.cap("oD", "promo", week), tally=1).save()


def test_a_segment_campaign_is_previewed_then_sends_each_member_once_within_caps_and_consent(
    aws, clock, wechat, rules_dir
):
    rules = rules_dir(with_campaigns(WINTER))
    members()
    clock.set(local(DAY, "08:00"))
    preview = report.preview(rules, "winter_tea", clock.now(), find)
    assert preview["stores"]["S001"] == {"in_segment": 4, "in_rollout": 4, "reachable": 3, "capped": 1, "reach": 2}
    assert preview["stores"]["S002"] == {"in_segment": 2, "in_rollout": 1, "reachable": 1, "capped": 0, "reach": 1}
    assert preview["reach"] == 3
    assert pushes.run(runtime.context(), find).campaign_messages == 0  # not yet: from half an hour before
    clock.set(local(DAY, "08:40"))
    ctx = runtime.context()
    assert pushes.run(ctx, find).campaign_messages == 5  # oB once
    clock.advance(timedelta(minutes=15))
    assert pushes.run(ctx, find).campaign_messages == 0
    queued = {m.member_id: m for m in OutboxMessage.scan() if m.message_key.startswith("campaign#winter_tea#")}
    assert sorted(queued) == ["oA", "oB", "oC", "oD", "oE"]
    assert all(m.status == "deferred" and m.category == "promo" and m.cause == "campaign" for m in queued.values())
    clock.set(local(DAY, "09:00"))
    outcomes = {m: sender.deliver(ctx, queued[m].message_key) for m in queued}
    assert {m: o.status for m, o in outcomes.items()} == {
        "oA": "sent",
        "oB": "sent",
        "oC": "dropped",
        "oD": "dropped",
        "oE": "sent",
    }
    assert outcomes["oD"].reason == "frequency cap reached"
    assert "no longer follows" in outcomes["oC"].reason
    sent = {r["body"]["touser"]: r["body"]["data"] for r in wechat.sent(TEMPLATE_PATH)}
    assert set(sent) == {"oA", "oB", "oE"}
    assert sent["oA"]["thing1"]["value"] == "会员活动" and sent["oA"]["thing2"]["value"] == "冬日暖饮"
    result = report.report(rules, "winter_tea", clock.now())
    assert (result["queued"], result["sent"], result["dropped"]) == (5, 3, 2)
    assert result["dropped_by_reason"]["frequency cap reached"] == 1


def test_a_group_gets_one_mass_message_a_day_and_a_second_campaign_is_refused(aws, clock, wechat, rules_dir):
    evening = {
        "name": "late_offer",
        "title": "晚间特惠",
        "audience": {"groups": "all"},
        "text": "今晚9点半前下单享8折。",
        "schedule": {"at": "2026-12-02T21:10:00+08:00"},
    }
    rules_dir(with_campaigns(evening))
    ctx = runtime.context()
    clock.set(local(DAY, "07:00"))
    pushes.run(ctx)
    clock.set(local(DAY, "08:30"))
    mornings = [m for m in OutboxMessage.scan() if m.message_key.endswith(f"#{DAY.isoformat()}#morning")]
    assert [sender.deliver(ctx, m.message_key).status for m in mornings] == ["sent"] * 3
    clock.set(local(DAY, "20:45"))
    assert pushes.run(ctx).campaign_messages == 3
    clock.set(local(DAY, "21:10"))
    late = [m for m in OutboxMessage.scan() if m.message_key.startswith("campaign#late_offer#")]
    outcomes = [sender.deliver(ctx, m.message_key) for m in late]
    assert {o.status for o in outcomes} == {"dropped"}
    assert all(o.reason.startswith("the group's mass message of today is used") for o in outcomes)
    assert len(wechat.sent(GROUP_PATH)) == 3  # the mornings only
    assert report.report(ctx.rules(), "late_offer", clock.now())["dropped"] == 3


def test_the_owners_confirmation_is_recorded_and_reported(aws, clock, wechat, rules_dir):
    takeover = {
        "name": "anniversary",
        "title": "周年庆",
        "audience": {"groups": "all"},
        "text": "周年庆来啦！今天全场饮品买一送一。",
        "schedule": {"calendar": {"date": DAY.isoformat(), "slot": "morning"}},
    }
    rules = rules_dir(with_campaigns(takeover))
    ctx = runtime.context()
    clock.set(local(DAY, "07:00"))
    pushes.run(ctx)
    clock.set(local(DAY, "08:30"))
    mornings = [m for m in OutboxMessage.scan() if m.message_key.endswith(f"#{DAY.isoformat()}#morning")]
    assert {m.text for m in mornings} == {takeover["text"]}  # the campaign takes the calendar slot
    for m in mornings:
        sender.deliver(ctx, m.message_key)
    assert report.report(rules, "anniversary", clock.now())["confirmed"] == 0
    clock.set(local(DAY, "09:00"))
    assert confirm.run(ctx) == 0  # the owners have not sent it yet
    assert wechat.confirm_group_messages() == 3
    clock.set(local(DAY, "09:30"))
    assert confirm.run(ctx) == 3
    assert confirm.run(ctx) == 0  # recorded once
    assert {OutboxMessage.get(m.message_key).delivery for m in mornings} == {"confirmed"}
    result = report.report(rules, "anniversary", clock.now())
    assert (result["queued"], result["sent"], result["confirmed"], result["delivered"]) == (3, 3, 3, 3)


def test_siyu_campaigns_calendar_shows_the_week_and_what_is_missing(aws, clock, rules_dir, capsys):
    def no_member_stories(data: dict) -> None:
        data["calendar"]["pieces"] = [p for p in data["calendar"]["pieces"] if p.get("theme") != "member_story"]

    rules_dir(no_member_stories)
    assert cli.main(["campaigns", "calendar", "--week", "2026-W49", "--store", "S002"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2026-W49")
    assert "2026-11-30 08:30 morning  wecom_group S002   wrS002only" in out
    assert out.count("MISSING") == 2  # Wednesday's two slots
    assert "14 pushes, 2 without content" in out
    assert cli.main(["campaigns", "calendar", "--week", "2026-W49", "--strict"]) == 1
    capsys.readouterr()
    assert cli.main(["campaigns", "preview", "nope"]) == 1
    assert "no campaign nope in campaigns.json" in capsys.readouterr().err


def test_rules_check_refuses_campaigns_that_name_what_does_not_exist():
    def wrong(data: dict) -> None:
        data["campaigns"] = [
            WINTER | {"kind": "gossip", "stores": {"S999": "别处"}, "pilot_stores": ["S998"]},
            WINTER | {"name": "to_groups", "audience": {"groups": ["wrNoSuchGroup"]}},
            WINTER
            | {
                "name": "slot",
                "schedule": {"calendar": {"date": "2026-12-02", "slot": "noon"}},
                "audience": {"groups": "all"},
            },
        ]

    found = messages(edit(good(), "campaigns.json", wrong))
    assert any("/campaigns/0/kind: kind gossip has no channel plan in messaging.json /kinds" in m for m in found)
    assert any("/campaigns/0/stores/S999: store S999 is not in stores.json" in m for m in found)
    assert any("/campaigns/0/pilot_stores/0: store S998 is not in stores.json" in m for m in found)
    assert any("/campaigns/1/audience/groups/0: group wrNoSuchGroup is not in stores.json" in m for m in found)
    assert any("/campaigns/2/schedule/calendar/slot: slot noon is not a calendar slot" in m for m in found)
    assert all(m.startswith("campaigns.json:") for m in found)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"variants": {"b": "别的文案"}}, "variants need an experiment"),
        ({"schedule": {"calendar": {"date": "2026-12-02", "slot": "morning"}}}, "a calendar slot is a group push"),
        ({"audience": {"segment": "lapsed", "groups": "all"}}, "name either segment or groups"),
        ({"schedule": {"at": "2026-12-02T09:00:00+08:00", "weekly": {"weekday": "mon", "at": "09:00"}}}, "exactly one"),
    ],
)
def test_rules_check_refuses_a_campaign_that_contradicts_itself(change, says):
    found = messages(edit(good(), "campaigns.json", lambda data: data.update(campaigns=[WINTER | change])))
    assert any(m.startswith("campaigns.json:") and says in m for m in found), found


def test_rules_check_refuses_a_campaign_listed_twice():
    found = messages(edit(good(), "campaigns.json", lambda data: data.update(campaigns=[WINTER, WINTER])))
    assert any("campaign winter_tea is listed twice" in m for m in found)


def test_the_groups_of_the_test_rules_are_what_the_tests_assume():
    assert sum(len(g) for g in GROUPS.values()) == 3


def test_the_campaign_timers_are_wired_in_app_py(client, aws, clock, wechat, rules_dir):
    rules_dir()
    clock.set(local(DAY, "07:00"))
    tick = client.events.generate_cw_event("aws.events", "Scheduled Event", [], {})
    client.lambda_.invoke("run_campaigns", tick)
    assert len([m for m in OutboxMessage.scan() if m.message_key.startswith("calendar#")]) == 6
    for m in OutboxMessage.scan():
        clock.set(m.not_before)
        sender.deliver(runtime.context(), m.message_key)
    wechat.confirm_group_messages()
    client.lambda_.invoke("check_group_pushes", tick)
    confirmed = [m for m in OutboxMessage.scan() if m.delivery == "confirmed"]
    assert len(confirmed) == 3 and all(m.channel == "wecom_group" for m in confirmed)


def test_rules_check_refuses_a_group_campaign_to_a_group_without_owner():
    def ownerless(data: dict) -> None:
        data["calendar"]["owners"] = {}
        data["campaigns"] = [WINTER | {"audience": {"groups": "all"}}]

    found = messages(edit(good(), "campaigns.json", ownerless))
    assert any(
        "/campaigns/0/audience: group wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA has no owner in /calendar/owners" in m
        for m in found
    )


def test_parallel_runs_message_each_segment_member_once(live, rules_dir):
    """On DynamoDB Local (real concurrency): four timer runs at once, one message and one record each."""
    clock = FixedClock(local(DAY, "08:40"))
    previous = runtime.use_clock(clock)
    try:
        rules_dir(with_campaigns(WINTER))
        ctx = runtime.context()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: pushes.run(ctx, find), range(4)))
        queued = [m.member_id for m in OutboxMessage.scan() if m.message_key.startswith("campaign#winter_tea#")]
        assert sorted(queued) == ["oA", "oB", "oC", "oD", "oE"]
        records = [r.member_id for r in LoyaltyRecord.query(keys.campaign_scope("winter_tea"))]
        assert sorted(records) == sorted(queued)
    finally:
        runtime.use_clock(previous)
