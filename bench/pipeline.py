"""Benchmark of the synchronous webhook path (in-process: chalice.test.Client + moto).

Prints, per event type: DynamoDB requests per event and handler time per event; and the cold
import time of ``app`` against the floor of ``import boto3, pynamodb, chalice`` measured in the
same run. Writes the figures to bench/RESULTS.md.

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
from collections import Counter
from collections.abc import Callable
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


class RequestCounter:
    """Counts DynamoDB API calls by wrapping botocore's single call path."""

    def __init__(self) -> None:
        import botocore.client

        self.calls: Counter[str] = Counter()
        original = botocore.client.BaseClient._make_api_call
        counter = self

        def counted(client, operation_name, api_params):
            if client.meta.service_model.service_name == "dynamodb":
                counter.calls[operation_name] += 1
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counted

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def cold_import(statement: str, runs: int = 7) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip()))
    return statistics.median(samples)


def scenarios(settings, start: datetime) -> dict[str, Callable[[int, datetime], object]]:
    from chalicelib.local import callbacks as cb

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
    }


def run(events: int) -> dict:
    os.environ.update(ENV)
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import runtime
    from chalicelib import settings as settings_module
    from chalicelib.clock import FixedClock
    from chalicelib.state.binding import create_tables
    from tests import moto_patches

    moto_patches.install()  # the moto of the in-process tests
    counter = RequestCounter()
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    clock = FixedClock(start)
    runtime.use_clock(clock)
    results = {}
    with mock_aws():
        settings = settings_module.current()
        create_tables(settings)
        from app import app

        with Client(app, stage_name="local") as client:
            for name, build in scenarios(settings, start).items():
                times, requests_ = [], []
                for i in range(events):
                    retry = "retry" in name  # WeChat retries ~5 s after the first delivery
                    clock.set(start + timedelta(minutes=1, seconds=5 if retry else 0))
                    req = build(i, clock.now())
                    counter.take()
                    began = time.perf_counter()
                    response = client.http.post(req.path, headers=req.headers, body=req.body)
                    times.append(time.perf_counter() - began)
                    assert response.status_code == 200, (name, response.status_code, response.body)
                    requests_.append(sum(counter.take().values()))
                results[name] = {
                    "requests": statistics.mean(requests_),
                    "p50_ms": statistics.median(times) * 1000,
                    "p95_ms": sorted(times)[int(len(times) * 0.95) - 1] * 1000,
                }
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()

    floor = cold_import("import boto3, pynamodb.models, chalice")
    app_import = cold_import("import app")
    results = run(args.events)

    lines = [
        "## Synchronous webhook path (bench/pipeline.py)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.events} events per type, in-process "
        "(chalice.test.Client, moto DynamoDB with siyu's patches, as in the tests), so times are relative: moto is "
        "not the network.",
        "",
        "| event type | DynamoDB requests / event | floor | ratio to floor | handler p50 ms | handler p95 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, figures in results.items():
        floor_requests = 2 if "retry" in name else 4  # duplicate: refused claim + stored reply
        lines.append(
            f"| {name} | {figures['requests']:.1f} | {floor_requests} | {figures['requests'] / floor_requests:.2f} "
            f"| {figures['p50_ms']:.1f} | {figures['p95_ms']:.1f} |"
        )
    lines += [
        "",
        "| cold import | seconds (median of 7) | ratio to floor |",
        "|---|---:|---:|",
        f"| floor: `import boto3, pynamodb.models, chalice` | {floor:.3f} | 1.00 |",
        f"| `import app` | {app_import:.3f} | {app_import / floor:.2f} |",
        "",
        "Reading: the floor of a new event is 4 requests (claim the event record, update the member, the",
        "counters' transaction, mark the event done), of a duplicate 2 (the refused claim, the stored",
        "reply). Each effect adds one conditional write (welcome: the coupon, the message record). A",
        "member's second activity of a day costs one more (the counters' transaction is refused on the",
        "day's active-member marker and redone without it). Loyalty adds one read of the member's points",
        "partition for all the duties' gathers together, and the ledger transaction. A new member's first",
        "event reads once more: whether the id was erased (privacy guard). The import above",
        "the floor is mostly pydantic building the rule and order models. Times are relative, and",
        "inflated when the machine runs other work at the same time.",
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
