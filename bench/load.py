"""Load test of the local stack over loopback HTTP: a few hundred concurrent webhook deliveries,
30 % of them duplicates (WeChat's retries, re-signed), fired at once.

Checks what must hold under load — no 5xx, no lost event (every distinct delivery ends done),
no duplicate coupon (one welcome per new member) — and reports throughput and latency
percentiles. The stack is the one ``make run`` starts (DynamoDB Local, in memory here, and the
app on 127.0.0.1), on ephemeral ports with its own tables.

    .venv/bin/python bench/load.py [--events 400] [--duplicates 0.3] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import write_section  # noqa: E402

WECHAT_DEADLINE_S = 5.0
WECHAT_TRIES = 3
BEFORE = (  # the pipeline of leases and one write per effect (before issue 15)
    (
        "moto's server behind a lock (2026-12-01, load average ~1.2)",
        "520 requests; first answers 200: 473, 503: 47; 0 5xx after 3 tries; 0 lost, 0 duplicate coupons; "
        "14.1 requests/s; p50 / p95 / p99 / max 14161 / 18636 / 20355 / 21199 ms; 452 slower than 5 s",
    ),
    (
        "DynamoDB Local (2026-12-01, load average 1.8 → 5.5)",
        "520 requests; 55 first-answer 503s; 24 5xx after 3 tries; 0 lost, 0 duplicate coupons; "
        "p50 / p95 / p99 10.2 / 25.6 / 27.7 s",
    ),
)


def deliveries(settings, now: datetime, events: int, duplicates: float, seed: int) -> tuple[list, dict[str, str]]:
    """(requests in firing order, event id → member): follows, group joins and paid orders of new
    members in equal shares; a share of them delivered again."""
    from siyu.local import callbacks as cb

    r = random.Random(seed)
    created, unix = int(now.timestamp()), int(now.timestamp())
    builders, expected = [], {}
    for i in range(events):
        kind = ("follow", "join", "order")[i % 3]
        if kind == "follow":
            member = f"oLoad{i}"
            xml = cb.oa_event(member, "subscribe", created, "qrscene_st=S001&ch=poster")
            builders.append(lambda xml=xml: cb.oa_post(settings, xml, now))
            expected[f"oa:{member}:{created}:subscribe"] = member
        elif kind == "join":
            member = f"wmLoad{i}"
            xml = cb.wecom_group_join(settings.wecom_corp_id, "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", [member], unix)
            builders.append(lambda xml=xml: cb.wecom_post(settings, xml, now))
            expected[member] = member
        else:
            member = f"oLoadBuyer{i}"
            payload = {"type": "order_paid", "order_id": f"OL{i}", "openid": member, "amount_fen": 2600}
            payload["at"] = now.isoformat()
            builders.append(lambda payload=payload: cb.order_post(settings, payload, now))
            expected[f"orders:paid:OL{i}"] = member
    fired = [build() for build in builders]
    fired += [builders[i]() for i in r.sample(range(events), int(events * duplicates))]
    r.shuffle(fired)
    return fired, expected


def run(events: int, duplicates: float, concurrency: int, seed: int = 7) -> dict:
    os.environ.update(
        {
            "SIYU_TABLE_PREFIX": f"siyu-load-{uuid.uuid4().hex[:6]}-",
            "SIYU_LOG_LEVEL": "ERROR",
            "SIYU_OUTBOX_QUEUE": "off",  # the webhook path only: messages are recorded, not sent
        }
    )
    from chalicelib import settings as settings_module
    from siyu.local import stack as local_stack
    from siyu.local.dynamodb import DynamoDBLocal

    local_stack.apply_local_defaults()
    dynamodb = DynamoDBLocal().start()
    os.environ["SIYU_DYNAMODB_ENDPOINT"] = dynamodb.endpoint
    stack = local_stack.start(port=0, wechat_port=None, background=False)
    from chalice.local import ChaliceRequestHandler

    ChaliceRequestHandler.log_message = lambda *args: None  # no access log (this process only)
    try:
        local_stack.sync_rules()
        settings = settings_module.current()
        fired, expected = deliveries(settings, datetime.now(UTC), events, duplicates, seed)
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency)
        session.mount("http://", adapter)

        def post(request) -> int:
            try:
                return session.post(
                    stack.url + request.path, data=request.body, headers=request.headers, timeout=60
                ).status_code
            except requests.ConnectionError:
                return 0  # refused or reset: WeChat counts it as a failed try, like a 5xx

        def deliver(request) -> tuple[int, float, int]:
            """(first answer, its latency, answer after WeChat's tries): a failed try is retried, 3 tries."""
            began = time.perf_counter()
            first = post(request)
            latency, final = time.perf_counter() - began, first
            for _ in range(WECHAT_TRIES - 1):
                if 0 < final < 500:
                    break
                final = post(request)
            return first, latency, final

        began = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(deliver, fired))
        wall = time.perf_counter() - began
        return {**verify(expected), "results": results, "wall_s": wall, "requests": len(fired)}
    finally:
        stack.stop()
        dynamodb.stop()


