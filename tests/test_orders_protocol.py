import json
from datetime import UTC, datetime

import pytest

from chalicelib.errors import BadRequest, Unauthorized
from chalicelib.events import Kind
from chalicelib.protocol import orders
from chalicelib.protocol.inbound import Inbound

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
PAID = {
    "type": "order_paid",
    "order_id": "O-1",
    "openid": "oM1",
    "store_id": "S001",
    "amount_fen": 3200,
    "at": "2026-11-23T10:00:00+08:00",
    "items": [{"sku": "tea-1", "category": "milk-tea", "price_fen": 1600, "qty": 2}],
}


def signed(body: bytes, secret: str = "s3cret", ts: int | None = None) -> Inbound:
    timestamp = str(ts if ts is not None else int(NOW.timestamp()))
    return Inbound(
        "POST",
        {},
        {orders.TIMESTAMP_HEADER: timestamp, orders.SIGNATURE_HEADER: orders.sign(secret, timestamp, body)},
        body,
    )


def test_a_correctly_signed_fresh_request_authenticates():
    body = json.dumps(PAID).encode()
    orders.authenticate(signed(body), "s3cret", NOW, 300)


@pytest.mark.parametrize(
    "request_",
    [
        signed(b'{"a":1}', secret="other"),
        signed(b'{"a":1}', ts=int(NOW.timestamp()) - 301),
        Inbound("POST", {}, {}, b"{}"),
    ],
    ids=["wrong-secret", "stale", "no-headers"],
)
def test_bad_or_stale_signatures_are_unauthorized(request_):
    with pytest.raises(Unauthorized):
        orders.authenticate(request_, "s3cret", NOW, 300)


def test_an_hmac_for_another_body_is_unauthorized():
    good = signed(b'{"order_id":"O-1"}')
    forged = Inbound("POST", {}, good.headers, b'{"order_id":"O-2"}')
    with pytest.raises(Unauthorized):
        orders.authenticate(forged, "s3cret", NOW, 300)


def test_order_paid_becomes_an_event_keyed_by_order_id():
    event = orders.parse(json.dumps(PAID).encode(), 65536)
    assert event.kind is Kind.ORDER_PAID and event.event_id == "orders:paid:O-1"
    assert event.data["amount_fen"] == 3200 and event.data["items"][0]["category"] == "milk-tea"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({**PAID, "amount_fen": -1}, "/amount_fen"),
        ({**PAID, "surprise": 1}, "/surprise: Extra inputs"),
        ({**PAID, "type": "order_lost"}, "order_lost"),
        ({**PAID, "at": "2026-11-23T10:00:00"}, "/at"),
        ({k: v for k, v in PAID.items() if k != "openid"}, "/openid: Field required"),
    ],
)
def test_malformed_orders_name_the_field(payload, message):
    with pytest.raises(BadRequest, match=message):
        orders.parse(json.dumps(payload).encode(), 65536)


def test_non_json_is_a_bad_request():
    with pytest.raises(BadRequest, match="not JSON"):
        orders.parse(b"\xff\xfe<xml/>", 65536)
