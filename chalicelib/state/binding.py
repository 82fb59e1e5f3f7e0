"""Point the models at the stage's tables and endpoint, at call time."""

from __future__ import annotations

import threading

from pynamodb.models import Model

from chalicelib.settings import Settings
from chalicelib.state.models import BASE_NAMES, MODELS

_lock = threading.Lock()
_bound: tuple[str, str | None, str] | None = None


def bind(settings: Settings) -> None:
    """Idempotent and cheap when nothing changed; resets cached connections when it did."""
    global _bound
    wanted = (settings.table_prefix, settings.dynamodb_endpoint, settings.region)
    if _bound == wanted:
        return
    with _lock:
        for model in MODELS:
            model.Meta.table_name = settings.table_prefix + BASE_NAMES[model]
            model.Meta.host = settings.dynamodb_endpoint
            model.Meta.region = settings.region
            model._connection = None
        # One botocore client for every table (PynamoDB makes one per model, each loading the
        # endpoint data again: ~0.2 s apiece on a cold start). Same region, endpoint and config.
        shared = MODELS[0]._get_connection().connection.client
        for model in MODELS[1:]:
            model._get_connection().connection._client = shared
        _bound = wanted


def create_tables(settings: Settings) -> list[str]:
    """Create missing tables, and the missing indexes of a table made before they were declared
    (``make run``'s DynamoDB Local keeps its old tables in .siyu/). Local runs and tests only:
    real tables belong to infra/."""
    bind(settings)
    created = []
    for model in MODELS:
        if not model.exists():
            model.create_table(wait=True)
            created.append(model.Meta.table_name)
        else:
            created += _add_missing_indexes(model)
    return created


def _add_missing_indexes(model: type[Model]) -> list[str]:
    schema = model._get_schema()
    existing = {i["IndexName"] for i in model.describe_table().get("GlobalSecondaryIndexes", [])}
    added = []
    for index in schema.get("global_secondary_indexes", []):
        if index["index_name"] in existing:
            continue
        create = {"IndexName": index["index_name"], "KeySchema": index["key_schema"], "Projection": index["projection"]}
        model._get_connection().connection.client.update_table(
            TableName=model.Meta.table_name,
            AttributeDefinitions=schema["attribute_definitions"],
            GlobalSecondaryIndexUpdates=[{"Create": create}],
        )
        added.append(f"{model.Meta.table_name}.{index['index_name']}")
    return added
