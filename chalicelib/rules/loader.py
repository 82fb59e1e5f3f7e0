"""Load and cache the active rule set from a directory."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from chalicelib.errors import BadRule
from chalicelib.rules.models import FILES, StoresRule, WelcomeRule

CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class RuleSet:
    version: str
    welcome: WelcomeRule
    stores: StoresRule


def load_dir(directory: Path) -> RuleSet:
    digest = hashlib.sha256()
    parsed = {}
    for name, model in sorted(FILES.items()):
        path = directory / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise BadRule(f"{path}: missing rule file") from exc
        digest.update(name.encode() + b"\0" + raw + b"\0")
        try:
            data = json.loads(raw, parse_float=Decimal)
            parsed[name] = model.model_validate(data)
        except json.JSONDecodeError as exc:
            raise BadRule(f"{name}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            pointer = "/" + "/".join(str(p) for p in first["loc"])
            raise BadRule(f"{name} {pointer}: {first['msg']}") from exc
    return RuleSet(
        version="local-" + digest.hexdigest()[:12],
        welcome=parsed["welcome.json"],  # type: ignore[arg-type]
        stores=parsed["stores.json"],  # type: ignore[arg-type]
    )


_cache: dict[Path, tuple[float, RuleSet]] = {}
_lock = threading.Lock()


def active(directory: Path) -> RuleSet:
    """The active rule set, cached per container for ``CACHE_SECONDS``."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(directory)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    rules = load_dir(directory)
    with _lock:
        _cache[directory] = (now, rules)
    return rules


def clear_cache() -> None:
    with _lock:
        _cache.clear()
