"""The CloudFormation tables in infra/ match the PynamoDB models, key for key and index for index."""

import json
from pathlib import Path

import pytest

from chalicelib.settings import PROJECT_DIR
from chalicelib.state.models import BASE_NAMES, MODELS

TEMPLATE = json.loads((PROJECT_DIR / "infra" / "resources.json").read_text())


def table_resource(base_name: str) -> dict:
    for resource in TEMPLATE["Resources"].values():
        if resource["Type"] == "AWS::DynamoDB::Table" and resource["Properties"]["TableName"] == {
            "Fn::Sub": "${AWS::StackName}-" + base_name
        }:
            return resource
    raise AssertionError(f"no table {base_name} in infra/resources.json")


def keys(schema: list[dict]) -> list[tuple[str, str]]:
    return sorted(((k["AttributeName"], k["KeyType"]) for k in schema), key=lambda pair: pair[1])  # HASH, RANGE


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_infra_declares_each_model_table_with_the_same_keys_and_indexes(model):
    resource = table_resource(BASE_NAMES[model])
    props = resource["Properties"]
    schema = model._get_schema()
    assert keys(props["KeySchema"]) == keys(schema["key_schema"])
    declared = {
        i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"])
        for i in props.get("GlobalSecondaryIndexes", [])
    }
    expected = {
        i["index_name"]: (keys(i["key_schema"]), i["projection"]["ProjectionType"])
        for i in schema.get("global_secondary_indexes", [])
    }
    assert declared == expected
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    ttl = model._ttl_attribute()
    assert props.get("TimeToLiveSpecification", {}).get("AttributeName") == (ttl.attr_name if ttl else None)
    assert resource["Metadata"]["AccessPatterns"], "each table says which access patterns it serves"


def test_the_iam_policy_covers_the_stack_tables():
    for stage in ("dev", "prod"):
        policy = json.loads((PROJECT_DIR / ".chalice" / f"policy-{stage}.json").read_text())
        resources = [r for s in policy["Statement"] for r in s["Resource"]] if policy else []
        assert "arn:aws:dynamodb:*:*:table/siyu-*" in resources


def test_readme_documents_every_environment_variable():
    from chalicelib.settings import VARIABLES

    readme = (Path(PROJECT_DIR) / "README.md").read_text()
    missing = [name for name in VARIABLES if name not in readme]
    assert missing == []
