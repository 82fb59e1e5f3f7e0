"""Published rule versions: immutable, numbered, activated atomically.

``publish`` validates, then in one transaction stores version N+1 (on the condition that N+1
does not exist) and moves the active pointer (on the condition that it still points where it
did when we read it), and logs the activation. Of two concurrent publishes exactly one wins;
the other gets ``Conflict`` and has written nothing. ``activate`` (rollback) moves the pointer
to an existing version the same way.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.errors import Conflict, InvalidRules, NotFound
from chalicelib.rules.loader import build, content_hash
from chalicelib.state.models import RuleRecord
from chalicelib.store import db

ACTIVE = ("active", "-")


@dataclass(frozen=True)
class Activation:
    version: int
    previous: int | None
    changed: bool


def _key(number: int) -> str:
    return f"{number:08d}"


def active_pointer() -> RuleRecord | None:
    try:
        return RuleRecord.get(*ACTIVE, consistent_read=True)
    except DoesNotExist:
        return None


def get(number: int) -> RuleRecord:
    try:
        return RuleRecord.get("version", _key(number), consistent_read=True)
    except DoesNotExist as exc:
        raise NotFound(f"no rule version v{number}") from exc


def history() -> list[RuleRecord]:
    return list(RuleRecord.query("version", consistent_read=True))


def activations(limit: int = 20) -> list[RuleRecord]:
    return list(RuleRecord.query("activation", scan_index_forward=False, limit=limit))


def latest_number() -> int:
    newest = list(RuleRecord.query("version", scan_index_forward=False, limit=1, consistent_read=True))
    return int(newest[0].version) if newest else 0


def files_of(number: int) -> dict[str, str]:
    return json.loads(get(number).files or "{}")


def publish(
    files: dict[str, str], *, note: str, author: str, now: datetime, expected_active: int | None = None
) -> Activation:
    build(files)  # raises InvalidRules with every problem; nothing written
    if not note.strip():
        raise InvalidRules([_note_problem()])
    pointer = active_pointer()
    current = int(pointer.version) if pointer else None
    if expected_active is not None and current != expected_active:
        raise Conflict(f"the active version is v{current}, not v{expected_active}")
    digest = content_hash(files)
    if current is not None and get(current).content_hash == digest:
        return Activation(current, current, changed=False)
    number = latest_number() + 1
    version = RuleRecord(
        "version",
        _key(number),
        version=number,
        files=json.dumps(files, ensure_ascii=False),
        content_hash=digest,
        author=author,
        note=note.strip(),
        created_at=now,
        previous=current,
        reason="publish",
    )
    _move_pointer(version, number, current, author, note.strip(), now, "publish")
    return Activation(number, current, changed=True)


def activate(
    number: int, *, author: str, now: datetime, note: str = "rollback", expected_active: int | None = None
) -> Activation:
    record = get(number)
    build(json.loads(record.files or "{}"))  # a version today's code cannot apply is refused
    pointer = active_pointer()
    current = int(pointer.version) if pointer else None
    if expected_active is not None and current != expected_active:
        raise Conflict(f"the active version is v{current}, not v{expected_active}")
    if current == number:
        return Activation(number, current, changed=False)
    _move_pointer(None, number, current, author, note, now, "rollback")
    return Activation(number, current, changed=True)


def _move_pointer(
    version: RuleRecord | None, number: int, current: int | None, author: str, note: str, now: datetime, reason: str
) -> None:
    pointer = RuleRecord(
        *ACTIVE, version=number, created_at=now, author=author, previous=current, reason=reason, note=note
    )
    log = RuleRecord(
        "activation",
        f"{now.isoformat()}#{_key(number)}",
        version=number,
        created_at=now,
        author=author,
        previous=current,
        reason=reason,
        note=note,
    )
    unchanged = RuleRecord.pk.does_not_exist() if current is None else RuleRecord.version == current
    writes = [db.Write("put", pointer, condition=unchanged), db.Write("put", log)]
    if version is not None:
        writes.insert(0, db.Write("put", version, condition=RuleRecord.pk.does_not_exist()))
    if db.commit(writes, f"rules#{reason}#{number}#{current}").outcome is not db.Outcome.NEW:
        raise Conflict(
            "another change to the rules was published first; nothing was written — "
            "check the new active version and publish again"
        )


def diff(a: dict[str, str], b: dict[str, str], a_name: str, b_name: str) -> str:
    out: list[str] = []
    for name in sorted(set(a) | set(b)):
        left = _pretty(a.get(name)).splitlines(keepends=True)
        right = _pretty(b.get(name)).splitlines(keepends=True)
        out += difflib.unified_diff(left, right, f"{a_name}/{name}", f"{b_name}/{name}")
    return "".join(out)


def _pretty(text: str | None) -> str:
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    except json.JSONDecodeError:
        return text if text.endswith("\n") else text + "\n"


def _note_problem():
    from chalicelib.rules.check import Problem

    return Problem("(publish)", 0, 0, "", "a note saying why is required")
