"""Experiments (issue 21 item 4; 002 §4.4): the statistics against published examples, the
rules check's refusal, stable assignment, exposure once, and the report recovering a known lift."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib import executor, stats
from chalicelib.experiments import assign, exposure, report
from chalicelib.rules import loader
from chalicelib.rules.check import check
from chalicelib.rules.models import HOLDOUT, Experiment, WelcomeRule
from chalicelib.state.models import LoyaltyRecord
from chalicelib.store import keys
from siyu import cli
from tests.helpers import pos

RULES = Path(__file__).resolve().parent.parent / "rules"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def experiment(**changes) -> dict:
    """A campaign experiment that fits its window: 20 % → 30 % needs 313 per group."""
    return {
        "title": "周四优惠推送",
        "campaign": "thursday_offer",
        "arms": [{"name": "offer", "weight": 1}],
        "holdout_percent": 50,
        "metrics": ["conversion", "redemption", "order_value"],
        "base_rate": 20,
        "expected_lift": 50,
        "minimum_effect": {"conversion": 2, "order_value": 1},
        "starts_at": "2026-11-01T00:00:00+08:00",
        "ends_at": "2026-12-01T00:00:00+08:00",
        "conversion_days": 7,
        "expected_daily_exposures": 100,
        **changes,
    }


THURSDAY_OFFER = {
    "name": "thursday_offer",
    "title": "周四优惠",
    "audience": {"segment": "active"},
    "text": "周四会员日，全场饮品9折。",
    "schedule": {"weekly": {"weekday": "thu", "at": "11:00"}},
}


def rule_files(experiments: dict | None = None, **file_changes) -> dict[str, str]:
    files = loader.read_dir(RULES)
    data = json.loads(files["experiments.json"])
    data.update({"enabled": True, "experiments": experiments if experiments is not None else {"t": experiment()}})
    data.update(file_changes)
    campaigns = json.loads(files["campaigns.json"])
    campaigns["campaigns"] = [THURSDAY_OFFER]  # the campaign the default experiment tests
    return {
        **files,
        "campaigns.json": json.dumps(campaigns, ensure_ascii=False, indent=2),
        "experiments.json": json.dumps(data, ensure_ascii=False, indent=2),
    }


def messages(files: dict[str, str]) -> list[str]:
    return [str(p) for p in check(files)[1]]


# --- the statistics ------------------------------------------------------------------------------


def test_sample_size_matches_zar_example_24_26():
    # Zar, Biostatistical Analysis, 4th ed. (1999), Example 24.26, p. 561: p1 = 0.45, p2 = 0.25,
    # α = 0.05 two-sided, power 0.90 → 127.2343 per group; n2 / n1 = 3 → n1 = 83.1527, n2 = 249.4581
    # (as printed by the Unistat manual's copy of the example: unistat.com/guide/sample-size-and-
    # power-two-proportions/). Fleiss, Tytun & Ury (1980) with the continuity correction.
    assert stats.sample_size(0.45, 0.25, power=0.90) == pytest.approx(127.2343, abs=1e-4)
    assert stats.sample_size(0.45, 0.25, power=0.90, ratio=3) == pytest.approx(83.1527, abs=1e-4)
    assert 3 * stats.sample_size(0.45, 0.25, power=0.90, ratio=3) == pytest.approx(249.4581, abs=1e-3)


def test_sample_size_refuses_rates_it_cannot_compare():
    for p1, p2 in ((0.2, 0.2), (0.0, 0.3), (0.2, 1.0)):
        with pytest.raises(ValueError):
            stats.sample_size(p1, p2)


def test_difference_of_proportions_matches_agrestis_aspirin_example():
    # Agresti, An Introduction to Categorical Data Analysis, 2nd ed. (2007), §2.2: the Physicians'
    # Health Study, myocardial infarction 189 / 11034 (placebo) vs 104 / 11037 (aspirin):
    # difference 0.0077, 95 % CI (0.005, 0.011); Pearson's X² = 25.01 (= z² of the pooled test).
    d = stats.proportions(189, 11034, 104, 11037)
    assert round(d.estimate, 4) == 0.0077
    assert (round(d.low, 3), round(d.high, 3)) == (0.005, 0.011)
    z = stats.NORMAL.inv_cdf(1 - d.p_value / 2)
    assert z * z == pytest.approx(25.01, abs=0.01)
    assert d.p_value < 1e-6


def test_no_difference_has_p_value_one_and_an_interval_around_zero():
    d = stats.proportions(30, 100, 30, 100)
    assert d.estimate == 0 and d.p_value == pytest.approx(1.0) and d.low < 0 < d.high


def test_means_use_welchs_standard_error():
    arm, base = [30.0, 32.0, 34.0, 36.0], [20.0, 30.0]
    d = stats.means(arm, base)
    se = (stats._mean_var(arm)[1] / 4 + stats._mean_var(base)[1] / 2) ** 0.5  # 20/12 + 50/2
    assert d.estimate == pytest.approx(8.0)
    assert d.high - d.estimate == pytest.approx(1.959964 * se, rel=1e-6)


def test_verdicts_say_significant_too_small_not_significant_or_too_few():
    big = stats.proportions(300, 1000, 200, 1000)  # +10 points, p ≪ 0.05
    small = stats.proportions(2100, 10000, 2000, 10000)  # +1 point, p ≈ 0.08
    smaller = stats.proportions(21000, 100000, 20000, 100000)  # +1 point, p ≪ 0.05
    assert stats.verdict(big, 0.02, enough=True) == "显著"
    assert stats.verdict(smaller, 0.02, enough=True) == "显著但影响太小"
    assert stats.verdict(small, 0.02, enough=True) == "不显著"
    assert stats.verdict(big, 0.02, enough=False) == "样本不足"


# --- the rules ---------------------------------------------------------------------------------


def test_the_plan_gives_members_per_group_and_days():
    plan = Experiment.model_validate(experiment()).plan()
    assert plan.per_group == {HOLDOUT: 313, "offer": 313}
    assert plan.fill_days == 7  # 313 of 50 a day per group
    assert plan.days_needed == 14 and plan.window_days == 30


def test_unequal_groups_need_more_of_the_small_one():
    plan = Experiment.model_validate(experiment(holdout_percent=25)).plan()
    assert plan.per_group[HOLDOUT] < plan.per_group["offer"] == round(plan.per_group["offer"])
    assert plan.per_group["offer"] / plan.per_group[HOLDOUT] == pytest.approx(3, rel=0.01)


def test_rules_check_refuses_an_experiment_that_cannot_reach_its_sample_and_says_how_long_it_needs():
    files = rule_files({"t": experiment(expected_daily_exposures=10)})
    found = [m for m in messages(files) if "/experiments/t/expected_daily_exposures" in m]
    assert len(found) == 1
    assert "needs holdout 313, offer 313 members (63 days at 10 exposures a day, then 7 days to convert)" in found[0]
    assert found[0].endswith("70 days; the window has 30")
    assert found[0].startswith("experiments.json:")
    assert messages(rule_files({"t": experiment()})) == []


def test_the_shipped_experiment_fits_its_window():
    assert messages(loader.read_dir(RULES)) == []
    assert messages(rule_files(json.loads(loader.read_dir(RULES)["experiments.json"])["experiments"])) == []


def test_a_rule_change_arm_must_make_a_valid_file():
    change = {"file": "welcome.json", "pointer": "/coupon/value_yuan", "values": {"offer": 900}}
    found = messages(rule_files({"t": experiment(campaign=None, rule_change=change)}))
    assert any(
        "/experiments/t/rule_change/values/offer: arm offer: welcome.json would be invalid: "
        "/coupon/value_yuan: must be at most 500 (is 900)" in m
        for m in found
    )
    change["file"] = "recall.json"  # its duty takes no member's version of the file: nothing would change
    found = messages(rule_files({"t": experiment(campaign=None, rule_change=change)}))
    assert any(
        "rule_change/file: an arm can change only a rule file of this set among welcome.json" in m for m in found
    )
    change["file"] = "welcome.json"
    change["pointer"] = "/coupon/value_yen"
    found = messages(rule_files({"t": experiment(campaign=None, rule_change=change)}))
    assert any("/coupon/value_yen is not a setting in welcome.json" in m for m in found)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"campaign": None}, "either a campaign or a rule_change"),
        ({"arms": [{"name": "holdout"}]}, "none may be called holdout"),
        ({"holdout_percent": 0}, "needs two arms"),
        ({"ends_at": "2026-10-01T00:00:00+08:00"}, "ends_at must be later"),
    ],
)
def test_a_malformed_experiment_is_refused_with_a_reason(changes, words):
    assert any(words in m for m in messages(rule_files({"t": experiment(**changes)})))


def test_the_digests_experiment_line_names_only_its_words():
    files = loader.read_dir(RULES)
    data = json.loads(files["digest.json"])
    data["experiments_text"] = "{title} {lift_percent}"
    found = messages({**files, "digest.json": json.dumps(data, ensure_ascii=False)})
    assert any("/experiments_text: unknown placeholder {lift_percent}" in m for m in found)


def test_an_absent_experiments_file_turns_experiments_off():
    files = {k: v for k, v in loader.read_dir(RULES).items() if k != "experiments.json"}
    assert loader.build(files).experiments.enabled is False


# --- assignment and exposure -------------------------------------------------------------------


def rules_with(experiments: dict, **file_changes) -> loader.RuleSet:
    return loader.build(rule_files(experiments, **file_changes))


def test_arms_are_stable_and_split_by_weight():
    rules = rules_with(
        {
            "t": experiment(
                holdout_percent=10,
                expected_daily_exposures=1000,
                arms=[{"name": "a", "weight": 1}, {"name": "b", "weight": 3}],
            )
        }
    )
    ids = [f"o{i}" for i in range(20_000)]
    groups = Counter(assign.arm_of(rules, "t", m, NOW) for m in ids)
    assert abs(groups[HOLDOUT] / 20_000 - 0.10) < 0.02
    assert abs(groups["a"] / 20_000 - 0.225) < 0.02
    assert abs(groups["b"] / 20_000 - 0.675) < 0.02
    again = rules_with(
        {
            "t": experiment(
                holdout_percent=10,
                expected_daily_exposures=1000,
                arms=[{"name": "a", "weight": 1}, {"name": "b", "weight": 3}],
            )
        }
    )
    assert all(assign.arm_of(again, "t", m, NOW) == assign.arm_of(rules, "t", m, NOW) for m in ids[:500])


def test_two_experiments_split_members_independently():
    rules = rules_with({"t": experiment(), "u": experiment()})
    pairs = Counter(
        (assign.arm_of(rules, "t", f"o{i}", NOW), assign.arm_of(rules, "u", f"o{i}", NOW)) for i in range(4000)
    )
    assert all(abs(n / 4000 - 0.25) < 0.03 for n in pairs.values()) and len(pairs) == 4


def test_no_arm_outside_the_window_the_scope_or_an_off_file():
    rules = rules_with({"t": experiment()})
    assert assign.arm_of(rules, "t", "o1", datetime(2026, 10, 31, tzinfo=UTC)) is None
    # exposures end conversion_days before ends_at: the last member exposed can still convert
    assert assign.arm_of(rules, "t", "o1", datetime(2026, 11, 24, 12, tzinfo=UTC)) is None
    assert assign.arm_of(rules, "nonesuch", "o1", NOW) is None
    assert assign.arm_of(rules_with({"t": experiment()}, enabled=False), "t", "o1", NOW) is None
    pilot = rules_with({"t": experiment()}, pilot_stores=["S001"])
    assert assign.arm_of(pilot, "t", "o1", NOW, "S002") is None and assign.arm_of(pilot, "t", "o1", NOW, "S001")


def test_a_rule_change_gives_each_group_its_version_of_the_file():
    change = {"file": "welcome.json", "pointer": "/coupon/value_yuan", "values": {"offer": 12}}
    rules = rules_with({"t": experiment(campaign=None, rule_change=change)})
    seen = {}
    for i in range(50):
        found = assign.variant(rules, "welcome.json", f"o{i}", NOW)
        assert found is not None and isinstance(found.rule, WelcomeRule)
        seen[found.arm] = found.rule.coupon.value_fen
    assert seen == {"offer": 1200, HOLDOUT: rules.welcome.coupon.value_fen}
    assert assign.variant(rules, "recall.json", "o1", NOW) is None


def test_an_exposure_is_recorded_once_under_parallel_duplicates(aws):
    rules = rules_with({"t": experiment()})
    arm, record = exposure.exposure(rules, "t", "oDup", NOW, event_id="e1")
    assert arm is not None and record is not None

    def expose(k: int):
        later = NOW + timedelta(seconds=k)
        return executor.execute([exposure.exposure(rules, "t", "oDup", later, event_id=f"e{k}")[1]], f"e{k}", later)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(expose, range(8)))
    records = list(LoyaltyRecord.query(keys.exposures("t")))
    assert len(records) == 1 and records[0].status == arm and records[0].member_id == "oDup"
    assert sum(1 for o in outcomes if o.outcome.name == "NEW" and not o.dropped) == 1
    first = records[0].at
    executor.execute([exposure.exposure(rules, "t", "oDup", NOW + timedelta(hours=1))[1]], "again", NOW)
    assert next(iter(LoyaltyRecord.query(keys.exposures("t")))).at == first


# --- the report --------------------------------------------------------------------------------


def simulate(rules: loader.RuleSet, name: str, n: int, base: float, lift: float, seed: int):
    """Members exposed over the first days; each converts with the base rate, the arm's with
    ``lift`` added; order values 25 yuan ± noise (+2 yuan in the arm)."""
    rng = random.Random(seed)
    observed = []
    for i in range(n):
        member = f"m{i}"
        arm = assign.arm_of(rules, name, member, NOW)
        assert arm is not None
        at = NOW + timedelta(minutes=i % 5000)
        treated = arm != HOLDOUT
        orders = ()
        if rng.random() < base + (lift if treated else 0):
            fen = round(100 * (rng.gauss(25, 6) + (2 if treated else 0)))
            orders = ((at + timedelta(days=rng.uniform(0.1, 6.9)), max(fen, 100)),)
        observed.append((report.Exposure(member, arm, at), report.Outcome(orders)))
    return observed


def test_the_report_recovers_a_known_lift_inside_its_interval():
    rules = rules_with({"t": experiment()})
    observed = simulate(rules, "t", 4000, base=0.20, lift=0.06, seed=21)
    found = report.measure("t", rules.experiments.experiments["t"], observed, NOW + timedelta(days=30))
    conversion = next(r for r in found.results if r.metric == "conversion")
    d = conversion.difference
    assert d is not None and d.low < 0.06 < d.high
    assert d.n_arm + d.n_base == 4000 and conversion.verdict == "显著"
    value = next(r for r in found.results if r.metric == "order_value")
    assert value.difference is not None and value.difference.low < 2 < value.difference.high


def test_the_report_counts_only_closed_windows_and_says_too_few_before_the_plan_is_met():
    rules = rules_with({"t": experiment()})
    observed = simulate(rules, "t", 400, base=0.20, lift=0.10, seed=3)
    found = report.measure("t", rules.experiments.experiments["t"], observed, NOW + timedelta(days=7, minutes=200))
    assert 0 < found.window_open < 400
    assert {r.verdict for r in found.results} == {"样本不足"}
    assert "样本不足" in report.render(found)


def test_the_report_warns_of_members_in_too_many_experiments():
    rules = rules_with({"t": experiment()})
    observed = simulate(rules, "t", 50, base=0.2, lift=0.0, seed=1)
    crowded = Counter({"m1": 5, "m2": 5, "m3": 4})
    found = report.measure("t", rules.experiments.experiments["t"], observed, NOW, crowded, polluted_at=5)
    assert found.polluted == 2
    assert "2名会员同时参加了≥5个实验" in report.render(found)


@pytest.fixture
def experiment_rules(tmp_path, monkeypatch):
    directory = tmp_path / "rules"
    shutil.copytree(RULES, directory)
    files = rule_files()
    for name in ("campaigns.json", "experiments.json"):
        (directory / name).write_text(files[name], encoding="utf-8")
    monkeypatch.setenv("SIYU_RULES_DIR", str(directory))
    loader.clear_cache()
    return loader.load_dir(directory)


def test_the_report_end_to_end_recovers_the_true_lift_from_real_orders(client, aws, experiment_rules, clock):
    """Members exposed through the executor, orders through the order webhook, the report from
    the tables: the true lift (+25 points) lies inside the 95 % interval (fixed seed)."""
    rules = loader.build(rule_files({"t": experiment(expected_lift=125, metrics=["conversion", "order_value"])}))
    rng = random.Random(2112)
    truth = {HOLDOUT: 0.20, "offer": 0.45}
    buyers = []
    for i in range(160):
        member = f"oExp{i}"
        arm, record = exposure.exposure(rules, "t", member, clock.now(), store_id="S001")
        assert record is not None
        executor.execute([record], record.event_id, clock.now())
        if rng.random() < truth[arm]:
            buyers.append(member)
    clock.set(NOW + timedelta(days=2))
    for k, member in enumerate(buyers):
        answer = pos(client, aws, clock, "order_paid", member, order_id=f"X{k}", amount_fen=2600 + 10 * k)
        assert answer.status_code == 200
    found = report.build(rules, "t", NOW + timedelta(days=8))
    conversion = next(r for r in found.results if r.metric == "conversion")
    assert conversion.difference is not None
    assert conversion.difference.n_arm + conversion.difference.n_base == 160
    assert conversion.difference.low < 0.25 < conversion.difference.high
    assert sum(found.exposed.values()) == 160 and found.window_open == 0
    assert conversion.verdict == ("显著" if min(found.exposed.values()) >= 62 else "样本不足")


def test_the_cli_plans_an_experiment_and_reports_it(aws, experiment_rules, clock, capsys):
    assert cli.main(["experiments", "plan", "t"]) == 0
    out = capsys.readouterr().out
    assert "每组所需样本：holdout 313人、offer 313人" in out and "共 14 天；窗口 30 天（窗口足够）" in out
    arm, record = exposure.exposure(experiment_rules, "t", "oCli", clock.now())
    assert record is not None
    executor.execute([record], record.event_id, clock.now())
    assert cli.main(["experiments", "report", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload[0]["name"] == "t" and payload[0]["exposed"] == {arm: 1} and payload[0]["window_open"] == 1
    assert cli.main(["experiments", "report", "t"]) == 0
    assert "归因窗口未结束 1人" in capsys.readouterr().out
    assert cli.main(["experiments", "report", "nonesuch"]) == 1
    assert "experiments.json has no experiment nonesuch; it has: t" in capsys.readouterr().err


def test_the_console_shows_the_experiments_to_ops_only(client, aws, experiment_rules, clock):
    from tests.test_console import OPS, manager

    arm, record = exposure.exposure(experiment_rules, "t", "oConsole", clock.now())
    assert record is not None
    executor.execute([record], record.event_id, clock.now())
    answer = client.http.get("/console/api/experiments", headers=OPS)
    assert answer.status_code == 200
    body = json.loads(answer.body)
    assert body["enabled"] is True and [e["name"] for e in body["experiments"]] == ["t"]
    shown = body["experiments"][0]
    assert shown["exposed"] == {arm: 1} and "每组所需样本" in shown["plan_text"] and "实验 t" in shown["text"]
    assert client.http.get("/console/api/experiments?name=nonesuch", headers=OPS).status_code == 404
    assert client.http.get("/console/api/experiments", headers=manager("S001")).status_code == 403


def test_the_weekly_digest_has_an_experiments_paragraph(aws, experiment_rules, clock):
    from chalicelib import runtime
    from chalicelib.metrics import digest

    for i in range(6):
        _, record = exposure.exposure(experiment_rules, "t", f"oDigest{i}", clock.now() - timedelta(days=10))
        assert record is not None
        executor.execute([record], record.event_id, clock.now())
    text = digest.build(runtime.context().rules(), date(2026, 11, 16), NOW).markdown
    assert "**实验结果（95%区间）**" in text
    assert "> 周四优惠推送：转化率 offer 对 holdout" in text and "样本不足" in text
    later = digest.build(runtime.context().rules(), date(2027, 1, 11), NOW).markdown
    assert "实验结果" not in later  # the window ended more than four weeks before


def test_conversion_and_redemption_count_only_inside_the_window_after_the_exposure():
    seen = report.Exposure("m1", "offer", NOW)
    day = timedelta(days=1)
    before = report.Outcome(orders=((NOW - day, 2000),))
    late = report.Outcome(orders=((NOW + 8 * day, 2000),))
    inside = report.Outcome(orders=((NOW + 2 * day, 2000), (NOW + 3 * day, 3000)))
    assert not report.converted(before, seen, 7) and not report.converted(late, seen, 7)
    assert report.converted(inside, seen, 7) and report.order_value_fen(inside, seen, 7) == 2500
    own = ("campaign#thursday_offer#m1", NOW, NOW + day)
    other = ("welcome#m1", NOW, NOW + day)
    unused = ("campaign#thursday_offer#m1", NOW, None)
    assert report.redeemed(report.Outcome(coupons=(own,)), seen, 7, "campaign#thursday_offer")
    assert not report.redeemed(report.Outcome(coupons=(other, unused)), seen, 7, "campaign#thursday_offer")
    assert report.redeemed(report.Outcome(coupons=(other,)), seen, 7, None)
    expired = ("campaign#thursday_offer#m1", NOW, NOW + 8 * day)
    assert not report.redeemed(report.Outcome(coupons=(expired,)), seen, 7, "campaign#thursday_offer")


@pytest.fixture
def welcome_experiment(tmp_path, monkeypatch):
    """The shipped welcome_12 experiment switched on, its window around the test clock."""
    directory = tmp_path / "rules"
    shutil.copytree(RULES, directory)
    data = json.loads((directory / "experiments.json").read_text(encoding="utf-8"))
    data["enabled"] = True
    data["experiments"]["welcome_12"] |= {
        "starts_at": "2026-11-20T00:00:00+08:00",
        "ends_at": "2026-12-18T00:00:00+08:00",
    }
    (directory / "experiments.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SIYU_RULES_DIR", str(directory))
    loader.clear_cache()
    return loader.load_dir(directory)


def test_a_welcome_rule_change_gives_each_group_its_coupon_and_records_one_exposure(
    client, aws, welcome_experiment, clock
):
    from chalicelib.state.models import Coupon
    from siyu.local import callbacks
    from tests.helpers import send

    created = int(clock.now().timestamp())
    values = {}
    for i in range(12):
        member = f"oWelcome{i}"
        xml = callbacks.oa_event(member, "subscribe", created + i, "")
        assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200
        values[member] = next(iter(Coupon.by_member.query(member))).value_fen
    seen = {r.sk: r.status for r in LoyaltyRecord.query(keys.exposures("welcome_12"))}
    assert set(seen) == set(values)
    assert {values[m] for m, arm in seen.items() if arm == "coupon_12"} == {1200}
    assert {values[m] for m, arm in seen.items() if arm == HOLDOUT} == {990}
    assert len(set(seen.values())) == 2
    refollow = callbacks.oa_event("oWelcome0", "subscribe", created + 100, "")
    assert send(client, callbacks.oa_post(aws, refollow, clock.now())).status_code == 200
    assert len(list(LoyaltyRecord.query(keys.exposures("welcome_12")))) == 12


def test_an_erased_members_exposure_is_deleted(client, aws, welcome_experiment, clock):
    from chalicelib import runtime
    from chalicelib.privacy import erase
    from siyu.local import callbacks
    from tests.helpers import send

    xml = callbacks.oa_event("oGone", "subscribe", int(clock.now().timestamp()), "")
    assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200
    assert [r.sk for r in LoyaltyRecord.query(keys.exposures("welcome_12"))] == ["oGone"]
    erase.erase(runtime.context(), "oGone", requested_by="test")
    assert list(LoyaltyRecord.query(keys.exposures("welcome_12"))) == []


def test_a_campaigns_holdout_gets_only_its_exposure_and_an_arm_its_exposure_and_the_send():
    from chalicelib.plans import Instruction

    rules = rules_with({"t": experiment()})
    assert exposure.experiment_of(rules, "thursday_offer") == "t" and exposure.experiment_of(rules, "x") is None
    send: list[Instruction] = [Instruction()]
    groups = {}
    for i in range(40):
        arm, plan = exposure.gate(rules, "t", f"o{i}", NOW, send)
        groups[arm] = [type(p).__name__ for p in plan]
    assert groups == {HOLDOUT: ["RecordOnce"], "offer": ["RecordOnce", "Instruction"]}
    assert exposure.gate(rules, None, "o1", NOW, send) == (None, send)
    late = datetime(2026, 12, 2, tzinfo=UTC)
    assert exposure.gate(rules, "t", "o1", late, send) == (None, send)
