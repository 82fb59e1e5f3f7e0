"""Negative reviews: one ticket per review, the store told at once, and the SLA — no response in
1 h alerts the store, unresolved at 24 h escalates to ops, a 72 h follow-up reminder — each step
sent once, skipped when staff recorded the work in time."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from chalicelib import jobs
from chalicelib.events import robot_of
from chalicelib.metrics import read
from chalicelib.state.models import OutboxMessage, Ticket
from siyu import cli
from tests.helpers import pos

ADMIN = {"Authorization": "Bearer test-admin-token"}


def review(client, aws, clock, review_id="R1", score=1, store_id="S001", openid="oReviewer", **fields):
    return pos(client, aws, clock, "review", openid, review_id=review_id, score=score, store_id=store_id, **fields)


def robot_messages() -> list[tuple[str, str]]:
    """(robot, first line) of every ticket message, in the order they were written."""
    order = ["opened", "late", "escalated", "follow_up"]
    found = [m for m in OutboxMessage.scan() if m.cause == "reviews"]
    found.sort(key=lambda m: (m.created_at, order.index(m.message_key.rsplit("#", 1)[1])))
    return [(robot_of(m.member_id), m.text.splitlines()[0]) for m in found]


def timer_at(clock, opened, delta: timedelta) -> int:
    clock.set(opened + delta)
    return jobs.review_sla()


def record(client, ticket_id: str, action: str, by: str = "店长王", **extra):
    body = json.dumps({"action": action, "by": by, **extra}, ensure_ascii=False)
    return client.http.post(
        f"/admin/tickets/{ticket_id}", body=body, headers={**ADMIN, "Content-Type": "application/json"}
    )


def test_a_negative_review_opens_one_ticket_and_tells_its_store_once(client, aws, clock):
    first = review(client, aws, clock, order_id="O-77")
    again = review(client, aws, clock, order_id="O-77")  # the POS retries the same review
    assert first.status_code == again.status_code == 200 and again.json_body["duplicate"] is True
    ticket = Ticket.get("R1")
    assert (ticket.status, ticket.store_id, int(ticket.score), ticket.order_id) == ("open", "S001", 1, "O-77")
    assert robot_messages() == [("S001", "【新差评】S001 静安寺店 · 1星")]
    opened = OutboxMessage.get("ticket#R1#opened")
    local_deadline = (clock.now() + timedelta(hours=1 + 8)).strftime("%m-%d %H:%M")  # Shanghai, +1 h
    assert local_deadline in opened.text and "O-77" in opened.text


@pytest.mark.parametrize("score", [3, 4, 5])
def test_a_review_above_the_threshold_opens_nothing(client, aws, clock, score):
    assert review(client, aws, clock, score=score).status_code == 200
    assert list(Ticket.scan()) == [] and robot_messages() == []


def test_an_unanswered_ticket_alerts_at_1h_escalates_at_24h_and_reminds_at_72h_each_once(client, aws, clock):
    opened = clock.now()
    review(client, aws, clock)
    assert timer_at(clock, opened, timedelta(minutes=59)) == 0
    assert timer_at(clock, opened, timedelta(minutes=61)) == 1
    assert timer_at(clock, opened, timedelta(minutes=66)) == 0  # the next run sends nothing again
    assert timer_at(clock, opened, timedelta(hours=23, minutes=59)) == 0
    assert timer_at(clock, opened, timedelta(hours=24, minutes=1)) == 1
    assert timer_at(clock, opened, timedelta(hours=72)) == 1
    assert timer_at(clock, opened, timedelta(days=10)) == 0
    assert [robot for robot, _ in robot_messages()] == ["S001", "S001", "ops", "S001"]
    assert [line.split("】")[0] + "】" for _, line in robot_messages()] == [
        "【新差评】",
        "【差评超时未响应】",
        "【差评升级】",
        "【差评回访提醒】",
    ]
    ticket = Ticket.get("R1")
    assert set(ticket.steps) == {"late", "escalated", "follow_up"} and ticket.due is None
    day = (opened + timedelta(hours=8)).date()  # the counters' local day of the late alert
    counts = read.window("S001", day, day + timedelta(days=3))
    assert (counts["tickets_late"], counts["tickets_escalated"], counts["tickets_follow_up"]) == (1, 1, 1)


def test_work_recorded_in_time_skips_the_alerts_it_answers(client, aws, clock):
    opened = clock.now()
    review(client, aws, clock)
    clock.set(opened + timedelta(minutes=30))
    answered = record(client, "R1", "respond", note="电话联系，已致歉")
    assert answered.status_code == 200 and answered.json_body["status"] == "responded"
    assert answered.json_body["next_step"]["step"] == "escalated"
    assert timer_at(clock, opened, timedelta(minutes=61)) == 0  # responded: no late alert
    clock.set(opened + timedelta(hours=20))
    assert record(client, "R1", "resolve").json_body["status"] == "resolved"
    assert timer_at(clock, opened, timedelta(hours=24, minutes=1)) == 0  # resolved: no escalation
    assert timer_at(clock, opened, timedelta(hours=72)) == 1  # the follow-up is still due
    clock.set(opened + timedelta(hours=73))
    closed = record(client, "R1", "follow_up").json_body
    assert closed["status"] == "closed" and closed["next_step"] is None and closed["handled_by"] == "店长王"
    assert [line.split("】")[0] + "】" for _, line in robot_messages()] == ["【新差评】", "【差评回访提醒】"]


def test_a_late_response_still_counts_and_a_follow_up_before_72h_closes_the_ticket(client, aws, clock):
    opened = clock.now()
    review(client, aws, clock)
    assert timer_at(clock, opened, timedelta(hours=2)) == 1  # late
    clock.set(opened + timedelta(hours=3))
    assert record(client, "R1", "resolve").json_body["responded_at"] is not None  # resolving implies a response
    clock.set(opened + timedelta(hours=30))
    assert record(client, "R1", "follow_up").json_body["status"] == "closed"
    assert timer_at(clock, opened, timedelta(hours=80)) == 0
    assert Counter(line.split("】")[0] for _, line in robot_messages()) == {"【新差评": 1, "【差评超时未响应": 1}


def test_a_review_heard_of_late_is_judged_from_when_it_was_written(client, aws, clock):
    written = clock.now() - timedelta(hours=3)
    pos(client, aws, clock, "review", "oLate", review_id="R9", score=2, store_id="S002", at=written.isoformat())
    assert Ticket.get("R9").opened_at == written
    assert jobs.review_sla() == 1  # already past the 1 h response time
    assert robot_messages()[-1] == ("S002", "【差评超时未响应】S002 徐家汇店")


def test_recording_answers_clearly_and_never_moves_a_ticket_back(client, aws, clock):
    review(client, aws, clock)
    assert (
        client.http.post("/admin/tickets/R1", body="{}", headers={"Content-Type": "application/json"}).status_code
        == 401
    )
    assert record(client, "R404", "respond").status_code == 404
    bad = record(client, "R1", "apologise")
    assert bad.status_code == 400 and "action" in bad.json_body["reason"]
    assert record(client, "R1", "respond", by="").status_code == 400
    assert record(client, "R1", "respond", colour="red").status_code == 400
    assert record(client, "R1", "resolve").status_code == 200
    assert record(client, "R1", "resolve").json_body["status"] == "resolved"  # a retried request: same answer
    back = record(client, "R1", "respond")
    assert back.status_code == 409 and "resolved" in back.json_body["reason"]
    assert Ticket.get("R1").status == "resolved"
    shown = client.http.get("/admin/tickets/R1", headers=ADMIN)
    assert shown.status_code == 200 and shown.json_body["next_step"]["step"] == "follow_up"


def test_siyu_tickets_lists_and_records(client, aws, clock, capsys):
    review(client, aws, clock)
    review(client, aws, clock, review_id="R2", score=2, store_id="S003", openid="oOther")
    assert cli.main(["tickets"]) == 0
    listed = capsys.readouterr().out
    assert "R1" in listed and "R2" in listed and "next: late" in listed
    assert cli.main(["tickets", "respond", "R2", "--by", "小李"]) == 0
    assert "R2: responded" in capsys.readouterr().out
    assert cli.main(["tickets", "--status", "responded", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [t["ticket_id"] for t in shown] == ["R2"] and shown[0]["handled_by"] == "小李"
    assert cli.main(["tickets", "respond", "R404", "--by", "小李"]) == 1
    assert "no ticket R404" in capsys.readouterr().err


def test_the_sla_is_off_with_the_rule(client, aws, clock, monkeypatch, tmp_path):
    import shutil

    from chalicelib.rules import loader
    from tests.test_alerts import RULES

    directory = tmp_path / "rules"
    shutil.copytree(RULES, directory)
    data = json.loads((directory / "alerts.json").read_text(encoding="utf-8"))
    data["reviews"]["enabled"] = False
    (directory / "alerts.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SIYU_RULES_DIR", str(directory))
    loader.clear_cache()
    review(client, aws, clock)
    assert list(Ticket.scan()) == []


def test_the_weekly_digest_shows_the_weeks_negative_reviews_and_missed_deadlines(client, aws, clock):
    from chalicelib import runtime
    from chalicelib.metrics import digest

    opened = clock.now()
    review(client, aws, clock)
    review(client, aws, clock, review_id="R2", score=4, openid="oHappy")
    assert timer_at(clock, opened, timedelta(hours=25)) == 2  # a timer that missed a day: both steps at once
    monday = digest.week_of(digest.iso_week((opened + timedelta(hours=8)).date()))
    text = digest.build(runtime.context().rules(), monday, clock.now() + timedelta(days=7)).markdown
    assert "评价 2 条 · 差评 1（超时未响应 1 · 升级 1）" in text


def test_sla_times_out_of_order_are_refused_naming_the_file_and_field():
    from tests.test_rules_check import edit, good, messages

    found = messages(edit(good(), "alerts.json", lambda d: d["reviews"].update(resolve_hours=100)))
    assert any(m.startswith("alerts.json:") and "/reviews" in m and "in that order" in m for m in found), found


def test_duplicate_reviews_and_overlapping_timers_at_once_send_each_message_once(live):
    """The same review delivered three times at once over HTTP, then three SLA timers at once, on
    DynamoDB Local (atomic per item, as DynamoDB is)."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    import requests

    from chalicelib import settings
    from siyu.local import callbacks

    s, now = settings.current(), datetime.now(UTC)
    body = {"type": "review", "openid": "oAngry", "review_id": "RPAR", "score": 1, "store_id": "S002"}
    body["at"] = (now - timedelta(hours=2)).isoformat()  # written two hours ago: the 1 h alert is due
    posts = [callbacks.order_post(s, body, now) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        answers = list(
            pool.map(lambda r: requests.post(live.url + r.path, data=r.body, headers=r.headers, timeout=10), posts)
        )
    assert [a.status_code for a in answers] == [200, 200, 200]
    with ThreadPoolExecutor(3) as pool:
        queued = list(pool.map(lambda _: jobs.review_sla(), range(3)))
    assert sum(queued) == 1
    assert sorted(m.message_key for m in OutboxMessage.scan() if m.cause == "reviews") == [
        "ticket#RPAR#late",
        "ticket#RPAR#opened",
    ]
