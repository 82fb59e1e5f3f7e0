"""The erase policy of every table, in one place: ``REGISTRY``. A table added later is one entry
(``Policy(Ticket, DELETE, partition(Ticket), "…")``); ``tests/test_privacy.py`` fails while any
bound model has none.

What the erase keeps is what the chain's numbers and books need: counters, the points ledger,
the coupon register, the recall experiment. What it removes is everything that is only about the
member: their profile, their messages in both directions, what they typed, when they were where.
Kept rows carry a pseudonym (``erased_…``, see ``pseudonyms``) instead of the id, and lose their
free text.

Per table (in the order the erase runs):

- **outbox: delete.** A message is about its member (texts, codes, invite links); what was sent,
  to which category, at what cost, is in the counters. An unsent message first gives back the
  caps and budget it reserved; one being sent right now stops the erase (run it again).
- **loyalty: mostly delete.** Check-ins, week entries, agenda items (referral, tier reviews),
  the birthday month, group rows, segment memberships and the invite count are only about the
  member: delete. Three kinds of record name them among others and are pseudonymized: a week's
  lottery draw (it stays reproducible: same pool, the pseudonym in the entrant's place), a
  month's brand-helper list, and the invites they made (the invitee's record stays, voided:
  nothing is planned any more for a gone inviter).
- **points: pseudonymize, then forfeit.** The ledger is the books: every entry and order item
  moves to the pseudonym's partition, so ``siyu points audit`` still balances; notes (a
  redemption's reason is free text) and expiry months are stripped. The balance nobody can
  redeem any more is closed by one ``erase`` entry, so the liability is right and the expiry
  timer has nothing to remind.
- **recalls: pseudonymize.** The recall report counts these decisions (due, held out, treated,
  returned, redeemed); the member id is not part of it.
- **coupons: pseudonymize.** The register of what was issued and redeemed, by cause and order;
  a code is derived from its cause, not an id.
- **metrics: delete the ``active#<day>`` markers.** Day, cohort and total items are aggregates
  and stay exactly as they are; a marker only says "this member was active that day".
- **shared: delete** the member's caps and pacing counters, a recall-sweep or segments-pass
  cursor that stopped at them (the sweep re-reads that day, the pass starts its day again; both
  write each decision once), and which person their ids and UnionID are (``chalicelib/identity``),
  with the record of their merge. An erase takes the whole person: each person merged into them
  is erased first (its own erase record), and every id of theirs gets a tombstone.
- **events: delete.** The journal of what the member did and said (message text, birthday,
  orders); counters were taken when the events came. One being processed right now stops the
  erase (run it again).
- **members: delete, last.** The profile: birthday, groups, tags, inviter, store, channel.
- **rules, alerts: keep.** Rule sets and their authors; one alert per check and store. Nothing
  about members.
- **erasures: keep.** The audit of erases: a keyed hash, the pseudonym, times and counts.
- **console-audit: keep.** Who changed what through the console: staff names, the ticket id, the
  rule version or the erase's pseudonym. No member id and no staff note is written there.

Members invited by the erased member quote their id (their ``inviter``, the scene in their
follow's event id): those rows are rewritten with the pseudonym (policies marked ``quoted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.models import Model

from chalicelib import executor, ledger, plans
from chalicelib.delivery import sender
from chalicelib.errors import Retryable
from chalicelib.privacy import finders
from chalicelib.privacy.actions import FORFEITED, Action, Delete, Erasing, Pseudonymize, Tally
from chalicelib.privacy.finders import Finder, index, partition, row
from chalicelib.state.models import (
    BASE_NAMES,
    Alert,
    ConsoleAction,
    Coupon,
    Erasure,
    EventRecord,
    LoyaltyRecord,
    Member,
    Metric,
    OutboxMessage,
    PointsRecord,
    Recall,
    RuleRecord,
    Shared,
    Ticket,
)
from chalicelib.store import keys
from chalicelib.store.db import Outcome


class Keep:
    """Nothing to do: the table holds nothing about members."""

    def plan(self, item: Model, e: Erasing) -> str | None:
        return None

    def apply(self, item: Model, e: Erasing, tally: Tally) -> str | None:
        return None


KEEP = Keep()
DELETE = Delete()
PSEUDONYMIZE = Pseudonymize()


@dataclass(frozen=True)
class Policy:
    table: type[Model]
    action: Action
    find: Finder | None  # None: nothing to look for (KEEP)
    why: str
    step: str = ""  # the name the erase's checkpoint knows this step by; default: the table's
    quoted: bool = False  # rows of members the erased one invited may quote their id: rewrite them

    @property
    def name(self) -> str:
        return self.step or BASE_NAMES[self.table]


def _message_busy(message: OutboxMessage, now: datetime) -> bool:
    return message.status == "sending" and message.lease_until is not None and message.lease_until > now


def _give_back(message: OutboxMessage, now: datetime) -> None:
    if message.status in sender.SENDABLE or (message.status == "sending" and not message.sent_channel):
        sender.release_reservation(message, now)


class ForfeitPoints:
    """Close the pseudonym's balance with one ``erase`` entry (the ledger's own exactly-once key)."""

    def plan(self, item: Model, e: Erasing) -> str | None:
        return FORFEITED if int(getattr(item, "balance", 0) or 0) > 0 else None

    def apply(self, item: Model, e: Erasing, tally: Tally) -> str | None:
        if ledger.entry(e.pseudonym, keys.ERASE) is None:
            balance = ledger.balance_of(e.pseudonym)
            if balance.points <= 0:
                return None
            forfeit = plans.PostPoints(
                member_id=e.pseudonym,
                key=keys.ERASE,
                delta=-balance.points,
                mode="reverse",
                cause="erase",
                event_id=keys.erase_event(e.pseudonym),
                rules_version="-",
                at=e.now,
            )
            settle = lambda resolved: ledger.settle(resolved, {e.pseudonym: balance})  # noqa: E731
            if executor.execute([forfeit], forfeit.event_id, e.now, settle=settle).outcome is Outcome.CONFLICT:
                raise Retryable("the pseudonym's balance changed meanwhile; run the erase again")
        tally.mark("points", FORFEITED)
        return FORFEITED


# In order: messages stop first; records that lead to others are read before they go; the
# member's row goes last (while it exists, the erase is not done).
REGISTRY: tuple[Policy, ...] = (
    Policy(
        OutboxMessage,
        Delete(busy=_message_busy, before=_give_back),
        index(OutboxMessage, OutboxMessage.by_member),
        "a message is about its member; what was sent and what it cost is in the counters",
        quoted=True,
    ),
    Policy(
        LoyaltyRecord,
        PSEUDONYMIZE,
        finders.lottery_draws,
        "a week's draw stays reproducible: the pseudonym takes the entrant's place",
        step="loyalty.draws",
    ),
    Policy(
        LoyaltyRecord,
        PSEUDONYMIZE,
        finders.helper_lists,
        "a month's brand helpers stay a list of that month",
        step="loyalty.helpers",
    ),
    Policy(
        LoyaltyRecord,
        Pseudonymize(assign=(("status", "void"),)),
        finders.invites_made,
        "the invitee keeps its invite record; nothing is ever planned again for a gone inviter",
        step="loyalty.invites",
    ),
    Policy(
        LoyaltyRecord,
        DELETE,
        finders.loyalty_records,
        "check-ins, week entries, agenda items, birthday month, group rows, invite count, experiment exposures: "
        "only about the member",
        quoted=True,
    ),
    Policy(
        PointsRecord,
        Pseudonymize(strip=("note", "expires_month")),
        partition(PointsRecord),
        "the ledger is the books: the audit must balance; notes may be free text",
        quoted=True,
    ),
    Policy(
        PointsRecord,
        ForfeitPoints(),
        finders.pseudonym_balance,
        "nobody can redeem an erased member's points: the balance is closed by one entry",
        step="points.forfeit",
    ),
    Policy(Recall, PSEUDONYMIZE, partition(Recall), "the recall report counts these decisions"),
    Policy(
        Coupon,
        PSEUDONYMIZE,
        index(Coupon, Coupon.by_member),
        "the coupon register: issued and redeemed, by cause and order",
        quoted=True,
    ),
    Policy(Metric, DELETE, finders.active_markers, "a marker says the member was active that day; day items stay"),
    Policy(Shared, DELETE, finders.member_counters, "the member's caps and pacing counters", step="shared.counters"),
    Policy(Shared, DELETE, finders.sweep_cursors, "a cursor at the member: the sweep re-reads", step="shared.cursors"),
    Policy(
        Shared,
        DELETE,
        finders.identity_links,
        "which person the member's ids are, their merge's record: each names an id",
        step="shared.identity",
    ),
    Policy(
        EventRecord,
        Delete(),
        index(EventRecord, EventRecord.by_member),
        "what the member did and said; counted at event time",
        quoted=True,
    ),
    Policy(
        Ticket,
        DELETE,
        index(Ticket, Ticket.by_member),
        "a negative review's ticket: who complained, the order, staff's notes; the SLA counters stay",
    ),
    Policy(Member, DELETE, row(Member), "the profile", quoted=True),
    Policy(RuleRecord, KEEP, None, "rule sets and their authors: nothing about members"),
    Policy(Alert, KEEP, None, "one per check and store: nothing about members"),
    Policy(Erasure, KEEP, None, "the audit of erases: keyed hash, pseudonym, times, counts"),
    Policy(ConsoleAction, KEEP, None, "the console's audit: staff, action, ticket / version / pseudonym; no member id"),
)
