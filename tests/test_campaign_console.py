"""Campaigns with their people (issue 21): a campaign tested by an experiment exposes each segment
member once, sends the arm its variant and the holdout nothing; rules check keeps an experiment on a
campaign it can count; the console's 活动与日历 page reads the week's calendar with each push's
state, the campaigns' reports and the segments' sizes, a store manager only their stores."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from chalicelib import runtime
from chalicelib.campaigns import pushes
from chalicelib.experiments import assign
from chalicelib.rules import loader
from chalicelib.state.models import LoyaltyRecord, Member, OutboxMessage
from chalicelib.store import keys
from tests.test_calendar import GROUPS, calendar_rules, local
from tests.test_campaigns import WINTER, with_campaigns
from tests.test_console import get, manager
from tests.test_rules_check import good, messages

DAY = date(2026, 12, 2)  # a Wednesday
PEOPLE = [f"oP{i:03d}" for i in range(40)]
TEST = {
    "title": "冬日暖饮文案",
    "campaign": "winter_tea",
    "arms": [{"name": "warm", "weight": 1}],
    "holdout_percent": 50,
    "metrics": ["conversion"],
    "base_rate": 20,
    "expected_lift": 25,
    "lift": "points",
    "starts_at": "2026-12-01T00:00:00+08:00",
    "ends_at": "2026-12-20T00:00:00+08:00",
    "conversion_days": 3,
    "expected_daily_exposures": 100,
}


@pytest.fixture
def rules_dir(tmp_path, monkeypatch):
    use = calendar_rules(tmp_path, monkeypatch)

    def with_experiment(campaign: dict, experiment: dict = TEST, pilot_stores: tuple[str, ...] = ()):
        use(with_campaigns())  # the calendar tests' groups and owners, no campaign yet
        tested = {"enabled": True, "pilot_stores": list(pilot_stores), "experiments": {"winter_copy": experiment}}
        edits = {"campaigns.json": {"enabled": True, "campaigns": [campaign]}, "experiments.json": tested}
        for name, edit in edits.items():  # on the files as the calendar tests left them
            path = tmp_path / "rules" / name
            path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")) | edit, ensure_ascii=False))
        loader.clear_cache()
        return runtime.context().rules()

    return with_experiment


def find(segment: str, store_id: str) -> list[str]:
    return PEOPLE if store_id == "S001" else []


def test_a_tested_campaign_sends_the_arm_its_variant_and_the_holdout_only_its_exposure_once(aws, clock, rules_dir):
    rules = rules_dir(WINTER | {"variants": {"warm": "天冷了，暖饮第二杯半价。"}})
    for member_id in PEOPLE:
        Member(member_id, subscribed="yes", store_id="S001", ids={f"oa/{member_id}"}).save()
    clock.set(local(DAY, "08:40"))
    ctx = runtime.context()
    with ThreadPoolExecutor(4) as pool:  # the timer fired twice at once, then again later
        list(pool.map(lambda _: pushes.run(ctx, find), range(2)))
    clock.advance(timedelta(minutes=15))
    pushes.run(ctx, find)
    arms = {m: assign.arm_of(rules, "winter_copy", m, clock.now()) for m in PEOPLE}
    assert set(Counter(arms.values())) == {"warm", "holdout"}
    exposures = {r.sk: r.status for r in LoyaltyRecord.query(keys.exposures("winter_copy"))}
    assert exposures == arms  # every member exposed once, in her group
    sent = {m.member_id: m.text for m in OutboxMessage.scan() if m.message_key.startswith("campaign#winter_tea#")}
    assert sorted(sent) == sorted(m for m, arm in arms.items() if arm == "warm")  # the holdout gets nothing
    assert all(text.startswith("天冷了") for text in sent.values())


def test_an_experiment_of_some_stores_gives_their_arm_members_the_variant_and_others_the_campaigns_text(
    aws, clock, rules_dir
):
    rules = rules_dir(WINTER | {"variants": {"warm": "天冷了，暖饮第二杯半价。"}}, pilot_stores=("S001",))
    others = [f"oQ{i:03d}" for i in range(10)]
    for member_id, store in [(m, "S001") for m in PEOPLE] + [(m, "S002") for m in others]:
        Member(member_id, subscribed="yes", store_id=store, ids={f"oa/{member_id}"}).save()
    clock.set(local(DAY, "08:40"))
    pushes.run(runtime.context(), lambda segment, store_id: PEOPLE if store_id == "S001" else others)
    exposed = {r.sk: r.status for r in LoyaltyRecord.query(keys.exposures("winter_copy"))}
    assert set(exposed) == set(PEOPLE)  # only the experiment's store
    sent = {m.member_id: m.text for m in OutboxMessage.scan() if m.message_key.startswith("campaign#winter_tea#")}
    warm = {m for m, arm in exposed.items() if arm == "warm"}
    assert warm and all(sent[m].startswith("天冷了") for m in warm)  # the arm's variant, as its exposure says
    assert set(sent) == warm | set(others) and all(sent[m].startswith("冬日暖饮上新") for m in others)
    assert rules.experiments.pilot_stores == ["S001"]


def test_an_experiment_needs_a_segment_campaign_and_variants_name_its_arms():
    groups = WINTER | {"audience": {"groups": "all"}}
    files = good()
    campaigns = json.loads(files["campaigns.json"])
    campaigns["calendar"]["owners"] = {g: "owner" for gs in GROUPS.values() for g in gs}
    campaigns["campaigns"] = [groups, WINTER | {"name": "spring_tea", "variants": {"cold": "春茶上新。"}}]
    experiments = json.loads(files["experiments.json"])
    experiments.update(
        {
            "enabled": True,
            "experiments": {"a": TEST, "b": TEST | {"campaign": "spring_tea"}, "c": TEST | {"campaign": "nope"}},
        }
    )
    found = messages(
        {
            **files,
            "campaigns.json": json.dumps(campaigns, ensure_ascii=False),
            "experiments.json": json.dumps(experiments, ensure_ascii=False),
        }
    )
    assert any("/experiments/a/campaign" in m and "sends to groups" in m for m in found), found
    assert any("/campaigns/1/variants/cold" in m and "not an arm of experiment b" in m for m in found), found
    assert any("/experiments/c/campaign" in m and "campaign nope is not in campaigns.json" in m for m in found), found


def test_the_console_shows_the_weeks_calendar_with_states_the_campaigns_and_the_segments(
    client, aws, clock, tmp_path, monkeypatch
):
    calendar_rules(tmp_path, monkeypatch)(with_campaigns(WINTER))
    clock.set(local(DAY, "07:00"))
    pushes.run(runtime.context())  # today's and tomorrow's morning pushes are recorded
    LoyaltyRecord(keys.segment("lapsed"), "S001#oA", member_id="oA").save()
    LoyaltyRecord(keys.segment("lapsed"), "S002#oE", member_id="oE").save()
    shown = get(client, "campaigns").json_body
    assert shown["week"] == "2026-W49" and shown["calendar_on"] and shown["missing"] == 0
    rows = shown["pushes"]
    assert len(rows) == 7 * 2 * 3  # seven days, two slots, three groups
    today = {(r["group"], r["slot"]): r["state"] for r in rows if r["day"] == DAY.isoformat()}
    assert today[(GROUPS["S001"][0], "morning")] == "deferred"  # recorded, waiting for its time
    assert {r["state"] for r in rows if r["day"] == "2026-11-30"} == {"planned"}  # Monday, before the timer ran
    assert [c["name"] for c in shown["campaigns"]] == ["winter_tea"] and shown["campaigns"][0]["active"]
    lapsed = next(s for s in shown["segments"] if s["name"] == "lapsed")
    assert lapsed["stores"]["S001"] == 1 and lapsed["stores"]["S002"] == 1
    mine = get(client, "campaigns?week=2026-12-09", manager("S002")).json_body
    assert mine["week"] == "2026-W50" and {r["store"] for r in mine["pushes"]} == {"S002"}
    assert mine["campaigns"] == [] and set(next(s for s in mine["segments"] if s["name"] == "lapsed")["stores"]) == {
        "S002"
    }
    bad = get(client, "campaigns?week=W99")
    assert bad.status_code == 400 and "week" in json.dumps(bad.json_body)
    assert get(client, "campaigns", {}).status_code == 401
