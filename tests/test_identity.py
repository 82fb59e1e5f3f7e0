"""One person, one member (issue 17): the ids of one person across the official account, WeCom and
the mini program, learned by UnionID, merged exactly once, undone by ops (docs/identity.md)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import ledger, runtime
from chalicelib.errors import Conflict
from chalicelib.identity import merge, work
from chalicelib.metrics import read
from chalicelib.state.models import Coupon, Member, OutboxMessage, PointsRecord, Shared
from chalicelib.store import db, keys
from siyu.local import callbacks
from tests.helpers import pos, send
from tests.test_faults import Crash, faults  # noqa: F401  (the fixture)

GROUP = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"  # store S001's group in the bundled rules


def unix(clock) -> int:
    return int(clock.now().timestamp())


def follow(client, aws, clock, openid: str):
    xml = callbacks.oa_event(openid, "subscribe", unix(clock), "qrscene_st=S001")
    return send(client, callbacks.oa_post(aws, xml, clock.now()))


def join(client, aws, clock, external_id: str):
    xml = callbacks.wecom_group_join(aws.wecom_corp_id, GROUP, [external_id], unix(clock))
    return send(client, callbacks.wecom_post(aws, xml, clock.now()))


def paid(client, aws, clock, openid: str, order_id: str, amount_fen: int = 5000, codes=(), unionid=None):
    fields = {"order_id": order_id, "amount_fen": amount_fen, "coupon_codes": list(codes), "store_id": "S001"}
    if unionid:
        fields["unionid"] = unionid
    return pos(client, aws, clock, "order_paid", openid, **fields)


def ask(platform_id: str) -> str:
    """Run the identity work the webhook recorded for ``platform_id`` (as the queue worker would)."""
    return work.handle(runtime.context(), keys.identity_task("unionid", platform_id))


def welcome_gifts(*owners: str) -> list[Coupon]:
    return [c for owner in owners for c in Coupon.by_member.query(owner) if c.cause == "welcome"]


def total_members(clock) -> int:
    return int(read.totals("chain").get("members", 0))


# --- the acceptance scenario ---------------------------------------------------------------


def test_follow_join_and_order_are_one_person_with_one_gift_one_balance(client, aws, clock, wechat):
    wechat.unionids.update({"oAnn": "uAnn", "wmAnn": "uAnn"})
    follow(client, aws, clock, "oAnn")
    [gift] = welcome_gifts("oAnn")
    assert ask("oAnn") == "done" and Member.get("oAnn").unionid == "uAnn"

    clock.advance(timedelta(hours=2))
    join(client, aws, clock, "wmAnn")  # WeCom's event names no UnionID: a person, for now
    held = OutboxMessage.get(keys.welcome("wmAnn"))
    assert held.status == "deferred"  # the group's welcome waits for the person's identity
    assert ask("wmAnn") == "done"  # WeChat says: the same UnionID → merged into the follower

    assert Member.get("wmAnn").merged_into == "oAnn"
    assert [c.status for c in welcome_gifts("oAnn", "wmAnn")] == ["issued", "void"]
    assert OutboxMessage.get(keys.welcome("wmAnn")).status == "dropped"  # never announced
    assert wechat.sent("/cgi-bin/externalcontact/add_msg_template") == []

    clock.advance(timedelta(days=1))
    answer = paid(client, aws, clock, "oMpAnn", "O-1", 5000, codes=[gift.code], unionid="uAnn").json_body
    assert answer["coupons"] == [{"code": gift.code, "redeemed": True}]
    person = Member.get("oAnn")
    assert {"oa/oAnn", "wecom/wmAnn", "orders/oMpAnn"} <= person.ids
    assert db.get(Member, "oMpAnn") is None  # no member of its own
    assert Shared.get(*keys.link("oMpAnn")).value == "oAnn"
    assert list(PointsRecord.query("oMpAnn")) == [] and ledger.balance_of("oAnn").points > 0
    assert ledger.audit() == (1, [])
    assert total_members(clock) == 1  # the KPIs count persons


def test_a_coupon_of_the_wecom_id_is_redeemed_from_the_mini_program(client, aws, clock, wechat):
    wechat.unionids.update({"wmBea": "uBea"})
    join(client, aws, clock, "wmBea")
    assert ask("wmBea") == "done"  # nobody else has uBea: linked, and the held welcome released
    assert OutboxMessage.get(keys.welcome("wmBea")).status == "pending"
    [gift] = welcome_gifts("wmBea")

    clock.advance(timedelta(days=1))
    answer = paid(client, aws, clock, "oMpBea", "O-B1", 4000, codes=[gift.code], unionid="uBea").json_body
    assert answer["coupons"] == [{"code": gift.code, "redeemed": True}]
    assert Coupon.get(gift.code).redeemed_order == "O-B1"
    assert [c.code for c in welcome_gifts("wmBea", "oMpBea")] == [gift.code]


def test_an_absorbed_persons_coupon_is_redeemed_from_the_survivors_ids(client, aws, clock, wechat):
    """The mini program's person is older; the WeCom person (and the gift it got) is merged into it."""
    paid(client, aws, clock, "oMpCid", "O-C1", 3000, unionid="uCid")
    clock.advance(timedelta(hours=1))
    wechat.unionids.update({"wmCid": "uCid"})
    join(client, aws, clock, "wmCid")
    [gift] = welcome_gifts("wmCid")  # the mini-program person had no welcome gift: this one stays
    assert ask("wmCid") == "done" and Member.get("wmCid").merged_into == "oMpCid"
    assert Coupon.get(gift.code).status == "issued"
    assert OutboxMessage.get(keys.welcome("wmCid")).status == "pending"  # released: it is the gift

    clock.advance(timedelta(hours=1))
    answer = paid(client, aws, clock, "oMpCid", "O-C2", 3000, codes=[gift.code]).json_body
    assert answer["coupons"] == [{"code": gift.code, "redeemed": True}]
    follow(client, aws, clock, "oCid")  # a third id, before its UnionID is known: a new person …
    wechat.unionids["oCid"] = "uCid"
    assert ask("oCid") == "done"  # … merged in: its welcome gift voided, the person had one
    assert sorted(c.status for c in welcome_gifts("wmCid", "oCid")) == ["redeemed", "void"]