def verify(expected: dict[str, str]) -> dict:
    from chalicelib.state.models import Coupon, EventRecord

    states = Counter()
    for record in EventRecord.scan():
        states[record.status] += 1
    welcomes = Counter(c.member_id for c in Coupon.scan() if c.cause == "welcome")
    new_members = {m for m in expected.values() if not m.startswith("oLoadBuyer")}
    return {
        "events_done": states["done"],
        "events_other": sum(n for s, n in states.items() if s != "done"),
        "distinct": len(expected),
        "duplicate_coupons": sum(n - 1 for n in welcomes.values() if n > 1),
        "missing_coupons": sum(1 for m in new_members if welcomes[m] == 0),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    out = run(args.events, args.duplicates, args.concurrency)
    load_after = os.getloadavg()[0]
    statuses = Counter(status for status, _, _ in out["results"])
    finals = Counter(final for _, _, final in out["results"])
    latencies = [seconds for _, seconds, _ in out["results"]]
    late = sum(1 for s in latencies if s > WECHAT_DEADLINE_S)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Load: concurrent deliveries with duplicates (bench/load.py)",
        "",
        f"Measured {when} on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}: "
        f"{out['distinct']} distinct deliveries (new followers, group joins, paid orders in equal shares) plus "
        f"{out['requests'] - out['distinct']} duplicates ({args.duplicates:.0%}), shuffled, fired by "
        f"{args.concurrency} concurrent clients at the local stack over 127.0.0.1 (DynamoDB Local, in memory, "
        "with nothing in front of it: its own per-item atomicity, as DynamoDB's). "
        f"Load average {load_before:.2f} before, {load_after:.2f} after (2 cores).",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| requests | {out['requests']} |",
        f"| first answers | {', '.join(f'{code}: {n}' for code, n in sorted(statuses.items()))} |",
        f"| 5xx or reset first answers | {sum(n for code, n in statuses.items() if not 0 < code < 500)} |",
        f"| 5xx after WeChat's 3 tries | {sum(n for code, n in finals.items() if not 0 < code < 500)} |",
        f"| events done / distinct deliveries | {out['events_done']} / {out['distinct']} |",
        f"| events not done (lost or stuck) | {out['events_other']} |",
        f"| duplicate welcome coupons | {out['duplicate_coupons']} |",
        f"| new members without their coupon | {out['missing_coupons']} |",
        f"| throughput | {out['requests'] / out['wall_s']:.1f} requests/s ({out['wall_s']:.1f} s) |",
        f"| latency p50 / p95 / p99 / max | {percentile(latencies, 50) * 1000:.0f} / "
        f"{percentile(latencies, 95) * 1000:.0f} / {percentile(latencies, 99) * 1000:.0f} / "
        f"{max(latencies) * 1000:.0f} ms |",
        f"| answers slower than WeChat's 5 s deadline | {late} |",
        *(f"| before, leased events, on {where} | {figures} |" for where, figures in BEFORE),
        "",
        "Reading: correctness is the point — every distinct event ends done exactly once and no member gets "
        "a second coupon, now under real concurrency: no lock in front of DynamoDB, whose conditional writes "
        "decide every race. A duplicate is decided like its original and loses the commit on the event's "
        "record (or finds it at its read): it answers the winner's stored reply at once, with no lease to wait "
        "for. A 5xx after the three tries would be an event "
        "whose every try failed; this bench retries at once, where "
        "WeChat waits 5 s for each answer; its event is done all the same (see events not done). The latencies "
        f"are those of one machine with {os.cpu_count()} cores running the clients, the app (one Python process) and "
        f"DynamoDB Local together (median {statistics.median(latencies) * 1000:.0f} ms: requests queue for "
        "the cores and the app's one interpreter); they say nothing about Lambda + DynamoDB, where each "
        "delivery runs in its own container. An answer later than 5 s would make WeChat retry — the retry is "
        "a duplicate, answered from the event's record.",
    ]
    text = "\n".join(lines)
    print(text)
    write_section(args.results, lines[0], text)


if __name__ == "__main__":
    main()
