"""Timer jobs behind app.py's schedules. Each imports what it runs when it runs: a timer's cold
start loads its own duty, not the webhook pipeline (bench/RESULTS.md: the cold import table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.logs import log

if TYPE_CHECKING:
    from chalicelib.runtime import Context

# The sweep function's Lambda timeout is 900 s (.chalice/config.json); it stops well before and
# the next run continues from the saved cursor.
RECALL_BUDGET_SECONDS = 600.0


def _context() -> Context:
    from chalicelib import runtime

    return runtime.context()


def redrive_stalled_events() -> int:
    from chalicelib import pipeline

    ctx = _context()
    count = pipeline.redrive(ctx)
    log("redrive.finished", redriven=count)
    return count


def send_messages(bodies: list[str]) -> int:
    """The outbox queue's batch: messages go to the senders, identity work (learning a UnionID,
    merging two persons: chalicelib/identity/work.py) to its own handler."""
    from chalicelib.delivery import queue, sender
    from chalicelib.identity import work

    ctx = _context()
    keys = queue.keys_of(bodies)
    tasks = [key for key in keys if work.is_task(key)]
    outcomes = sender.handle_batch(ctx, [key for key in keys if not work.is_task(key)])
    for key in tasks:
        work.handle(ctx, key)
    return len(outcomes) + len(tasks)


def release_due_messages() -> int:
    from chalicelib.delivery import sender

    count = sender.release_due(_context())
    if count:
        log("outbox.released", count=count)
    return count


def recall_sweep() -> int:
    from chalicelib.recall import sweep

    result = sweep.run(_context(), budget_s=RECALL_BUDGET_SECONDS)
    return sum(result.decided.values())


def evaluate_segments() -> int:
    """The segments pass (chalicelib/segments/sweep.py): members changed."""
    from chalicelib.segments import sweep

    return sweep.run(_context(), budget_s=RECALL_BUDGET_SECONDS).changed


def run_loyalty_day() -> dict[str, int]:
    from chalicelib.loyalty import daily

    return daily.run(_context())


def check_thresholds() -> int:
    from chalicelib.delivery import queue
    from chalicelib.metrics import alerts

    ctx = _context()
    queued = alerts.evaluate(ctx)
    queue.enqueue(ctx.settings, queued)
    return len(queued)


def send_weekly_digest() -> str | None:
    from chalicelib.delivery import queue
    from chalicelib.metrics import digest

    ctx = _context()
    sent = digest.run(ctx)
    if sent is None:
        return None
    week, messages = sent
    queue.enqueue(ctx.settings, messages)
    return week


def review_sla() -> int:
    from chalicelib.reviews import tickets

    return tickets.run(_context())


def run_campaigns() -> int:
    """The content calendar's and the campaigns' messages, each recorded once (chalicelib/campaigns)."""
    from chalicelib.campaigns import pushes
    from chalicelib.delivery import queue

    ctx = _context()
    result = pushes.run(ctx)
    queue.enqueue(ctx.settings, result.queued)
    return result.pushes + result.campaign_messages + result.alerts


def check_group_pushes() -> int:
    """The group owners' confirmations of today's and yesterday's mass messages."""
    from chalicelib.campaigns import confirm

    return confirm.run(_context())
