"""Weekly digest benchmark: DynamoDB reads for one digest of 10 stores, after a week of 1k
events and after a week of 1M events.

The digest reads counters (one item per scope and day, written as events are processed), never
the events, so its reads should not move with the week's volume. The 1k-event week goes through
the real pipeline (``pipeline.process``: dedupe, member, duties, counters); the 1M-event week is
written as the counter items those events would have produced (a million events through moto
would take hours and measure the pipeline, not the digest). Recall decisions, alerts and stores
are the same in both runs.

    .venv/bin/python bench/digest_reads.py
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import ENV, write_section  # noqa: E402

MONDAY = date(2026, 11, 16)
STORES = [f"B{i:02d}" for i in range(1, 11)]
KINDS = ("messaged", "clicked", "order_paid")


def rules_dir() -> Path:
    """The bundled rules with ten stores."""
    directory = Path(tempfile.mkdtemp()) / "rules"
    import shutil

    shutil.copytree(ROOT / "rules", directory)
    stores = json.loads((directory / "stores.json").read_text(encoding="utf-8"))
    stores["stores"] = [{"id": s, "name": f"门店{s}", "timezone": "Asia/Shanghai", "groups": []} for s in STORES]
    (directory / "stores.json").write_text(json.dumps(stores, ensure_ascii=False), encoding="utf-8")
    campaigns = json.loads((directory / "campaigns.json").read_text(encoding="utf-8"))
    campaigns["calendar"]["owners"] = {}  # no groups: no group owners
    (directory / "campaigns.json").write_text(json.dumps(campaigns, ensure_ascii=False), encoding="utf-8")
    recall = json.loads((directory / "recall.json").read_text(encoding="utf-8"))
    recall["pilot_stores"] = []
    (directory / "recall.json").write_text(json.dumps(recall, ensure_ascii=False), encoding="utf-8")
    return directory


def through_pipeline(events: int) -> None:
    from chalicelib import pipeline, runtime
    from chalicelib.events import Event, Kind

    ctx = runtime.context()
    chance = random.Random(1)
    for i in range(events):
        at = datetime(2026, 11, 16, 2, tzinfo=UTC) + timedelta(minutes=chance.randrange(7 * 24 * 60))
        kind = Kind(chance.choice(KINDS))
        data = {"order_id": f"O{i}", "amount_fen": 2600, "items": []} if kind is Kind.ORDER_PAID else {}
        member = f"o{chance.randrange(events // 3)}"
        pipeline.process(ctx, Event(kind, f"e{i}", "oa", at, member, store_id=chance.choice(STORES), data=data))


def as_counters(events: int) -> None:
    """The counter items a week of ``events`` would leave (one per scope and day, plus cohorts)."""
    from pynamodb.expressions.operand import Path as Attr

    from chalicelib.state.models import Metric

    per_day = events // 7
    for scope in ["chain", *STORES]:
        share = per_day if scope == "chain" else per_day // len(STORES)
        Metric(scope, "total").update(actions=[Attr("members").set(share * 5), Attr("followers").set(share * 4)])
        for i in range(7):
            day = (MONDAY + timedelta(days=i)).isoformat()
            counts = {
                "interactions": share,
                "messages_in": share // 3,
                "orders": share // 3,
                "active_members": share // 2,
                "gmv_fen": share // 3 * 2600,
                "new_members": share // 10,
            }
            Metric(scope, day).update(actions=[Attr(k).add(v) for k, v in counts.items()])
            Metric(scope, f"cohort#{day}").update(actions=[Attr("new_members").add(share // 10)])


def run(events: int) -> dict:
    os.environ.update(ENV)
    os.environ["SIYU_OUTBOX_QUEUE"] = "off"
    os.environ["SIYU_RULES_DIR"] = str(rules_dir())
    from moto import mock_aws

    from chalicelib import runtime
    from chalicelib import settings as settings_module
    from chalicelib.clock import FixedClock
    from chalicelib.metrics import digest
    from chalicelib.rules import loader
    from chalicelib.state import binding
    from siyu.metering import Meter
    from tests import moto_patches

    moto_patches.install()
    loader.clear_cache()
    runtime.use_clock(FixedClock(datetime(2026, 11, 25, 2, tzinfo=UTC)))
    with mock_aws():
        binding._bound = None
        binding.create_tables(settings_module.current())
        if events <= 10_000:
            through_pipeline(events)
        else:
            as_counters(events)
        with Meter() as meter:
            built = digest.build(runtime.context().rules(), MONDAY, datetime(2026, 11, 25, 2, tzinfo=UTC))
        binding._bound = None
    return {
        "events": events,
        "items": sum(meter.items_read.values()),
        "requests": sum(meter.calls.values()),
        "by_table": dict(meter.items_read),
        "markdown_bytes": len(built.markdown.encode("utf-8")),
    }


def main() -> None:
    rows = [run(1_000), run(1_000_000)]
    for row in rows:
        print(row, flush=True)
    floor = rows[0]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Weekly digest reads (bench/digest_reads.py)",
        "",
        f"Measured {when} on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "one digest of the chain and 10 stores; in-process moto. The 1k-event week went through the pipeline, "
        "the 1M-event week is the counter items it would leave.",
        "",
        "| week | items read | DynamoDB requests | ratio to the 1k week | markdown bytes |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['events']:,} events | {row['items']} | {row['requests']} | "
            f"{row['items'] / max(floor['items'], 1):.2f} | {row['markdown_bytes']} |"
        )
    lines += [
        "",
        "Reading: a digest reads, per scope, the two weeks of day items, the cohort items and the running",
        "totals (three queries), plus the small alerts table and the recall decisions of 30 days: the same",
        "items for a thousand or a million events.",
        "",
    ]
    write_section(ROOT / "bench" / "RESULTS.md", "## Weekly digest reads (bench/digest_reads.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
