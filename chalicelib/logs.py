"""Structured logs: one JSON object per line, ids and counts only.

Never pass message text, phone numbers or other free text a member typed: ``log()`` accepts
only scalar fields, and callers log ids, kinds, counts and durations.
"""

from __future__ import annotations

import json
import logging
import sys

_logger = logging.getLogger("siyu.log")  # "siyu" itself is Chalice's app logger
_configured = False


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"level": record.levelname.lower(), "msg": record.getMessage()}
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    """Chalice logs errors only unless debug is on; siyu configures its own logger once."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)  # stdout stays clean for CLI output
    handler.setFormatter(_JsonFormatter())
    _logger.addHandler(handler)
    _logger.setLevel(level.upper())
    _logger.propagate = False
    _configured = True


def log(msg: str, level: int = logging.INFO, **fields: str | int | float | bool | None) -> None:
    _logger.log(level, msg, extra={"fields": fields})
