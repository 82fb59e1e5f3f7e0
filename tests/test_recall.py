"""Recall sweeps: they read only the members due, survive being killed half-way, hold out a
stable share, attribute returns and redemptions to both arms, and the report's lift holds up
against a population whose true return rates are known."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chalicelib import executor, pipeline, runtime
from chalicelib.events import Event, Kind
from chalicelib.recall import report, silent, sweep
from chalicelib.state.models import Coupon, Member, OutboxMessage, Recall, Shared
from siyu import cli
from siyu.metering import Meter
from tests.helpers import use_rules

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: after the 09:30 sweep time
TODAY = date(2026, 11, 23)
RULES = Path(__file__).resolve().parent.parent / "rules"


@pytest.fixture
def rules_dir(tmp_path, monkeypatch):
    """``rules_dir(**changes)``: the bundled rules with recall.json changed, made active."""

    def use(**changes) -> Path:
        return use_rules(tmp_path, monkeypatch, {"recall.json": changes})

    return use


def lapsed(member_id: str, days: int, **extra) -> Member:
    """A member whose last activity was ``days`` local days before today (10:00 Shanghai)."""
    last = NOW - timedelta(days=days)
    values = {
        "origin": "oa",
        "subscribed": "yes",
        "store_id": "S001",
        "first_seen": last - timedelta(days=60),
        "last_active": last,
        "active_day": (TODAY - timedelta(days=days)).isoformat(),
    }
    return Member(member_id, **(values | extra))


def seed(members: list[Member]) -> None:
    with Member.batch_write() as batch:
        for member in members:
            batch.save(member)


def decisions() -> list[Recall]:
    return list(Recall.scan())


def activity(ctx, member_id: str, at: datetime, kind: Kind = Kind.MESSAGED, **data) -> None:
    event = Event(kind, f"evt-{member_id}-{at.timestamp()}-{kind.value}", "oa", at, member_id, data=data)
    pipeline.process(ctx, event)


# --- activity and the index -------------------------------------------------------------------


def test_activity_files_the_member_under_its_local_day_and_a_late_event_does_not_move_it_back(aws, clock):
    ctx = runtime.context()
    late_evening = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # 23:30 on the 22nd in Shanghai
    activity(ctx, "oDay", late_evening)
    assert Member.get("oDay").active_day == "2026-11-22"
    activity(ctx, "oDay", late_evening + timedelta(minutes=45))  # 00:15 on the 23rd
    assert Member.get("oDay").active_day == "2026-11-23"
    activity(ctx, "oDay", late_evening - timedelta(days=3))  # arrives late: changes nothing
    member = Member.get("oDay")
    assert member.active_day == "2026-11-23" and member.last_active == late_evening + timedelta(minutes=45)
    assert [m.member_id for m in Member.by_active_day.query("2026-11-23")] == ["oDay"]
    assert list(Member.by_active_day.query("2026-11-22")) == []


def test_an_order_records_its_local_day_and_counts_as_activity(aws, clock):
    ctx = runtime.context()
    paid = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # 01:00 on the 21st in Shanghai
    activity(ctx, "oBuyer", paid, Kind.ORDER_PAID, order_id="A1", amount_fen=1800, items=[])
    member = Member.get("oBuyer")
    assert member.order_days == {"2026-11-21"} and member.active_day == "2026-11-21"


# --- the sweep reads who is due, not the table ------------------------------------------------


def test_a_sweep_of_ten_thousand_members_with_a_hundred_due_reads_about_a_hundred(aws, clock):
    not_due_days = [d for d in range(1, 60) if d not in (7, 30)]
    population = [lapsed(f"oQuiet{i:05d}", not_due_days[i % len(not_due_days)]) for i in range(9_900)]
    population += [lapsed(f"oDue{i:03d}", 7) for i in range(100)]
    seed(population)
    with Meter() as meter:
        result = sweep.run(runtime.context())
    member_reads = meter.items_read["siyu-test-members"]
    assert result.finished and result.members_read == 100
    assert 100 <= member_reads <= 110, meter.items_read
    assert sum(result.decided.values()) == 100
    assert {r.member_id for r in decisions()} == {f"oDue{i:03d}" for i in range(100)}


def test_the_sweep_waits_for_its_time_of_day_and_runs_once_a_day(aws, clock):
    seed([lapsed("oEarly", 7)])
    clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # 09:00 Shanghai, before run_at 09:30
    assert sweep.run(runtime.context()).days == []  # the first sweep ever starts today, at 09:30
    clock.set(NOW)
    first = sweep.run(runtime.context())
    assert first.days == ["2026-11-23"] and first.decided["treated"] + first.decided["holdout"] == 1
    assert sweep.run(runtime.context()).days == []  # the 15-minute timer fires again: nothing to do
    assert len(decisions()) == 1


def test_missed_days_are_caught_up_a_few_days_back_only(aws, clock):
    clock.set(NOW - timedelta(days=10))
    sweep.run(runtime.context())  # swept ten days ago, then the timer stopped
    seed([lapsed("oMissed", 9), lapsed("oTooOld", 12)])  # due on the 21st and on the 18th
    clock.set(NOW)
    result = sweep.run(runtime.context())
    assert result.days == ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
    assert [r.member_id for r in decisions()] == ["oMissed"]


def test_a_sweep_killed_half_way_and_run_again_recalls_every_due_member_exactly_once(aws, clock, rules_dir):
    rules_dir(page_size=20)
    seed([lapsed(f"oHalf{i:03d}", 7) for i in range(100)])
    ctx = runtime.context()
    paused = sweep.run(ctx, max_pages=3)  # the Lambda's time budget runs out after 3 of 5 pages
    assert not paused.finished and paused.members_read == 60

    real_execute, calls = executor.execute, {"n": 0}

    def dies_after_the_fifth(*args, **kwargs):  # the container dies right after a member's commit
        calls["n"] += 1
        written = real_execute(*args, **kwargs)
        if calls["n"] == 5:
            raise RuntimeError("Lambda killed")
        return written

    sweep.executor.execute = dies_after_the_fifth
    try:
        with pytest.raises(RuntimeError):
            sweep.run(ctx)
    finally:
        sweep.executor.execute = real_execute
    resumed = sweep.run(ctx)
    assert resumed.finished
    found = decisions()
    assert len(found) == 100 and len({r.member_id for r in found}) == 100
    treated = {r.member_id for r in found if r.arm == "treated"}
    messages = [m for m in OutboxMessage.scan() if m.cause == "recall"]
    coupons = [c for c in Coupon.scan() if c.cause == "recall"]
    assert sorted(m.member_id for m in messages) == sorted(treated)
    assert sorted(c.member_id for c in coupons) == sorted(treated)
    assert sweep.run(ctx).days == []  # the day is marked swept


def test_a_crash_before_any_write_of_the_sweep_is_repaired_by_the_next_run(aws, clock, monkeypatch):
    import botocore.client

    seed([lapsed(f"oCrash{i}", 7) for i in range(3)])
    original = botocore.client.BaseClient._make_api_call
    writes = {"n": 0, "crash_at": None}

    def call(client, operation, params):
        if operation in ("PutItem", "UpdateItem", "TransactWriteItems"):
            writes["n"] += 1
            if writes["n"] == writes["crash_at"]:
                raise ConnectionError(f"injected before {operation}")
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    ctx = runtime.context()
    sweep.run(ctx)
    total = writes["n"]  # 3 member transactions + cursors + the day marker
    for crash_at in range(1, total + 1):
        for item in [*Recall.scan(), *OutboxMessage.scan(), *Coupon.scan(), *Shared.scan()]:
            item.delete()
        for member in Member.scan():
            Member(member.member_id).update(
                actions=[
                    Member.recall_open.remove(),
                    Member.recall_lapse.remove(),
                    Member.recall_attempts.remove(),
                    Member.recall_last_at.remove(),
                ]
            )
        writes.update(n=0, crash_at=crash_at)
        with pytest.raises(ConnectionError):
            sweep.run(ctx)
        writes["crash_at"] = None
        sweep.run(ctx)
        found = decisions()
        assert len(found) == 3, crash_at
        treated = sorted(r.member_id for r in found if r.arm == "treated")
        assert sorted(m.member_id for m in OutboxMessage.scan()) == treated, crash_at
        assert sorted(c.member_id for c in Coupon.scan()) == treated, crash_at


# --- who gets what ------------------------------------------------------------------------------


def test_the_holdout_is_about_the_configured_share_and_stable_within_a_lapse(aws, clock):
    seed([lapsed(f"oArm{i:04d}", 7) for i in range(300)])
    sweep.run(runtime.context())
    arms = {r.member_id: r.arm for r in decisions()}
    held = sum(arm == "holdout" for arm in arms.values())
    assert 15 <= held <= 45  # 10 % of 300 = 30, binomial sd ≈ 5.2
    assert not [m for m in OutboxMessage.scan() if arms[m.member_id] == "holdout"]
    # 23 days later the same lapse reaches the 30-day stage: every member stays in their arm
    later = sweep.run(runtime.context())
    assert later.days == []
    clock.set(NOW + timedelta(days=23))
    Shared("sweep", "recall").update(actions=[Shared.value.set((TODAY + timedelta(days=22)).isoformat())])
    sweep.run(runtime.context())
    thirty = {r.member_id: r.arm for r in decisions() if r.stage == "welcome_back_30d"}
    assert len(thirty) == 300 and all(thirty[m] == arms[m] for m in thirty)


def test_members_who_cannot_or_should_not_be_reached_are_skipped_with_the_reason(aws, clock):
    recently = NOW - timedelta(days=2)
    seed(
        [
            lapsed("oGone", 7, subscribed="no"),
            lapsed("oBlocked", 7, blocked="yes"),
            lapsed("oRefused", 7, refused_templates={"TPL-RECALL-OFFER"}),
            lapsed("oRested", 7, recall_last_at=recently),
            lapsed("oTried", 7, recall_lapse=(TODAY - timedelta(days=7)).isoformat(), recall_attempts=3),
            lapsed("oFine", 7),
        ]
    )
    sweep.run(runtime.context())
    found = {r.member_id: (r.arm, r.reason) for r in decisions()}
    assert found["oGone"] == ("skipped", "unsubscribed")
    assert found["oBlocked"] == ("skipped", "blocked")
    assert found["oRefused"] == ("skipped", "refused_template")
    assert found["oRested"] == ("skipped", "cooldown")
    assert found["oTried"] == ("skipped", "max_attempts")
    assert found["oFine"][0] in ("treated", "holdout")
    sent = {m.member_id for m in OutboxMessage.scan()}
    assert sent <= {"oFine"}


def test_a_treated_member_gets_the_stage_coupon_and_a_message_that_names_it(aws, clock):
    members = [lapsed(f"oT{i}", 7) for i in range(30)]
    seed(members)
    sweep.run(runtime.context())
    treated = next(r for r in decisions() if r.arm == "treated")
    coupon = Coupon.get(treated.coupon_code)
    message = OutboxMessage.get(treated.message_key)
    assert coupon.cause == "recall" and coupon.value_fen == 300 and coupon.stores == {"S001"}
    assert coupon.code in message.text and "静安寺店" in message.text and "3元关怀券" in message.text
    assert message.category == "promo" and message.template == "recall_offer" and message.channel == "custom"
    member = Member.get(treated.member_id)
    assert member.recall_open == {treated.key} and member.recall_attempts == 1


# --- returns and redemptions --------------------------------------------------------------------


def test_a_member_active_again_within_the_window_counts_as_returned_in_either_arm(aws, clock):
    seed([lapsed(f"oBack{i:03d}", 7) for i in range(80)])
    ctx = runtime.context()
    sweep.run(ctx)
    by_arm = {}
    for r in decisions():
        by_arm.setdefault(r.arm, r)
    treated, held = by_arm["treated"], by_arm["holdout"]
    clock.set(NOW + timedelta(days=3))
    activity(ctx, treated.member_id, NOW + timedelta(days=3))
    activity(ctx, held.member_id, NOW + timedelta(days=3), Kind.CLICKED)
    assert Recall.get(treated.member_id, treated.key).returned_at == NOW + timedelta(days=3)
    assert Recall.get(held.member_id, held.key).returned_at == NOW + timedelta(days=3)
    assert not Member.get(treated.member_id).recall_open
    others = [r for r in decisions() if r.member_id not in (treated.member_id, held.member_id)]
    late = others[0]
    clock.set(NOW + timedelta(days=31))
    activity(ctx, late.member_id, NOW + timedelta(days=31))  # after the 30-day window
    assert Recall.get(late.member_id, late.key).returned_at is None
    assert not Member.get(late.member_id).recall_open


def test_redeeming_a_recall_coupon_is_linked_to_the_recall(aws, clock):
    seed([lapsed(f"oRedeem{i}", 7) for i in range(20)])
    ctx = runtime.context()
    sweep.run(ctx)
    treated = next(r for r in decisions() if r.arm == "treated")
    at = NOW + timedelta(days=2)
    for _ in range(2):  # the POS retries
        activity(ctx, treated.member_id, at, Kind.COUPON_REDEEMED, coupon_code=treated.coupon_code, order_id="P9")
    linked = Recall.get(treated.member_id, treated.key)
    assert linked.redeemed_at == at and linked.redeemed_fen == 300 and linked.returned_at == at


# --- the report -----------------------------------------------------------------------------------


def test_newcombe_interval_matches_the_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10
    difference, low, high = report.newcombe(56, 70, 48, 80)
    assert round(difference, 4) == 0.2 and (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    difference, low, high = report.newcombe(9, 10, 3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1705, 0.8090)


def test_with_known_return_rates_the_reported_lift_interval_contains_the_true_lift(aws, clock, rules_dir):
    rules_dir(holdout_percent=20)  # a larger control group for a tighter interval
    seed([lapsed(f"oPop{i:04d}", 7) for i in range(1000)])
    ctx = runtime.context()
    sweep.run(ctx)
    chance = random.Random(7)
    clock.set(NOW + timedelta(days=5))
    calls = {"treated": 0, "holdout": 0}  # true rates: treated 30 %, held out 20 %: a lift of 10 points
    for r in decisions():
        if chance.random() < (0.30 if r.arm == "treated" else 0.20):
            calls[r.arm] += 1
            activity(ctx, r.member_id, NOW + timedelta(days=chance.randint(1, 20)))
    rows = report.summarize(report.records(TODAY, TODAY), NOW + timedelta(days=30))
    total = next(row for row in rows if row.stage == "care_7d" and row.store == report.ALL)
    assert total.due == 1000 and total.treated + total.holdout == 1000 and 160 <= total.holdout <= 240
    _, low, high = total.lift(min_sample=30)
    assert low < 0.10 < high and low > 0  # contains the true 10 points, and is significant
    # every return was attributed to its arm, none lost, none invented
    assert (total.returned_treated, total.returned_holdout) == (calls["treated"], calls["holdout"])
    assert "显著" in report.lift_text(total, 30)


def test_a_small_sample_says_so_instead_of_claiming_a_lift(aws, clock, capsys):
    seed([lapsed(f"oFew{i}", 7) for i in range(12)])
    ctx = runtime.context()
    sweep.run(ctx)
    for r in decisions():
        activity(ctx, r.member_id, NOW + timedelta(hours=2))
    assert cli.main(["recall", "report", "--since", "7d"]) == 0
    out = capsys.readouterr().out
    assert "care_7d | S001 | 12 | 0 |" in out and "样本不足（每组需≥30人）" in out
    assert "个百分点" not in out


def test_the_report_counts_due_skipped_sent_and_redemptions_per_stage_and_store(aws, clock, capsys):
    seed([lapsed(f"oS1-{i}", 7) for i in range(40)] + [lapsed(f"oS2-{i}", 7, store_id="S002") for i in range(40)])
    seed([lapsed("oS2-gone", 7, store_id="S002", subscribed="no")])
    ctx = runtime.context()
    sweep.run(ctx)
    treated = [r for r in decisions() if r.arm == "treated" and r.store_id == "S002"]
    activity(
        ctx, treated[0].member_id, NOW + timedelta(hours=3), Kind.COUPON_REDEEMED, coupon_code=treated[0].coupon_code
    )
    assert cli.main(["recall", "report", "--json"]) == 0
    rows = {(r["stage"], r["store"]): r for r in json.loads(capsys.readouterr().out)["rows"]}
    s2 = rows[("care_7d", "S002")]
    assert s2["due"] == 41 and s2["skipped"] == 1 and s2["skip_reasons"] == {"unsubscribed": 1}
    assert s2["treated"] + s2["holdout"] == 40 and s2["redeemed"] == 1 and s2["redeemed_fen"] == 300
    assert s2["cost_per_return_fen"] == 300.0
    assert rows[("care_7d", "全部")]["due"] == 81


# --- silent group members ---------------------------------------------------------------------


def test_silent_group_members_get_the_intercept_and_those_still_silent_are_listed_not_removed(aws, clock, capsys):
    group = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
    seed([lapsed(f"wmSilent{i:02d}", 30, origin="wecom", subscribed=None, groups={group}) for i in range(30)])
    ctx = runtime.context()
    sweep.run(ctx)
    found = decisions()
    assert {r.stage for r in found} == {"group_silent_30d"}
    treated = [r for r in found if r.arm == "treated"]
    assert {m.channel for m in OutboxMessage.scan()} == {"wecom_customer"}
    assert len(treated) == len(list(OutboxMessage.scan()))
    spoke = treated[0]
    clock.set(NOW + timedelta(days=2))
    activity(ctx, spoke.member_id, NOW + timedelta(days=2))
    clock.set(NOW + timedelta(days=5))
    assert silent.silent_members(ctx.rules(), clock.now()) == []  # inside the 7-day grace
    clock.set(NOW + timedelta(days=8))
    listed = silent.silent_members(ctx.rules(), clock.now())
    assert sorted(s.member_id for s in listed) == sorted(r.member_id for r in treated[1:])
    assert cli.main(["groups", "silent"]) == 0
    out = capsys.readouterr().out
    assert treated[1].member_id in out and spoke.member_id not in out and group in out
    assert len(list(Member.scan())) == 30  # nobody removed


# --- the low-repurchase challenge -------------------------------------------------------------


def order(ctx, member_id: str, at: datetime, order_id: str) -> None:
    event = Event(
        Kind.ORDER_PAID,
        f"order:{order_id}",
        "orders",
        at,
        member_id,
        store_id="S001",
        data={"order_id": order_id, "amount_fen": 1800, "items": []},
    )
    pipeline.process(ctx, event)


def challenge_member(prefix: str, arm: str) -> str:
    """A member known for 90 days (not new), in the wanted arm of the challenge holdout."""
    from chalicelib.rules.scope import bucket

    for i in range(200):
        member_id = f"{prefix}{i}"
        held = bucket("challenge-holdout#2026-11-23", member_id) < 10
        if held == (arm == "holdout"):
            Member(member_id, first_seen=NOW - timedelta(days=90), store_id="S001", origin="oa").save()
            return member_id
    raise AssertionError("no member found")


def test_three_days_in_a_row_earns_the_challenge_reward_once_counted_in_shanghai_days(aws, clock):
    ctx = runtime.context()
    member = challenge_member("oChal", "treated")
    first = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 on the 23rd
    order(ctx, member, first, "C1")
    opened = Recall.get(member, "2026-11-23#challenge")
    assert opened.arm == "treated" and Member.get(member).challenge == "2026-11-23#challenge"
    invitation = OutboxMessage.get(f"challenge#{member}#2026-11-23#challenge")
    assert "连续3天到店消费" in invitation.text and "2026年12月6日" in invitation.text
    order(ctx, member, datetime(2026, 11, 24, 15, 50, tzinfo=UTC), "C2")  # 23:50 on the 24th
    assert not [c for c in Coupon.scan() if c.cause == "challenge"]
    third = datetime(2026, 11, 24, 16, 10, tzinfo=UTC)  # 00:10 on the 25th (still the 24th in UTC)
    order(ctx, member, third, "C3")
    order(ctx, member, third + timedelta(hours=5), "C4")  # a fourth order the same day
    rewards = [c for c in Coupon.scan() if c.cause == "challenge"]
    assert len(rewards) == 1 and rewards[0].member_id == member and rewards[0].value_fen == 500
    assert Recall.get(member, "2026-11-23#challenge").returned_at == third
    assert OutboxMessage.get(f"challenge#{member}#2026-11-23#challenge#reward").text.startswith("挑战成功")


def test_a_utc_day_boundary_is_not_a_streak(aws, clock):
    ctx = runtime.context()
    member = challenge_member("oUtc", "treated")
    order(ctx, member, datetime(2026, 11, 23, 1, 0, tzinfo=UTC), "U1")  # 09:00 on the 23rd
    order(ctx, member, datetime(2026, 11, 23, 15, 0, tzinfo=UTC), "U2")  # 23:00 on the 23rd
    order(ctx, member, datetime(2026, 11, 23, 17, 0, tzinfo=UTC), "U3")  # 01:00 on the 24th
    # three UTC... two Shanghai days: not yet
    assert not [c for c in Coupon.scan() if c.cause == "challenge"]
    assert Member.get(member).order_days == {"2026-11-23", "2026-11-24"}


def test_a_held_out_member_is_not_invited_but_their_natural_streak_is_measured(aws, clock):
    ctx = runtime.context()
    member = challenge_member("oCtl", "holdout")
    for day in range(3):
        order(ctx, member, datetime(2026, 11, 23 + day, 4, 0, tzinfo=UTC), f"H{day}")
    record_ = Recall.get(member, "2026-11-23#challenge")
    assert record_.arm == "holdout" and record_.returned_at is not None
    assert not list(OutboxMessage.scan()) and not list(Coupon.scan())


def test_frequent_buyers_and_new_members_are_not_invited(aws, clock):
    ctx = runtime.context()
    order(ctx, "oNewcomer", NOW, "N1")  # first seen with this very order
    assert list(Recall.query("oNewcomer")) == []
    Member("oRegular", first_seen=datetime(2026, 8, 1, tzinfo=UTC)).save()
    order(ctx, "oRegular", datetime(2026, 11, 1, 4, 0, tzinfo=UTC), "R1")
    order(ctx, "oRegular", datetime(2026, 11, 10, 4, 0, tzinfo=UTC), "R2")
    invited = list(Recall.query("oRegular"))
    assert [r.key for r in invited] == ["2026-11-01#challenge"]  # two order days in 90: invited once
    order(ctx, "oRegular", datetime(2026, 12, 15, 4, 0, tzinfo=UTC), "R3")  # 3 order days now
    assert [r.key for r in Recall.query("oRegular")] == ["2026-11-01#challenge"]


def test_three_sweeps_running_at_once_recall_each_member_once(live):
    """Overlapping timer runs (or a manual ``siyu recall sweep`` during the timer's) over
    DynamoDB Local, atomic per item as DynamoDB is."""
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.clock import FixedClock

    local_morning = datetime.combine(datetime.now(UTC).astimezone(SHANGHAI).date(), datetime.min.time(), SHANGHAI)
    at = (local_morning + timedelta(hours=10)).astimezone(UTC)
    previous = runtime.use_clock(FixedClock(at))
    try:
        today = at.astimezone(SHANGHAI).date()
        seed(
            [
                lapsed(
                    f"oPar{i:02d}",
                    7,
                    last_active=at - timedelta(days=7),
                    active_day=(today - timedelta(days=7)).isoformat(),
                )
                for i in range(60)
            ]
        )
        # Three runs a millisecond apart, as overlapping runs are. (Two runs sending the very same
        # transaction, to the microsecond, are both told it committed: DynamoDB's idempotency for
        # one client request token, chalicelib/store/db.py. The work is done once all the same.)
        base = runtime.context()
        runs = [dataclasses.replace(base, clock=FixedClock(at + timedelta(milliseconds=n))) for n in range(3)]
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(sweep.run, runs))
    finally:
        runtime.use_clock(previous)
    found = [r for r in Recall.scan() if r.member_id.startswith("oPar")]
    assert len(found) == 60 and len({r.member_id for r in found}) == 60
    treated = sorted(r.member_id for r in found if r.arm == "treated")
    assert sorted(m.member_id for m in OutboxMessage.scan() if m.cause == "recall") == treated
    assert sorted(c.member_id for c in Coupon.scan() if c.cause == "recall") == treated
    assert sum(sum(r.decided[arm] for arm in ("treated", "holdout", "skipped")) for r in results) == 60


def test_a_member_changed_since_the_sweep_read_them_is_written_nowhere_and_decided_again(aws, clock):
    from chalicelib.recall.decide import decide

    seed([lapsed("oStale", 7)])
    stale = Member.get("oStale")
    Member("oStale").update(actions=[Member.recall_lapse.set("2026-11-16"), Member.recall_attempts.set(1)])
    rules = runtime.context().rules()
    decision = decide(stale, rules.recall.stages[0], rules, TODAY - timedelta(days=7), TODAY, NOW, "SYSTALE")
    assert decision.arm in ("treated", "holdout")
    from chalicelib.recall.decide import plan_of
    from chalicelib.store.db import Outcome

    assert executor.execute(plan_of(decision), "stale", NOW).outcome is Outcome.CONFLICT
    assert decisions() == [] and list(Coupon.scan()) == [] and list(OutboxMessage.scan()) == []
    sweep.run(runtime.context())  # the sweep reads the member again and decides on what is stored
    assert Member.get("oStale").recall_attempts == 2
