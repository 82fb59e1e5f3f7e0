"""Publishing, rolling back and previewing rule sets, through the CLI and the admin API."""

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from chalicelib.errors import Conflict
from chalicelib.events import robot_recipient
from chalicelib.rules import versions
from chalicelib.state.models import Coupon, Member, OutboxMessage, RuleRecord
from siyu import cli
from siyu.local import callbacks
from tests.helpers import ADMIN, send

RULES = Path(__file__).resolve().parent.parent / "rules"


@pytest.fixture
def rules_dir(tmp_path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def set_value(directory: Path, yuan: float, **extra) -> Path:
    path = directory / "welcome.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["coupon"]["value_yuan"] = yuan
    data.update(extra)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return directory


def follow(client, aws, clock, openid, store="S001"):
    xml = callbacks.oa_event(openid, "subscribe", int(clock.now().timestamp()), f"qrscene_st={store}")
    return send(client, callbacks.oa_post(aws, xml, clock.now()))


def coupon_of(member_id: str) -> Coupon:
    [coupon] = list(Coupon.by_member.query(member_id))
    return coupon


def active_version() -> int | None:
    pointer = versions.active_pointer()
    return int(pointer.version) if pointer else None


def test_publish_activates_and_later_effects_record_the_version(client, aws, clock, rules_dir, capsys):
    assert cli.main(["rules", "publish", str(rules_dir), "--note", "first", "--author", "ops-li"]) == 0
    assert "published and activated v1" in capsys.readouterr().out
    follow(client, aws, clock, "oA")
    assert (coupon_of("oA").value_fen, coupon_of("oA").rules_version) == (990, "v1")
    assert cli.main(["rules", "publish", str(set_value(rules_dir, 12.5)), "--note", "bigger gift"]) == 0
    follow(client, aws, clock, "oB")
    assert (coupon_of("oB").value_fen, coupon_of("oB").rules_version) == (1250, "v2")


def test_publishing_the_same_content_again_changes_nothing(client, aws, clock, rules_dir, capsys):
    cli.main(["rules", "publish", str(rules_dir), "--note", "first"])
    (rules_dir / "stores.json").write_text(
        json.dumps(json.loads((rules_dir / "stores.json").read_text())), encoding="utf-8"
    )  # reformatted only
    assert cli.main(["rules", "publish", str(rules_dir), "--note", "again"]) == 0
    assert "identical to the active v1" in capsys.readouterr().out
    assert len(versions.history()) == 1


def test_a_broken_rule_set_from_the_cli_changes_nothing_and_names_file_line_and_path(
    client, aws, clock, rules_dir, capsys
):
    cli.main(["rules", "publish", str(rules_dir), "--note", "first"])
    follow(client, aws, clock, "oA")
    before = Member.get("oA").attribute_values
    set_value(rules_dir, 5000)
    assert cli.main(["rules", "publish", str(rules_dir), "--note", "oops"]) == 1
    err = capsys.readouterr().err
    assert "welcome.json:" in err and "/coupon/value_yuan: must be at most 500 (is 5000)" in err
    assert "nothing was changed" in err
    assert active_version() == 1 and len(versions.history()) == 1
    assert Member.get("oA").attribute_values == before
    assert cli.main(["rules", "check", str(rules_dir)]) == 1


def test_a_broken_rule_set_through_the_api_is_rejected_whole(client, aws, clock, rules_dir):
    cli.main(["rules", "publish", str(rules_dir), "--note", "first"])
    files = {p.name: p.read_text(encoding="utf-8") for p in rules_dir.glob("*.json")}
    files["welcome.json"] = files["welcome.json"].replace('"valid_days": 30', '"valid_days": 3000')
    files["stores.json"] = files["stores.json"].replace('"S002"', '"S 2"')
    response = client.http.put(
        "/admin/rules",
        headers={**ADMIN, "Content-Type": "application/json"},
        body=json.dumps({"note": "x", "files": files}),
    )
    assert response.status_code == 400
    problems = response.json_body["problems"]
    assert {(p["file"], p["pointer"]) for p in problems} == {
        ("welcome.json", "/coupon/valid_days"),
        ("stores.json", "/stores/1/id"),
    }
    assert all(p["line"] > 1 for p in problems)
    shown = client.http.get("/admin/rules", headers=ADMIN).json_body
    assert shown["active"] == "v1" and len(shown["versions"]) == 1


def test_publish_and_activate_through_the_api(client, aws, clock, rules_dir):
    files = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in rules_dir.glob("*.json")}
    put = client.http.put(
        "/admin/rules",
        headers={**ADMIN, "Content-Type": "application/json"},
        body=json.dumps({"note": "via api", "files": files}),
    )
    assert put.status_code == 200 and put.json_body == {"active": "v1", "previous": None, "changed": True}
    files["welcome.json"]["coupon"]["value_yuan"] = 20
    second = client.http.put(
        "/admin/rules",
        headers={**ADMIN, "Content-Type": "application/json", "If-Match": "v1"},
        body=json.dumps({"note": "20 yuan", "files": files}),
    )
    assert second.json_body["active"] == "v2"
    stale = client.http.put(
        "/admin/rules",
        headers={**ADMIN, "Content-Type": "application/json", "If-Match": "v1"},
        body=json.dumps({"note": "again", "files": files}),
    )
    assert stale.status_code == 409
    back = client.http.post(
        "/admin/rules/v1/activate",
        headers={**ADMIN, "Content-Type": "application/json"},
        body=json.dumps({"note": "too generous"}),
    )
    assert back.status_code == 200 and back.json_body["active"] == "v1"
    assert client.http.post("/admin/rules/v9/activate", headers=ADMIN).status_code == 404
    assert client.http.post("/admin/rules/v1/activate").status_code == 401
    assert client.http.put("/admin/rules", body=b"{}").status_code == 401


