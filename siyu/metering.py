"""Count what DynamoDB is asked to do: requests per operation, items read per table, and the
request units DynamoDB would bill for them (on-demand).

Wraps botocore's single call path while active (tests and benchmarks, never handlers). Items
read are what DynamoDB charges reads for: a query's or scan's ``ScannedCount`` (items examined,
filtered or not), one per item returned by a get or batch get.

Request units, as DynamoDB bills them: a strongly consistent read is 1 RRU per 4 KB (0.5 when
eventually consistent), a transactional read or write twice that, a write 1 WRU per 1 KB of the
item written. What is written by an update is not in the request: an update counts one unit per
item (siyu's items are under 1 KB, but for a stored digest), a put its item's size.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import botocore.client


def _kb(item: dict[str, Any] | None, unit: int) -> int:
    if not item:
        return 1
    return max(1, math.ceil(len(json.dumps(item, separators=(",", ":")).encode()) / unit))


class Meter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_read: Counter[str] = Counter()
        self.units: Counter[str] = Counter()  # "read" (RRU) and "write" (WRU)
        self._original: Any = None

    def __enter__(self) -> Meter:
        original = self._original = botocore.client.BaseClient._make_api_call
        meter = self

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            try:
                response = original(client, operation, params)
            except Exception:
                if client.meta.service_model.service_name == "dynamodb":
                    meter._count(operation, params, {})  # a cancelled transaction is billed as well
                raise
            if client.meta.service_model.service_name == "dynamodb":
                meter._count(operation, params, response)
            return response

        botocore.client.BaseClient._make_api_call = counted
        return self

    def __exit__(self, *exc: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original

    def _count(self, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        self.calls[operation] += 1
        if operation in ("Query", "Scan"):
            self.items_read[params["TableName"]] += int(response.get("ScannedCount", response.get("Count", 0)))
        elif operation == "GetItem" and "Item" in response:
            self.items_read[params["TableName"]] += 1
        elif operation == "BatchGetItem":
            for table, items in response.get("Responses", {}).items():
                self.items_read[table] += len(items)
        elif operation == "TransactGetItems":
            for entry, got in zip(params["TransactItems"], response.get("Responses", []), strict=False):
                if got.get("Item"):
                    self.items_read[entry["Get"]["TableName"]] += 1
        self.units.update(_units(operation, params, response))

    def take(self) -> tuple[Counter[str], Counter[str]]:
        """(calls, items read) since the last take, and reset."""
        taken = self.calls, self.items_read
        self.calls, self.items_read = Counter(), Counter()
        return taken

    def take_units(self) -> Counter[str]:
        taken, self.units = self.units, Counter()
        return taken


def _units(operation: str, params: dict[str, Any], response: dict[str, Any]) -> Counter[str]:
    consistent = 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "GetItem":
        return Counter({"read": consistent * _kb(response.get("Item"), 4096)})
    if operation in ("Query", "Scan"):
        size = sum(len(json.dumps(i, separators=(",", ":")).encode()) for i in response.get("Items", []))
        return Counter({"read": consistent * max(1, math.ceil(size / 4096))})
    if operation == "TransactGetItems":
        got = response.get("Responses") or [{}] * len(params["TransactItems"])
        return Counter({"read": sum(2 * _kb(g.get("Item"), 4096) for g in got)})
    if operation == "TransactWriteItems":
        return Counter({"write": sum(2 * _written(entry) for entry in params["TransactItems"])})
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return Counter({"write": _written({operation.removesuffix("Item"): params})})
    if operation == "BatchGetItem":
        return Counter({"read": sum(len(v) for v in response.get("Responses", {}).values())})
    return Counter()


def _written(entry: dict[str, Any]) -> int:
    kind, operation = next(iter(entry.items()))
    return _kb(operation.get("Item"), 1024) if kind == "Put" else 1
