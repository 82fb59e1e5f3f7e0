"""Benchmark of the till's coupon and points calls (in-process: chalice.test.Client + moto, as bench/pipeline.py).

Per call: DynamoDB requests against the floor (a check: one read; a redeem: the coupon's read,
the event's read and one transaction; a refused redeem: the one read; a retry of a redeem: the two
reads), the transactions, the request units DynamoDB would bill and the handler time. Writes the
figures to bench/RESULTS.md.

    .venv/bin/python bench/till.py [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import ENV, measure, table, write_section  # noqa: E402

KEY = "bench-till-key"
FLOORS = {
    "check (a valid coupon)": 1,
    "check (a used coupon)": 1,
    "redeem (first, for an order)": 3,
    "redeem retried by the till (same order)": 2,
    "redeem refused (below the minimum spend)": 1,
    "points redeem (a catalog item)": 2,
    "points redeem retried (same redemption)": 1,
    "points redeem refused (not enough points)": 1,
}


def run(calls: int) -> dict:
    os.environ.update({**ENV, "SIYU_TILL_KEYS": f"S001={KEY}"})
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import executor, ledger, plans, runtime
    from chalicelib.clock import FixedClock
    from chalicelib.settings import current
    from chalicelib.state.binding import create_tables
    from chalicelib.state.models import Member
    from siyu.local import callbacks as cb
    from siyu.metering import Meter
    from tests import moto_patches

    moto_patches.install()
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    clock = FixedClock(start)
    runtime.use_clock(clock)
    results: dict[str, dict] = {}
    with mock_aws(), Meter() as meter:
        create_tables(current())
        from app import app

        for i in range(calls):  # the coupons the tills will meet, each held by its member
            code = f"SYBENCH{i:05d}"
            coupon = plans.IssueCoupon(
                code=code,
                member_id=f"oT{i}",
                cause="welcome",
                cause_key=f"bench#{code}",
                event_id="bench",
                title="新人礼券",
                value_fen=990,
                min_spend_fen=2000,
                stores=None,
                expires_at=start + timedelta(days=30),
                rules_version="bench",
            )
            executor.execute([coupon], f"bench#{code}", start)
            Member(f"oT{i}", store_id="S001", first_seen=start).save()
            grant = plans.PostPoints(
                member_id=f"oT{i}",
                key="grant#bench",
                delta=500,
                mode="credit",
                cause="bench",
                event_id="bench",
                rules_version="bench",
                at=start,
            )
            executor.execute(ledger.settle([grant], {}), f"grant#oT{i}", start)

        def body(i: int, **extra: object) -> dict:
            return {"store_id": "S001", "code": f"SYBENCH{i:05d}", "basket_total_fen": 3000, **extra}

        def spend(i: int, item: str, redemption: str) -> dict:
            return {"store_id": "S001", "member_id": f"oT{i}", "item_id": item, "redemption_id": redemption}

        check, redeem, points = "/pos/coupons/check", "/pos/coupons/redeem", "/pos/points/redeem"
        scenarios = {  # name → (path, body of the i-th call)
            "check (a valid coupon)": (check, lambda i: body(i)),
            "redeem (first, for an order)": (redeem, lambda i: body(i, order_id=f"T{i}")),
            "redeem retried by the till (same order)": (redeem, lambda i: body(i, order_id=f"T{i}")),
            "check (a used coupon)": (check, lambda i: body(i)),
            "redeem refused (below the minimum spend)": (
                redeem,
                lambda i: body(i, order_id=f"U{i}", basket_total_fen=100),
            ),
            "points redeem (a catalog item)": (points, lambda i: spend(i, "americano", f"P{i}")),
            "points redeem retried (same redemption)": (points, lambda i: spend(i, "americano", f"P{i}")),
            "points redeem refused (not enough points)": (points, lambda i: spend(i, "tote-bag", f"Q{i}")),
        }
        with Client(app, stage_name="local") as client:
            for name, (path, payload) in scenarios.items():
                signed = (cb.till_post(path, "S001", KEY, payload(i), clock.now()) for i in range(calls))
                results[name] = measure(client, meter, name, signed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    results = run(args.calls)
    lines = [
        "## The till's coupon calls (bench/till.py)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}; {args.calls} calls per "
        "row, in-process (chalice.test.Client, moto DynamoDB with siyu's patches), so times are relative.",
        "",
        *table(results, FLOORS, "call", "call"),
    ]
    lines += [
        "",
        "Reading: a check is one read of the coupon and writes nothing. A redeem reads the coupon (a",
        "refusal is answered from it: one request, nothing written), then runs as its holder's event —",
        "the event's one read and one transaction (the event record, the coupon, the member, the",
        "counters): the goal of one transaction per redeem. A retry of the same order stops at the",
        "event's read and answers the stored reply.",
        "",
        "A points redemption (rules/catalog.json) is its member's event alone: the event's one read (the",
        "record, the member, the balance, the item's stock and the member's counters of it) and one",
        "transaction (the record, the debit and the balance, the counters, the coupon, the member). A",
        "refusal is answered from that read and writes nothing; a retry stops at it.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    write_section(args.results, "## The till's coupon calls", text)


if __name__ == "__main__":
    main()
