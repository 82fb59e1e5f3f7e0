"""One patch of moto for the in-process tests: TransactWriteItems without its whole-table backup.

moto is the functional tier's DynamoDB (``chalice.test.Client`` in process; the local stack, the
simulation and the end-to-end tests run on DynamoDB Local). moto's TransactWriteItems deep-copies
every table a transaction touches before it starts, to restore them if it is cancelled: each
transaction costs time in proportion to its tables, and the tests that sweep thousands of members
(each decision one transaction) spend minutes in ``deepcopy``. ``transact_write_items`` below is
moto's own, step for step and error for error, except that it copies only the items it writes and
puts those back. docs/local-stack.md gives the ``make test`` figures with and without it, and of
the six other patches this module had, which no longer paid for themselves and are gone.

It replaces an internal of moto, so it is written against one version, ``MOTO_VERSION``, the one
requirements-dev.lock pins: on any other, ``install()`` changes nothing (plain moto: slower, never
wrong) and warns. ``pytest --plain-moto`` runs the suite without it.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

MOTO_VERSION = "5.2.5"  # moto/dynamodb/models/__init__.py of this version is what is mirrored below
OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})
_state = {"installed": False, "warned": False}


def install() -> bool:
    """Swap the patch in if moto is ``MOTO_VERSION`` (idempotent); True if it is in force."""
    from moto import __version__
    from moto.dynamodb.models import DynamoDBBackend

    if __version__ != MOTO_VERSION:
        if not _state["warned"]:
            _state["warned"] = True
            warnings.warn(
                f"moto {__version__} is not {MOTO_VERSION}, the version tests/moto_patches.py is written for: "
                "the tests run on plain moto (slower). Install requirements-dev.lock.",
                stacklevel=2,
            )
        return False
    if not _state["installed"]:
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _state["installed"] = True
    return True


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``DynamoDBBackend.transact_write_items``, with a backup of the items written
    instead of a deep copy of every table touched. As moto: each item's condition is checked and
    its write applied in turn; a failed condition or a failed write becomes that item's
    cancellation reason, and any reason cancels the whole transaction (TransactionCanceledException,
    every write undone); a validation error or a second operation on one item is raised as it is,
    every write undone."""
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    written: list[tuple[str, dict[str, Any], Any]] = []  # (table, key, the item before it was written)
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []  # (code, message, item) per operation, as moto's
    try:
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            kind, operation = next(iter(entry.items()))
            try:
                _apply(backend, kind, operation, targets, written)
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise
            except ConditionalCheckFailed as failed:  # the item's old attributes if it asked for them
                errors.append(("ConditionalCheckFailed", str(failed.message), getattr(failed, "old_item", None)))
            except Exception as other:  # moto records any other failure as the item's reason
                errors.append((type(other).__name__, str(other), None))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
    except Exception:
        _restore(backend, written)
        raise


def _apply(
    backend: Any, kind: str, operation: dict[str, Any], targets: set[tuple[str, str]], written: list[Any]
) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import ConditionalCheckFailed, MultipleTransactionsException

    if kind not in OPERATIONS:
        raise ValueError("Unsupported transaction operation")
    table_name = operation["TableName"]
    condition = operation.get("ConditionExpression")
    names, values = operation.get("ExpressionAttributeNames"), operation.get("ExpressionAttributeValues")
    key = _key(backend, kind, operation)
    target = (str(table_name), str(dict(sorted(key.items()))))
    if target in targets:
        raise MultipleTransactionsException()
    targets.add(target)
    current = backend.get_item(table_name=table_name, keys=key)
    if condition is not None and not get_filter_expression(condition, names, values).expr(current):
        wanted = operation.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        failed = ConditionalCheckFailed()
        failed.old_item = current.to_json()["Attributes"] if wanted and current else None  # type: ignore[attr-defined]
        raise failed
    written.append((table_name, key, copy.deepcopy(current)))
    expression = {
        "condition_expression": condition,
        "expression_attribute_names": names,
        "expression_attribute_values": values,
    }
    if kind == "Put":
        backend.put_item(table_name=table_name, item_attrs=operation["Item"], **expression)
    elif kind == "Delete":
        backend.delete_item(table_name=table_name, key=key, **expression)
    elif kind == "Update":
        backend.update_item(
            table_name=table_name, key=key, update_expression=operation["UpdateExpression"], **expression
        )


def _key(backend: Any, kind: str, operation: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        return operation["Key"]
    table = backend.get_table(operation["TableName"])
    key = {table.hash_key_attr: operation["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = operation["Item"][table.range_key_attr]
    return key


def _restore(backend: Any, written: list[tuple[str, dict[str, Any], Any]]) -> None:
    """Put every written item back as it was, the last written first."""
    for table_name, key, before in reversed(written):
        if before is None:
            backend.delete_item(table_name=table_name, key=key)
        else:
            backend.put_item(table_name=table_name, item_attrs=before.to_json()["Attributes"])
