"""Small helpers for driving the app in tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.rules import loader
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


def credit(member_id: str, points: int, at) -> None:
    """Points on a member's balance, as a grant written straight through the ledger."""
    from chalicelib import executor, ledger, plans

    grant = plans.PostPoints(
        member_id=member_id,
        key="grant#test",
        delta=points,
        mode="credit",
        cause="test",
        event_id="test",
        rules_version="test",
        at=at,
    )
    executor.execute(ledger.settle([grant], {}), f"grant#{member_id}", at)


BUNDLED_RULES = Path(__file__).resolve().parent.parent / "rules"
Edit = dict[str, Any] | Callable[[dict[str, Any]], None]


def use_rules(tmp_path: Path, monkeypatch: Any, edits: dict[str, Edit]) -> Path:
    """The bundled rules copied afresh to ``tmp_path/rules``, each named file edited (a dict:
    its top-level keys replaced; a function: it changes the parsed file), made the active rules."""
    directory = tmp_path / "rules"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(BUNDLED_RULES, directory)
    for name, edit in edits.items():
        path = directory / name
        data = json.loads(path.read_text(encoding="utf-8"))
        if callable(edit):
            edit(data)
        else:
            data.update(edit)
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SIYU_RULES_DIR", str(directory))
    loader.clear_cache()
    return directory