def test_a_new_id_with_a_known_unionid_is_that_person_from_its_first_event(client, aws, clock, wechat):
    paid(client, aws, clock, "oMpDee", "O-D1", 2000, unionid="uDee")
    before = total_members(clock)
    clock.advance(timedelta(minutes=5))
    paid(client, aws, clock, "posDee", "O-D2", 2000, unionid="uDee")
    assert total_members(clock) == before == 1
    assert Shared.get(*keys.link("posDee")).value == "oMpDee"
    assert ledger.balance_of("oMpDee").spend_fen == 4000 and ledger.balance_of("posDee").points == 0


def test_the_recall_clock_and_arm_stay_the_older_persons(client, aws, clock, wechat):
    follow(client, aws, clock, "oEve")
    Member("oEve").update(actions=[Member.recall_lapse.set("2026-10-01"), Member.recall_attempts.set(2)])
    clock.advance(timedelta(days=3))
    wechat.unionids.update({"oEve": "uEve", "wmEve": "uEve"})
    join(client, aws, clock, "wmEve")
    ask("oEve")
    ask("wmEve")
    person = Member.get("oEve")
    assert (person.recall_lapse, int(person.recall_attempts)) == ("2026-10-01", 2)
    assert person.last_active == Member.get("wmEve").last_active  # the later activity counts
    assert Member.get("wmEve").active_day is None  # out of the sweep's index: the person is swept


# --- merging: exactly once, balanced, undoable -----------------------------------------------


def two_persons_with_points(client, aws, clock) -> None:
    paid(client, aws, clock, "oMpFay", "O-F1", 10_000)
    pos(client, aws, clock, "checked_in", "oMpFay", checkin_id="c1")
    clock.advance(timedelta(days=1))
    follow(client, aws, clock, "oFay")
    paid(client, aws, clock, "oFay", "O-F2", 20_000)
    pos(client, aws, clock, "checked_in", "oFay", checkin_id="c2")


def test_a_merge_adds_the_balances_and_keeps_the_audit_balanced(client, aws, clock, wechat):
    two_persons_with_points(client, aws, clock)
    older, newer = ledger.balance_of("oMpFay"), ledger.balance_of("oFay")
    done = merge.merge("oFay", "oMpFay", why="test", who="ops", now=clock.now(), settings=aws)
    assert (done.survivor, done.absorbed, done.outcome) == ("oMpFay", "oFay", "merged")
    assert ledger.balance_of("oMpFay").points == older.points + newer.points
    assert ledger.balance_of("oMpFay").spend_fen == older.spend_fen + newer.spend_fen
    assert list(PointsRecord.query("oFay")) == []  # moved whole: the rows are the survivor's now
    copied = [r for r in PointsRecord.query("oMpFay") if r.merged_from == "oFay"]
    assert {r.sk for r in copied} >= {"entry#earn#O-F2", "order#O-F2"}
    assert ledger.audit() == (1, [])
    assert Member.get("oMpFay").checkin_day == Member.get("oFay").checkin_day  # the later streak
    again = merge.merge("oMpFay", "oFay", why="test", who="ops", now=clock.now(), settings=aws)
    assert again.outcome == "already" and ledger.balance_of("oMpFay").points == older.points + newer.points


