"""Where a member's rows are: one finder per way a table is keyed. Every finder queries or gets
by key (an erase reads the member's rows, never a table), and yields whole items.

The generic ones (``partition``, ``index``, ``row``) serve any table keyed by member; the others
know a table's derived keys (a week's lottery draw, a day's "active" marker, a member's caps).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib import counters
from chalicelib.privacy.actions import Erasing
from chalicelib.privacy.pseudonyms import mentions
from chalicelib.state import members
from chalicelib.state.models import LoyaltyRecord, Member, Metric, PointsRecord, Shared
from chalicelib.store import db, keys

Finder = Callable[[Erasing], Iterable[Model]]


def _whole(model: type[Model], items: Iterable[tuple[Any, ...]]) -> Iterator[Model]:
    """The items of these keys ((hash, range) or (hash,)), read in batches."""
    wanted = list(dict.fromkeys(items))
    ranged = db.key_names(model)[1] is not None
    for start in range(0, len(wanted), 100):
        chunk = [k if ranged else k[0] for k in wanted[start : start + 100]]
        yield from model.batch_get(chunk, consistent_read=True)


def _key_of(item: Model) -> tuple[Any, ...]:
    hash_key, range_key = db.key_of(item)
    return (hash_key, range_key) if db.key_names(type(item))[1] else (hash_key,)


def partition(model: type[Model]) -> Finder:
    """The member's partition: tables whose hash key is the member id."""
    return lambda e: model.query(e.member_id, consistent_read=True)


def row(model: type[Model]) -> Finder:
    """The one row keyed by the member id."""
    return lambda e: _whole(model, [(e.member_id,)])


def index(model: type[Model], gsi: GlobalSecondaryIndex) -> Finder:
    """The rows an index files under the member id (fetched whole if it projects keys only)."""

    def find(e: Erasing) -> Iterable[Model]:
        found = gsi.query(e.member_id)
        if isinstance(gsi.Meta.projection, AllProjection):
            return found
        return _whole(model, [_key_of(item) for item in found])

    return find


# --- loyalty: records keyed by other things, found through the member index -------------------


def _loyalty_keys(e: Erasing) -> list[tuple[str, str]]:
    return [(item.pk, item.sk) for item in LoyaltyRecord.by_member.query(e.member_id)]


def loyalty_records(e: Erasing) -> Iterator[Model]:
    """Every record naming the member (check-ins, week entries, agenda items, birthday and group
    rows, their invite count) and the record of the invite they came through; not the invites
    they made (``invites_made``)."""
    own = [key for key in _loyalty_keys(e) if not key[0].startswith("invitee#")]
    return _whole(LoyaltyRecord, [*own, (keys.invitee(e.member_id), keys.INVITE)])


def invites_made(e: Erasing) -> Iterator[Model]:
    """The invite records of the members this member invited (they name the inviter)."""
    mine = keys.invitee(e.member_id)
    return _whole(LoyaltyRecord, [k for k in _loyalty_keys(e) if k[0].startswith("invitee#") and k[0] != mine])


def lottery_draws(e: Erasing) -> Iterator[Model]:
    """The recorded draws of the weeks the member entered (entrants, perhaps winners)."""
    prefix = keys.week_entrants("")
    weeks = [pk.removeprefix(prefix) for pk, _ in _loyalty_keys(e) if pk.startswith(prefix)]
    draws: Iterator[Any] = _whole(LoyaltyRecord, [(keys.lottery(w), keys.DRAW) for w in weeks])
    return (d for d in draws if mentions(d.value, e.erased))


def helper_lists(e: Erasing) -> Iterator[Model]:
    """The monthly brand-helper lists of the groups the member joined that name them."""
    groups = [pk.removeprefix("group#") for pk, _ in _loyalty_keys(e) if pk.startswith("group#")]
    for group in groups:
        yield from (r for r in LoyaltyRecord.query(keys.helpers(group)) if mentions(r.value, e.erased))


# --- points: the forfeit is posted on the pseudonym's partition ---------------------------------


def pseudonym_balance(e: Erasing) -> Iterator[Model]:
    """The balance the erase forfeits: the pseudonym's once the partition moved (the member's
    before that, which is what a dry run sees)."""
    for member in (e.pseudonym, e.erased):
        found = list(PointsRecord.query(member, PointsRecord.sk == "balance", consistent_read=True))
        if found:
            yield found[0]
            return


# --- metrics and shared: per-member keys among the aggregates ----------------------------------


def active_markers(e: Erasing) -> Iterator[Model]:
    """``(active#<day>, member)`` for every day a marker can still exist (they expire after
    ``counters.KEEP``): about 400 keys, read in batches of 100."""
    today = e.now.date()
    days = [today - timedelta(days=n) for n in range(-2, counters.KEEP.days + 3)]
    return _whole(Metric, [(keys.active(day.isoformat()), e.member_id) for day in days])


def member_counters(e: Erasing) -> Iterator[Model]:
    """The sender's per-member counters (caps, pacing, quotas, group slots: delivery/sender.py)."""
    for prefix in keys.member_counter_prefixes(e.member_id):
        yield from Shared.query(keys.COUNTERS, Shared.sk.startswith(prefix))


def sweep_cursors(e: Erasing) -> Iterator[Model]:
    """Recall-sweep cursors that stopped at the member (their key quotes the member id)."""
    return (item for item in Shared.query(keys.SWEEP) if mentions(item.value, e.erased))


def identity_links(e: Erasing) -> Iterator[Model]:
    """Which person the member's ids and UnionID are (``link#``, ``unionid#``), the record of the
    merge that absorbed them and the "never merge again" marker of one ops undid: each names an id."""
    member = db.get(Member, e.member_id)
    if member is None:
        return
    wanted = [keys.link(platform) for platform in sorted(members.platform_ids(member))]
    if member.unionid:
        wanted.append(keys.unionid_link(member.unionid))
    record = db.get(Shared, *keys.merge_record(e.member_id))
    if record is not None:
        wanted.append(keys.merge_record(e.member_id))
        survivor = str(json.loads(record.value or "{}").get("survivor", ""))
        if survivor:
            wanted.append(keys.no_merge(survivor, e.member_id))
    for item in _whole(Shared, wanted):
        if (
            isinstance(item, Shared)
            and item.pk.startswith(keys.UNIONID)
            and item.value not in (e.member_id, member.merged_into)
        ):
            continue  # the UnionID is another person's (this one was unlinked from them)
        yield item
