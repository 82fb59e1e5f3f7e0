"""Rule checking: every problem at once, located, in plain words."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.rules import schema
from chalicelib.rules.check import check
from chalicelib.rules.loader import read_dir
from chalicelib.rules.models import FILES, OPTIONAL_FILES, WelcomeRule
from chalicelib.rules.scope import bucket, in_scope

RULES = Path(__file__).resolve().parent.parent / "rules"


def good() -> dict[str, str]:
    return read_dir(RULES)


def edit(files: dict[str, str], name: str, change) -> dict[str, str]:
    data = json.loads(files[name])
    change(data)
    return {**files, name: json.dumps(data, ensure_ascii=False, indent=2)}


def messages(files: dict[str, str]) -> list[str]:
    return [str(p) for p in check(files)[1]]


def test_the_committed_rules_have_no_problems():
    parsed, problems = check(good())
    assert problems == [] and set(parsed) == set(FILES)


def test_a_rule_set_published_before_a_duty_existed_still_loads_with_that_duty_off():
    for name in OPTIONAL_FILES:
        files = {k: v for k, v in good().items() if k != name}
        parsed, problems = check(files)
        assert problems == [], name
        assert parsed[name].enabled is False  # type: ignore[attr-defined]
    assert {"recall.json", "loyalty.json"} <= OPTIONAL_FILES


def test_a_recall_stage_naming_an_unknown_template_is_refused_with_its_place():
    files = edit(good(), "recall.json", lambda d: d["stages"][0].update(template="recal_offer"))
    assert any(
        m.startswith("recall.json:") and "/stages/0/template: template recal_offer is not defined" in m
        for m in messages(files)
    )


def test_a_recall_stage_promising_a_coupon_it_does_not_have_is_refused():
    files = edit(good(), "recall.json", lambda d: d["stages"][0].pop("coupon"))
    assert any("/stages/0: text mentions the coupon but the stage has no coupon" in m for m in messages(files))


def test_the_committed_schemas_match_the_code():
    directory = RULES / "schema"
    for name, text in schema.generate().items():
        assert (directory / name).read_text(encoding="utf-8") == text, f"{name} is stale: run `siyu rules schema`"


def test_every_rule_file_names_its_schema():
    for name, text in good().items():
        assert json.loads(text)["$schema"] == f"./schema/{schema.schema_name(name)}"


def test_a_broken_rule_set_reports_every_problem_with_file_line_and_pointer():
    text = good()["welcome.json"]
    broken = text.replace('"value_yuan": 9.9', '"value_yuan": 5000').replace('"valid_days": 30', '"valid_dayz": 30')
    broken = broken.replace('"enabled": true', '"enabled": "yes"')
    found = messages({**good(), "welcome.json": broken})
    lines = broken.splitlines()
    value_line = next(i for i, line in enumerate(lines, 1) if '"value_yuan"' in line)
    assert f"welcome.json:{value_line}:19 /coupon/value_yuan: must be at most 500 (is 5000)" in found
    assert any(m.endswith('/coupon/valid_dayz: is not a setting siyu knows; did you mean "valid_days"?') for m in found)
    assert any(m.endswith("/coupon/valid_days: is required") for m in found)
    assert any(m.endswith("/enabled: must be true or false") for m in found)
    assert len(found) == 4


def test_not_json_names_line_and_column():
    [message] = messages({**good(), "stores.json": '{\n  "stores": [\n    {"id": "S001",}\n  ]\n}'})
    assert message.startswith("stores.json:3:") and "not valid JSON" in message


def test_a_key_written_twice_is_an_error_not_a_silent_override():
    text = good()["welcome.json"].replace('"enabled": true,', '"enabled": true,\n  "enabled": false,')
    [message] = messages({**good(), "welcome.json": text})
    assert 'the key "enabled" appears twice' in message


def test_unknown_and_missing_files():
    files = good()
    files["welcom.json"] = files.pop("welcome.json")
    found = messages(files)
    assert 'welcom.json:1:1 /: is not a rule file siyu knows; did you mean "welcome.json"?' in found
    assert "welcome.json:1:1 /: is missing from the rule set" in found


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["coupon"].update(value_yuan=0), "/coupon/value_yuan: must be more than 0"),
        (lambda d: d["coupon"].update(value_yuan=9.999), "/coupon/value_yuan: must have at most 2 decimals"),
        (lambda d: d["coupon"].update(value_yuan="9.9"), "/coupon/value_yuan: must be a number, written without"),
        (lambda d: d["coupon"].update(valid_days=0), "/coupon/valid_days: must be at least 1"),
        (
            lambda d: d["coupon"].update(store_scope="mine"),
            "/coupon/store_scope: must be one of 'all' or 'home_store' (is mine)",
        ),
        (lambda d: d.update(text="送{amount}元"), "/text: unknown placeholder {amount}"),
        (lambda d: d.update(questionnaire_url="http://x"), "/questionnaire_url: must start with https://"),
        (lambda d: d.update(triggers=[]), "/triggers: must have at least 1 entries"),
        (lambda d: d.update(rollout_percent=150), "/rollout_percent: must be at most 100"),
        (lambda d: d.update(starts_at="2026-12-01T00:00:00"), "/starts_at: needs a time zone offset"),
        (
            lambda d: d.update(starts_at="2026-12-02T00:00:00+08:00", ends_at="2026-12-01T00:00:00+08:00"),
            "/: ends_at must be later than starts_at",
        ),
        (lambda d: d.update(pilot_stores=["S001", "S404"]), "/pilot_stores/1: store S404 is not in stores.json"),
    ],
)
def test_welcome_problems_are_explained(change, expected):
    found = messages(edit(good(), "welcome.json", change))
    assert any(expected in m for m in found), found


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["stores"][1].update(timezone="Asia/Shanghia"), "/stores/1/timezone: time zone 'Asia/Shanghia'"),
        (lambda d: d["stores"][1].update(id="S001"), "/stores/1/id: store S001 is already listed at /stores/0"),
        (lambda d: d["stores"][1].update(groups=d["stores"][0]["groups"]), "/stores/1/groups/0: group"),
        (lambda d: d["stores"][0].update(id="S 1"), "/stores/0/id: may contain only letters, digits, - and _"),
    ],
)
def test_store_problems_are_explained(change, expected):
    found = messages(edit(good(), "stores.json", change))
    assert any(expected in m for m in found), found


def test_rollout_buckets_are_stable_and_growing_the_percentage_only_adds_members():
    members = [f"o{i}" for i in range(2000)]
    rule = WelcomeRule.model_validate(json.loads(good()["welcome.json"]))
    now = datetime(2026, 11, 23, tzinfo=UTC)
    at10 = {
        m
        for m in members
        if in_scope(rule.model_copy(update={"rollout_percent": Decimal(10)}), "welcome", m, None, now)
    }
    at30 = {
        m
        for m in members
        if in_scope(rule.model_copy(update={"rollout_percent": Decimal(30)}), "welcome", m, None, now)
    }
    assert at10 < at30
    assert 150 <= len(at10) <= 250 and 500 <= len(at30) <= 700
    assert bucket("welcome", "o1") == bucket("welcome", "o1") != bucket("recall", "o1")


def test_scope_window_and_pilot_stores():
    rule = WelcomeRule.model_validate(json.loads(good()["welcome.json"])).model_copy(
        update={"pilot_stores": ["S002"], "starts_at": datetime(2026, 12, 1, tzinfo=UTC)}
    )
    before, after = datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=1)
    assert not in_scope(rule, "welcome", "o1", "S002", before)
    assert in_scope(rule, "welcome", "o1", "S002", after)
    assert not in_scope(rule, "welcome", "o1", "S001", after)
    assert not in_scope(rule.model_copy(update={"enabled": False}), "welcome", "o1", "S002", after)


@pytest.mark.parametrize(
    ("file", "change", "expected"),
    [
        ("welcome.json", lambda d: d.update(template="nope"), "/template: template nope is not defined in messaging"),
        (
            "messaging.json",
            lambda d: d["caps"]["promo"].update(per_day=5, per_week=3),
            "/caps/promo: per_day (5) cannot be larger than per_week (3)",
        ),
        (
            "messaging.json",
            lambda d: d["quiet_hours"].update(start="25:00"),
            "/quiet_hours/start: must be a time of day like 08:00 (is 25:00)",
        ),
        ("messaging.json", lambda d: d["caps"].update(spam={"per_day": 1}), "/caps/spam"),
        (
            "messaging.json",
            lambda d: d["templates"]["welcome_gift"]["fields"].update(thing1="{nickname}"),
            "unknown placeholder {nickname}",
        ),
    ],
)
def test_messaging_problems_are_explained(file, change, expected):
    found = messages(edit(good(), file, change))
    assert any(expected in m for m in found), found
