"""The faster moto transaction keeps DynamoDB's all-or-nothing semantics."""

import pytest
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.state.models import Member, Shared


def test_a_failed_condition_cancels_every_write_and_names_the_item(aws):
    Shared("count", "taken", count=1).save()
    connection = Shared._get_connection().connection
    with pytest.raises(TransactWriteError) as caught, TransactWrite(connection=connection) as transaction:
        transaction.save(Member("oFirst", origin="oa"))
        transaction.save(Shared("count", "taken", count=2), condition=Shared.count.does_not_exist())
    reasons = [getattr(r, "code", None) if r else None for r in caught.value.cancellation_reasons]
    assert reasons == [None, "ConditionalCheckFailed"]
    assert Member.count("oFirst") == 0 and Shared.get("count", "taken").count == 1


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
        transaction.update(Shared("count", "x"), actions=[Shared.count.add(1)])
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
