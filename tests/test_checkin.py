"""Daily check-in: one per member per Shanghai day (the server runs in UTC), streaks, the
7-day bonus and 100-day badge, and the reproducible weekly lottery."""

import json
from datetime import UTC, date, datetime, timedelta

from chalicelib import jobs, ledger
from chalicelib.duties import checkin
from chalicelib.duties.checkin import Previous, streak_on
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto
from chalicelib.state.models import Coupon, LoyaltyRecord, Member, OutboxMessage
from siyu import cli
from siyu.local import callbacks
from tests.helpers import send

_msg_ids = iter(range(10_000, 99_999))


def say(client, aws, clock, openid: str, text: str = "签到", msg_id: int | None = None):
    msg_id = msg_id if msg_id is not None else next(_msg_ids)
    xml = callbacks.oa_text(openid, text, int(clock.now().timestamp()), msg_id)
    response = send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert response.status_code == 200
    if not response.body.startswith(b"<xml>"):
        return None
    envelope = xmlsafe.parse(response.body, 65536)
    crypto = MessageCrypto(aws.wechat_token, aws.wechat_aes_key, aws.wechat_app_id)
    return xmlsafe.parse(crypto.decrypt(envelope["Encrypt"]).encode(), 65536)["Content"]


def shanghai(y, m, d, hh, mm) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC) - timedelta(hours=8)


def test_streaks_follow_the_previous_day_not_the_previous_check_in():
    monday = date(2026, 11, 23)
    assert streak_on(monday, ()) == 1
    assert streak_on(monday, (Previous(monday - timedelta(days=1), 6),)) == 7
    assert streak_on(monday, (Previous(monday - timedelta(days=2), 6),)) == 1
    assert streak_on(monday, (Previous(monday, 3), Previous(monday - timedelta(days=1), 2))) is None


def test_check_ins_count_shanghai_days_across_utc_midnight(client, aws, clock):
    clock.set(shanghai(2026, 11, 23, 23, 59))  # 15:59 UTC
    assert "已连续签到1天" in say(client, aws, clock, "oC1")
    clock.set(shanghai(2026, 11, 24, 0, 1))  # 16:01 UTC, still Nov 23 in UTC: a new Shanghai day
    assert "已连续签到2天" in say(client, aws, clock, "oC1")
    clock.set(shanghai(2026, 11, 24, 7, 59))  # 23:59 UTC Nov 23... and Nov 24 in UTC a minute later
    assert "今天已经签过到啦" in say(client, aws, clock, "oC1")
    clock.set(shanghai(2026, 11, 24, 8, 1))  # 00:01 UTC Nov 24: the same Shanghai day still
    assert "今天已经签过到啦" in say(client, aws, clock, "oC1")
    days = [r.sk for r in LoyaltyRecord.query("checkin#oC1")]
    assert days == ["2026-11-23", "2026-11-24"] and ledger.balance_of("oC1").points == 2


def test_a_retried_keyword_checks_in_once_and_repeats_the_same_reply(client, aws, clock):
    first = say(client, aws, clock, "oC2", msg_id=777)
    again = say(client, aws, clock, "oC2", msg_id=777)  # WeChat's retry of the same message
    assert first == again and "获得1积分" in first
    assert len(list(LoyaltyRecord.query("checkin#oC2"))) == 1 and ledger.balance_of("oC2").points == 1


def test_other_texts_are_not_check_ins(client, aws, clock):
    assert say(client, aws, clock, "oC3", text="你好") is None
    assert list(LoyaltyRecord.query("checkin#oC3")) == []


def test_the_seventh_day_in_a_row_earns_the_bonus_and_a_gap_restarts_the_streak(client, aws, clock):
    clock.set(shanghai(2026, 11, 1, 9, 0))
    for _ in range(7):
        text = say(client, aws, clock, "oC4")
        clock.advance(timedelta(days=1))
    assert "已连续签到7天，获得11积分" in text and ledger.balance_of("oC4").points == 6 + 11
    clock.advance(timedelta(days=1))  # a day missed
    assert "已连续签到1天" in say(client, aws, clock, "oC4")


def test_the_hundredth_day_earns_the_badge_once(client, aws, clock):
    # 99 days in a row up to yesterday: the streak as the member's record keeps it, beside the day's record
    LoyaltyRecord("checkin#oC5", "2026-11-22", member_id="oC5", number=99, event_id="e").save()
    Member("oC5", origin="oa", checkin_day="2026-11-22", checkin_streak=99).save()
    text = say(client, aws, clock, "oC5")  # 2026-11-23 in Shanghai
    assert "百日打卡" in text and "百日打卡" in Member.get("oC5").loyalty_tags


