"""A faster TransactWriteItems for moto (the local stack's and the tests' DynamoDB).

moto makes a transaction undoable by deep-copying every table it touches before it starts, so
each transaction costs time in proportion to the table: a recall sweep or an outbox that writes
thousands of items through transactions becomes quadratic (a 1,500-member sweep took over six
minutes). This replacement keeps DynamoDB's semantics — every condition is checked before
anything is written, a failed condition cancels the whole transaction with one reason per
item, two operations on one item are refused — and snapshots only the items it writes, to put
them back if a write fails half-way. ``install()`` swaps it into moto's backend (idempotent).

``install()`` also makes a query of a table's own key read only that partition: moto builds the
list of every item of the table, sorted, for each query, so a query of one member's points cost
time in proportion to all members' (``siyu simulate`` slowed down day by day). Queries of a
secondary index keep moto's full pass, which they need.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

_partition = threading.local()  # (table, its items for this query) while a base-table query runs

OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend.transact_write_items, "siyu", False):
        return
    transact_write_items.siyu = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    every_item, whole_query = Table.all_items, Table.query

    def all_items(table: Any) -> list[Any]:
        held = getattr(_partition, "held", None)
        return held[1] if held is not None and held[0] is table else every_item(table)

    def query(table: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)  # moto passes it 8th
        if index_name or hash_key is None:
            return whole_query(table, hash_key, *args, **kwargs)
        bucket = table.items.get(hash_key)
        items = [] if bucket is None else list(bucket.values()) if table.range_key_attr else [bucket]
        _partition.held = (table, items)
        try:
            return whole_query(table, hash_key, *args, **kwargs)
        finally:
            _partition.held = None

    Table.all_items, Table.query = all_items, query  # type: ignore[method-assign]


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import TooManyTransactionsException, TransactionCanceledException

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    operations = _operations(backend, transact_items)
    reasons = [_check(backend, operation, key) for _, operation, key in operations]
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    before = [
        (op["TableName"], key, copy.deepcopy(backend.get_item(op["TableName"], key))) for _, op, key in operations
    ]
    try:
        for kind, operation, key in operations:
            _write(backend, kind, operation, key)
    except Exception:
        for table_name, key, item in before:
            if item is None:
                backend.delete_item(table_name, key)
            else:
                backend.put_item(table_name, item.to_json()["Attributes"])
        raise


def _operations(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict, dict]]:
    from moto.dynamodb.exceptions import MultipleTransactionsException, TransactWriteSingleOpException

    operations = []
    seen = set()
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, operation = next(iter(entry.items()))
        if kind not in OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        key = _key(backend, kind, operation)
        identity = (operation["TableName"], repr(sorted(key.items())))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        operations.append((kind, operation, key))
    return operations


def _check(backend: Any, operation: dict[str, Any], key: dict[str, Any]) -> tuple[Any, Any, Any]:
    """moto's cancellation reason for one item: (code, message, old item) or (None, None, None)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    current = backend.get_item(operation["TableName"], key)
    condition = operation.get("ConditionExpression")
    names, values = operation.get("ExpressionAttributeNames"), operation.get("ExpressionAttributeValues")
    if condition is None or get_filter_expression(condition, names, values).expr(current):
        return None, None, None
    wanted = operation.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    old = current.to_json()["Attributes"] if wanted and current else None
    return "ConditionalCheckFailed", ConditionalCheckFailed().message, old


def _key(backend: Any, kind: str, operation: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        return operation["Key"]
    table = backend.get_table(operation["TableName"])
    key = {table.hash_key_attr: operation["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = operation["Item"][table.range_key_attr]
    return key


def _write(backend: Any, kind: str, operation: dict[str, Any], key: dict[str, Any]) -> None:
    table_name = operation["TableName"]
    names, values = operation.get("ExpressionAttributeNames"), operation.get("ExpressionAttributeValues")
    if kind == "Put":
        backend.put_item(table_name, operation["Item"])
    elif kind == "Delete":
        backend.delete_item(table_name, key)
    elif kind == "Update":
        backend.update_item(table_name, key, operation["UpdateExpression"], names, values)