def test_a_merge_that_stopped_after_linking_is_finished_by_running_it_again(client, aws, clock, wechat, monkeypatch):
    two_persons_with_points(client, aws, clock)
    total = ledger.balance_of("oMpFay").points + ledger.balance_of("oFay").points
    monkeypatch.setattr(merge, "_move_ledger", lambda *a: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        merge.merge("oFay", "oMpFay", why="test", who="ops", now=clock.now(), settings=aws)
    assert ledger.audit() == (2, [])  # nothing half-counted: the absorbed ledger is still whole
    monkeypatch.undo()
    assert merge.merge("oFay", "oMpFay", why="test", who="ops", now=clock.now(), settings=aws).outcome == "merged"
    assert ledger.balance_of("oMpFay").points == total and ledger.audit()[1] == []
    assert merge.record_of("oFay").state == "done"


def test_unlink_undoes_a_merge_and_the_pair_is_not_merged_again(client, aws, clock, wechat):
    two_persons_with_points(client, aws, clock)
    newer, older_points = ledger.balance_of("oFay"), ledger.balance_of("oMpFay").points
    merge.merge("oFay", "oMpFay", why="test", who="ops", now=clock.now(), settings=aws)
    undone = merge.unlink("oFay", who="ops", now=clock.now(), settings=aws)
    assert undone["kind"] == "merge" and undone["points_returned"] == newer.points
    assert Member.get("oFay").merged_into is None and "oFay" not in (Member.get("oMpFay").absorbed or ())
    assert ledger.balance_of("oFay") == newer and ledger.audit()[1] == []
    assert merge.merge("oFay", "oMpFay", why="unionid", who="wechat", now=clock.now(), settings=aws).outcome == (
        "refused"
    )
    again = merge.merge("oFay", "oMpFay", why="checked", who="ops", now=clock.now(), settings=aws, by_hand=True)
    assert again.outcome == "merged" and merge.record_of("oFay").why == "checked"  # ops may, by hand
    assert ledger.balance_of("oMpFay").points == older_points + newer.points and ledger.audit()[1] == []
    with pytest.raises(Conflict, match="never linked"):
        merge.unlink("oNobody", who="ops", now=clock.now(), settings=aws)


def test_unlink_is_refused_when_the_points_it_would_give_back_are_spent(client, aws, clock, wechat):
    two_persons_with_points(client, aws, clock)
    merge.merge("oFay", "oMpFay", why="test", who="ops", now=clock.now(), settings=aws)
    spend = ledger.balance_of("oMpFay").points
    answer = pos(client, aws, clock, "points_redeemed", "oFay", redemption_id="R1", points=spend).json_body
    assert answer["redeemed"] is True  # from the absorbed id: the person's balance
    with pytest.raises(Conflict, match="spent"):
        merge.unlink("oFay", who="ops", now=clock.now(), settings=aws)
    assert Member.get("oFay").merged_into == "oMpFay" and ledger.audit()[1] == []


def test_two_merges_of_a_pair_at_once_merge_once(live, monkeypatch):
    import threading

    import requests

    from chalicelib import settings

    s = settings.current()
    now = datetime.now(UTC)

    def hook(body: dict) -> None:
        signed = callbacks.order_post(s, {"at": now.isoformat(), "store_id": "S001", **body}, now)
        assert requests.post(live.url + signed.path, data=signed.body, headers=signed.headers).status_code == 200

    hook({"type": "order_paid", "openid": "oMpGus", "order_id": "G1", "amount_fen": 9000})
    hook({"type": "checked_in", "openid": "oMpGus", "checkin_id": "g1"})
    hook({"type": "order_paid", "openid": "posGus", "order_id": "G2", "amount_fen": 7000})
    hook({"type": "checked_in", "openid": "posGus", "checkin_id": "g2"})
    total = ledger.balance_of("oMpGus").points + ledger.balance_of("posGus").points

    # every merge reads the pair before any of them writes: the race is certain, not likely
    everyone_read, first = threading.Barrier(4, timeout=10), threading.local()
    refusal = merge._refusal

    def read_then_wait(*args):
        if not getattr(first, "done", False):
            first.done = True
            everyone_read.wait()
        return refusal(*args)

    monkeypatch.setattr(merge, "_refusal", read_then_wait)

    def run(pair: tuple[str, str]) -> str:
        return merge.merge(*pair, why="test", who="ops", now=datetime.now(UTC), settings=s).outcome

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(run, [("oMpGus", "posGus"), ("posGus", "oMpGus")] * 2))
    assert "merged" in outcomes and set(outcomes) <= {"merged", "already"}
    survivor = merge.current("posGus")
    assert survivor is not None and merge.current("oMpGus").member_id == survivor.member_id
    assert ledger.balance_of(survivor.member_id).points == total
    assert ledger.audit() == (1, [])
    records = [r for r in Shared.scan() if r.pk.startswith(keys.MERGE)]
    assert len(records) == 1
    assert int(read.totals("chain").get("persons_merged", 0)) == 1


