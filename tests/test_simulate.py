"""``siyu simulate``: a small chain lived through the real endpoints keeps every invariant, and the
same seed gives the same result."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

import pytest

from siyu import cli
from siyu.simulate import summary
from siyu.simulate.driver import Simulation


@pytest.fixture(scope="module")
def small():
    return Simulation(2, 40, 9, 11, date(2026, 10, 19), progress=False).run()


def test_a_small_simulation_keeps_every_invariant(small):
    failed = {name: check["detail"] for name, check in small["invariants"].items() if not check["ok"]}
    assert failed == {}
    identity = small["identity"]
    assert small["members"]["arrived"] == identity["persons"] == 40
    assert identity["platform_ids"] > 40 and identity["merges"] > 0  # some used two or three channels
    assert identity["members"] < identity["platform_ids"]
    assert small["events_sent"]["order"] > 20 and small["http"] == {"200": sum(small["http"].values())}
    assert small["coupons_redeemed"].get("welcome", 0) > 0  # members read their codes and used them
    assert small["till"]["redeemed"] > 0 and small["till"].get("void done", 0) > 0  # the tills asked siyu
    assert small["till"].get("member looked up", 0) > 0  # a member showed her code
    assert small["messages_by_state"].get("sent", 0) > 0 and sum(small["wechat_calls"].values()) > 0
    assert "私域周报" in small["digest"]


def test_the_fake_wechat_held_siyu_to_the_platform_and_its_receipts_settled_delivery(small):
    assert small["events_sent"]["popup"] > 0  # followers answered subscribe popups
    calls = small["wechat_calls"]
    receipted = calls["/cgi-bin/message/template/send"] + calls.get("/cgi-bin/message/subscribe/bizsend", 0)
    assert small["receipts_posted"] == receipted > 0  # each template and subscribe send has its receipt
    recall = small["delivery"]["recall"]
    assert set(recall["channels"]) <= {"template", "subscribe"} and recall["delivered"] > 0  # by WeChat's receipts
    assert all(row["intended"] >= row["sent"] >= row["delivered"] for row in small["delivery"].values())
    assert "identity" not in json.dumps(small["delivery"]) and "digest" not in small["delivery"]  # to members only
    assert "delivery per kind" in summary.render(small)


def message(cause: str, status: str, channel: str = "custom", sent_channel: str | None = None, **more):
    fields = {"member_id": "oA", "category": "service", "reason": None, "delivery": None, **more}
    return SimpleNamespace(cause=cause, status=status, channel=channel, sent_channel=sent_channel, **fields)


def test_delivery_counts_receipts_for_template_and_subscribe_and_acceptance_elsewhere():
    rows = summary.delivery(
        [
            message("birthday", "sent", sent_channel="template", delivery="success"),
            message("birthday", "sent", sent_channel="template", delivery="failed:user block"),
            message("birthday", "sent", sent_channel="subscribe"),  # no receipt yet
            message("birthday", "sent", sent_channel="custom"),
            message("birthday", "dropped", reason="45015: outside the customer-service window, no template"),
            message("birthday", "deferred"),
            message("welcome", "dropped", reason="merged: the person has a welcome gift already"),
            message("digest", "sent", channel="robot", member_id="robot/ops", sent_channel="robot"),
        ]
    )
    assert rows == {
        "birthday": {
            "intended": 6,
            "sent": 4,
            "delivered": 2,
            "channels": {"custom": 1, "subscribe": 1, "template": 2},
            "dropped": {"45015: outside the customer-service window, no template": 1},
            "other": {"receipt awaited": 1, "receipt failed:user block": 1, "waiting": 1},
            "rate": 0.3333,
            "withdrawn": 0,
        },
        "welcome": {  # withdrawn by a merge: not a message the member should have had
            "intended": 0,
            "sent": 0,
            "delivered": 0,
            "channels": {},
            "dropped": {},
            "other": {},
            "rate": None,
            "withdrawn": 1,
        },
    }


def test_a_window_drop_fails_only_for_a_kind_that_has_a_fallback():
    from chalicelib.rules.models import MessagingRule

    none = MessagingRule()
    closed = "customer-service window closed and the rule names no template"
    dropped = [message("tier", "dropped", reason=closed), message("points", "dropped", reason=closed)]
    assert summary._no_window_drops(dropped, none)["ok"]  # no plans, nothing sent elsewhere
    elsewhere = [*dropped, message("points", "sent", sent_channel="template")]
    assert "{'points': 1}" in summary._no_window_drops(elsewhere, none)["detail"]
    assert not summary._no_window_drops(elsewhere, none)["ok"]
    planned = MessagingRule.model_validate(
        {
            "kinds": {"tier": {"channels": ["custom", "template"], "template": "t", "title": "会员等级"}},
            "templates": {"t": {"channel": "template", "template_id": "T", "fields": {"thing1": "{kind}"}}},
        }
    )
    assert not summary._no_window_drops(dropped, planned)["ok"]
    capped = [message("tier", "dropped", reason="frequency cap reached")]
    assert summary._no_window_drops(capped, planned)["ok"]  # not a window drop
    every = "no channel reaches the member now (custom: customer-service window closed; template: blocked)"
    assert summary._no_window_drops([message("tier", "dropped", reason=every)], planned)["ok"]


def test_the_groups_lived_the_content_calendar_and_a_too_small_run_leaves_its_experiment_out(small):
    assert small["calendar"] == {"evening": 2 * 9, "morning": 2 * 9}  # two groups, nine days
    assert small["wechat_calls"]["/cgi-bin/externalcontact/add_msg_template"] >= 9 * 2  # the mornings' mass messages
    assert small["experiment"] == {"ran": False, "why": "too few members for the experiment's sample size"}
    assert "experiment sim_offer_test: not run" in summary.render(small)


def test_the_experiments_truth_is_the_campaigns_effect_on_the_arm_members_it_made_convert():
    from datetime import datetime, timedelta

    from siyu.simulate import experiment, world

    chain = world.stores(1, 3)
    start = datetime(2026, 10, 19, tzinfo=world.ZONE)
    person = world.members(1, chain, start, 10, 3)[0]
    exposed = start + timedelta(days=5)
    effect = experiment.Effect(3)
    effect.ordered(person, exposed + timedelta(days=1), by_campaign=True)
    assert effect.made_convert(person, exposed)  # the campaign's order was her only one in the window
    effect.ordered(person, exposed + timedelta(days=2), by_campaign=False)
    assert not effect.made_convert(person, exposed)  # she would have converted anyway
    assert not experiment.Effect(3).made_convert(person, exposed)


def test_the_same_seed_gives_the_same_result(small):
    again = Simulation(2, 40, 9, 11, date(2026, 10, 19), progress=False).run()
    assert json.dumps(again, sort_keys=True) == json.dumps(small, sort_keys=True)


def test_the_summary_names_each_invariant_and_the_digest_comes_first(small):
    text = summary.render(small)
    assert text.startswith("## 最近一期周报")
    for name in small["invariants"]:
        assert f"ok   {name}" in text


def test_bad_arguments_are_refused_before_anything_starts(capsys):
    assert cli.main(["simulate", "--members", "0"]) == 1
    assert "--members must be between" in capsys.readouterr().err
    assert cli.main(["simulate", "--start", "someday"]) == 1