def test_rollback_restores_the_previous_version_in_one_command(client, aws, clock, rules_dir, capsys):
    cli.main(["rules", "publish", str(rules_dir), "--note", "first"])
    cli.main(["rules", "publish", str(set_value(rules_dir, 50)), "--note", "typo: 50 yuan"])
    follow(client, aws, clock, "oA")
    assert coupon_of("oA").value_fen == 5000
    assert cli.main(["rules", "rollback", "v1", "--note", "50 was a typo"]) == 0
    follow(client, aws, clock, "oB")
    assert (coupon_of("oB").value_fen, coupon_of("oB").rules_version) == (990, "v1")
    capsys.readouterr()
    cli.main(["rules", "history"])
    out = capsys.readouterr().out
    assert "* v1" in out and "rollback v2 → v1" in out


def test_diff_shows_the_changed_value(client, aws, clock, rules_dir, capsys):
    cli.main(["rules", "publish", str(rules_dir), "--note", "first"])
    cli.main(["rules", "publish", str(set_value(rules_dir, 12.5)), "--note", "second"])
    capsys.readouterr()
    assert cli.main(["rules", "diff", "v1", "v2"]) == 0
    out = capsys.readouterr().out
    assert '-    "value_yuan": 9.9' in out and '+    "value_yuan": 12.5' in out


def test_a_publish_that_loses_a_race_gets_a_conflict_and_writes_nothing(aws, clock, rules_dir, monkeypatch):
    files = {p.name: p.read_text(encoding="utf-8") for p in rules_dir.glob("*.json")}
    versions.publish(files, note="v1", author="a", now=clock.now())
    other = json.loads(files["welcome.json"])
    other["coupon"]["value_yuan"] = 11
    real_latest = versions.latest_number

    def racing_latest():  # another publisher wins between our read of the pointer and our write
        monkeypatch.setattr(versions, "latest_number", real_latest)
        versions.publish({**files, "welcome.json": json.dumps(other)}, note="rival", author="b", now=clock.now())
        return real_latest() - 1  # what we had computed before the rival's write

    monkeypatch.setattr(versions, "latest_number", racing_latest)
    mine = json.loads(files["welcome.json"])
    mine["coupon"]["value_yuan"] = 13
    with pytest.raises(Conflict):
        versions.publish({**files, "welcome.json": json.dumps(mine)}, note="mine", author="c", now=clock.now())
    assert active_version() == 2
    assert [r.note for r in versions.history()] == ["v1", "rival"]
    assert len(list(RuleRecord.query("activation"))) == 2


