"""The erase records (``Erasure``): read by the erase and by the pipeline's guard."""

from __future__ import annotations

from collections import defaultdict

from chalicelib.state.models import Erasure

IN_PROGRESS = "in_progress"
COMPLETED = "completed"


def latest(subject: str) -> Erasure | None:
    for record in Erasure.query(subject, scan_index_forward=False, limit=1, consistent_read=True):
        return record
    return None


def counts(record: Erasure) -> dict[str, dict[str, int]]:
    """The record's counts, ``{table: {outcome: rows}}`` (top-level ``<table>:<outcome>`` numbers
    the model does not declare, so read raw)."""
    raw = Erasure._get_connection().get_item(record.subject, str(int(record.number)), consistent_read=True)
    tables: dict[str, dict[str, int]] = defaultdict(dict)
    for name, value in raw.get("Item", {}).items():
        table, sep, outcome = name.partition(":")
        if sep and "N" in value:
            tables[table][outcome] = int(value["N"])
    return {table: dict(sorted(outcomes.items())) for table, outcomes in sorted(tables.items())}
