"""``--dry-run`` on every timer command: the plans' writes are shown, nothing is written, and the
run that follows writes exactly the items the dry run listed (the same plans through the real
executor). The recall sweep, the threshold checker, the review SLA and the loyalty day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.state.models import Coupon
from siyu import cli
from siyu.local import callbacks
from tests.helpers import pos, send
from tests.test_alerts import conversion_check, day_of  # noqa: F401  (a fixture, used by name)
from tests.test_faults import dump
from tests.test_recall import lapsed, seed
from tests.test_reviews import review

RECALL_MORNING = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, after the 09:30 sweep time


def listed(out: str) -> set[tuple[str, str]]:
    """The (table, key) of every line ``executor.render`` printed: ``put  <table>  ["k", "s"]  (…)``."""
    found = set()
    for line in out.splitlines():
        op, _, rest = line.partition(" ")
        if op not in ("put", "update", "delete"):
            continue
        table, _, rest = rest.strip().partition(" ")
        key = json.loads(rest.strip().rsplit("  (", 1)[0])
        found.add((table, json.dumps([str(part) for part in key], ensure_ascii=False)))
    return found


def changed(before: dict[Any, Any], after: dict[Any, Any]) -> set[tuple[str, str]]:
    """(table, key) of every item the run created, changed or deleted."""
    touched = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return {
        (table, json.dumps([next(iter(v.values())) for v in json.loads(key)], ensure_ascii=False))
        for table, key in touched
    }


def dry_then_real(capsys, *argv: str) -> set[tuple[str, str]]:
    before = dump()
    assert cli.main([*argv, "--dry-run"]) == 0
    shown = listed(capsys.readouterr().out)
    assert dump() == before, "a dry run wrote something"
    assert shown, "the dry run showed no write"
    assert cli.main(list(argv)) == 0
    capsys.readouterr()
    assert changed(before, dump()) == shown, "the run wrote other items than the dry run listed"
    return shown


def tables(shown: set[tuple[str, str]]) -> set[str]:
    return {table.removeprefix("siyu-test-") for table, _ in shown}


def test_the_recall_sweep_dry_run_lists_the_decisions_coupons_and_messages_it_then_writes(aws, clock, capsys):
    clock.set(RECALL_MORNING)
    seed([lapsed(f"oDry{i}", 7) for i in range(6)])
    shown = dry_then_real(capsys, "recall", "sweep")
    assert {"recalls", "members"} <= tables(shown)
    assert sum(1 for table, _ in shown if table.endswith("recalls")) == 6


def test_the_threshold_check_dry_run_lists_the_alert_and_its_message(aws, clock, capsys, conversion_check):  # noqa: F811
    conversion_check()
    day = date(2026, 11, 2)
    day_of("S001", day, active=100, orders=5)  # 5 % against a target of 20 %
    clock.set(datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC) + timedelta(days=1))
    shown = dry_then_real(capsys, "alerts", "check")
    assert {"alerts", "outbox"} <= tables(shown)


def test_the_review_sla_dry_run_lists_the_step_and_its_alert(client, aws, clock, capsys):
    assert review(client, aws, clock, review_id="R-dry").status_code == 200
    clock.advance(timedelta(hours=2))  # past the 1 h response time
    shown = dry_then_real(capsys, "tickets", "sla")
    assert {"tickets", "outbox"} <= tables(shown)


def test_the_loyalty_day_dry_run_lists_the_referral_it_then_counts(client, aws, clock, capsys):
    def follow(openid: str, scene: str) -> None:
        xml = callbacks.oa_event(openid, "subscribe", int(clock.now().timestamp()), scene)
        assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200

    follow("oInviter", "")
    assert pos(client, aws, clock, "order_paid", "oInviter", order_id="I-1", amount_fen=20_000).status_code == 200
    follow("oFriend", "qrscene_st=S001&ch=invite&inv=oInviter")
    clock.advance(timedelta(days=9))  # past the grace period
    shown = dry_then_real(capsys, "loyalty", "day")
    assert "loyalty" in tables(shown)
    assert [c.cause for c in Coupon.by_member.query("oInviter")].count("referral") == 1
