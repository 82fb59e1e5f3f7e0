"""KOC: each month the most active 30% of each store group are tagged brand helpers and told
once; last month's helpers who fell out lose the tag; members who left the group are not ranked."""

from datetime import UTC, datetime

from chalicelib import jobs
from chalicelib.duties.koc import select
from chalicelib.state.models import Member, OutboxMessage
from siyu.local import callbacks
from tests.helpers import send

GROUP = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"  # S001's group in rules/stores.json
_ids = iter(range(1, 1_000_000))


def join(client, aws, clock, members: list[str]):
    xml = callbacks.wecom_group_join(aws.wecom_corp_id, GROUP, members, int(clock.now().timestamp()))
    assert send(client, callbacks.wecom_post(aws, xml, clock.now())).status_code == 200


def act(client, aws, clock, member: str, times: int):
    for _ in range(times):
        at = clock.now().isoformat()
        payload = {"type": "checked_in", "openid": member, "at": at, "checkin_id": f"k{next(_ids)}"}
        assert send(client, callbacks.order_post(aws, payload, clock.now())).status_code == 200


def helpers() -> set[str]:
    return {m.member_id for m in Member.scan() if "brand_helper" in (m.loyalty_tags or set())}


def test_selection_takes_the_most_active_share_rounded_up_with_stable_ties():
    activity = {"a": 5, "b": 9, "c": 5, "d": 0, "e": 1}
    assert select(activity, 30, 1) == ["b", "a"]
    assert select(activity, 100, 1) == ["b", "a", "c", "e"]  # nobody without activity


def test_monthly_brand_helpers_are_tagged_told_once_and_untagged_when_they_fall_out(client, aws, clock):
    members = [f"wmK{i}" for i in range(10)]
    clock.set(datetime(2026, 10, 10, 4, 0, tzinfo=UTC))
    join(client, aws, clock, members)
    for i, member in enumerate(members):
        act(client, aws, clock, member, i % 5 + (3 if i >= 7 else 0))  # wmK7..9 most active
    clock.set(datetime(2026, 11, 1, 1, 0, tzinfo=UTC))
    jobs.run_loyalty_day()
    jobs.run_loyalty_day()
    assert helpers() == {"wmK7", "wmK8", "wmK9"}
    told = [m for m in OutboxMessage.scan() if m.cause == "koc"]
    assert sorted(m.member_id for m in told) == ["wmK7", "wmK8", "wmK9"] and told[0].channel == "wecom_customer"
    clock.set(datetime(2026, 11, 10, 4, 0, tzinfo=UTC))
    for member in ("wmK0", "wmK1", "wmK9"):
        act(client, aws, clock, member, 6)
    Member("wmK1").update(actions=[Member.groups.delete({GROUP})])  # what a group leave does
    clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    jobs.run_loyalty_day()
    assert helpers() == {"wmK0", "wmK9"}  # wmK1 left the group; nobody else was active
    told = sorted(m.member_id for m in OutboxMessage.scan() if m.cause == "koc")
    assert told == ["wmK0", "wmK7", "wmK8", "wmK9"]  # wmK9 stayed a helper: not told again
