"""An embedded DynamoDB for local runs and end-to-end tests: moto's server, in-process.

Two things moto's server does not do, added here as WSGI middleware:

- **Item-level atomicity.** moto evaluates a condition and writes in two steps with no lock,
  so two threads can both pass ``attribute_not_exists``. Real DynamoDB serializes writes per
  item; this middleware serializes every request, which is stricter and makes concurrency
  tests test siyu, not moto.
- **Durability.** Successful writes are appended to a journal (JSON lines) and replayed into
  a fresh moto on start, so state survives a restart of ``make run``.

And one thing it does slowly: transactions (see ``moto_patches``).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from chalicelib.local import moto_patches
from chalicelib.local.serving import LoopbackServer

WRITES = frozenset(
    {
        "CreateTable",
        "UpdateTable",
        "DeleteTable",
        "UpdateTimeToLive",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
)
KEPT_HEADERS = ("X-Amz-Target", "Content-Type", "Authorization", "Host")


class SerializedApp:
    def __init__(self, inner: Callable, journal: Path | None) -> None:
        self.inner = inner
        self.journal = journal
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        with self.lock:
            chunks = b"".join(self.inner(environ, capture))
            operation = (environ.get("HTTP_X_AMZ_TARGET") or "").rpartition(".")[2]
            if self.journal and operation in WRITES and captured["status"].startswith("2"):
                self._append(environ, body)
        start_response(captured["status"], captured["headers"])
        return [chunks]

    def _append(self, environ: dict[str, Any], body: bytes) -> None:
        headers = {name: environ.get("HTTP_" + name.upper().replace("-", "_"), "") for name in KEPT_HEADERS}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        with self.journal.open("a", encoding="utf-8") as out:  # type: ignore[union-attr]
            out.write(json.dumps({"headers": headers, "body": body.decode("utf-8")}) + "\n")

    def replay(self) -> int:
        if not self.journal or not self.journal.exists():
            return 0
        count = 0
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            environ = EnvironBuilder(
                method="POST", path="/", headers=entry["headers"], data=entry["body"].encode("utf-8")
            ).get_environ()
            with self.lock:
                list(self.inner(environ, lambda status, headers, exc_info=None: None))
            count += 1
        return count


class LocalDynamoDB:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, journal: Path | None = None) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app

        moto_patches.install()
        self.app = SerializedApp(DomainDispatcherApplication(create_backend_app), journal)
        self._server = LoopbackServer(self.app, host, port, "local-dynamodb")

    @property
    def endpoint(self) -> str:
        return self._server.url

    def start(self) -> int:
        """Replay the journal (if any), then serve. Returns the number of writes replayed."""
        replayed = self.app.replay()
        self._server.start()
        return replayed

    def stop(self) -> None:
        self._server.stop()
