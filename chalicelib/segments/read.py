"""A segment's members and sizes, for campaigns and ``siyu segments``: queries of the segment's
partition in the loyalty table (``segment#<name>``, sort key ``<store>#<member>``), paged, never a
scan. Membership is as of the member's latest evaluation (chalicelib/segments/sweep.py)."""

from __future__ import annotations

from collections.abc import Iterator

from chalicelib.rules.loader import RuleSet
from chalicelib.state.models import LoyaltyRecord, Shared
from chalicelib.store import db, keys

PAGE = 1000


def _rows(segment: str, store_id: str | None) -> Iterator[LoyaltyRecord]:
    condition = LoyaltyRecord.sk.startswith(keys.segment_store_prefix(store_id)) if store_id is not None else None
    yield from LoyaltyRecord.query(
        keys.segment(segment), condition, page_size=PAGE, attributes_to_get=["pk", "sk", "member_id"]
    )


def members_of(segment: str, store_id: str | None = None) -> Iterator[str]:
    """The member ids in ``segment`` (of ``store_id``'s members, or every store's), store by store."""
    for row in _rows(segment, store_id):
        yield row.sk.split("#", 1)[1]


def size(segment: str, store_id: str | None = None) -> int:
    """How many members ``segment`` has (of one store, or in all): a count query."""
    condition = LoyaltyRecord.sk.startswith(keys.segment_store_prefix(store_id)) if store_id is not None else None
    return LoyaltyRecord.count(keys.segment(segment), condition)


def sizes(rules: RuleSet) -> dict[str, dict[str, int]]:
    """Segment → store → members, for every segment of the rules (``-``: members of no store;
    a store no longer in stores.json still shows while members of it are in the segment)."""
    out: dict[str, dict[str, int]] = {}
    for segment in rules.segments.segments:
        counts: dict[str, int] = {}
        for row in _rows(segment, None):
            store = row.sk.split("#", 1)[0]
            counts[store] = counts.get(store, 0) + 1
        out[segment] = {store_id: counts.get(store_id, 0) for store_id in sorted(rules.stores.ids)} | counts
    return out


def last_full_pass() -> str | None:
    """The local day of the latest finished full pass (``off``: emptied under a rule switched off)."""
    done = db.get(Shared, keys.SWEEP, keys.SEGMENTS_DAY)
    return done.value if done is not None else None