def test_preview_reports_the_coupon_value_difference_over_the_window(client, aws, clock, rules_dir, capsys):
    cli.main(["rules", "publish", str(rules_dir), "--note", "first"])
    for i, store in enumerate(["S001", "S001", "S002"]):
        follow(client, aws, clock, f"oP{i}", store)
        clock.advance(timedelta(hours=1))
    follow(client, aws, clock, "oP0", "S001")  # a re-follow: no second coupon either way
    capsys.readouterr()
    candidate = set_value(rules_dir, 12.5, pilot_stores=["S001"])
    assert cli.main(["rules", "preview", str(candidate), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["duty"], r["store"]): r for r in report["rows"]}
    assert rows[("welcome", "S001")]["active"]["face_value_fen"] == 1980
    assert rows[("welcome", "S001")]["candidate"]["face_value_fen"] == 2500
    assert rows[("welcome", "S002")]["active"]["coupons"] == 1
    assert rows[("welcome", "S002")]["candidate"]["coupons"] == 0
    assert report["events"] == 4
    # Nothing was written by the preview.
    assert len(list(Coupon.scan())) == 3 and len(versions.history()) == 1
    cli.main(["rules", "preview", str(candidate)])
    text = capsys.readouterr().out
    assert "coupon face value in total: 29.70 → 25.00 (-4.70)" in text


def test_a_rule_the_runtime_cannot_apply_is_skipped_with_one_ops_alert(client, aws, clock, rules_dir):
    # {code:d} passes the placeholder check (code is a known placeholder) but a code is text.
    set_value(rules_dir, 9.9, text="欢迎！券码 {code:d}")
    assert cli.main(["rules", "publish", str(rules_dir), "--note", "a format the runtime cannot fill"]) == 0
    for openid in ("oX", "oY"):
        response = follow(client, aws, clock, openid)
        assert response.status_code == 200 and response.body == b"success"
        assert Member.get(openid).subscribed == "yes"  # the rest of the pipeline ran
    alerts = [m for m in OutboxMessage.scan() if m.category == "alert"]
    assert len(alerts) == 1 and alerts[0].message_key.startswith("alert#rule#") and "welcome" in alerts[0].text
    assert alerts[0].member_id == robot_recipient("ops")


def test_a_fault_of_the_code_is_not_reported_to_ops_as_a_broken_rule(client, aws, clock, monkeypatch, siyu_logs):
    from chalicelib.duties import welcome

    def broken(facts, rules, now):
        raise TypeError("a bug, not a rule")

    monkeypatch.setattr(welcome, "decide", broken)
    response = follow(client, aws, clock, "oX")
    assert response.status_code == 503  # WeChat retries; the redrive timer too, once the bug is fixed
    assert [m for m in OutboxMessage.scan() if m.category == "alert"] == []
    logs = siyu_logs.getvalue()
    assert '"event.failed"' in logs and "rules.duty_skipped" not in logs


def test_pilot_stores_and_rollout_limit_the_welcome(client, aws, clock, rules_dir):
    cli.main(["rules", "publish", str(set_value(rules_dir, 9.9, pilot_stores=["S002"])), "--note", "pilot"])
    follow(client, aws, clock, "oS1", "S001")
    follow(client, aws, clock, "oS2", "S002")
    assert list(Coupon.by_member.query("oS1")) == [] and len(list(Coupon.by_member.query("oS2"))) == 1
    cli.main(["rules", "publish", str(set_value(rules_dir, 9.9, pilot_stores=[], rollout_percent=0)), "--note", "off"])
    follow(client, aws, clock, "oS3", "S002")
    assert list(Coupon.by_member.query("oS3")) == []
