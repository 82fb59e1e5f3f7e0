"""What a plan is decided on: the items read for it, in as few requests as the store allows.

A ``Snapshot`` starts with the items read together (one ``TransactGetItems``: the event's
record, the member, their erase tombstone, and whatever the triggered duties declared they
need). Reads beyond it (a member's points partition for the tiers, an open recall record) go
through the snapshot too, each made once and kept, so the duties of one event never ask the
store the same question twice. ``existing`` are the refs (``plans.Ref``) of keyed things the
reads found: the executor does not try to create them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pynamodb.models import Model

from chalicelib.plans import Ref
from chalicelib.state.models import PointsRecord
from chalicelib.store import db

M = TypeVar("M", bound=Model)
Key = db.Key


class Snapshot:
    def __init__(self, items: dict[Key, Model | None] | None = None) -> None:
        self.items: dict[Key, Model | None] = dict(items or {})
        self.partitions: dict[str, list[PointsRecord]] = {}
        self.existing: set[Ref] = set()
        self.reads = 0  # requests made beyond the first

    @classmethod
    def read(cls, keys: Iterable[Key]) -> Snapshot:
        wanted = list(dict.fromkeys(keys))
        return cls(db.fetch(wanted) if wanted else {})

    def get(self, model: type[M], hash_key: Any, range_key: Any = None) -> M | None:
        key: Key = (model, hash_key, range_key)
        if key not in self.items:
            self.reads += 1
            self.items[key] = db.get(model, hash_key, range_key)
        item = self.items[key]
        return item if isinstance(item, model) else None

    def fetch(self, keys: Iterable[Key]) -> None:
        """Read the keys not read yet, together (one request)."""
        missing = [key for key in dict.fromkeys(keys) if key not in self.items]
        if missing:
            self.reads += 1
            self.items.update(db.fetch(missing))

    def points(self, member_id: str) -> list[PointsRecord]:
        """The member's whole points partition (balance, order items, entries), read once."""
        if member_id not in self.partitions:
            self.reads += 1
            self.partitions[member_id] = list(PointsRecord.query(member_id, consistent_read=True))
            for item in self.partitions[member_id]:
                self.items[(PointsRecord, member_id, item.sk)] = item
        return self.partitions[member_id]

    def points_item(self, member_id: str, sk: str) -> PointsRecord | None:
        if member_id in self.partitions:
            return next((i for i in self.partitions[member_id] if i.sk == sk), None)
        return self.get(PointsRecord, member_id, sk)
