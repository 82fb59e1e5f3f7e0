"""Reads, conditional writes and transactions on DynamoDB, through PynamoDB's public API.

Every write answers with an ``Outcome``; a failed condition is mapped here and only here:

- a *guard* (a put on the absence of its key, or any write marked ``guard=True``) that fails
  means the work is done already: ``ALREADY_DONE``, which is success;
- any other failed condition means the item changed since it was read: ``CONFLICT``, with the
  writes that failed, so the caller reads again and decides again;
- a transaction cancelled only because another transaction held one of its items at that
  moment (``TransactionConflict``) is a ``CONFLICT`` with no failed write: try again;
- throttling that outlasted botocore's own retries is ``Retryable`` (503), anything else raises.

A transaction carries a ``client_request_token`` derived from its cause and its content, so
the same transaction sent again (a retried request, a re-run with the same decision) is
applied once, and a different decision never collides with an earlier token.

Reads of several items (``fetch``) go out as one ``TransactGetItems``: one request, strongly
consistent, across tables. Every operation of this module uses one PynamoDB ``Connection`` per
binding (one botocore client, made on first use).
"""

from __future__ import annotations

import enum
import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import (
    DeleteError,
    DoesNotExist,
    PutError,
    TransactGetError,
    TransactWriteError,
    UpdateError,
)
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.errors import Retryable

M = TypeVar("M", bound=Model)
MAX_ITEMS = 100  # DynamoDB's limit of items per transaction (read or write)
CONDITION_FAILED = "ConditionalCheckFailed"
CONTENDED = frozenset({"TransactionConflict"})
THROTTLED = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})


class Outcome(enum.Enum):
    NEW = "new"
    ALREADY_DONE = "already_done"
    CONFLICT = "conflict"


Kind = Literal["put", "update", "delete"]


@dataclass(frozen=True)
class Write:
    """One item of a transaction. ``guard``: its failed condition means the whole transaction's
    work is done already (an event's record, a decision's record). ``tag``: who planned it, for
    the caller to learn which of its instructions found their condition failed."""

    kind: Kind
    item: Model
    actions: tuple[Any, ...] = ()
    condition: Condition | None = None
    guard: bool = False
    tag: Any = None

    def request(self) -> dict[str, Any]:
        """The operation as PynamoDB sends it (for the token and for dry runs)."""
        if self.kind == "put":
            return self.item.get_save_kwargs_from_instance(condition=self.condition)
        if self.kind == "update":
            return self.item.get_update_kwargs_from_instance(actions=list(self.actions), condition=self.condition)
        return self.item.get_delete_kwargs_from_instance(condition=self.condition)

    @property
    def table(self) -> str:
        return str(self.item.Meta.table_name)


@dataclass(frozen=True)
class Committed:
    outcome: Outcome
    failed: tuple[Write, ...] = ()  # the writes whose condition failed (CONFLICT / ALREADY_DONE)
    old: dict[int, dict[str, Any]] = field(default_factory=dict)  # id(write) → the item as it was

    def old_of(self, write: Write, model: type[M]) -> M | None:
        raw = self.old.get(id(write))
        return model.from_raw_data(raw) if raw else None


# --- the connection ---------------------------------------------------------------------------

_lock = threading.Lock()
_connection: tuple[tuple[str, str | None], Connection] | None = None


def connection() -> Connection:
    """The binding's one PynamoDB connection (region and endpoint of the bound models)."""
    global _connection
    from chalicelib.state.models import Member  # the models are bound together (state.binding)

    wanted = (str(Member.Meta.region), Member.Meta.host)
    current = _connection
    if current is not None and current[0] == wanted:
        return current[1]
    with _lock:
        if _connection is None or _connection[0] != wanted:
            _connection = (wanted, Connection(region=wanted[0], host=wanted[1]))
        return _connection[1]


# --- reads ------------------------------------------------------------------------------------


def get(model: type[M], hash_key: Any, range_key: Any = None, *, consistent: bool = True) -> M | None:
    try:
        return model.get(hash_key, range_key, consistent_read=consistent)
    except DoesNotExist:
        return None


Key = tuple[type[Model], Any, Any]  # (model, hash key, range key or None)


def fetch(keys: Iterable[Key]) -> dict[Key, Model | None]:
    """Many items in one request (``TransactGetItems``; 100 per request), strongly consistent;
    absent items map to None. Raises ``Retryable`` if an item is mid-transaction throughout."""
    wanted = list(dict.fromkeys(keys))
    found: dict[Key, Model | None] = {}
    for start in range(0, len(wanted), MAX_ITEMS):
        chunk = wanted[start : start + MAX_ITEMS]
        for attempt in range(3):
            try:
                with TransactGet(connection=connection()) as transaction:
                    futures = [transaction.get(model, hash_key, range_key) for model, hash_key, range_key in chunk]
            except TransactGetError as exc:
                codes = _codes(exc)
                if attempt < 2 and (not codes or set(codes) - {None} <= CONTENDED):
                    continue
                raise Retryable("a read met items being written; retry") from exc
            break
        for key, future in zip(chunk, futures, strict=True):
            try:
                found[key] = future.get()
            except DoesNotExist:
                found[key] = None
    return found


# --- single writes ----------------------------------------------------------------------------


