"""The outbox and its senders against the fake WeChat, over the local stack's DynamoDB Local
(the real engine's per-item atomicity, nothing in front of it: concurrency claims are tested
against real concurrency)."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import executor, plans, runtime
from chalicelib.clock import FixedClock
from chalicelib.delivery import api, sender
from chalicelib.rules import loader
from chalicelib.state.models import Member, OutboxMessage, Shared
from siyu.local.fake_wechat import HANG

TEMPLATE_PATH = "/cgi-bin/message/template/send"
CUSTOM_PATH = "/cgi-bin/message/custom/send"
ROBOT_PATH = "/cgi-bin/webhook/send"
DAYTIME = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: not quiet, before business hours


@pytest.fixture
def outbox(live, monkeypatch):
    monkeypatch.setenv("SIYU_OUTBOX_QUEUE", "off")  # the test drives the senders itself
    clock = FixedClock(DAYTIME)
    previous = runtime.use_clock(clock)
    api.clear_memory()
    loader.clear_cache()
    yield live, clock
    runtime.use_clock(previous)
    api.clear_memory()


def member(member_id: str, **attributes) -> None:
    Member(member_id, subscribed="yes", store_id="S001", **attributes).save()


def record(
    key: str,
    member_id: str,
    *,
    channel="template",
    category="service",
    text="您的券快到期了",
    template="welcome_gift",
    clock=None,
    expires_at=None,
    payload=None,
    cause="test",
) -> str:
    now = clock.now() if clock else DAYTIME
    message = plans.QueueMessage(
        message_key=key,
        member_id=member_id,
        channel=channel,
        category=category,
        text=text,
        cause=cause,
        event_id="evt",
        rules_version="v-test",
        payload=payload or {"title": "新人礼券", "value": "9.9", "code": "SYABC", "expires": "2026年12月23日"},
        template=template,
        store_id="S001",
        expires_at=expires_at,
    )
    executor.execute([message], key, now)
    return key


def deliver(key: str) -> sender.Outcome:
    return sender.deliver(runtime.context(), key)


def status(key: str) -> OutboxMessage:
    return OutboxMessage.get(key, consistent_read=True)


def test_a_template_message_is_sent_once_with_its_response_stored(outbox):
    live, _clock = outbox
    member("oT1")
    record("m1", "oT1")
    assert deliver("m1").status == "sent"
    [sent] = live.wechat.sent(TEMPLATE_PATH)
    assert sent["body"]["template_id"] == "TPL-WELCOME-GIFT" and sent["body"]["data"]["amount2"]["value"] == "9.9元"
    assert len(sent["body"]["client_msg_id"]) == 32
    message = status("m1")
    assert message.wechat_msgid and message.cost_fen == 10 and message.sent_channel == "template"
    assert deliver("m1").status == "sent" and len(live.wechat.sent(TEMPLATE_PATH)) == 1


def test_the_same_key_sends_once_under_concurrent_senders(outbox):
    live, _ = outbox
    member("oT2")
    record("m2", "oT2")
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: deliver("m2").status, range(8)))
    assert outcomes.count("sent") >= 1
    assert len(live.wechat.sent(TEMPLATE_PATH)) == 1


def test_a_cap_holds_under_20_concurrent_duties_targeting_one_member(outbox):
    live, clock = outbox
    member("oCap")
    keys = [record(f"promo-{i}", "oCap", category="promo", clock=clock) for i in range(20)]
    clock.set(datetime(2026, 11, 23, 13, 30, tzinfo=UTC))  # 21:30 Shanghai: promotions allowed
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(lambda k: deliver(k).status, keys))
    assert outcomes.count("sent") == 1  # messaging.json: promo per_day 1
    assert outcomes.count("dropped") == 19
    assert len(live.wechat.sent(TEMPLATE_PATH)) == 1
    day = Shared.get("count", "cap#oCap#promo#2026-11-23")
    assert day.tally == 1


def test_quiet_hour_messages_are_deferred_then_released_spread_over_the_window(outbox):
    live, clock = outbox
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # 23:00 Shanghai
    keys = []
    for i in range(30):
        member(f"oQ{i}")
        keys.append(record(f"night-{i}", f"oQ{i}", clock=clock))
    outcomes = [deliver(key) for key in keys]
    assert {o.status for o in outcomes} == {"deferred"} and live.wechat.sent() == []
    releases = sorted(status(key).not_before for key in keys)
    window_end = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert releases[0] >= window_end and releases[-1] < window_end + timedelta(minutes=60)
    assert releases[-1] - releases[0] > timedelta(minutes=30), "spread over the window, not one burst"
    clock.set(window_end + timedelta(minutes=30))
    sent_now = [deliver(key).status for key in keys].count("sent")
    assert 5 < sent_now < 25  # only those whose slot has come
    clock.set(window_end + timedelta(minutes=61))
    for key in keys:
        deliver(key)
    assert len(live.wechat.sent(TEMPLATE_PATH)) == 30


def test_the_release_timer_requeues_only_due_messages(outbox):
    _live, clock = outbox
    member("oR")
    record("due-now", "oR", clock=clock)
    clock.advance(timedelta(minutes=2))  # past the pick-up grace
    from chalicelib.delivery import queue

    while not queue.LOCAL.empty():
        queue.LOCAL.get_nowait()
    import os

    os.environ["SIYU_OUTBOX_QUEUE"] = "local"
    try:
        assert sender.release_due(runtime.context()) == 1
        assert queue.LOCAL.get_nowait() == ["due-now"]
    finally:
        os.environ["SIYU_OUTBOX_QUEUE"] = "off"


def test_a_deferred_offer_that_ends_before_morning_is_dropped(outbox):
    _, clock = outbox
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    member("oE")
    record("late", "oE", clock=clock, expires_at=datetime(2026, 11, 23, 20, 0, tzinfo=UTC))
    outcome = deliver("late")
    assert outcome.status == "dropped" and "expired" in outcome.reason


def test_a_40001_triggers_exactly_one_token_refetch(outbox):
    live, _ = outbox
    member("oTok")
    record("tok-1", "oTok")
    assert deliver("tok-1").status == "sent"
    fetched = live.wechat.token_calls["normal"]
    live.wechat.invalidate_token()  # e.g. another system force-refreshed
    record("tok-2", "oTok")
    assert deliver("tok-2").status == "sent"
    assert live.wechat.token_calls["normal"] == fetched + 1 and live.wechat.token_calls["force"] == 0
    live.wechat.inject(TEMPLATE_PATH, 40001, 40001)  # refused even after the refetch: no loop
    record("tok-3", "oTok")
    outcome = deliver("tok-3")
    assert outcome.status == "failed" and live.wechat.token_calls["normal"] == fetched + 2
    # WeChat refused a token it still hands out in normal mode: one force refresh, behind the lock.
    assert live.wechat.token_calls["force"] == 1
    assert Shared.get("count", "force_refresh#wxb11529c136998cb6#2026-11-23").tally == 1


def test_force_refresh_respects_its_daily_budget(outbox):
    live, _ = outbox
    member("oFb")
    record("fb-0", "oFb")
    deliver("fb-0")
    Shared("count", "force_refresh#wxb11529c136998cb6#2026-11-23", tally=20).save()
    live.wechat.inject(TEMPLATE_PATH, 40001)
    record("fb-1", "oFb")
    outcome = deliver("fb-1")
    assert outcome.status == "retrying" and "force-refresh budget" in outcome.reason
    assert live.wechat.token_calls["force"] == 0


def test_transient_errors_back_off_then_dead_letter_with_one_ops_alert(outbox):
    live, clock = outbox
    member("oBusy")
    live.wechat.inject(TEMPLATE_PATH, *([-1] * 10))
    record("busy", "oBusy")
    seen = []
    for _ in range(5):
        outcome = deliver("busy")
        seen.append(outcome.status)
        message = status("busy")
        if outcome.status == "retrying":
            assert message.not_before > clock.now()
            clock.set(message.not_before)
    assert seen == ["retrying", "retrying", "retrying", "retrying", "failed"]
    alerts = [m for m in OutboxMessage.scan() if m.category == "alert"]
    assert len(alerts) == 1 and alerts[0].message_key == "alert#dead#busy"
    assert deliver("busy").status == "failed"  # final: no second alert
    assert len([m for m in OutboxMessage.scan() if m.category == "alert"]) == 1
    assert deliver("alert#dead#busy").status == "sent" and live.wechat.sent(ROBOT_PATH)


def test_customer_service_messages_only_inside_the_window_else_the_template(outbox):
    live, clock = outbox
    member("oIn", service_window_until=clock.now() + timedelta(hours=1))
    member("oOut")
    record("cs-in", "oIn", channel="custom", text="您好，您的订单已备好")
    record("cs-out", "oOut", channel="custom", text="您好，您的订单已备好")
    assert deliver("cs-in").status == "sent" and len(live.wechat.sent(CUSTOM_PATH)) == 1
    assert deliver("cs-out").status == "sent" and status("cs-out").sent_channel == "template"
    live.wechat.inject(CUSTOM_PATH, 45015)  # WeChat disagrees about the window: fall back
    record("cs-late", "oIn", channel="custom", text="您好")
    assert deliver("cs-late").status == "sent" and status("cs-late").sent_channel == "template"


def test_an_unknown_outcome_is_not_resent_blindly(outbox):
    live, _ = outbox
    live.wechat.hang_s = 2.0
    member("oSlow", service_window_until=DAYTIME + timedelta(hours=1))
    live.wechat.inject(CUSTOM_PATH, HANG)
    record("slow", "oSlow", channel="custom", text="您好")
    outcome = deliver("slow")
    assert outcome.status == "unknown"
    assert deliver("slow").status == "unknown" and len(live.wechat.sent(CUSTOM_PATH)) == 1


def test_a_payload_over_the_platform_limit_is_dropped_unsent(outbox):
    live, _ = outbox
    member("oLong")
    record(
        "long",
        "oLong",
        payload={
            "title": "这是一个远远超过二十个字符限制的优惠券标题名称啊啊啊",
            "value": "9.9",
            "code": "SY1",
            "expires": "2026年12月23日",
        },
    )
    outcome = deliver("long")
    assert outcome.status == "dropped" and "thing1" in outcome.reason and live.wechat.sent() == []


def test_the_monthly_budget_stops_paid_messages_with_one_alert(outbox, monkeypatch):
    _live, _ = outbox
    Shared("count", "budget#2026-11", tally=300_000 - 10).save()  # 2,999.90 of 3,000 yuan spent
    for i in range(3):
        member(f"oB{i}")
        record(f"paid-{i}", f"oB{i}")
    outcomes = [deliver(f"paid-{i}").status for i in range(3)]
    assert outcomes == ["sent", "deferred", "deferred"]
    assert [m.message_key for m in OutboxMessage.scan() if m.category == "alert"] == ["alert#budget#2026-11"]


def test_group_join_welcome_goes_out_through_the_outbox(live):
    """End to end: a WeCom group join is answered by a 1:1 WeCom message via the queue worker.
    The clock is fixed at a daytime hour: the server threads share it, so quiet hours cannot
    intervene whenever the test happens to run."""
    import time

    from chalicelib import settings
    from siyu.local import callbacks
    from tests.test_end_to_end import post

    previous = runtime.use_clock(FixedClock(DAYTIME))
    try:
        s = settings.current()
        xml = callbacks.wecom_group_join(
            s.wecom_corp_id, "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", ["wmWelcome"], int(DAYTIME.timestamp())
        )
        assert post(live.url, callbacks.wecom_post(s, xml, DAYTIME)).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not live.wechat.sent("/cgi-bin/externalcontact/add_msg_template"):
            time.sleep(0.05)
    finally:
        runtime.use_clock(previous)
    [sent] = live.wechat.sent("/cgi-bin/externalcontact/add_msg_template")
    assert sent["body"]["external_userid"] == ["wmWelcome"] and "9.9元" in sent["body"]["text"]["content"]


def test_a_template_delivery_event_settles_an_unknown_outcome(outbox):
    live, clock = outbox
    from chalicelib import pipeline
    from chalicelib.events import Event, Kind

    live.wechat.hang_s = 2.0
    member("oU", service_window_until=DAYTIME + timedelta(hours=1))
    live.wechat.inject(CUSTOM_PATH, HANG)
    record("unsure", "oU", channel="custom", text="您好")
    assert deliver("unsure").status == "unknown"
    finish = Event(
        Kind.TEMPLATE_DELIVERY,
        "oa:tpl:77-oU",
        "oa",
        clock.now(),
        "oU",
        data={"channel": "custom", "msg_id": "77", "status": "success", "ok": True},
    )
    pipeline.process(runtime.context(), finish)
    settled = status("unsure")
    assert settled.status == "sent" and settled.delivery == "success" and "reconciled" in settled.reason


def test_a_template_delivery_event_records_the_final_status(outbox):
    _live, clock = outbox
    from chalicelib import pipeline
    from chalicelib.events import Event, Kind

    member("oD")
    record("final", "oD")
    deliver("final")
    msgid = status("final").wechat_msgid
    finish = Event(
        Kind.TEMPLATE_DELIVERY,
        f"oa:tpl:{msgid}-oD",
        "oa",
        clock.now(),
        "oD",
        data={"channel": "template", "msg_id": msgid, "status": "failed:user block", "ok": False},
    )
    pipeline.process(runtime.context(), finish)
    assert status("final").delivery == "failed:user block"


def test_a_refused_subscription_template_is_not_sent(outbox):
    live, clock = outbox
    from chalicelib import pipeline
    from chalicelib.events import Event, Kind

    member("oNo")
    consent = Event(
        Kind.SUBSCRIBE_CONSENT,
        "oa:evt:1-oNo",
        "oa",
        clock.now(),
        "oNo",
        data={"items": [{"template_id": "TPL-WELCOME-GIFT", "status": "reject"}]},
    )
    pipeline.process(runtime.context(), consent)
    record("refused", "oNo")
    assert deliver("refused").status == "dropped" and live.wechat.sent() == []


def test_siyu_outbox_lists_messages_and_their_states(outbox, capsys):
    from siyu import cli

    _, clock = outbox
    member("oL")
    record("listed-sent", "oL")
    deliver("listed-sent")
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    record("listed-night", "oL", clock=clock)
    deliver("listed-night")
    assert cli.main(["outbox"]) == 0
    out = capsys.readouterr().out
    assert "sent" in out and "listed-sent" in out
    assert "deferred until 11-24" in out and "quiet hours" in out
    assert cli.main(["outbox", "--status", "deferred"]) == 0
    assert "listed-sent" not in capsys.readouterr().out


def test_the_rate_limiter_gives_out_at_most_n_slots_per_second(outbox):
    from chalicelib.delivery.rate import RateLimiter

    wall = {"t": 1_800_000_000.25}
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        wall["t"] += seconds

    limiter = RateLimiter(3, wall=lambda: wall["t"], sleep=sleep, max_wait_s=1.5)
    with ThreadPoolExecutor(1) as pool:  # sequential takers sharing one counter
        taken = list(pool.map(lambda _: limiter.acquire(), range(7)))
    assert taken == [True] * 7
    assert [round(s, 2) for s in slept] == [0.75, 1.0]  # 3 in the first second, 3 in the next, then 1
    full = RateLimiter(1, wall=lambda: 1_900_000_000.5, sleep=lambda s: None, max_wait_s=0)
    assert full.acquire() is True and full.acquire() is False  # no slot and no time to wait


def test_the_same_kind_of_push_is_not_sent_three_days_running(outbox):
    _live, clock = outbox
    member("oK")
    outcomes = []
    for day in range(3):
        clock.set(DAYTIME + timedelta(days=day))
        key = record(f"kind-{day}", "oK", clock=clock)  # same cause ("test") every day
        outcomes.append(deliver(key).status)
    assert outcomes == ["sent", "sent", "deferred"]
    assert status("kind-2").reason == "same kind of push 2 days running"


def test_promotions_stay_within_their_share_of_a_members_week(outbox, monkeypatch):
    _live, clock = outbox
    member("oShare")
    clock.set(datetime(2026, 11, 23, 13, 30, tzinfo=UTC))  # Monday 21:30 Shanghai: promotions allowed
    for i in range(3):  # three service messages, each of another kind
        assert deliver(record(f"svc-{i}", "oShare", clock=clock, cause=f"cause{i}")).status == "sent"
    results = []
    for day in range(3):  # one promotion a day (the per-day cap), different causes
        clock.set(datetime(2026, 11, 24 + day, 13, 30, tzinfo=UTC))
        key = record(f"promo-share-{day}", "oShare", category="promo", clock=clock, cause=f"p{day}")
        results.append(deliver(key).status)
    # 3 service + promo 1 → 25%, + promo 2 → 40%, a third would be 50% > 40%.
    assert results == ["sent", "sent", "dropped"]
    assert "40%" in status("promo-share-2").reason


def test_a_robot_gets_at_most_its_per_minute_limit(outbox):
    from chalicelib.delivery.rate import RateLimiter

    robot = RateLimiter(
        20, wall=lambda: 1_900_000_010.0, sleep=lambda s: None, max_wait_s=0, window_s=60, name="robot#test"
    )
    assert [robot.acquire() for _ in range(21)] == [True] * 20 + [False]
    later = RateLimiter(
        20, wall=lambda: 1_900_000_080.0, sleep=lambda s: None, max_wait_s=0, window_s=60, name="robot#test"
    )
    assert later.acquire() is True  # the next minute


def test_a_customer_group_gets_one_push_per_slot_and_one_mass_message_a_day(outbox):
    live, clock = outbox
    group = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
    clock.set(datetime(2026, 11, 23, 0, 30, tzinfo=UTC))  # 08:30 Shanghai: the morning slot
    first = record(
        "g-1",
        group,
        channel="wecom_group",
        category="promo",
        text="早安，今日新品",
        clock=clock,
        payload={"sender": "zhangsan"},
    )
    second = record(
        "g-2",
        group,
        channel="wecom_group",
        category="promo",
        text="第二条",
        clock=clock,
        payload={"sender": "zhangsan"},
    )
    assert deliver(first).status == "sent"
    outcome = deliver(second)
    assert outcome.status == "deferred" and "morning slot is taken" in outcome.reason
    evening = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 21:00 Shanghai
    assert evening <= status(second).not_before < evening + timedelta(minutes=30)
    [sent] = live.wechat.sent("/cgi-bin/externalcontact/add_msg_template")
    assert sent["body"]["chat_type"] == "group" and sent["body"]["chat_id_list"] == [group]
    clock.set(status(second).not_before)
    # the evening slot is free, but WeCom lets a group receive one mass message a day (docs/wechat.md §4.5)
    assert deliver(second).status == "dropped"
    assert status(second).reason.startswith("the group's mass message of today is used")
    assert len(live.wechat.sent("/cgi-bin/externalcontact/add_msg_template")) == 1
    clock.set(datetime(2026, 11, 23, 5, 0, tzinfo=UTC))  # 13:00: no slot
    third = record("g-3", group, channel="wecom_group", category="promo", text="午间", clock=clock)
    assert deliver(third).status == "deferred" and status(third).reason == "outside the group push slots"


def test_platform_quotas_are_built_in_caps(outbox):
    live, clock = outbox
    member("oCs", service_window_until=clock.now() + timedelta(hours=47))
    results = []
    for i in range(6):  # three a day over two days: under the daily cap, over WeChat's 5 per window
        if i == 3:
            clock.advance(timedelta(days=1))
        message = plans.QueueMessage(
            message_key=f"cs-{i}",
            member_id="oCs",
            channel="custom",
            category="service",
            text=f"回复{i}",
            cause=f"c{i}",
            event_id="e",
            rules_version="v",
            store_id="S001",
        )
        executor.execute([message], message.message_key, clock.now())
        results.append(deliver(f"cs-{i}").status)
    assert results == ["sent"] * 5 + ["dropped"]
    assert status("cs-5").reason == "customer-service quota of this interaction window used"
    clock.set(DAYTIME)
    Shared("count", "quota#template#2026-11-23", tally=100_000).save()
    member("oQuota")
    record("over-quota", "oQuota")
    outcome = deliver("over-quota")
    assert outcome.status == "deferred" and "template quota" in outcome.reason
    assert len(live.wechat.sent(TEMPLATE_PATH)) == 0


def test_a_sender_that_dies_after_calling_wechat_never_causes_a_second_send(outbox, monkeypatch):
    live, clock = outbox
    member("oDie", service_window_until=DAYTIME + timedelta(hours=5))
    record("die", "oDie", channel="custom", text="您好")
    real_sent = sender._sent

    def crash_on_success(*args, **kwargs):
        raise ConnectionError("DynamoDB went away after WeChat accepted the message")

    monkeypatch.setattr(sender, "_sent", crash_on_success)
    with pytest.raises(ConnectionError):
        deliver("die")
    monkeypatch.setattr(sender, "_sent", real_sent)
    assert deliver("die").reason == "already handled"  # the lease still runs
    clock.advance(sender.LEASE + timedelta(seconds=1))
    outcome = deliver("die")
    assert outcome.status == "unknown" and len(live.wechat.sent(CUSTOM_PATH)) == 1
    assert deliver("die").status == "unknown" and len(live.wechat.sent(CUSTOM_PATH)) == 1


def test_a_sender_that_dies_before_calling_wechat_gives_the_message_back(outbox, monkeypatch):
    live, clock = outbox
    member("oEarly")
    record("early", "oEarly")
    real_pacing = sender._pacing
    monkeypatch.setattr(sender, "_pacing", lambda *a: (_ for _ in ()).throw(ConnectionError("throttled")))
    with pytest.raises(ConnectionError):
        deliver("early")
    assert status("early").status == "retrying" and live.wechat.sent() == []
    monkeypatch.setattr(sender, "_pacing", real_pacing)
    clock.advance(timedelta(minutes=2))
    assert deliver("early").status == "sent" and len(live.wechat.sent(TEMPLATE_PATH)) == 1
