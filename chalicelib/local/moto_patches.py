"""Four of moto's slow paths, made fast for the local stack, the tests and ``siyu simulate``.

moto (the local stack's and the tests' DynamoDB) is built to be right, not fast. Four of its
costs made long runs (``siyu simulate``, the benchmarks) slow, the first two more so every day
as the tables grew:

- TransactWriteItems deep-copies every table it touches before it starts, so each transaction
  costs time in proportion to the table: a recall sweep or an outbox that writes thousands of
  items through transactions became quadratic (a 1,500-member sweep took over six minutes). The
  replacement keeps DynamoDB's semantics — every condition is checked before anything is
  written, a failed condition cancels the whole transaction with one reason per item, two
  operations on one item are refused — and snapshots only the items it writes, to put them back
  if a write fails half-way.
- Every query starts from the list of every item of the table, sorted. A query of a table's own
  key now reads only its partition; a query of a secondary index reads, unsorted, only the items
  whose index hash key matches (moto sorts the matches by the index's keys afterwards, so the
  order of the answer is unchanged).
- An UpdateItem parses its expression twice, deep-copies the tree and validates it in ten walks,
  each rebuilding its table of node types and asking ``isinstance`` of abstract classes at every
  node; conditions are lexed character by character with regular expressions at every request.
  Parses and tokens are kept per expression, the copy is unpickled, and each walk picks a node's
  processor once per type. A plain counter update (``ADD #0 :0, #1 :1``, every counter siyu
  keeps) is applied as moto's executor would, without the parse-and-validate.
- Every answer is serialized by walking the botocore model shape by shape, which costs more than
  the operation itself for a page of items. The answers of the item operations (already plain
  DynamoDB JSON in moto) are written with ``json.dumps``; everything else keeps moto's path. The
  names of a handler's methods, listed with ``inspect`` at every request, are listed once.

``install()`` swaps all four in (idempotent).
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import pickle
import re
import threading
from collections import deque
from typing import Any

_partition = threading.local()  # (table, the items this query may match) while a query runs
PICKLED: dict[int, tuple[Any, bytes]] = {}  # id(parsed tree) -> (the tree, kept alive; its pickle)
NODE_TYPES: dict[type, bool] = {}  # type -> is it an expression tree node
ADDS = re.compile(r"ADD #\w+ :\w+(?:, #\w+ :\w+)*")  # a plain counter update, as PynamoDB writes it

OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})

FAST_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def install() -> None:
    from moto.core import responses as moto_responses
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoResult

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
        if hash_key is None:
            return whole_query(table, hash_key, *args, **kwargs)
        items = _index_partition(table, index_name, hash_key) if index_name else _partition_of(table, hash_key)
        if items is None:
            return whole_query(table, hash_key, *args, **kwargs)
        _partition.held = (table, items)
        try:
            return whole_query(table, hash_key, *args, **kwargs)
        finally:
            _partition.held = None

    Table.all_items, Table.query = all_items, query  # type: ignore[method-assign]
    DynamoResult.execute_result = _fast_execute_result(DynamoResult.execute_result)  # type: ignore[method-assign]
    _faster_update_expressions()
    _lexed_conditions_kept()
    DynamoDBBackend.update_item = _counting_update(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    moto_responses.method_names_from_class = functools.lru_cache(maxsize=None)(moto_responses.method_names_from_class)


def _faster_update_expressions() -> None:
    """The parse is kept per expression (nothing writes to the parsed tree: the validator works
    on a copy, unpickled rather than deep-copied); moto's depth-first walk, with the processor of
    each node type looked up once."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    parse = functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make.__func__)  # type: ignore[attr-defined]
    UpdateExpressionParser.make = classmethod(lambda cls, expression: parse(cls, expression))  # type: ignore[method-assign]

    def processor_for(walker: Any, kind: type) -> Any:
        """The walker's processor of a node of type ``kind`` (its first entry the node is an
        instance of, as moto's ``process`` picks), or None; worked out once per type."""
        chosen = walker.__dict__.setdefault("_siyu_processors", {})
        if kind not in chosen:
            table = walker._processing_map()
            chosen[kind] = next((table[k] for k in table if issubclass(kind, k)), None)
        return chosen[kind]

    def traverse_node_recursively(walker: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        is_node = NODE_TYPES.get(kind)
        if is_node is None:
            is_node = NODE_TYPES[kind] = issubclass(kind, Node)
        if not is_node:
            return node
        parent = node.parent
        if node.children is not None:
            for i, child in enumerate(node.children):
                walker.pre_processing_of_child(node, i)
                traverse_node_recursively(walker, child, i)
        processor = processor_for(walker, kind)
        if processor is not None:
            node = processor(node)
            node.parent = parent
            if parent:
                parent.children[child_id] = node
        return node

    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively  # type: ignore[method-assign]
    validators.deepcopy = _copy_tree


def _lexed_conditions_kept() -> None:
    """A condition is lexed character by character with regular expressions: its tokens are kept
    per expression."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    lexed: dict[str, tuple] = {}
    lex = ConditionExpressionParser._lex_condition_expression

    def lex_condition_expression(parser: Any) -> deque:
        """The tokens of a condition, kept per expression (they are tuples, never changed)."""
        tokens = lexed.get(parser.condition_expression)
        if tokens is None:
            if len(lexed) > 1024:
                lexed.clear()
            tokens = lexed[parser.condition_expression] = tuple(lex(parser))
        return deque(tokens)

    ConditionExpressionParser._lex_condition_expression = lex_condition_expression  # type: ignore[method-assign]


def _copy_tree(value: Any, memo: Any = None) -> Any:
    """The validator's copy of a parsed update expression: unpickled from the tree's pickle (a
    tenth of ``deepcopy``'s time); anything else is deep-copied as moto does."""
    from moto.dynamodb.parsing.ast_nodes import Node

    if not isinstance(value, Node):
        return copy.deepcopy(value, memo)
    kept = PICKLED.get(id(value))
    if kept is None or kept[0] is not value:
        if len(PICKLED) > 1024:
            PICKLED.clear()
        kept = PICKLED[id(value)] = (value, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return pickle.loads(kept[1])


def _counting_update(moto_update: Any) -> Any:
    """UpdateItem that only adds numbers to top-level attributes (``ADD #0 :0, #1 :1``: every
    counter siyu keeps) applied as moto's ADD executor would, without its parse-and-validate;
    anything else, or anything that would fail, goes moto's whole way."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    def update_item(
        backend: Any,
        table_name: str,
        key: dict[str, Any],
        update_expression: str,
        expression_attribute_names: dict[str, Any],
        expression_attribute_values: dict[str, Any],
        attribute_updates: dict[str, Any] | None = None,
        expected: dict[str, Any] | None = None,
        condition_expression: str | None = None,
        return_values_on_condition_check_failure: str | None = None,
    ) -> Any:
        plan = None
        if not (attribute_updates or expected or condition_expression):
            plan = _adds(
                backend, table_name, key, update_expression, expression_attribute_names, expression_attribute_values
            )
        if plan is None:
            return moto_update(
                backend,
                table_name,
                key,
                update_expression,
                expression_attribute_names,
                expression_attribute_values,
                attribute_updates=attribute_updates,
                expected=expected,
                condition_expression=condition_expression,
                return_values_on_condition_check_failure=return_values_on_condition_check_failure,
            )
        table, hash_value, range_value, item, adds = plan
        if item is None:
            data = {table.hash_key_attr: key[table.hash_key_attr]}
            if range_value is not None:
                data[table.range_key_attr] = key[table.range_key_attr]
            table.put_item(data)
            item = table.get_item(hash_value, range_value)
        for name, amount in adds:
            item.attrs[name] = item.attrs.get(name, DynamoType({"N": "0"})) + amount
        return item

    return update_item


def _adds(
    backend: Any, table_name: str, key: dict[str, Any], expression: str | None, names: Any, values: Any
) -> tuple[Any, Any, Any, Any, list[tuple[str, Any]]] | None:
    """(table, hash key, range key, stored item or None, the (attribute, number) pairs) of a plain
    counter update; None when moto's own path must judge the update."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    if not expression or not ADDS.fullmatch(expression.strip()) or not names or not values:
        return None
    table = backend.get_table(table_name)
    if table.stream_shard is not None:
        return None
    hash_value, range_value = backend.get_keys_value(table, key)
    item = table.get_item(hash_value, range_value)
    adds: list[tuple[str, Any]] = []
    for pair in expression.strip()[4:].split(", "):
        placeholder, value_name = pair.split(" ")
        name, value = names.get(placeholder), values.get(value_name)
        if name is None or name in table.attribute_keys or not isinstance(value, dict) or list(value) != ["N"]:
            return None
        current = item.attrs.get(name) if item is not None else None
        if current is not None and current.type != "N":
            return None
        adds.append((name, DynamoType(value)))
    if len({name for name, _ in adds}) != len(adds) or len(set(names)) != len(adds) or len(set(values)) != len(adds):
        return None  # moto refuses overlapping paths and unused names or values
    return table, hash_value, range_value, item, adds


def _partition_of(table: Any, hash_key: Any) -> list[Any]:
    bucket = table.items.get(hash_key)
    return [] if bucket is None else list(bucket.values()) if table.range_key_attr else [bucket]


def _index_partition(table: Any, index_name: str, hash_key: Any) -> list[Any] | None:
    """The items a query of ``index_name`` for ``hash_key`` can match, in no order; None when the
    index is one moto's own pass should handle (unknown, or a key of several attributes)."""
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    hashes = [] if index is None else [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    if len(hashes) != 1:
        return None
    name, kind, value = hashes[0], hash_key.type, hash_key.value
    matches = []
    for bucket in table.items.values():
        for item in bucket.values() if table.range_key_attr else (bucket,):
            found = item.attrs.get(name)
            same = found is not None and found.type == kind
            if same and (found.value == value or (kind == "N" and found == hash_key)):
                matches.append(item)  # numbers compare by value: "1" and "1.0" are one key
    return matches


def _fast_execute_result(moto_path: Any) -> Any:
    def execute_result(result: Any, context: Any) -> Any:
        if context.operation_model.name not in FAST_OPERATIONS or not isinstance(result.result, dict):
            return moto_path(result, context)
        body = json.dumps(result.result, separators=(",", ":"), default=_wire)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    return execute_result


def _wire(value: Any) -> Any:
    """What ``json`` cannot write itself: binary attributes go base64, as on the wire."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"moto answer holds a {type(value).__name__}")


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
