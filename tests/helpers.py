"""Small helpers for driving the app in tests."""

from __future__ import annotations

from siyu.local import callbacks
from siyu.local.callbacks import Request


def send(client, request: Request):
    """Send a built callback through chalice.test.Client."""
    if request.method == "GET":
        return client.http.get(request.path, headers=request.headers)
    return client.http.post(request.path, headers=request.headers, body=request.body)


ADMIN = {"Authorization": "Bearer test-admin-token"}


def pos(client, settings, clock, kind: str, openid: str, **fields):
    """Post one signed order-webhook body of type ``kind`` (order_paid, order_refunded, …),
    stamped with the clock's time."""
    payload = {"type": kind, "openid": openid, "at": clock.now().isoformat(), **fields}
    return send(client, callbacks.order_post(settings, payload, clock.now()))
