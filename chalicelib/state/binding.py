"""Point the models at the stage's tables and endpoint, at call time."""

from __future__ import annotations

import threading

from pynamodb.models import Model

from chalicelib.settings import Settings
from chalicelib.state.models import BASE_NAMES, MODELS

_lock = threading.Lock()
_bound: tuple[str, str | None, str] | None = None


def bind(settings: Settings) -> None:
    """Idempotent and cheap when nothing changed. The webhook path reads and writes through the
    store's one connection (``chalicelib.store.db``, made anew for a new endpoint): one botocore
    client, made on first use, whatever the tables.

    PynamoDB makes a model's own connection anew only when the model's table name changes (it
    has no way to change the endpoint of a model at runtime: pynamodb/PynamoDB issue #1275). A
    binding that keeps the names but moves the endpoint (a test restarting the local DynamoDB on
    another port) therefore passes each model through another name once, so that its next
    connection is made for the new endpoint (it costs no request: a connection's client is made
    on first use)."""
    global _bound
    wanted = (settings.table_prefix, settings.dynamodb_endpoint, settings.region)
    if _bound == wanted:
        return
    with _lock:
        for model in MODELS:
            name = settings.table_prefix + BASE_NAMES[model]
            model.Meta.host = settings.dynamodb_endpoint
            model.Meta.region = settings.region
            model.Meta.table_name = name + "-rebinding"
            model._get_connection()
            model.Meta.table_name = name
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
