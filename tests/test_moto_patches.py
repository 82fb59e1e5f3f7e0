"""siyu's faster moto (chalicelib/local/moto_patches.py) answers as moto and DynamoDB do."""

from collections import Counter
from datetime import date

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
    with pytest.raises((TransactWriteError, RuntimeError)), TransactWrite(connection=connection) as transaction:
        transaction.save(Member("oNew", origin="wecom"))
        transaction.update(Member("oKept"), actions=[Member.origin.set("orders")])
        transaction.update(Shared("count", "x"), actions=[Shared.tally.add(1)])
    assert Member.count("oNew") == 0 and Member.get("oKept").origin == "oa"


def test_two_operations_on_one_item_are_refused(aws):
    connection = Shared._get_connection().connection
    with pytest.raises(TransactWriteError), TransactWrite(connection=connection) as transaction:
        transaction.save(Member("oTwice", origin="oa"))
        transaction.update(Member("oTwice"), actions=[Member.origin.set("wecom")])
    assert Member.count("oTwice") == 0


def test_a_query_reads_its_partition_and_an_index_query_still_sees_every_partition(aws):
    from datetime import UTC, datetime

    from chalicelib.state.models import Coupon, PointsRecord

    for member in ("oA", "oB"):
        for n in range(3):
            PointsRecord(member, f"entry#{n}", delta=n).save()
    at = datetime(2026, 11, 23, tzinfo=UTC)
    for code, member in (("C1", "oA"), ("C2", "oB"), ("C3", "oA")):
        Coupon(
            code,
            member_id=member,
            cause="welcome",
            cause_key=code,
            title="t",
            value_fen=1,
            issued_at=at,
            expires_at=at,
            rules_version="1",
        ).save()
    assert [r.sk for r in PointsRecord.query("oA")] == ["entry#0", "entry#1", "entry#2"]
    assert [r.sk for r in PointsRecord.query("oB", PointsRecord.sk > "entry#0")] == ["entry#1", "entry#2"]
    assert list(PointsRecord.query("oNobody")) == []
    assert sorted(c.code for c in Coupon.by_member.query("oA")) == ["C1", "C3"]


def test_an_index_query_pages_in_the_index_order(aws):
    from datetime import UTC, datetime, timedelta

    from chalicelib.state.models import Coupon

    at = datetime(2026, 11, 23, tzinfo=UTC)
    for n, member in enumerate(["oB", "oA", "oB", "oA", "oB"] * 3):
        Coupon(
            f"C{n:02d}",
            member_id=member,
            cause="welcome",
            cause_key=str(n),
            title="t",
            value_fen=1,
            issued_at=at - timedelta(minutes=n),
            expires_at=at,
            rules_version="1",
        ).save()
    codes = [c.code for c in Coupon.by_member.query("oB", page_size=2)]  # five pages
    expected = sorted((c for c in Coupon.scan() if c.member_id == "oB"), key=lambda c: (c.issued_at, c.code))
    assert codes == [c.code for c in expected] and len(codes) == 9
    newest = [c.code for c in Coupon.by_member.query("oB", scan_index_forward=False, page_size=4)]
    assert newest == codes[::-1]


def test_counters_add_up_create_their_item_and_keep_dynamodbs_refusals(aws):
    from pynamodb.exceptions import UpdateError

    from chalicelib.metrics import read
    from chalicelib.state.models import Metric

    item = Metric("chain", "2026-11-23")
    connection = Metric._get_connection().connection
    with TransactWrite(connection=connection) as transaction:  # the item does not exist yet
        transaction.update(item, actions=[Path("follows").add(2), Path("orders").add(1)])
    with TransactWrite(connection=connection) as transaction:
        transaction.update(item, actions=[Path("follows").add(3), Path("order_fen").add(-250)])
    assert read.days("chain", date(2026, 11, 23), date(2026, 11, 23)) == {
        date(2026, 11, 23): Counter(follows=5, orders=1, order_fen=-250)
    }

    Shared("count", "text", value="not a number").save()
    with pytest.raises(UpdateError):  # ADD to a string: DynamoDB's ValidationException, as before
        Shared("count", "text").update(actions=[Path("value").add(1)])
    assert Shared.get("count", "text").value == "not a number"
    with pytest.raises(UpdateError):  # a condition still guards the add
        Shared("count", "capped").update(actions=[Shared.tally.add(1)], condition=Shared.tally.exists())
    assert list(Shared.query("count", Shared.sk == "capped")) == []


def test_an_expression_kept_from_an_earlier_update_takes_this_updates_values(aws):
    for value in ("first", "second", "third"):
        Shared("token", "app").update(actions=[Shared.value.set(value), Shared.tally.add(1)])
        stored = Shared.get("token", "app")
        assert (stored.value, stored.tally) == (value, ["first", "second", "third"].index(value) + 1)


def test_binary_values_and_pages_survive_the_fast_answers(aws):
    import boto3

    client = boto3.client("dynamodb")
    table = Shared.Meta.table_name
    client.put_item(TableName=table, Item={"pk": {"S": "blob"}, "sk": {"S": "1"}, "data": {"B": b"\x00\xffsiyu"}})
    got = client.get_item(TableName=table, Key={"pk": {"S": "blob"}, "sk": {"S": "1"}})
    assert got["Item"]["data"]["B"] == b"\x00\xffsiyu"
    for n in range(5):
        Shared("page", f"{n}", tally=n).save()
    first = client.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "page"}},
        Limit=3,
    )
    assert [i["sk"]["S"] for i in first["Items"]] == ["0", "1", "2"] and first["Count"] == 3
    rest = client.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "page"}},
        ExclusiveStartKey=first["LastEvaluatedKey"],
    )
    assert [i["sk"]["S"] for i in rest["Items"]] == ["3", "4"] and "LastEvaluatedKey" not in rest
