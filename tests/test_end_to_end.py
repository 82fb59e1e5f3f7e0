"""The local stack over real HTTP on 127.0.0.1: concurrency, restart, timers."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from chalicelib import settings
from chalicelib.local import callbacks
from chalicelib.local import stack as local_stack
from chalicelib.state.models import Coupon, EventRecord, OutboxMessage

ADMIN = {"Authorization": "Bearer test-admin-token"}


def post(url: str, request: callbacks.Request) -> requests.Response:
    return requests.post(url + request.path, data=request.body, headers=request.headers, timeout=10)


def test_three_concurrent_deliveries_of_one_follow_issue_exactly_one_coupon(live):
    s = settings.current()
    now = datetime.now(UTC)
    xml = callbacks.oa_event("oConcurrent", "subscribe", int(now.timestamp()), "qrscene_st=S002")
    deliveries = [callbacks.oa_post(s, xml, now) for _ in range(3)]  # WeChat's 3 tries, each signed anew
    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda r: post(live.url, r), deliveries))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(r.text.startswith("<xml><Encrypt>") for r in responses)  # every try got the welcome
    view = requests.get(f"{live.url}/admin/members/oConcurrent", headers=ADMIN, timeout=10).json()
    assert len(view["coupons"]) == 1 and view["store_id"] == "S002"
    assert len(list(Coupon.scan())) == 1
    assert [r.attempts for r in EventRecord.scan()] == [1]


def test_many_concurrent_first_touches_of_one_member_issue_one_coupon(live):
    """A follow, its retries and a group join of the same id, all at once: one gift."""
    s = settings.current()
    now = datetime.now(UTC)
    requests_ = []
    for second in range(6):
        xml = callbacks.oa_event("oBusy", "subscribe", int(now.timestamp()) - second, "")
        requests_ += [callbacks.oa_post(s, xml, now), callbacks.oa_post(s, xml, now)]
    join = callbacks.wecom_group_join(
        s.wecom_corp_id, "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", ["oBusy"], int(now.timestamp())
    )
    requests_ += [callbacks.wecom_post(s, join, now) for _ in range(3)]
    with ThreadPoolExecutor(8) as pool:
        statuses = [r.status_code for r in pool.map(lambda r: post(live.url, r), requests_)]
    assert set(statuses) == {200}
    assert len(list(Coupon.scan())) == 1
    welcomes = [m for m in OutboxMessage.scan() if m.message_key == "welcome#oBusy"]
    assert len(welcomes) == 1


def test_state_survives_a_restart_of_the_stack(env, monkeypatch, tmp_path):
    from chalicelib.state import binding

    monkeypatch.setenv("SIYU_TABLE_PREFIX", "siyu-restart-")
    monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", "")
    journal = tmp_path / "dynamodb.jsonl"
    binding._bound = None
    first = local_stack.start(port=0, dynamodb_port=0, journal=journal)
    now = datetime.now(UTC)
    try:
        s = settings.current()
        response = post(
            first.url, callbacks.oa_post(s, callbacks.oa_event("oKeep", "subscribe", int(now.timestamp())), now)
        )
        assert response.status_code == 200
        before = requests.get(f"{first.url}/admin/members/oKeep", headers=ADMIN, timeout=10).json()
    finally:
        first.stop()
    # A new process would start with empty moto backends: reset them to prove the journal suffices.
    from moto.backends import get_backend

    get_backend("dynamodb").reset()
    binding._bound = None
    second = local_stack.start(port=0, dynamodb_port=0, journal=journal)
    try:
        assert second.replayed > 0
        after = requests.get(f"{second.url}/admin/members/oKeep", headers=ADMIN, timeout=10).json()
        assert after == before and len(after["coupons"]) == 1
    finally:
        second.stop()
        binding._bound = None


def test_the_stack_runs_every_schedule_handler(live):
    names = {job.name for job in live.timers.jobs}
    assert names == {
        "redrive_stalled_events",
        "release_due_messages",
        "recall_sweep",
        "run_loyalty_day",
        "check_thresholds",
        "send_weekly_digest",
        "review_sla",
    }


def test_siyu_send_shows_the_welcome_a_new_follower_reads(live, capsys):
    from chalicelib import cli

    assert cli.main(["send", "--url", live.url, "follow", "oSend1", "--store", "S001", "--channel", "poster"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP 200") and "9.9元" in out
    assert cli.main(["send", "--url", live.url, "join", "wmSend1"]) == 0
    assert "success" in capsys.readouterr().out


def test_concurrent_publishes_never_both_win_from_the_same_version(live):
    """Six publishes at once: every success moved the pointer from a different version (a chain),
    every loser got 409 and wrote no version."""
    from chalicelib.rules import versions
    from chalicelib.settings import PROJECT_DIR

    base = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (PROJECT_DIR / "rules").glob("*.json")}

    def publish(i: int) -> requests.Response:
        files = json.loads(json.dumps(base))
        files["welcome.json"]["coupon"]["value_yuan"] = 10 + i
        return requests.put(
            f"{live.url}/admin/rules", json={"note": f"rival {i}", "files": files}, headers=ADMIN, timeout=10
        )

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(publish, range(6)))
    assert {r.status_code for r in responses} <= {200, 409}
    wins = [r.json() for r in responses if r.status_code == 200]
    assert wins, "at least one publish succeeds"
    previous = [w["previous"] for w in wins]
    assert len(previous) == len(set(previous)), "two publishes won from the same active version"
    assert len(versions.history()) == len(wins)
    assert all(r.json()["error"] == "conflict" for r in responses if r.status_code == 409)
