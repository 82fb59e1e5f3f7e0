"""The rule set a handler runs on: the active published version, cached per container.

Published versions live in the ``rules`` table (``chalicelib.rules.versions``); the pointer is
re-read every ``SIYU_RULES_CACHE_SECONDS`` and a version, being immutable, is parsed once per
container. Before anything is published (a fresh deployment) the rule files bundled with the
code (``rules/``) are used, under the version name ``bundled-<hash>``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chalicelib.errors import BadRule, InvalidRules
from chalicelib.rules.check import canonical, check
from chalicelib.rules.models import (
    AlertsRule,
    CampaignsRule,
    CatalogRule,
    DigestRule,
    ExperimentsRule,
    LoyaltyRule,
    MessagingRule,
    RecallRule,
    SegmentsRule,
    StoresRule,
    WelcomeRule,
)
from chalicelib.settings import Settings


@dataclass(frozen=True)
class RuleSet:
    version: str
    content_hash: str
    welcome: WelcomeRule
    stores: StoresRule
    messaging: MessagingRule
    recall: RecallRule
    files: MappingProxyType[str, str] = field(repr=False, compare=False)
    loyalty: LoyaltyRule = field(default_factory=lambda: LoyaltyRule(enabled=False))
    alerts: AlertsRule = field(default_factory=lambda: AlertsRule(enabled=False))
    digest: DigestRule = field(default_factory=lambda: DigestRule(enabled=False))
    catalog: CatalogRule = field(default_factory=lambda: CatalogRule(enabled=False))
    segments: SegmentsRule = field(default_factory=lambda: SegmentsRule(enabled=False))
    campaigns: CampaignsRule = field(default_factory=lambda: CampaignsRule(enabled=False))
    experiments: ExperimentsRule = field(default_factory=lambda: ExperimentsRule(enabled=False))


def content_hash(files: dict[str, str]) -> str:
    return hashlib.sha256(canonical(files).encode("utf-8")).hexdigest()


def build(files: dict[str, str], version: str | None = None) -> RuleSet:
    """Validate and assemble a rule set; ``InvalidRules`` carries every problem."""
    parsed, problems = check(files)
    if problems:
        raise InvalidRules(problems)
    digest = content_hash(files)
    catalog = parsed["catalog.json"]
    assert isinstance(catalog, CatalogRule)
    segments = parsed["segments.json"]
    assert isinstance(segments, SegmentsRule)
    return RuleSet(
        version=version or f"bundled-{digest[:12]}",
        content_hash=digest,
        welcome=parsed["welcome.json"],  # type: ignore[arg-type]
        stores=parsed["stores.json"],  # type: ignore[arg-type]
        messaging=parsed["messaging.json"],  # type: ignore[arg-type]
        recall=parsed["recall.json"],  # type: ignore[arg-type]
        files=MappingProxyType(dict(files)),
        loyalty=parsed["loyalty.json"],  # type: ignore[arg-type]
        alerts=parsed["alerts.json"],  # type: ignore[arg-type]
        digest=parsed["digest.json"],  # type: ignore[arg-type]
        catalog=catalog,
        segments=segments,
        campaigns=parsed["campaigns.json"],  # type: ignore[arg-type]
        experiments=parsed["experiments.json"],  # type: ignore[arg-type]
    )


def read_dir(directory: Path) -> dict[str, str]:
    """The rule files of a directory (``*.json`` at its top; ``schema/`` is not part of it)."""
    if not directory.is_dir():
        raise BadRule(f"{directory}: not a directory of rule files")
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.json"))}


def load_dir(directory: Path) -> RuleSet:
    try:
        return build(read_dir(directory))
    except InvalidRules as exc:
        raise BadRule("; ".join(str(p) for p in exc.problems[:5])) from exc


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pointer: tuple[float, Any] | None = None
        self.versions: dict[int, RuleSet] = {}
        self.bundled: dict[Path, RuleSet] = {}


_cache = _Cache()


def clear_cache() -> None:
    global _cache
    _cache = _Cache()


def active(settings: Settings) -> RuleSet:
    """The rule set handlers use now (see the module docstring)."""
    from chalicelib.rules import versions

    cache = _cache
    now = time.monotonic()
    with cache.lock:
        hit = cache.pointer
    if hit is None or now - hit[0] >= settings.rules_cache_seconds:
        pointer = versions.active_pointer()
        hit = (now, pointer.version if pointer else None)
        with cache.lock:
            cache.pointer = hit
    number = hit[1]
    if number is None:
        return _bundled(settings.rules_dir)
    number = int(number)
    if number not in cache.versions:
        record = versions.get(number)
        try:
            rules = build(json.loads(record.files or "{}"), f"v{number}")
        except InvalidRules as exc:
            raise BadRule(f"active version v{number} no longer validates: {exc.problems[0]}") from exc
        with cache.lock:
            cache.versions[number] = rules
    return cache.versions[number]


def _bundled(directory: Path) -> RuleSet:
    if directory not in _cache.bundled:
        _cache.bundled[directory] = load_dir(directory)
    return _cache.bundled[directory]
