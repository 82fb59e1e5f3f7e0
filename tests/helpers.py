"""Small helpers for driving the app in tests."""

from __future__ import annotations

from chalicelib.local.callbacks import Request


def send(client, request: Request):
    """Send a built callback through chalice.test.Client."""
    if request.method == "GET":
        return client.http.get(request.path, headers=request.headers)
    return client.http.post(request.path, headers=request.headers, body=request.body)


ADMIN = {"Authorization": "Bearer test-admin-token"}
