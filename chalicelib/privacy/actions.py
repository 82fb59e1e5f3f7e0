"""What an erase does to one row: delete it, or pseudonymize it (the erased id replaced by the
pseudonym wherever it stands, free-text attributes stripped, the row moved when its key quoted
the id). Each action decides first (``plan``: the outcome a row would get, or None when the row
needs nothing) and acts second (``apply``); the dry run is the decisions alone.

A change is written in one transaction with the count of the erase that makes it (``Tally``),
conditioned on the row being as found: a row is changed and counted exactly once, however often
the erase runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pynamodb.models import Model

from chalicelib.errors import Retryable
from chalicelib.privacy.pseudonyms import substitute
from chalicelib.store import db
from chalicelib.store.db import Write

DELETED = "deleted"
PSEUDONYMIZED = "pseudonymized"
REWRITTEN = "rewritten"  # a row of another member that quoted the erased id
FORFEITED = "forfeited"


@dataclass(frozen=True)
class Erasing:
    """Whose rows a finder looks for, and the id that must disappear from them."""

    member_id: str  # the erased member, or a member whose rows quote them (one they invited)
    erased: str
    pseudonym: str
    now: datetime


class Tally(Protocol):
    def commit(self, table: str, outcome: str, writes: list[Write]) -> bool:
        """Commit the row's writes and count them in one transaction; False when the row's own
        condition failed (an earlier run changed it already)."""

    def mark(self, table: str, outcome: str) -> None:
        """Record an outcome that is its own exactly-once guard (counted as 1, idempotently)."""


class Action(Protocol):
    def plan(self, item: Model, e: Erasing) -> str | None: ...

    def apply(self, item: Model, e: Erasing, tally: Tally) -> str | None: ...


def table_of(item: Model) -> str:
    from chalicelib.state.models import BASE_NAMES

    return BASE_NAMES[type(item)]


def _key_attribute(model: type[Model]) -> Any:
    return model.get_attributes()[db.key_names(model)[0]]


def _exists(item: Model) -> Any:
    return _key_attribute(type(item)).exists()


key_of = db.key_of


@dataclass(frozen=True)
class Delete:
    """Delete the row. ``busy``: the row is in someone's hands right now (a message being sent,
    an event being processed) — the erase stops with Retryable and its next run finishes.
    ``before``: give back what the row holds (a message's reserved caps and budget)."""

    busy: Callable[[Any, datetime], bool] | None = None
    before: Callable[[Any, datetime], None] | None = None

    def plan(self, item: Model, e: Erasing) -> str | None:
        return DELETED

    def apply(self, item: Model, e: Erasing, tally: Tally) -> str | None:
        if self.busy is not None and self.busy(item, e.now):
            raise Retryable(f"a row of the {table_of(item)} table is being worked on; run the erase again shortly")
        if self.before is not None:
            self.before(item, e.now)
        done = tally.commit(table_of(item), DELETED, [Write("delete", item, condition=_exists(item))])
        return DELETED if done else None


@dataclass(frozen=True)
class Pseudonymize:
    """Replace the erased id by the pseudonym in every string of the row (keys included: the row
    then moves to its new key), drop ``strip`` (free text), set ``assign`` (``(name, value)``)."""

    strip: tuple[str, ...] = ()
    assign: tuple[tuple[str, Any], ...] = ()
    outcome: str = PSEUDONYMIZED

    def changed(self, item: Model, e: Erasing) -> Model | None:
        old = item.attribute_values
        new = {name: substitute(value, e.erased, e.pseudonym) for name, value in old.items()}
        for name in self.strip:
            new.pop(name, None)
        new.update(self.assign)
        if new == old:
            return None
        return type(item)(**new)

    def plan(self, item: Model, e: Erasing) -> str | None:
        return self.outcome if self.changed(item, e) is not None else None

    def apply(self, item: Model, e: Erasing, tally: Tally) -> str | None:
        new = self.changed(item, e)
        if new is None:
            return None
        model = type(item)
        if key_of(new) == key_of(item):
            actions = tuple(_changes(model, item.attribute_values, new.attribute_values))
            done = tally.commit(table_of(item), self.outcome, [Write("update", item, actions, _exists(item))])
            return self.outcome if done else None
        move = [
            Write("delete", item, condition=_exists(item)),
            Write("put", new, condition=_key_attribute(model).does_not_exist(), tag="moved"),
        ]
        return self.outcome if tally.commit(table_of(item), self.outcome, move) else None


REWRITE = Pseudonymize(outcome=REWRITTEN)


def _changes(model: type[Model], old: dict[str, Any], new: dict[str, Any]) -> list[Any]:
    attributes = model.get_attributes()
    actions = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        value = new.get(name)
        actions.append(attributes[name].remove() if value is None else attributes[name].set(value))
    return actions
