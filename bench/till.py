"""Benchmark of the till's calls (in-process: chalice.test.Client + moto, as bench/pipeline.py).

Per call: DynamoDB requests against the floor (a check: one read; a redeem: the coupon's read,
the read of its order's refunds, the event's read and one transaction; a refused redeem: the one
read; a retry of a redeem: the coupon's and the event's reads; a void: the coupon's read, the
event's read and one transaction; a member code issued: one read; a member looked up by code: one
read and one query of the coupon index), the transactions, the request units DynamoDB would bill
and the handler time. Writes the figures to bench/RESULTS.md.

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
    "redeem (first, for an order)": 4,
    "redeem retried by the till (same order)": 2,
    "redeem refused (below the minimum spend)": 1,
    "void (the order was cancelled)": 3,
    "void retried by the till": 2,
    "member code issued (the mini program)": 1,
    "member looked up (its code, at the till)": 2,
    "points redeem (a catalog item)": 2,
    "points redeem retried (same redemption)": 1,
    "points redeem refused (not enough points)": 1,
}


def run(calls: int) -> dict:
    os.environ.update({**ENV, "SIYU_TILL_KEYS": f"S001={KEY}", "SIYU_MEMBER_CODE_KEY": "bench-member-code-key"})
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import executor, plans, runtime
    from chalicelib.clock import FixedClock
    from chalicelib.protocol import member_code
    from chalicelib.settings import current
    from chalicelib.state.binding import create_tables
    from chalicelib.state.models import Member
    from siyu.local import callbacks as cb
    from siyu.metering import Meter
    from tests import moto_patches
    from tests.helpers import credit

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
            credit(f"oT{i}", 500, start)

        def body(i: int, **extra: object) -> dict:
            return {"store_id": "S001", "code": f"SYBENCH{i:05d}", "basket_total_fen": 3000, **extra}

        def void_body(i: int) -> dict:
            return {"store_id": "S001", "code": f"SYBENCH{i:05d}", "order_id": f"T{i}"}

        check, redeem, void = "/pos/coupons/check", "/pos/coupons/redeem", "/pos/coupons/{code}/void"
        scenarios = {  # name → (path, body of the i-th call)
            "check (a valid coupon)": (check, lambda i: body(i)),
            "redeem (first, for an order)": (redeem, lambda i: body(i, order_id=f"T{i}")),
            "redeem retried by the till (same order)": (redeem, lambda i: body(i, order_id=f"T{i}")),
            "check (a used coupon)": (check, lambda i: body(i)),
            "redeem refused (below the minimum spend)": (
                redeem,
                lambda i: body(i, order_id=f"U{i}", basket_total_fen=100),
            ),
            "void (the order was cancelled)": (void, lambda i: void_body(i)),
            "void retried by the till": (void, lambda i: void_body(i)),
        }
        with Client(app, stage_name="local") as client:
            for name, (path, payload) in scenarios.items():
                signed = (
                    cb.till_post(path.format(code=payload(i)["code"]), "S001", KEY, payload(i), clock.now())
                    for i in range(calls)
                )
                results[name] = measure(client, meter, name, signed)
            asked = (
                cb.order_post(current(), {"openid": f"oT{i}"}, clock.now(), "/mp/member-code") for i in range(calls)
            )
            results["member code issued (the mini program)"] = measure(client, meter, "issue", asked)
            until = clock.now() + timedelta(minutes=3)
            codes = (member_code.seal(f"oT{i}", until, current().member_code_key) for i in range(calls))
            looked = (cb.till_get(f"/pos/members/{code}", "S001", KEY, clock.now()) for code in codes)
            results["member looked up (its code, at the till)"] = measure(client, meter, "look up", looked)
            key = current().member_code_key
            spends = {  # the member shows their code; a redemption id is the till's
                "points redeem (a catalog item)": ("americano", "P"),
                "points redeem retried (same redemption)": ("americano", "P"),
                "points redeem refused (not enough points)": ("tote-bag", "Q"),
            }
            for name, (item, prefix) in spends.items():
                bodies = (
                    {
                        "store_id": "S001",
                        "member_code": member_code.seal(f"oT{i}", until, key),
                        "item_id": item,
                        "redemption_id": f"{prefix}{i}",
                    }
                    for i in range(calls)
                )
                signed = (cb.till_post("/pos/points/redeem", "S001", KEY, b, clock.now()) for b in bodies)
                results[name] = measure(client, meter, name, signed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    results = run(args.calls)
    lines = [
        "## The till's calls (bench/till.py)",
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
        "refusal is answered from it: one request, nothing written) and its order's refunds (a refunded",
        "order is 409, nothing written), then runs as its holder's event — the event's one read and one",
        "transaction (the event record, the coupon, the member, the counters): the goal of one",
        "transaction per redeem. A retry of the same order stops at the event's read and answers the",
        "stored reply. A void is the same without the refund read; its transaction also takes the",
        "redemption off its day's counters. A member code is issued from one read (the openid's row and",
        "links) and sealed, nothing stored; a look-up opens it and reads the person's row with their",
        "points balance (one request) and queries their coupons (one per person merged into them).",
        "",
        "A points redemption (rules/catalog.json) names the member by the code they show and is their",
        "event alone: the event's one read (the record, the member, the balance, the item's stock and",
        "the member's counters of it) and one transaction (the record, the debit and the balance, the",
        "counters, the coupon, the member). A refusal is answered from that read and writes nothing; a",
        "retry stops at it.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    write_section(args.results, "## The till's calls", text)


if __name__ == "__main__":
    main()
