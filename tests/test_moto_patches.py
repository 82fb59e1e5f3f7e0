"""siyu's patch of moto (tests/moto_patches.py) answers as moto and DynamoDB do."""

import pytest
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.operand import Path
from pynamodb.transactions import TransactWrite

from chalicelib.state.models import Member, Shared


def test_a_failed_condition_cancels_every_write_and_names_the_item(aws):
    Shared("count", "taken", tally=1).save()
    connection = Shared._get_connection().connection
    with pytest.raises(TransactWriteError) as caught, TransactWrite(connection=connection) as transaction:
        transaction.save(Member("oFirst", origin="oa"))
        transaction.save(Shared("count", "taken", tally=2), condition=Shared.tally.does_not_exist())
    reasons = [getattr(r, "code", None) if r else None for r in caught.value.cancellation_reasons]
    assert reasons == [None, "ConditionalCheckFailed"]
    assert Member.count("oFirst") == 0 and Shared.get("count", "taken").tally == 1


def test_a_write_failing_half_way_puts_back_what_was_written(aws, monkeypatch):
    from moto.dynamodb.models import DynamoDBBackend

    Member("oKept", origin="oa").save()
    real_update = DynamoDBBackend.update_item

    def failing_update(self, table_name, *args, **kwargs):
        if table_name.endswith("shared"):
            raise RuntimeError("disk full")
        return real_update(self, table_name, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", failing_update)
    connection = Shared._get_connection().connection
    with pytest.raises(TransactWriteError) as caught, TransactWrite(connection=connection) as transaction:
        transaction.save(Member("oNew", origin="wecom"))
        transaction.update(Member("oKept"), actions=[Member.origin.set("orders")])
        transaction.update(Shared("count", "x"), actions=[Shared.tally.add(1)])
    reasons = [getattr(r, "code", None) if r else None for r in caught.value.cancellation_reasons]
    assert reasons == [None, None, "RuntimeError"]  # moto's reason for a write that failed
    assert Member.count("oNew") == 0 and Member.get("oKept").origin == "oa"


def test_two_operations_on_one_item_are_refused(aws):
    connection = Shared._get_connection().connection
    with pytest.raises(TransactWriteError), TransactWrite(connection=connection) as transaction:
        transaction.save(Member("oTwice", origin="oa"))
        transaction.update(Member("oTwice"), actions=[Member.origin.set("wecom")])
    assert Member.count("oTwice") == 0


def test_a_validation_error_inside_a_transaction_is_raised_and_every_write_undone(aws):
    """As moto (which raises it as it is, where DynamoDB would cancel with a reason)."""
    Shared("count", "text", value="not a number").save()
    connection = Shared._get_connection().connection
    with pytest.raises(TransactWriteError) as caught, TransactWrite(connection=connection) as transaction:
        transaction.save(Member("oUndone", origin="oa"))
        transaction.update(Shared("count", "text"), actions=[Path("value").add(1)])
    assert caught.value.cause_response_code == "ValidationException"
    assert Member.count("oUndone") == 0 and Shared.get("count", "text").value == "not a number"


def test_a_failed_condition_returns_the_old_item_when_asked(aws):
    import boto3

    Shared("count", "held", tally=1).save()
    client = boto3.client("dynamodb")
    with pytest.raises(client.exceptions.TransactionCanceledException) as caught:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": Shared.Meta.table_name,
                        "Item": {"pk": {"S": "count"}, "sk": {"S": "held"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        )
    [reason] = caught.value.response["CancellationReasons"]
    assert reason["Code"] == "ConditionalCheckFailed" and reason["Item"]["count"] == {"N": "1"}


def test_on_another_moto_version_nothing_is_patched_and_a_warning_says_so():
    """In a fresh interpreter, so that no earlier test has patched anything yet."""
    import subprocess
    import sys

    probe = """
import warnings, moto
moto.__version__ = "5.2.999"
from moto.dynamodb.models import DynamoDBBackend
before = DynamoDBBackend.transact_write_items
from tests import moto_patches
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(moto_patches.install())
print(before is DynamoDBBackend.transact_write_items)
print(any("plain moto" in str(w.message) for w in caught))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]


def test_the_locked_moto_is_the_version_the_patches_are_written_for():
    """Upgrading moto in requirements-dev.lock means re-checking the patches (and MOTO_VERSION)."""
    from moto import __version__

    from chalicelib.settings import PROJECT_DIR
    from tests import moto_patches

    lock = (PROJECT_DIR / "requirements-dev.lock").read_text(encoding="utf-8").splitlines()
    assert f"moto=={moto_patches.MOTO_VERSION}" in lock
    assert __version__ == moto_patches.MOTO_VERSION
