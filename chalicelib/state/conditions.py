"""Reading DynamoDB's refusals: a failed condition means "already done" (or "changed since
read") to the exactly-once writes, never an error."""

from __future__ import annotations

from pynamodb.exceptions import TransactWriteError

CONDITION_FAILED = "ConditionalCheckFailed"


def is_condition_failure(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def cancellation_codes(exc: TransactWriteError) -> list[str | None]:
    """One code per item of a cancelled transaction (None: that item was fine), in PynamoDB's
    order: condition checks, deletes, puts, then updates."""
    return [getattr(r, "code", None) if r else None for r in (exc.cancellation_reasons or [])]
