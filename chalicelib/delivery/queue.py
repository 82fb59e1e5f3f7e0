"""Hand recorded messages to the senders: SQS in AWS, an in-process queue under ``make run``.

Losing a hand-off loses nothing: every pending message is also on the outbox's ``due`` index
and the release timer re-queues it a minute later. Sending the same key twice is harmless
(the sender claims a message before sending it).
"""

from __future__ import annotations

import json
import logging
import queue as stdlib_queue
import threading
from collections.abc import Callable, Iterable

from chalicelib.logs import log
from chalicelib.settings import Settings

LOCAL: stdlib_queue.Queue[list[str]] = stdlib_queue.Queue()
_sqs = threading.local()


def enqueue(settings: Settings, keys: Iterable[str]) -> int:
    keys = list(dict.fromkeys(keys))
    if not keys or settings.outbox_queue == "off":
        return 0
    if settings.outbox_queue == "local":
        LOCAL.put(keys)
        return len(keys)
    client = getattr(_sqs, "client", None)
    if client is None:
        import boto3

        client = _sqs.client = boto3.client("sqs", region_name=settings.region)
    for start in range(0, len(keys), 10):
        chunk = keys[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": json.dumps({"key": key})} for i, key in enumerate(chunk)]
        failed = client.send_message_batch(QueueUrl=settings.outbox_queue, Entries=entries).get("Failed", [])
        if failed:
            log("outbox.enqueue_partial", failed=len(failed))  # the release timer picks them up
    return len(keys)


def keys_of(bodies: Iterable[str]) -> list[str]:
    keys = []
    for body in bodies:
        try:
            keys.append(str(json.loads(body)["key"]))
        except (ValueError, KeyError, TypeError):
            log("outbox.bad_queue_body")
    return keys


def sqs_event(keys: list[str]) -> dict:
    """An SQS trigger event as Lambda delivers it, for the local worker."""
    return {
        "Records": [
            {
                "body": json.dumps({"key": key}),
                "messageId": f"local-{i}",
                "receiptHandle": f"local-{i}",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:local:000000000000:siyu-outbox",
                "awsRegion": "local",
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
            }
            for i, key in enumerate(keys)
        ]
    }


class LocalWorker:
    """``make run``'s stand-in for the SQS trigger: drains ``LOCAL`` into the app's handler."""

    def __init__(self, handler: Callable[[dict, object], object]) -> None:
        self.handler = handler
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                keys = LOCAL.get(timeout=0.2)
            except stdlib_queue.Empty:
                continue
            for start in range(0, len(keys), 10):
                try:
                    self.handler(sqs_event(keys[start : start + 10]), None)
                except Exception as exc:  # as SQS would: the batch returns later (release timer)
                    log("outbox.local_batch_failed", logging.ERROR, error=type(exc).__name__)
