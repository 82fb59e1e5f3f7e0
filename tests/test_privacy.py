"""Privacy: ``siyu member erase`` / ``DELETE /admin/members/{id}`` removes or pseudonymizes a
member's personal data in every table, keeps the counters, the points ledger and the recall
report whole, is idempotent and resumable, and late events do not bring the member back.

The member lives a rich life through the real webhooks and timers first: follows through an
invite, texts a phone number, joins a store group, orders, refunds, redeems points with a note,
reviews, answers the NPS, gives a birthday, invites a friend, wins the check-in lottery, is a
brand helper, is recalled and comes back; messages go out through the sender to a fake WeChat.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib import jobs, ledger, logs, runtime
from chalicelib.delivery import sender
from chalicelib.privacy import erase, pseudonyms
from chalicelib.privacy.registry import REGISTRY, Policy
from chalicelib.recall import report, sweep
from chalicelib.state.models import (
    BASE_NAMES,
    MODELS,
    Coupon,
    Erasure,
    LoyaltyRecord,
    Member,
    Metric,
    OutboxMessage,
    Recall,
)
from siyu import cli
from siyu.local import callbacks
from tests.helpers import ADMIN, pos, send
from tests.test_faults import WRITES, Crash, faults  # noqa: F401  (the fixture)

ALICE = "oErAsEaLiCe_7f3a9c2e1b4d5a61"  # the member who asks to be forgotten
BOB = "oBoB_invited_by_alice_000002"  # followed through Alice's invite link
CAROL = "oCaRoL_invited_alice_0000003"  # Alice came through Carol's invite link
DAVE = "oDaVe_unrelated_member_00004"  # shares Alice's store group, nothing else
GROUP = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"  # S001's group in rules/stores.json
PHONE = "13812345678"
SENTENCE = "请把蓝色保温杯寄到我家楼下的快递柜"
BIRTHDAY = "1990-11-30"
SECRETS = (ALICE, PHONE, SENTENCE, BIRTHDAY)


def shanghai(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour - 8, minute, tzinfo=UTC)


def unix(clock) -> int:
    return int(clock.now().timestamp())


def oa(client, aws, clock, xml: str) -> None:
    response = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert response.status_code == 200, response.body


def follow(client, aws, clock, openid: str, inviter: str | None = None) -> None:
    scene = f"qrscene_st=S001&ch=invite&inv={inviter}" if inviter else "qrscene_st=S001&ch=poster"
    oa(client, aws, clock, callbacks.oa_event(openid, "subscribe", unix(clock), scene))


def say(client, aws, clock, openid: str, text: str, msg_id: int) -> None:
    oa(client, aws, clock, callbacks.oa_text(openid, text, unix(clock), msg_id))


def ok(response) -> None:
    assert response.status_code == 200, response.body


def join_group(client, aws, clock, members: list[str]) -> None:
    xml = callbacks.wecom_group_join(aws.wecom_corp_id, GROUP, members, unix(clock))
    ok(send(client, callbacks.wecom_post(aws, xml, clock.now())))


def order(client, aws, clock, openid: str, order_id: str, fen: int) -> None:
    item = {"sku": "CUP-1", "category": "TEA", "series": "SERIES-SIGNATURE", "price_fen": fen}
    ok(pos(client, aws, clock, "order_paid", openid, order_id=order_id, amount_fen=fen, store_id="S001", items=[item]))


@pytest.fixture(autouse=True, scope="module")
def logs_bound_to_the_session_stderr():
    """The JSON log handler keeps the stderr it is created with: create it before a test's capsys
    swaps in a stream that closes with the test."""
    logs.configure()


def send_outbox(member_id: str) -> None:
    ctx = runtime.context()
    for message in OutboxMessage.by_member.query(member_id):
        sender.deliver(ctx, message.message_key)


def life(client, aws, clock) -> None:
    """Alice's (and her friends') months with the chain, through the webhooks and the timers."""
    clock.set(shanghai(10, 5))  # Monday of 2026-W41
    follow(client, aws, clock, CAROL)
    order(client, aws, clock, CAROL, "C-O1", 20_000)  # unlocks Carol's invite link
    follow(client, aws, clock, DAVE)
    clock.advance(timedelta(minutes=5))
    follow(client, aws, clock, ALICE, inviter=CAROL)
    say(client, aws, clock, ALICE, f"你好，我的电话是{PHONE}，{SENTENCE}", 9001)
    say(client, aws, clock, ALICE, "签到", 9002)
    say(client, aws, clock, DAVE, "签到", 9003)
    join_group(client, aws, clock, [ALICE, DAVE])
    for day in range(1, 4):
        clock.advance(timedelta(days=1))
        order(client, aws, clock, ALICE, f"A-O{day}", 30_000)
        ok(pos(client, aws, clock, "checked_in", ALICE, checkin_id=f"ck{day}"))
    ok(pos(client, aws, clock, "order_refunded", ALICE, order_id="A-O1", refund_id="R1", amount_fen=10_000))
    ok(pos(client, aws, clock, "points_redeemed", ALICE, redemption_id="X1", points=50, reason=f"call {PHONE}"))
    ok(pos(client, aws, clock, "review", ALICE, review_id="RV1", order_id="A-O2", score=2))
    ok(pos(client, aws, clock, "nps", ALICE, answer_id="N1", score=9))
    ok(pos(client, aws, clock, "profile_updated", ALICE, update_id="P1", birthday=BIRTHDAY))
    follow(client, aws, clock, BOB, inviter=ALICE)
    order(client, aws, clock, DAVE, "D-O1", 5_000)
    send_outbox(ALICE)
    clock.set(shanghai(10, 17))
    jobs.run_loyalty_day()  # Bob's invite counts after the grace period: Alice's reward; the W41 lottery
    clock.set(shanghai(11, 1, 9))
    jobs.run_loyalty_day()  # October's brand helpers, November's birthdays
    clock.set(shanghai(11, 7))
    sweep.run(runtime.context())  # 30 days since Alice's last visit: the group stage
    clock.set(shanghai(11, 8))
    say(client, aws, clock, ALICE, "我回来啦", 9004)  # back within the window
    recall = next(iter(Recall.query(ALICE)), None)
    if recall is not None and recall.coupon_code:
        ok(pos(client, aws, clock, "coupon_redeemed", ALICE, coupon_code=recall.coupon_code, order_id="A-O9"))
    send_outbox(ALICE)
    send_outbox(DAVE)


def count_writes(work) -> int:
    import botocore.client

    counted = {"n": 0}
    original = botocore.client.BaseClient._make_api_call

    def count(client_, operation, params):
        if client_.meta.service_model.service_name == "dynamodb" and operation in WRITES:
            counted["n"] += 1
        return original(client_, operation, params)

    botocore.client.BaseClient._make_api_call = count
    try:
        work()
    finally:
        botocore.client.BaseClient._make_api_call = original
    return counted["n"]


def rows() -> dict[tuple[str, str], str]:
    """Every item of every table, raw (undeclared counters included), by table and key."""
    found = {}
    for model in MODELS:
        connection = model._get_connection()
        keys = [model._hash_keyname, *([model._range_keyname] if model._range_keyname else [])]
        names = [model.get_attributes()[k].attr_name for k in keys]
        start = None
        while True:
            page = connection.scan(exclusive_start_key=start, consistent_read=True)
            for item in page.get("Items", []):
                key = json.dumps([item[n] for n in names], sort_keys=True)
                found[(BASE_NAMES[model], key)] = json.dumps(item, sort_keys=True, ensure_ascii=False)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    return found


def quoting(found: dict[tuple[str, str], str], *needles: str) -> dict[tuple[str, str], str]:
    return {key: text for key, text in found.items() if any(n in text or n in key[1] for n in needles)}


def totals() -> dict[tuple[str, str], str]:
    return {key: text for key, text in rows().items() if key[0] == "metrics" and "active#" not in key[1]}


def recall_report() -> list[dict]:
    now = runtime.context().clock.now()
    decisions = report.records(date(2026, 10, 1), date(2026, 12, 31))
    return [row.as_dict(30) for row in report.summarize(decisions, now)]


# --- the registry ------------------------------------------------------------------------------


def test_every_bound_table_declares_its_erase_policy():
    from chalicelib.state import binding

    declared = {policy.table for policy in REGISTRY}
    missing = [model.__name__ for model in binding.MODELS if model not in declared]
    assert not missing, f"add a Policy to chalicelib/privacy/registry.py for {missing}"
    steps = [policy.name for policy in REGISTRY]
    assert len(steps) == len(set(steps)), "each step has its own name (the erase's checkpoint)"
    assert all(policy.why for policy in REGISTRY)


def test_the_id_is_replaced_where_it_stands_whole_never_inside_a_longer_id():
    body = '{"member_id":"oA1","inviter":"oA10","event_id":"oa:evt:17-oA1-qrscene_inv=oA1-subscribe"}'
    assert pseudonyms.substitute(body, "oA1", "P") == (
        '{"member_id":"P","inviter":"oA10","event_id":"oa:evt:17-P-qrscene_inv=P-subscribe"}'
    )
    assert pseudonyms.substitute({"oA1", "x#oA1#2026"}, "oA1", "P") == {"P", "x#P#2026"}
    assert pseudonyms.mentions(["a", "oA1"], "oA1") and not pseudonyms.mentions("oA10", "oA1")


def test_pseudonyms_are_stable_per_erase_and_unrelated_across_erases_and_secrets():
    first = pseudonyms.pseudonym("s", ALICE, 1)
    assert first == pseudonyms.pseudonym("s", ALICE, 1) and first.startswith("erased_")
    assert first != pseudonyms.pseudonym("s", ALICE, 2) != pseudonyms.pseudonym("t", ALICE, 1)
    assert ALICE not in first and ALICE not in pseudonyms.subject("s", ALICE)


# --- the erase ---------------------------------------------------------------------------------


def test_an_erased_member_appears_in_no_table_the_numbers_stay_whole_and_erasing_again_changes_nothing(
    client, aws, clock, wechat, capsys
):
    life(client, aws, clock)
    before = rows()
    assert len(quoting(before, ALICE)) > 40, "the life left Alice's id all over the tables"
    assert quoting(before, PHONE) and quoting(before, SENTENCE) and quoting(before, BIRTHDAY)
    metrics_before, report_before = totals(), recall_report()
    drawn = json.loads(LoyaltyRecord.get("lottery#2026-W41", "draw").value)
    assert ALICE in drawn["entrants"] and ALICE in drawn["winners"]
    clock.set(shanghai(11, 20))

    result = erase.erase(runtime.context(), ALICE, requested_by="test")

    after = rows()
    assert quoting(after, *SECRETS) == {}, "the id, the phone, the sentence and the birthday are gone"
    p = result.pseudonym
    for key, text in before.items():  # what did not quote Alice is exactly as it was
        if not quoting({key: text}, *SECRETS):
            assert after.get(key) == text, key
    changed = [key for key, text in after.items() if before.get(key) != text]
    subject = pseudonyms.subject(aws.privacy_secret, ALICE)
    tombstone = ("shared", json.dumps([{"S": "erased"}, {"S": subject}], sort_keys=True))  # the guard's: no id
    assert all(p in after[key] or key[0] in ("points", "erasures") or key == tombstone for key in changed), (
        "else: the pseudonym"
    )
    assert totals() == metrics_before, "every counter, cohort and total unchanged"
    assert recall_report() == report_before
    assert ledger.audit()[1] == [] and cli.main(["points", "audit"]) == 0
    assert ledger.balance_of(p).points == 0 and ledger.entry(p, "erase").cause == "erase"
    assert Member.get(BOB).inviter == p and Member.get(BOB).subscribed == "yes"
    assert Member.get(DAVE).groups == {GROUP}
    assert result.status == "completed" and result.tables["members"] == {"deleted": 1, "rewritten": 1}
    assert result.tables["events"]["deleted"] >= 15 and result.tables["outbox"]["deleted"] >= 5
    assert result.tables["points"]["pseudonymized"] >= 10 and result.tables["points"]["forfeited"] == 1
    assert result.tables["coupons"]["pseudonymized"] >= 5 and result.tables["recalls"] == {"pseudonymized": 1}
    assert result.tables["loyalty"]["deleted"] >= 8 and result.tables["metrics"]["deleted"] >= 4
    assert result.tables["rules"] == {} and result.tables["alerts"] == {}
    [record] = Erasure.scan()
    assert record.pseudonym == p and record.status == "completed" and record.requested_by == "test"

    capsys.readouterr()  # the week's lottery is still reproduced from its seed and recorded pool
    assert cli.main(["checkin", "lottery", "--week", "2026-W41"]) == 0
    assert "reproduced from the seed and entrants: yes" in capsys.readouterr().out
    again = json.loads(LoyaltyRecord.get("lottery#2026-W41", "draw").value)
    assert again["entrants"] == [p if e == ALICE else e for e in drawn["entrants"]]

    clock.advance(timedelta(hours=1))
    assert erase.erase(runtime.context(), ALICE, requested_by="test") == result
    assert rows() == after


# --- crashes and re-runs -----------------------------------------------------------------------


def msg_id(tag: str) -> int:
    return zlib.crc32(tag.encode()) % 10**8


def small_life(client, aws, clock, openid: str, tag: str) -> None:
    """A shorter life, for the crash loops: every kind of table still gets a row of the member."""
    follow(client, aws, clock, openid)
    say(client, aws, clock, openid, f"电话{PHONE}，{SENTENCE}", msg_id(tag))
    say(client, aws, clock, openid, "签到", msg_id(tag) + 1)
    join_group(client, aws, clock, [openid])
    order(client, aws, clock, openid, f"O-{tag}", 30_000)
    ok(pos(client, aws, clock, "points_redeemed", openid, redemption_id=f"X-{tag}", points=20, reason=f"call {PHONE}"))
    ok(pos(client, aws, clock, "profile_updated", openid, update_id="P1", birthday=BIRTHDAY))
    follow(client, aws, clock, f"oFriendOf{tag}", inviter=openid)


def crash_after(step: str | None) -> tuple[Policy, ...]:
    """The registry with an exception injected right after ``step`` (None: before the first)."""

    def boom(e):
        raise RuntimeError(f"injected after {step}")

    crash = Policy(Metric, REGISTRY[0].action, boom, "injected crash", step=f"crash-after-{step}")
    out: list[Policy] = [] if step else [crash]
    for policy in REGISTRY:
        out.append(policy)
        if policy.name == step:
            out.append(crash)
    return tuple(out)


def test_an_erase_that_crashes_between_steps_again_and_again_is_finished_by_each_next_run(client, aws, clock):
    clock.set(shanghai(10, 5))
    small_life(client, aws, clock, "oTwin0000", "twin")
    small_life(client, aws, clock, "oCrashed0", "crashed")
    clean = erase.erase(runtime.context(), "oTwin0000", requested_by="test")
    steps = [None, *(policy.name for policy in REGISTRY if policy.find is not None)]
    for step in steps:  # each run resumes from the checkpoint and dies after the next step
        with pytest.raises(RuntimeError, match="injected"):
            erase.erase(runtime.context(), "oCrashed0", requested_by="test", policies=crash_after(step))
        [record] = [r for r in Erasure.scan() if r.status == "in_progress"]
        assert step is None or step in record.steps_done
        assert quoting(rows(), "oCrashed0") != {}, "the crash left the erase unfinished"
    finished = erase.erase(runtime.context(), "oCrashed0", requested_by="test")
    assert finished.status == "completed" and finished.tables == clean.tables
    assert quoting(rows(), "oCrashed0", PHONE, SENTENCE, BIRTHDAY) == {}


def test_an_erase_killed_before_any_of_its_writes_ends_like_one_that_never_crashed(
    client,
    aws,
    clock,
    faults,  # noqa: F811
):
    clock.set(shanghai(10, 5))
    small_life(client, aws, clock, "oTwin0000", "twin")
    small_life(client, aws, clock, "oKilled00", "killed")
    clean = []
    writes = count_writes(lambda: clean.append(erase.erase(runtime.context(), "oTwin0000", requested_by="test")))
    assert writes > 40
    killed = 0
    for n in range(1, writes + 1):  # killed at its 1st write, the re-run at its 2nd, the next at its 3rd …
        faults.arm(n)
        try:
            finished = erase.erase(runtime.context(), "oKilled00", requested_by="test")
        except Crash:
            killed += 1
            continue
        finally:
            faults.arm(None)
        break
    assert killed > 5 and finished.status == "completed" and finished.tables == clean[0].tables
    assert quoting(rows(), "oKilled00", PHONE, SENTENCE, BIRTHDAY) == {}


# --- after the erase: late events, a member who comes back --------------------------------------


def day_counts(day: str) -> dict[str, int]:
    raw = Metric._get_connection().get_item("chain", day, consistent_read=True).get("Item", {})
    return {name: int(value["N"]) for name, value in raw.items() if "N" in value}


def test_late_events_from_before_the_erase_do_not_bring_the_member_back(client, aws, clock):
    clock.set(shanghai(10, 5))
    small_life(client, aws, clock, ALICE, "a")
    phone_message = callbacks.oa_text(ALICE, f"电话{PHONE}，{SENTENCE}", unix(clock), msg_id("a"))
    at, paid = clock.now(), {"order_id": "O-a", "amount_fen": 30_000, "store_id": "S001"}
    clock.advance(timedelta(hours=1))
    erase.erase(runtime.context(), ALICE, requested_by="test")
    counted, state = day_counts("2026-10-05"), rows()

    oa(client, aws, clock, phone_message)  # WeChat's late retry of the message
    payload = {"type": "order_paid", "openid": ALICE, "at": at.isoformat(), **paid}
    ok(send(client, callbacks.order_post(aws, payload, clock.now())))  # the POS replays the order
    oa(client, aws, clock, callbacks.oa_event(ALICE, "unsubscribe", unix(clock)))  # not an activity: dropped too
    jobs.redrive_stalled_events()

    assert rows() == state and day_counts("2026-10-05") == counted


def test_a_follow_after_the_erase_is_a_new_member_without_a_second_welcome_gift(client, aws, clock):
    clock.set(shanghai(10, 5))
    small_life(client, aws, clock, ALICE, "a")
    first = erase.erase(runtime.context(), ALICE, requested_by="test")
    clock.set(shanghai(10, 6))
    follow(client, aws, clock, ALICE)
    member = Member.get(ALICE)
    assert member.first_seen == clock.now() and member.birthday is None and not member.groups
    assert day_counts("2026-10-06")["new_members"] == 1
    assert list(Coupon.by_member.query(ALICE)) == [], "the welcome code of this account is in the register"
    assert [c.cause for c in Coupon.by_member.query(first.pseudonym)] == ["welcome"]

    second = erase.erase(runtime.context(), ALICE, requested_by="test")
    assert second.erasure == 2 and second.pseudonym != first.pseudonym
    assert quoting(rows(), ALICE) == {} and len(list(Erasure.scan())) == 2


def test_while_the_erase_runs_the_members_events_are_answered_503_and_dropped_afterwards(client, aws, clock):
    clock.set(shanghai(10, 5))
    small_life(client, aws, clock, ALICE, "a")
    with pytest.raises(RuntimeError):
        erase.erase(runtime.context(), ALICE, requested_by="test", policies=crash_after("outbox"))
    assert Member.get(ALICE).erasing == "yes"
    message = callbacks.oa_text(ALICE, "还在吗", unix(clock), 777)
    assert send(client, callbacks.oa_post(aws, message, clock.now())).status_code == 503
    clock.advance(timedelta(minutes=1))
    erase.erase(runtime.context(), ALICE, requested_by="test")
    oa(client, aws, clock, message)  # WeChat's retry
    clock.advance(timedelta(minutes=5))
    jobs.redrive_stalled_events()
    assert quoting(rows(), ALICE, "还在吗") == {}


# --- the command and the admin route ------------------------------------------------------------


def test_the_cli_erases_prints_the_counts_and_says_unknown_or_busy_with_its_exit_status(client, aws, clock, capsys):
    clock.set(shanghai(10, 5))
    small_life(client, aws, clock, ALICE, "a")
    capsys.readouterr()
    assert cli.main(["member", "erase", ALICE, "--dry-run"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["status"] == "planned" and planned["erased"] is False and quoting(rows(), ALICE) != {}

    assert cli.main(["member", "erase", ALICE]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["status"] == "completed" and done["erased"] is True and done["pseudonym"] == planned["pseudonym"]
    assert done["tables"] == planned["tables"], "the dry run counts what the erase then changes"
    assert ALICE not in json.dumps(done)

    assert cli.main(["member", "erase", ALICE]) == 0  # again: the same answer
    assert json.loads(capsys.readouterr().out) == done
    assert cli.main(["member", "erase", "oNobody"]) == 1
    assert "no member oNobody" in capsys.readouterr().err

    small_life(client, aws, clock, DAVE, "d")
    with pytest.raises(RuntimeError):  # a run that died without giving its lease back
        erase.erase(runtime.context(), DAVE, requested_by="test", policies=crash_after("events"))
    subject = pseudonyms.subject(aws.privacy_secret, DAVE)
    Erasure(subject, 1).update(actions=[Erasure.lease.set("dead"), Erasure.lease_until.set(clock.now() + erase.LEASE)])
    assert cli.main(["member", "erase", DAVE]) == 3
    assert "running" in capsys.readouterr().err
    clock.advance(erase.LEASE + timedelta(seconds=1))  # the lease runs out: the next run takes over
    assert cli.main(["member", "erase", DAVE]) == 0


def test_the_admin_route_erases_with_the_admin_credential_only(client, aws, clock, monkeypatch):
    clock.set(shanghai(10, 5))
    small_life(client, aws, clock, ALICE, "a")
    path = f"/admin/members/{ALICE}"
    assert client.http.delete(path).status_code == 401
    assert client.http.delete(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    unknown = client.http.delete("/admin/members/oNobody", headers=ADMIN)
    assert unknown.status_code == 404 and json.loads(unknown.body)["error"] == "not_found"
    assert quoting(rows(), ALICE) != {}

    monkeypatch.setattr(erase, "API_BUDGET_S", 0.0)  # a member too big for one call
    paused = client.http.delete(path, headers=ADMIN)
    assert paused.status_code == 202 and json.loads(paused.body)["status"] == "in_progress"
    monkeypatch.setattr(erase, "API_BUDGET_S", 6.0)
    answer = client.http.delete(path, headers=ADMIN)
    assert answer.status_code == 200, answer.body
    body = json.loads(answer.body)
    assert body["erased"] is True and body["tables"]["members"] == {"deleted": 1, "rewritten": 1}
    assert set(body["tables"]) == set(BASE_NAMES.values())
    assert client.http.delete(path, headers=ADMIN).body == answer.body
    assert client.http.get(path, headers=ADMIN).status_code == 404
    assert quoting(rows(), ALICE) == {}


# --- logs ---------------------------------------------------------------------------------------


def test_logs_never_carry_what_members_typed_nor_their_phone_numbers(client, aws, clock, siyu_logs):
    clock.set(shanghai(10, 5))
    follow(client, aws, clock, ALICE)
    say(client, aws, clock, ALICE, f"你好，我的电话是{PHONE}，{SENTENCE}", 4242)
    order(client, aws, clock, ALICE, "L-O1", 12_000)
    with_phone = pos(client, aws, clock, "order_paid", ALICE, order_id="L-O2", amount_fen=100, phone=PHONE)
    assert with_phone.status_code == 400  # the order body has no phone field: refused, not stored
    assert pos(client, aws, clock, "profile_updated", ALICE, update_id="U1", birthday=PHONE).status_code == 400
    ok(pos(client, aws, clock, "profile_updated", ALICE, update_id="U2", birthday=BIRTHDAY))
    ok(pos(client, aws, clock, "points_redeemed", ALICE, redemption_id="L-X1", points=10, reason=f"tel {PHONE}"))
    assert quoting(rows(), PHONE) != {}, "the note of a redemption keeps what the POS sent, until an erase"
    erase.erase(runtime.context(), ALICE, requested_by="test")

    written = siyu_logs.getvalue()
    assert '"event.processed"' in written and '"privacy.erased"' in written and '"request.rejected"' in written
    assert PHONE not in written and SENTENCE not in written and "你好" not in written
    erased_line = next(line for line in written.splitlines() if '"privacy.erased"' in line)
    assert ALICE not in erased_line


def test_a_local_table_made_before_the_erase_indexes_gets_them_when_the_tables_are_created_again(aws):
    from chalicelib.state import binding

    client = Member._get_connection().connection.client
    drop = [{"Delete": {"IndexName": "by_inviter"}}]
    client.update_table(TableName=Member.Meta.table_name, GlobalSecondaryIndexUpdates=drop)
    assert "by_inviter" not in {i["IndexName"] for i in Member.describe_table()["GlobalSecondaryIndexes"]}
    Member("oInvitee", inviter="oInviter").save()
    assert binding.create_tables(aws) == [f"{Member.Meta.table_name}.by_inviter"]
    assert [m.member_id for m in Member.by_inviter.query("oInviter")] == ["oInvitee"]
    assert binding.create_tables(aws) == []
