"""loyalty.json: optional (older rule sets have no loyalty), every number checked, texts'
placeholders checked, tiers ordered."""

import json
from pathlib import Path

from chalicelib.rules.check import check
from chalicelib.rules.loader import build, read_dir
from chalicelib.rules.models import OPTIONAL_FILES, LoyaltyRule

RULES = Path(__file__).resolve().parent.parent / "rules"


def with_loyalty(change) -> list[str]:
    files = read_dir(RULES)
    data = json.loads(files["loyalty.json"])
    change(data)
    return [str(p) for p in check({**files, "loyalty.json": json.dumps(data, ensure_ascii=False, indent=2)})[1]]


def test_a_rule_set_without_loyalty_json_is_valid_and_has_loyalty_off():
    assert "loyalty.json" in OPTIONAL_FILES
    assert LoyaltyRule.model_validate({"enabled": False}).enabled is False
    files = {name: text for name, text in read_dir(RULES).items() if name != "loyalty.json"}
    assert build(files).loyalty.enabled is False


def test_an_unknown_placeholder_in_a_loyalty_text_is_located():
    found = with_loyalty(lambda d: d["checkin"].update(text="签到成功{streek}"))
    assert any("/checkin/text: unknown placeholder {streek}" in m for m in found)


def test_tiers_must_go_up_and_start_at_zero():
    def swap(data):
        levels = data["tiers"]["levels"]
        levels[1], levels[2] = levels[2], levels[1]

    assert any("min_spend_yuan must not decrease" in m for m in with_loyalty(swap))
    found = with_loyalty(lambda d: d["tiers"]["levels"][0].update(min_spend_yuan=10))
    assert any("the first tier is the entry tier" in m for m in found)


def test_a_typo_in_a_section_is_refused_with_a_suggestion():
    found = with_loyalty(lambda d: d["referral"].update(grace_dayz=3))
    assert any('/referral/grace_dayz: is not a setting siyu knows; did you mean "grace_days"?' in m for m in found)