def put(item: Model, condition: Condition | None = None, *, if_absent: bool = True) -> Outcome:
    """Put ``item``. By default on its key's absence: a failure is ``ALREADY_DONE``. With
    ``if_absent=False`` and a ``condition``, a failure is ``CONFLICT``."""
    absent = _absent(item) if if_absent else None
    full = both(absent, condition)
    try:
        item.save(condition=full)
    except PutError as exc:
        if not _failed_condition(exc):
            raise
        return Outcome.ALREADY_DONE if if_absent else Outcome.CONFLICT
    return Outcome.NEW


def both(a: Condition | None, b: Condition | None) -> Condition | None:
    """Both conditions (either may be absent)."""
    if a is None:
        return b
    return a if b is None else a & b


def save(item: Model) -> None:
    """Put unconditionally (state that is simply replaced: a cursor, a cached token)."""
    item.save()


def update(item: Model, actions: Sequence[Any], condition: Condition | None = None) -> Outcome:
    try:
        item.update(actions=list(actions), condition=condition)
    except UpdateError as exc:
        if not _failed_condition(exc):
            raise
        return Outcome.CONFLICT
    return Outcome.NEW


def delete(item: Model, condition: Condition | None = None) -> Outcome:
    try:
        item.delete(condition=condition)
    except DeleteError as exc:
        if not _failed_condition(exc):
            raise
        return Outcome.CONFLICT
    return Outcome.NEW


def key_names(model: type[Model]) -> tuple[str, str | None]:
    """The names of a model's hash key and range key (None: it has none)."""
    attributes = model.get_attributes()
    hash_name = next(name for name, a in attributes.items() if a.is_hash_key)
    return hash_name, next((name for name, a in attributes.items() if a.is_range_key), None)


def key_of(item: Model) -> tuple[Any, Any]:
    """An item's (hash key, range key or None)."""
    hash_name, range_name = key_names(type(item))
    return getattr(item, hash_name), getattr(item, range_name) if range_name else None


def absent(item: Model) -> Condition:
    """The condition "no item with this key yet"."""
    return _absent(item)


def _absent(item: Model) -> Condition:
    hash_name, range_name = key_names(type(item))
    return type(item).get_attributes()[range_name or hash_name].does_not_exist()


def _failed_condition(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


# --- transactions -----------------------------------------------------------------------------


def commit(writes: Sequence[Write], cause: str) -> Committed:
    """Write every item or none, in one ``TransactWriteItems``. At most ``MAX_ITEMS`` writes,
    each to a different item (the executor merges what one plan does to one item)."""
    if not writes:
        return Committed(Outcome.NEW)
    if len(writes) > MAX_ITEMS:
        raise ValueError(f"{len(writes)} writes in one transaction; DynamoDB takes {MAX_ITEMS}")
    # PynamoDB sends deletes, puts, then updates (after any condition checks, which siyu does not
    # use); the cancellation reasons come back in that order (tests/test_store.py checks it).
    ordered = [w for kind in ("delete", "put", "update") for w in writes if w.kind == kind]
    try:
        with TransactWrite(connection=connection(), client_request_token=token(cause, ordered)) as transaction:
            for write in ordered:
                _add(transaction, write)
    except TransactWriteError as exc:
        return _cancelled(exc, ordered)
    return Committed(Outcome.NEW)


def _add(transaction: TransactWrite, write: Write) -> None:
    if write.kind == "put":
        transaction.save(write.item, condition=write.condition, return_values="ALL_OLD")
    elif write.kind == "update":
        transaction.update(write.item, actions=list(write.actions), condition=write.condition, return_values="ALL_OLD")
    else:
        transaction.delete(write.item, condition=write.condition)


def _cancelled(exc: TransactWriteError, ordered: list[Write]) -> Committed:
    reasons = exc.cancellation_reasons or []
    codes = [getattr(reason, "code", None) if reason else None for reason in reasons]
    if not codes:
        cause = getattr(exc, "cause_response_code", "")
        if cause == "IdempotentParameterMismatchException":
            raise Retryable("a transaction with this token and other content is in flight") from exc
        if cause in ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"):
            raise Retryable("DynamoDB is throttling; retry") from exc
        raise exc
    if any(code in THROTTLED for code in codes):
        raise Retryable("DynamoDB is throttling; retry") from exc
    failed = [(i, w) for i, (w, code) in enumerate(zip(ordered, codes, strict=False)) if code == CONDITION_FAILED]
    old: dict[int, dict[str, Any]] = {}
    for i, w in failed:
        reason = reasons[i]
        if reason is not None and reason.raw_item:
            old[id(w)] = reason.raw_item
    if failed:
        outcome = Outcome.ALREADY_DONE if any(w.guard for _, w in failed) else Outcome.CONFLICT
        return Committed(outcome, tuple(w for _, w in failed), old)
    if set(codes) - {None, "None"} <= CONTENDED:
        return Committed(Outcome.CONFLICT)
    raise exc


def token(cause: str, writes: Sequence[Write]) -> str:
    """A client request token for this cause and exactly this content (36 characters at most):
    a transaction retried after a lost answer is told it committed instead of failing its own
    conditions. Two callers that send the very same transaction (the same cause and content, to
    the microsecond of its timestamps) are therefore both told so; the work is done once."""
    digest = hashlib.sha256(cause.encode("utf-8", "surrogatepass"))
    for write in writes:
        digest.update(json.dumps([write.kind, _canonical(write.request())], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def _canonical(value: Any) -> Any:
    """Sets (``SS`` / ``NS``) in a fixed order: a set's iteration order differs between processes."""
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS") else _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _codes(exc: Exception) -> list[str | None]:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [getattr(reason, "code", None) if reason else None for reason in reasons]