def test_a_merge_racing_an_order_of_the_absorbed_id_counts_the_order_once(live):
    import requests

    from chalicelib import settings

    s = settings.current()
    now = datetime.now(UTC)

    def hook(body: dict) -> int:
        signed = callbacks.order_post(s, {"at": now.isoformat(), "store_id": "S001", **body}, now)
        return requests.post(live.url + signed.path, data=signed.body, headers=signed.headers).status_code

    assert hook({"type": "order_paid", "openid": "oMpHal", "order_id": "H1", "amount_fen": 5000}) == 200
    assert hook({"type": "order_paid", "openid": "posHal", "order_id": "H2", "amount_fen": 5000}) == 200
    one_order = ledger.balance_of("oMpHal").points
    with ThreadPoolExecutor(2) as pool:
        merged = pool.submit(merge.merge, "oMpHal", "posHal", why="t", who="ops", now=now, settings=s)
        orders = [
            pool.submit(hook, {"type": "order_paid", "openid": "posHal", "order_id": f"H3-{n}", "amount_fen": 5000})
            for n in range(3)
        ]
        assert merged.result().outcome == "merged" and [o.result() for o in orders] == [200] * 3
    assert ledger.balance_of("oMpHal").points == 5 * one_order  # H1, H2 and the three racing orders
    assert ledger.audit() == (1, [])


# --- what ops see, and the erase of a person ------------------------------------------------


def follower_who_joins_a_group(client, aws, clock, wechat, name: str) -> None:
    """``o<name>`` follows, then joins a store group as ``wm<name>``: WeChat says both are ``u<name>``."""
    wechat.unionids.update({f"o{name}": f"u{name}", f"wm{name}": f"u{name}"})
    follow(client, aws, clock, f"o{name}")
    ask(f"o{name}")
    clock.advance(timedelta(hours=1))
    join(client, aws, clock, f"wm{name}")
    ask(f"wm{name}")


def test_ops_see_the_person_from_any_of_their_ids_with_the_merge(client, aws, clock, wechat):
    import json as json_

    from tests.helpers import ADMIN

    follower_who_joins_a_group(client, aws, clock, wechat, "Ivy")
    for any_id in ("oIvy", "wmIvy"):
        view = json_.loads(client.http.get(f"/admin/members/{any_id}", headers=ADMIN).body)
        assert view["member_id"] == "oIvy"
        assert view["person"]["ids"] == ["oa/oIvy", "wecom/wmIvy"] and view["person"]["unionid"] == "uIvy"
        [merged] = view["person"]["merged"]
        assert (merged["absorbed"], merged["why"], merged["who"], merged["state"]) == (
            "wmIvy",
            "unionid",
            "wechat",
            "done",
        )
        assert sorted(c["status"] for c in view["coupons"] if c["cause"] == "welcome") == ["issued", "void"]


def test_erasing_a_person_erases_every_id_and_a_late_event_of_any_is_refused(client, aws, clock, wechat):
    from chalicelib.privacy import erase

    follower_who_joins_a_group(client, aws, clock, wechat, "Joy")
    paid(client, aws, clock, "oMpJoy", "O-J1", 3000, unionid="uJoy")
    assert erase.erase(runtime.context(), "wmJoy", requested_by="test").status == "completed"  # any id
    for gone in ("oJoy", "wmJoy", "oMpJoy"):
        assert db.get(Member, gone) is None and db.get(Shared, *keys.link(gone)) is None
    assert db.get(Shared, *keys.unionid_link("uJoy")) is None and db.get(Shared, *keys.merge_record("wmJoy")) is None
    assert ledger.audit()[1] == []
    clock.advance(timedelta(minutes=1))
    before = (clock.now() - timedelta(minutes=30)).isoformat()  # paid before the erase, sent late
    body = {"type": "order_paid", "openid": "oMpJoy", "at": before, "order_id": "O-J0", "amount_fen": 3000}
    late = send(client, callbacks.order_post(aws, body, clock.now()))
    assert late.status_code == 200 and db.get(Member, "oMpJoy") is None