def test_the_mini_program_check_in_answers_with_the_streak(client, aws, clock):
    payload = {"type": "checked_in", "openid": "oC6", "at": clock.now().isoformat(), "checkin_id": "c-1"}
    body = send(client, callbacks.order_post(aws, payload, clock.now())).json_body
    assert body["checkin"] == {"day": "2026-11-23", "streak": 1}
    again = {**payload, "checkin_id": "c-2"}
    assert send(client, callbacks.order_post(aws, again, clock.now())).json_body["checkin"]["streak"] == 1
    assert ledger.balance_of("oC6").points == 1


def test_the_weekly_lottery_is_reproducible_from_its_seed():
    entrants = [f"o{i}" for i in range(50)]
    one = checkin.draw("2026-W47", entrants, 3, "v7")
    two = checkin.draw("2026-W47", list(reversed(entrants)), 3, "v7")
    assert one == two and len(set(one.winners)) == 3
    assert checkin.draw("2026-W48", entrants, 3, "v7").winners != one.winners


def test_the_timer_draws_last_week_once_and_the_cli_reproduces_it(client, aws, clock, capsys):
    clock.set(shanghai(2026, 11, 16, 12, 0))  # Monday of 2026-W47
    for openid in ("oL1", "oL2", "oL3", "oL4", "oL5"):
        say(client, aws, clock, openid)
    clock.set(shanghai(2026, 11, 23, 0, 30))  # the next Monday
    jobs.run_loyalty_day()
    jobs.run_loyalty_day()
    record = LoyaltyRecord.get("lottery#2026-W47", "draw")
    winners = json.loads(record.value)["winners"]
    assert len(winners) == 3
    prizes = [c for c in Coupon.scan() if c.cause == "checkin_lottery"]
    assert sorted(c.member_id for c in prizes) == sorted(winners)
    notices = [m for m in OutboxMessage.scan() if m.cause == "checkin_lottery"]
    assert sorted(m.member_id for m in notices) == sorted(winners)
    assert cli.main(["checkin", "lottery", "--week", "2026-W47"]) == 0
    out = capsys.readouterr().out
    assert "5 entrants" in out and "reproduced from the seed and entrants: yes" in out
    assert all(w in out for w in winners)


def test_the_cli_refuses_to_draw_a_week_that_is_not_over(client, aws, clock, capsys):
    assert cli.main(["checkin", "lottery", "--week", "2026-W48", "--draw"]) == 1
    assert "not over yet" in capsys.readouterr().err
    assert cli.main(["checkin", "lottery", "--week", "nonsense", "--draw"]) == 1


def test_concurrent_check_ins_of_one_member_on_one_day_count_once(live):
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from chalicelib import settings

    s = settings.current()
    now = datetime.now(UTC)
    requests_ = []
    for msg_id in (1, 2, 3):  # three different "签到" messages, each delivered twice
        xml = callbacks.oa_text("oRace", "签到", int(now.timestamp()), msg_id)
        requests_ += [callbacks.oa_post(s, xml, now), callbacks.oa_post(s, xml, now)]
    with ThreadPoolExecutor(6) as pool:
        statuses = list(
            pool.map(lambda r: requests.post(live.url + r.path, data=r.body, headers=r.headers).status_code, requests_)
        )
    assert set(statuses) <= {200, 503}
    assert len(list(LoyaltyRecord.query("checkin#oRace"))) == 1
    assert [e.delta for e in ledger.entries("oRace", "checkin#")] == [1] and ledger.balance_of("oRace").points == 1


def test_once_a_day_has_run_whole_its_later_runs_stop_at_the_days_marker(client, aws, clock):
    from siyu.metering import Meter

    clock.set(shanghai(2026, 11, 23, 0, 30))
    jobs.run_loyalty_day()
    clock.set(shanghai(2026, 11, 23, 9, 30))
    with Meter() as meter:
        assert jobs.run_loyalty_day() == {}
    assert sum(meter.calls.values()) == 2  # the active rule version and the day's marker
    clock.set(shanghai(2026, 11, 24, 0, 30))  # a new local day: the steps run again
    with Meter() as meter:
        assert set(jobs.run_loyalty_day()) >= {"tier_reviews", "invites_confirmed"}
    assert sum(meter.calls.values()) > 1
