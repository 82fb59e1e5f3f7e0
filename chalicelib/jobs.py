"""Timer jobs behind app.py's schedules."""

from __future__ import annotations

from chalicelib import pipeline, runtime
from chalicelib.logs import log


def redrive_stalled_events() -> int:
    ctx = runtime.context()
    count = pipeline.redrive(ctx)
    log("redrive.finished", redriven=count)
    return count
