"""The local stack over real HTTP on 127.0.0.1, on DynamoDB Local with nothing in front of it:
concurrency, restart, timers, and make run's refusal to run half a stack."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from chalicelib import settings
from chalicelib.state.models import Coupon, EventRecord, OutboxMessage
from siyu.local import callbacks
from siyu.local import stack as local_stack
from siyu.local.dynamodb import DynamoDBLocal

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


def test_members_and_coupons_survive_a_kill_9_of_dynamodb_local_and_a_restart(env, monkeypatch, tmp_path):
    """make run's DynamoDB Local keeps its tables in a SQLite file (``-dbPath``): killed outright
    and started again on the same folder, it has every write it acknowledged. No journal."""
    from chalicelib.state import binding

    monkeypatch.setenv("SIYU_TABLE_PREFIX", "siyu-restart-")
    now = datetime.now(UTC)
    with DynamoDBLocal(db_path=tmp_path) as first_dynamodb:
        monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", first_dynamodb.endpoint)
        binding._bound = None
        first = local_stack.start(port=0, wechat_port=None)
        try:
            s = settings.current()
            response = post(
                first.url, callbacks.oa_post(s, callbacks.oa_event("oKeep", "subscribe", int(now.timestamp())), now)
            )
            assert response.status_code == 200
            before = requests.get(f"{first.url}/admin/members/oKeep", headers=ADMIN, timeout=10).json()
        finally:
            first.stop()
        first_dynamodb.kill()  # SIGKILL: nothing is flushed on the way out
    with DynamoDBLocal(db_path=tmp_path) as second_dynamodb:
        monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", second_dynamodb.endpoint)  # another port
        binding._bound = None
        second = local_stack.start(port=0, wechat_port=None)
        try:
            after = requests.get(f"{second.url}/admin/members/oKeep", headers=ADMIN, timeout=10).json()
            assert after == before and len(after["coupons"]) == 1
        finally:
            second.stop()
            binding._bound = None


def test_make_run_says_so_and_exits_1_when_dynamodb_local_dies_under_it(env, monkeypatch, tmp_path, capsys):
    """``make run`` (stack.main) on ephemeral ports with its state in a temporary folder: its
    DynamoDB Local is killed mid-run, and the whole stack stops with status 1."""
    import os
    import signal

    started: list[DynamoDBLocal] = []
    serve = local_stack.serve

    class Watched(DynamoDBLocal):
        def start(self) -> DynamoDBLocal:
            started.append(super().start())
            return self

    def killed_once_up(dynamodb, stack, stopping):
        dynamodb.process.kill()  # the stack is up and serving: DynamoDB Local dies under it
        return serve(dynamodb, stack, stopping)

    saved_env, saved_handlers = dict(os.environ), {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(local_stack, "STATE_DIR", tmp_path)
    monkeypatch.setattr(local_stack, "ENV_FILE", tmp_path / "local.env")
    monkeypatch.setattr(local_stack, "DynamoDBLocal", Watched)
    monkeypatch.setattr(local_stack, "serve", killed_once_up)
    for name in ("SIYU_LOCAL_PORT", "SIYU_LOCAL_DYNAMODB_PORT", "SIYU_LOCAL_WECHAT_PORT"):
        monkeypatch.setenv(name, "0")
    monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", "")
    monkeypatch.setenv("SIYU_TABLE_PREFIX", "siyu-makerun-")
    try:
        assert local_stack.main() == 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, handler in saved_handlers.items():
            signal.signal(sig, handler)
        from chalicelib.state import binding

        binding._bound = None
    printed = capsys.readouterr()
    assert "siyu local stack is up" in printed.out
    assert f"DynamoDB Local ({started[0].endpoint}) has stopped; stopping the stack" in printed.err
    assert not started[0].alive() and (tmp_path / "shared-local-instance.db").exists()


def test_make_run_exits_1_and_names_the_endpoint_when_its_dynamodb_is_unreachable(env, monkeypatch, tmp_path, capsys):
    import os
    import signal
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    saved_env, saved_handlers = dict(os.environ), {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(local_stack, "STATE_DIR", tmp_path)
    monkeypatch.setattr(local_stack, "ENV_FILE", tmp_path / "local.env")
    monkeypatch.setenv("SIYU_LOCAL_PORT", "0")
    monkeypatch.setenv("SIYU_LOCAL_WECHAT_PORT", "0")
    monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", f"http://127.0.0.1:{port}")
    from chalicelib.state import binding

    binding._bound = None
    try:
        assert local_stack.main() == 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, handler in saved_handlers.items():
            signal.signal(sig, handler)
        binding._bound = None
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_the_stack_runs_every_schedule_handler(live):
    names = {job.name for job in live.timers.jobs}
    assert names == {
        "redrive_stalled_events",
        "release_due_messages",
        "recall_sweep",
        "evaluate_segments",
        "run_loyalty_day",
        "check_thresholds",
        "send_weekly_digest",
        "review_sla",
        "run_campaigns",
        "check_group_pushes",
    }


def test_siyu_send_shows_the_welcome_a_new_follower_reads(live, capsys):
    from siyu import cli

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
