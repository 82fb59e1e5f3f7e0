"""Benchmark of the synchronous webhook path (in-process: chalice.test.Client + moto).

Prints, per event type: DynamoDB requests per event against the floor of the one-commit design
(one read and one transaction; an order paid adds the read of the member's points partition, a
duplicate needs only the read), the request units DynamoDB would bill and the handler time;
the cost of a million webhook events of the default mix; and the cold import time of ``app``
against the floor of ``import boto3, pynamodb, chalice`` measured in the same run. Writes the
figures to bench/RESULTS.md.

    .venv/bin/python bench/pipeline.py [--events 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENV = {
    "SIYU_STAGE": "local",
    "SIYU_TABLE_PREFIX": "siyu-bench-",
    "SIYU_REGION": "ap-east-1",
    "SIYU_WECHAT_TOKEN": "bench-token",
    "SIYU_WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "SIYU_WECHAT_APP_ID": "wxbench",
    "SIYU_WECOM_AES_KEY": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "SIYU_ORDERS_HMAC_SECRET": "bench-secret",
    "SIYU_LOG_LEVEL": "WARNING",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "ap-east-1",
}

# The floor of each event type in the one-commit design: requests on the synchronous path.
FLOORS = {
    "follow (new member: welcome + coupon)": 2,
    "follow retry (duplicate delivery)": 1,
    "text message": 2,
    "menu click": 2,
    "unknown event": 2,
    "group join (new member, queued welcome)": 2,
    "order paid": 3,
    "order paid from a person's other id (UnionID known)": 4,
}
# The default mix of webhook events (shares of a million), from the plans' shape of a chain's
# day: most traffic is members writing and clicking, then orders; follows and joins are few;
# WeChat's retries are duplicates.
MIX = {
    "follow (new member: welcome + coupon)": 0.05,
    "follow retry (duplicate delivery)": 0.05,
    "text message": 0.35,
    "menu click": 0.20,
    "unknown event": 0.05,
    "group join (new member, queued welcome)": 0.05,
    "order paid": 0.20,
    "order paid from a person's other id (UnionID known)": 0.05,
}
# Prices, US East (N. Virginia), on-demand, as AWS publishes them (DynamoDB after its
# November 2024 cut; the others unchanged since; re-check https://aws.amazon.com/pricing before
# relying on them — this machine cannot reach it).
PRICES = {
    "dynamodb_wru": 0.625 / 1e6,  # $ per write request unit
    "dynamodb_rru": 0.125 / 1e6,  # $ per read request unit
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s": 0.0000166667,  # x86
    "api_gateway_rest": 3.50 / 1e6,  # REST API (what Chalice deploys), first 333 M a month
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB request
}
PRICES_DATE = "2025-07 (AWS price pages; DynamoDB as cited by airbyte.com's pricing guide of 2025-07-21)"
LAMBDA_MEMORY_GB = 0.5  # .chalice/config.json lambda_memory_size
DYNAMODB_MS = 8.0  # a request to DynamoDB from Lambda in its region, for the Lambda time estimate


# What the first webhook of a cold API Lambda imports beyond ``import app`` (chalicelib/web.py).
WEBHOOK_MODULES = (
    "chalicelib.pipeline",
    "chalicelib.runtime",
    "chalicelib.protocol.official_account",
    "chalicelib.protocol.work",
    "chalicelib.protocol.orders",
)


def cold_import(statement: str, runs: int = 7) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip()))
    return statistics.median(samples)


def scenarios(settings, start: datetime) -> dict[str, Callable[[int, datetime], object]]:
    from siyu.local import callbacks as cb

    first = start + timedelta(minutes=1)  # when the first deliveries were made

    def unix(now: datetime) -> int:
        return int(now.timestamp())

    return {
        "follow (new member: welcome + coupon)": lambda i, now: cb.oa_post(
            settings, cb.oa_event(f"oB{i}", "subscribe", unix(now), "qrscene_st=S001&ch=poster"), now
        ),
        "follow retry (duplicate delivery)": lambda i, now: cb.oa_post(
            settings, cb.oa_event(f"oB{i}", "subscribe", unix(first), "qrscene_st=S001&ch=poster"), now
        ),
        "text message": lambda i, now: cb.oa_post(settings, cb.oa_text(f"oB{i}", "你好", unix(now), 10_000 + i), now),
        "menu click": lambda i, now: cb.oa_post(settings, cb.oa_event(f"oB{i}", "CLICK", unix(now), "menu"), now),
        "unknown event": lambda i, now: cb.oa_post(settings, cb.oa_event(f"oB{i}", "future_evt", unix(now)), now),
        "group join (new member, queued welcome)": lambda i, now: cb.wecom_post(
            settings,
            cb.wecom_group_join(settings.wecom_corp_id, "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", [f"wmB{i}"], unix(now)),
            now,
        ),
        "order paid": lambda i, now: cb.order_post(
            settings,
            {"type": "order_paid", "order_id": f"O{i}", "openid": f"oB{i}", "amount_fen": 2600, "at": now.isoformat()},
            now,
        ),
        # the follower's UnionID is known (as the identity task learns it); the mini program's
        # order names it: the person's other id, its link written in the order's own commit
        "order paid from a person's other id (UnionID known)": lambda i, now: cb.order_post(
            settings,
            {
                "type": "order_paid",
                "order_id": f"OM{i}",
                "openid": f"oMpB{i}",
                "unionid": f"uB{i}",
                "amount_fen": 2600,
                "at": now.isoformat(),
            },
            now,
        ),
    }


def run(events: int) -> dict:
    os.environ.update(ENV)
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import runtime
    from chalicelib import settings as settings_module
    from chalicelib.clock import FixedClock
    from chalicelib.state.binding import create_tables
    from siyu.metering import Meter
    from tests import moto_patches

    moto_patches.install()  # the moto of the in-process tests
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    clock = FixedClock(start)
    runtime.use_clock(clock)
    results = {}
    with mock_aws(), Meter() as meter:
        settings = settings_module.current()
        create_tables(settings)
        from app import app

        with Client(app, stage_name="local") as client:
            for name, build in scenarios(settings, start).items():
                if "other id" in name:
                    _learn_unionids(events, start)
                retry = "retry" in name  # WeChat retries ~5 s after the first delivery

                def request(i: int, build=build, retry=retry) -> object:
                    clock.set(start + timedelta(minutes=1, seconds=5 if retry else 0))
                    return build(i, clock.now())

                results[name] = measure(client, meter, name, (request(i) for i in range(events)))
    return results


def _learn_unionids(events: int, now: datetime) -> None:
    """What the identity task does for each follower (chalicelib/identity/work.py), done directly."""
    from chalicelib import runtime
    from chalicelib.identity import work

    for i in range(events):
        work.learn(runtime.context(), f"oB{i}", f"uB{i}", now)


def measure(client, meter, name: str, requests: Iterable) -> dict:
    """Send each request (built as it is needed) through the in-process client; per request the
    DynamoDB requests, transactions and units (the meter's), and the handler time (p50, p95)."""
    times, requests_, transactions, reads, writes = [], [], [], [], []
    for req in requests:
        meter.take()
        meter.take_units()
        began = time.perf_counter()
        if req.method == "GET":
            response = client.http.get(req.path, headers=req.headers)
        else:
            response = client.http.post(req.path, headers=req.headers, body=req.body)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, (name, response.status_code, response.body)
        calls, _ = meter.take()
        units = meter.take_units()
        requests_.append(sum(calls.values()))
        transactions.append(calls["TransactWriteItems"])
        reads.append(units["read"])
        writes.append(units["write"])
    return {
        "requests": statistics.mean(requests_),
        "transactions": statistics.mean(transactions),
        "rru": statistics.mean(reads),
        "wru": statistics.mean(writes),
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": sorted(times)[int(len(times) * 0.95) - 1] * 1000,
    }


def table(results: dict, floors: dict[str, int], first: str, per: str) -> list[str]:
    """The rows of a requests-per-call table against each row's floor (bench/till.py too)."""
    lines = [
        f"| {first} | DynamoDB requests / {per} | floor | ratio to floor | transactions | RRU | WRU "
        "| handler p50 ms | handler p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in results.items():
        floor = floors[name]
        lines.append(
            f"| {name} | {f['requests']:.1f} | {floor} | {f['requests'] / floor:.2f} | {f['transactions']:.1f} "
            f"| {f['rru']:.1f} | {f['wru']:.1f} | {f['p50_ms']:.1f} | {f['p95_ms']:.1f} |"
        )
    return lines


def cost_per_million(results: dict) -> tuple[list[str], float]:
    """The cost of a million webhook events of the default mix, by service."""
    per_event = {name: MIX[name] for name in results}
    rru = sum(results[n]["rru"] * share for n, share in per_event.items())
    wru = sum(results[n]["wru"] * share for n, share in per_event.items())
    requests = sum(results[n]["requests"] * share for n, share in per_event.items())
    # Lambda time: siyu's own work (the handler time less moto's share, taken as the in-process
    # request cost) is small next to DynamoDB's round trips from Lambda; billed per 1 ms.
    seconds = sum((DYNAMODB_MS * results[n]["requests"] + 5.0) / 1000 * share for n, share in per_event.items())
    queued = 0.2  # messages sent per event (welcomes, replies handed on, alerts): send + receive + delete
    rows = {
        "DynamoDB reads": (f"{rru:.1f} RRU/event", rru * 1e6 * PRICES["dynamodb_rru"]),
        "DynamoDB writes": (f"{wru:.1f} WRU/event", wru * 1e6 * PRICES["dynamodb_wru"]),
        "Lambda requests": ("1/event", 1e6 * PRICES["lambda_request"]),
        "Lambda GB-s": (
            f"{seconds * 1000:.0f} ms × {LAMBDA_MEMORY_GB} GB",
            seconds * LAMBDA_MEMORY_GB * 1e6 * PRICES["lambda_gb_s"],
        ),
        "API Gateway (REST)": ("1/event", 1e6 * PRICES["api_gateway_rest"]),
        "SQS": (f"{queued * 3:.1f} requests/event", queued * 3 * 1e6 * PRICES["sqs_request"]),
    }
    lines = [
        f"| service | per event (default mix; {requests:.2f} DynamoDB requests) | $ per 1 M events |",
        "|---|---|---:|",
    ]
    total = 0.0
    for service, (amount, dollars) in rows.items():
        lines.append(f"| {service} | {amount} | {dollars:.2f} |")
        total += dollars
    lines.append(f"| **total** | | **{total:.2f}** |")
    return lines, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()

    floor = cold_import("import boto3, pynamodb.models, chalice")
    app_import = cold_import("import app")
    webhook_ready = cold_import(f"import app; import {', '.join(WEBHOOK_MODULES)}")
    results = run(args.events)
    cost_lines, total = cost_per_million(results)
    mix = ", ".join(f"{name.split(' (')[0]} {round(share * 100)}%" for name, share in MIX.items())

    lines = [
        "## Synchronous webhook path (bench/pipeline.py)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}; {args.events} events per "
        "type, in-process (chalice.test.Client, moto DynamoDB with siyu's patches, as in the tests), so times are "
        "relative: moto is not the network.",
        "",
        *table(results, FLOORS, "event type", "event"),
    ]
    lines += [
        "",
        "Reading: every event is one read (`TransactGetItems`: the event's record, the member, the erase",
        "tombstone, the day's active marker, the id's identity links and what the duties declared) and one",
        "transaction (the record, the member, every effect and the counters); an order paid also reads the",
        "member's points partition (the tiers and the precision push judge the order history); a duplicate",
        "stops at the read. An id that is not its person's first (a mini-program openid linked by its",
        "UnionID) reads the person's items in one more request. A follow and a group join also record",
        "the identity task that asks WeChat for the UnionID (one more item). A transaction's item costs",
        '2 WRU (twice a plain write) and a transactional read 2 RRU per item: the price of "nothing is',
        'ever half applied".',
        "",
        f"Cost of 1 M webhook events of the default mix ({mix}),",
        f"prices {PRICES_DATE}:",
        "",
        *cost_lines,
        "",
        f"Goal ≤ $5 per 1 M events: {'met' if total <= 5 else 'not met'}. API Gateway's REST API is the",
        "largest line and is not siyu's to shrink (an HTTP API would cost $1.00 per million, but Chalice",
        "deploys REST APIs). DynamoDB writes are next: the transaction doubles each item (a plain put would",
        "halve the line), and the counters are most of the items (the chain's and the store's day, the",
        "totals, the cohort, the active marker). That is the trade-off chosen: an event is counted exactly",
        "when it is processed, in the same commit, instead of by a second write that a crash could split",
        "from it.",
        "",
        "| cold import | seconds (median of 7) | ratio to floor |",
        "|---|---:|---:|",
        f"| floor: `import boto3, pynamodb.models, chalice` | {floor:.3f} | 1.00 |",
        f"| `import app` | {app_import:.3f} | {app_import / floor:.2f} |",
        f"| `import app` + the webhook path (what a cold API Lambda's first webhook loads) | {webhook_ready:.3f} "
        f"| {webhook_ready / floor:.2f} |",
        "",
        "`import app` loads Chalice and the HTTP edge only; each handler imports its work on its first call",
        "(chalicelib/web.py, jobs.py, console/routes.py): a timer's Lambda never loads the webhook path, and",
        "a webhook loads the protocol, the pipeline, the duties and the models, not the digest, the erase,",
        "the admin view or the console. The rule models are pydantic models built on first validation",
        "(`defer_build`), so loading them costs their class definitions only. The last row is the honest",
        "cold-start figure for a webhook: the framework floor plus siyu's own webhook code.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    write_section(args.results, "## Synchronous webhook path", text)


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace this benchmark's section of RESULTS.md, keeping the others."""
    existing = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    if heading in existing:
        before, _, rest = existing.partition(heading)
        after = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        existing = before + text.rstrip("\n") + ("\n\n" + after if after else "")
    else:
        existing = existing.rstrip("\n") + "\n\n" + text
    path.write_text(existing.rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
