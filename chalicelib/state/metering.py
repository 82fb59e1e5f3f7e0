"""Count what DynamoDB is asked to do: requests per operation and items read per table.

Wraps botocore's single call path while active (tests and benchmarks, never handlers). Items
read are what DynamoDB charges reads for: a query's or scan's ``ScannedCount`` (items examined,
filtered or not), one per item returned by a get or batch get.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import botocore.client


class Meter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_read: Counter[str] = Counter()
        self._original: Any = None

    def __enter__(self) -> Meter:
        original = self._original = botocore.client.BaseClient._make_api_call
        meter = self

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            response = original(client, operation, params)
            if client.meta.service_model.service_name == "dynamodb":
                meter._count(operation, params, response)
            return response

        botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def _count(self, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        self.calls[operation] += 1
        if operation in ("Query", "Scan"):
            self.items_read[params["TableName"]] += int(response.get("ScannedCount", response.get("Count", 0)))
        elif operation == "GetItem" and "Item" in response:
            self.items_read[params["TableName"]] += 1
        elif operation == "BatchGetItem":
            for table, items in response.get("Responses", {}).items():
                self.items_read[table] += len(items)

    def take(self) -> tuple[Counter[str], Counter[str]]:
        """(calls, items read) since the last take, and reset."""
        taken = self.calls, self.items_read
        self.calls, self.items_read = Counter(), Counter()
        return taken
