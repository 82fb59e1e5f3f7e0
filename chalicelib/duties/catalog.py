"""The points catalog (积分兑换, rules/catalog.json): a member spends points on a drink, merchandise
or a lottery entry and gets its coupon.

A redemption is one ``points_redeemed`` event with an ``item_id`` (``chalicelib/till/points.py``:
the till and the mini program), keyed by the redemption, so a retry is that event again and
answers the same. It is judged on the event's one read — the member, their balance, the item's
stock counter and their own counters of the item — and either refused whole (``plans.Refuse``:
nothing written, the caller may ask again) or committed in one transaction:

- the debit (``redeem#<redemption>``), settled against the balance read and conditioned on its
  ``seq`` (``chalicelib/ledger.py``): never an overdraft, never twice;
- one more on the item's stock counter, on the condition that it is still below the stock the
  rules give today (``plans.CountUpTo``): never oversold, no counter to initialise, and a stock
  raised or lowered in the rules applies at once to what was redeemed so far;
- one more on the member's counters of the item (this month, ever) where the item has a limit;
- the coupon, its code derived from the redemption.

Two members buying the last one at once: one transaction commits, the other's condition fails
(or it meets the winner's transaction), it reads again and is refused ``out_of_stock`` with its
points untouched. Refusals, in this order: ``unknown_item``, ``not_available`` (the catalog is
off, outside the item's window, or a per-store item asked for at a store that does not stock it),
``unknown_member``, ``out_of_stock``, ``limit_reached``, ``not_enough_points``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from chalicelib import ledger, offers
from chalicelib.calendars import local_day
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import CountUpTo, Instruction, IssueCoupon, PostPoints, Refuse, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import CatalogItem
from chalicelib.settings import Settings
from chalicelib.state.models import LoyaltyRecord, Member, PointsRecord
from chalicelib.store import db, keys

TRIGGERS = frozenset({Kind.POINTS_REDEEMED})
CAUSE = "catalog"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    known: bool  # the member was there before this event
    home_store: str | None
    points: int  # the balance read
    counts: dict[tuple[str, str], int]  # (pk, sk) of a counter → its number as read
    secret: str


def is_catalog(event: Event) -> bool:
    return event.kind is Kind.POINTS_REDEEMED and bool(event.data.get("item_id"))


def counters_of(event: Event, member_id: str) -> list[tuple[str, str]]:
    """Every counter a redemption may touch: the item's stock at the store and chain-wide, the
    member's counts this month and ever (which apply is the rules' to say)."""
    item, month = str(event.data["item_id"]), str(event.data["month"])
    stock = [keys.catalog_stock(item, None), *([keys.catalog_stock(item, event.store_id)] if event.store_id else [])]
    return [*stock, keys.catalog_limit(member_id, item, month), keys.catalog_limit(member_id, item, None)]


def prefetch(event: Event, settings: Settings) -> list[db.Key]:
    if not is_catalog(event) or not event.member_id:
        return []
    wanted: list[db.Key] = [(PointsRecord, event.member_id, keys.BALANCE)]
    return wanted + [(LoyaltyRecord, pk, sk) for pk, sk in counters_of(event, event.member_id)]


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if not is_catalog(event) or event.member_id is None:
        return None
    before = reads.get(Member, event.member_id)
    counts = {}
    for pk, sk in counters_of(event, event.member_id):
        record = reads.get(LoyaltyRecord, pk, sk)
        counts[(pk, sk)] = int(record.number or 0) if record is not None else 0
    return Facts(
        event=event,
        member_id=event.member_id,
        known=before is not None,
        home_store=before.store_id if before is not None else None,
        points=ledger.balance_of(event.member_id, reads).points,
        counts=counts,
        secret=settings.coupon_secret,
    )


def stock_key(item: CatalogItem, event: Event) -> tuple[str, str] | None:
    """The stock counter this redemption takes from: None for an unlimited item."""
    if item.stock is None:
        return None
    return keys.catalog_stock(item.id, event.store_id if isinstance(item.stock, dict) else None)


def stock_of(item: CatalogItem, store_id: str | None) -> int | None:
    """The stock the rules give for this store (None: unlimited)."""
    if isinstance(item.stock, dict):
        return item.stock.get(store_id or "", 0)
    return item.stock


def limits(facts: Facts, item: CatalogItem) -> list[tuple[tuple[str, str], int]]:
    """(counter, limit) of each limit the item sets for one member."""
    event = facts.event
    found = []
    if item.limit.per_month is not None:
        found.append((keys.catalog_limit(facts.member_id, item.id, str(event.data["month"])), item.limit.per_month))
    if item.limit.ever is not None:
        found.append((keys.catalog_limit(facts.member_id, item.id, None), item.limit.ever))
    return found


def refusal(facts: Facts, rules: RuleSet, now: datetime) -> str | None:
    """Why this redemption cannot be made now (None: it can)."""
    event = facts.event
    item = rules.catalog.item(str(event.data["item_id"]))
    if item is None:
        return "unknown_item"
    elsewhere = isinstance(item.stock, dict) and (event.store_id or "") not in item.stock
    if not rules.catalog.enabled or not item.on_offer(now) or elsewhere:
        return "not_available"
    if not facts.known:
        return "unknown_member"
    stock, counter = stock_of(item, event.store_id), stock_key(item, event)
    if stock is not None and counter is not None and facts.counts.get(counter, 0) >= stock:
        return "out_of_stock"
    if any(facts.counts.get(key, 0) >= limit for key, limit in limits(facts, item)):
        return "limit_reached"
    if facts.points < item.points:
        return "not_enough_points"
    return None


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    why = refusal(facts, rules, now)
    item = rules.catalog.item(str(facts.event.data["item_id"]))
    if why is not None or item is None:
        return [Refuse(answer={"redeemed": False, "reason": why or "unknown_item"})]
    event = facts.event
    redemption = str(event.data["redemption"])
    debit = PostPoints(
        member_id=facts.member_id,
        key=keys.redeem_points(redemption),
        delta=-item.points,
        mode="debit",
        cause=CAUSE,
        event_id=event.event_id,
        rules_version=rules.version,
        at=event.occurred_at,
        note=item.id,
    )
    counted: list[tuple[tuple[str, str], int, str | None]] = [(k, n, facts.member_id) for k, n in limits(facts, item)]
    stock, counter = stock_of(item, event.store_id), stock_key(item, event)
    if stock is not None and counter is not None:
        counted.insert(0, (counter, stock, None))
    after = new(debit)
    steps: list[Instruction] = [
        CountUpTo(pk=pk, sk=sk, limit=limit, member_id=who, event_id=event.event_id, at=event.occurred_at, when=after)
        for (pk, sk), limit, who in counted
    ]
    return [debit, *steps, dataclasses.replace(coupon(facts, item, rules), when=after)]


def coupon(facts: Facts, item: CatalogItem, rules: RuleSet) -> IssueCoupon:
    """The item's coupon, its code derived from the redemption; a per-store item's is for that store."""
    event = facts.event
    zone = rules.stores.zone_of(event.store_id or facts.home_store)
    issued = offers.coupon(
        item.coupon,
        facts.member_id,
        CAUSE,
        keys.catalog_coupon(str(event.data["redemption"])),
        event.event_id,
        rules.version,
        local_day(event.occurred_at, zone),
        zone,
        facts.home_store,
        facts.secret,
    )
    if isinstance(item.stock, dict) and event.store_id:
        return dataclasses.replace(issued, stores=frozenset({event.store_id}))
    return issued