def test_a_merge_killed_at_any_of_its_writes_is_finished_by_the_next_run(client, aws, clock, wechat, faults):  # noqa: F811
    """Every write of a merge killed in turn (the identity task is retried, ops can rerun it):
    the next run finishes it, and nothing is counted twice or lost on the way."""
    killed = 0
    for n in range(1, 60):
        older, newer = f"oMpK{n}", f"oK{n}"
        paid(client, aws, clock, older, f"K{n}-1", 10_000)
        clock.advance(timedelta(minutes=1))
        follow(client, aws, clock, newer)  # the newer person has a welcome gift; the older none
        paid(client, aws, clock, newer, f"K{n}-2", 20_000)
        total = ledger.balance_of(older).points + ledger.balance_of(newer).points
        faults.arm(n)
        try:
            merge.merge(newer, older, why="test", who="ops", now=clock.now(), settings=aws)
        except Crash:
            killed += 1
            faults.settle()
            merge.merge(newer, older, why="test", who="ops", now=clock.now(), settings=aws)
        else:
            faults.arm(None)
            break  # the merge has fewer than n writes: every one was killed once
        assert merge.current(newer).member_id == older and merge.record_of(newer).state == "done"
        assert ledger.balance_of(older).points == total and list(PointsRecord.query(newer)) == []
        assert [c.status for c in welcome_gifts(older, newer)] == ["issued"]
        assert ledger.audit([older, newer])[1] == []
    assert killed >= 5
    merges = killed + 1  # and the last one, which no kill reached
    assert int(read.totals("chain").get("persons_merged", 0)) == merges  # each merge counted once
    assert int(read.totals("chain").get("members", 0)) == merges  # two persons each, one left


def test_unlinking_an_id_linked_on_its_first_event_makes_it_its_own_person_for_good(client, aws, clock, wechat):
    paid(client, aws, clock, "oMpLeo", "O-L1", 2000, unionid="uLeo")
    clock.advance(timedelta(minutes=5))
    paid(client, aws, clock, "posLeo", "O-L2", 2000, unionid="uLeo")  # a shared POS code, wrongly sent with it
    assert merge.current("posLeo").member_id == "oMpLeo"
    undone = merge.unlink("posLeo", who="ops", now=clock.now(), settings=aws)
    assert undone == {"unlinked": "posLeo", "from": "oMpLeo", "kind": "id"}
    assert "orders/posLeo" not in Member.get("oMpLeo").ids
    clock.advance(timedelta(minutes=5))
    paid(client, aws, clock, "posLeo", "O-L3", 2000, unionid="uLeo")  # the till sends it again
    assert Member.get("posLeo").merged_into is None and merge.current("posLeo").member_id == "posLeo"
    task = keys.identity_task("merge", "oMpLeo#posLeo")
    assert work.handle(runtime.context(), task) == "done"  # the UnionID asks for a merge …
    assert OutboxMessage.get(task).reason.startswith("refused")  # … which ops' unlink refuses
    assert merge.current("posLeo").member_id == "posLeo"
    with pytest.raises(Conflict, match="never linked"):
        merge.unlink("posLeo", who="ops", now=clock.now(), settings=aws)


def test_the_cli_merges_by_hand_and_refuses_an_unlink_of_an_id_never_linked(client, aws, clock, wechat, capsys):
    import json as json_

    from siyu import cli

    paid(client, aws, clock, "oMpMia", "O-M1", 2000)
    clock.advance(timedelta(minutes=1))
    paid(client, aws, clock, "posMia", "O-M2", 2000)
    assert cli.main(["member", "merge", "posMia", "oMpMia", "--why", "same phone at the till"]) == 0
    printed = json_.loads(capsys.readouterr().out)
    assert (printed["survivor"], printed["absorbed"], printed["outcome"]) == ("oMpMia", "posMia", "merged")
    assert cli.main(["member", "show", "posMia"]) == 0
    [merged] = json_.loads(capsys.readouterr().out)["person"]["merged"]
    assert (merged["why"], merged["who"]) == ("same phone at the till", "cli")
    assert cli.main(["member", "unlink", "oNever"]) == 3
    assert "never linked" in capsys.readouterr().err
