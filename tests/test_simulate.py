"""``siyu simulate``: a small chain lived through the real endpoints keeps every invariant, and the
same seed gives the same result."""

from __future__ import annotations

import json
from datetime import date

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
