"""Plans: what siyu decides to do, as data. The closed set of instructions below is everything a
duty, a timer or an admin action may ask of the store; ``chalicelib.executor`` carries a plan
out (one transaction) or describes it (a dry run), and knows every instruction by its type — an
unknown one is an error, never a fallthrough.

Every instruction is a frozen, keyword-only dataclass. One that creates something keyed
(a coupon, a message, a record, a ledger entry …) has a ``ref``; another instruction may depend
on it through ``when``: ``new(x)`` — only if ``x`` is created by this very plan, ``taken(x)`` —
only if ``x`` turned out to exist already. The executor resolves those before it writes, so a
re-follow's plan ("a welcome coupon, the welcome text if the coupon is new, the re-follow text
if it is taken") commits exactly one of the two texts, and never a text about a coupon that
was not issued.

Layers (docs/architecture in README "Layout"): duties, timers and admin actions build plans;
the executor turns them into the store's writes; nothing here reads or writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from chalicelib.events import Event, robot_recipient

Ref = tuple[str, str]  # (what, key): ("coupon", code), ("message", key), ("record", "pk|sk") …
When = tuple[Ref, Literal["new", "taken"]]
Category = Literal["service", "promo", "alert"]


@dataclass(frozen=True, kw_only=True)
class Instruction:
    when: When | None = None

    @property
    def ref(self) -> Ref | None:
        """What this instruction creates, for ``when`` of others (None: it creates nothing keyed)."""
        return None


def new(instruction: Instruction) -> When:
    assert instruction.ref is not None, f"{type(instruction).__name__} creates nothing keyed"
    return (instruction.ref, "new")


def taken(instruction: Instruction) -> When:
    assert instruction.ref is not None, f"{type(instruction).__name__} creates nothing keyed"
    return (instruction.ref, "taken")


# --- the event and the member ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecordEvent(Instruction):
    """The event's record, the guard of its commit: written unless it is done already, with the
    reply (a passive reply's text) and the answer (the order webhook's JSON) a retry gets."""

    event: Event
    received_at: datetime
    expires: datetime
    reply: str | None = None
    answer: str | None = None
    attempts: int = 1

    @property
    def ref(self) -> Ref:
        return ("event", self.event.event_id)


@dataclass(frozen=True, kw_only=True)
class FailEvent(Instruction):
    """An event whose processing failed: kept (unless done meanwhile) for the redrive timer."""

    event: Event
    received_at: datetime
    expires: datetime
    error: str


@dataclass(frozen=True, kw_only=True)
class ForgetEvent(Instruction):
    """An event about an erased member: kept nowhere (``chalicelib.privacy.guard``)."""

    event_id: str


@dataclass(frozen=True, kw_only=True)
class Refuse(Instruction):
    """The event is refused whole: the pipeline writes nothing of it (not even its record) and
    answers ``answer``. A question a caller waits on and may ask again — a points redemption the
    member cannot make (``duties.catalog``) — leaves no trace when the answer is no."""

    answer: Mapping[str, object]


@dataclass(frozen=True, kw_only=True)
class TouchMember(Instruction):
    """What one event says about its member. ``last_active`` moves only forward: it is set (with
    its local day, the recall sweep's key) on the condition that the member's value is still
    ``previous_active`` (None: none yet), so a concurrent later event wins and this one is decided
    again. First-touch attribution is set only where absent. The member's row must still be as
    read (there, and not being erased; or not there), so an erase that started meanwhile, or a
    concurrent first event, makes this event decide again."""

    member_id: str
    at: datetime  # when the event happened
    now: datetime
    source: str
    existed: bool = False  # the member was read, and not being erased: both must still hold
    store_id: str | None = None
    channel: str | None = None
    inviter: str | None = None
    last_active: datetime | None = None
    active_day: str | None = None
    previous_active: datetime | None = None
    service_window_until: datetime | None = None
    service_window_action: str | None = None  # what opened it (messaging.json service_windows)
    subscribed: Literal["yes", "no"] | None = None
    add_group: str | None = None
    remove_group: str | None = None
    order_day: str | None = None
    platform: str | None = None  # "<source>/<platform id>" the event came with: one of the person's ids
    unionid: str | None = None  # the UnionID the event carried, set if the person has none


@dataclass(frozen=True, kw_only=True)
class LinkIdentity(Instruction):
    """Record which person a platform id or a UnionID belongs to (``chalicelib/identity``), on
    the link's absence: two events that claim one id for two persons at once cannot both commit;
    the loser reads again and finds the person the winner linked."""

    pk: str  # keys.link(platform id) or keys.unionid_link(unionid)
    person: str


@dataclass(frozen=True, kw_only=True)
class UpdateLoyalty(Instruction):
    """Loyalty fields of a member, set only if the tier is still ``expect_tier`` (``""``: none yet;
    None: no condition): two events that both upgrade a member upgrade (and notify) once."""

    key: str
    member_id: str
    expect_tier: str | None = None
    tier: str | None = None
    tier_since: datetime | None = None
    tier_review_on: str | None = None
    add_tags: frozenset[str] = frozenset()
    remove_tags: frozenset[str] = frozenset()
    birthday: str | None = None
    invite_unlocked_at: datetime | None = None
    checkin_day: str | None = None  # the latest check-in (local date) and the streak it made
    checkin_streak: int | None = None

    @property
    def ref(self) -> Ref:
        return ("loyalty", self.key)


@dataclass(frozen=True, kw_only=True)
class RecordConsent(Instruction):
    """Subscribe-message consent: refused templates added, accepted ones removed."""

    member_id: str
    accepted: frozenset[str]
    refused: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class MarkMember(Instruction):
    """What WeChat said of a member when a send failed (43004 unfollowed, 43019 blocked, 43101
    refused a subscription template)."""

    member_id: str
    now: datetime
    unsubscribed: bool = False
    blocked: bool = False
    refused_template: str | None = None


# --- coupons ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IssueCoupon(Instruction):
    code: str
    member_id: str
    cause: str
    cause_key: str
    event_id: str
    title: str
    value_fen: int
    min_spend_fen: int
    stores: frozenset[str] | None
    expires_at: datetime
    rules_version: str
    kind: str = "amount"  # amount | percent | item (rules: CouponSpec)
    percent_off: int | None = None
    item_sku: str | None = None
    item_name: str | None = None
    valid_from: datetime | None = None  # None: from issue

    @property
    def ref(self) -> Ref:
        return ("coupon", self.code)


@dataclass(frozen=True, kw_only=True)
class RedeemCoupon(Instruction):
    """Redeem a coupon for its member, once, by the one event that gets there first (on the
    condition that it is still issued to them)."""

    code: str
    member_id: str
    order_id: str | None
    at: datetime
    event_id: str
    cause: str  # the coupon's cause, for the counters
    store_id: str | None = None  # where it was redeemed (the till's store: only it may void)

    @property
    def ref(self) -> Ref:
        return ("redeem", self.code)


@dataclass(frozen=True, kw_only=True)
class VoidRedemption(Instruction):
    """Undo a coupon's redemption for a cancelled order: the coupon is the member's again, on the
    condition that this order still holds it and no other void came first (``voids`` read)."""

    code: str
    order_id: str
    voids: int  # voids of this coupon before this one
    at: datetime

    @property
    def ref(self) -> Ref:
        return ("void", self.code)


@dataclass(frozen=True, kw_only=True)
class LinkRedemption(Instruction):
    """A recall or challenge coupon was redeemed: noted on the decision record that issued it
    (dropped if that record is gone)."""

    member_id: str
    recall_key: str
    at: datetime
    value_fen: int


@dataclass(frozen=True, kw_only=True)
class UnlinkRedemption(Instruction):
    """A recall or challenge coupon's redemption was voided: no longer noted on its decision."""

    member_id: str
    recall_key: str


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class QueueMessage(Instruction):
    """A message for the outbox to deliver (recorded once by its key; no passive reply exists on
    its channel, or nobody is waiting for one)."""

    message_key: str
    member_id: str
    channel: str
    category: Category
    text: str
    cause: str
    event_id: str
    rules_version: str
    payload: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None  # messaging.json template: the channel, or the fallback of "custom"
    store_id: str | None = None
    expires_at: datetime | None = None
    # held until the person's identity is settled (their UnionID asked of WeChat): a gift that a
    # merge voids is never announced (chalicelib/identity/work.py releases it)
    hold_for_identity: bool = False
    # a scheduled send (a calendar push, a campaign): recorded now, held until then; the release
    # timer hands it to the senders when it is due (chalicelib/campaigns/pushes.py)
    not_before: datetime | None = None

    @property
    def ref(self) -> Ref:
        return ("message", self.message_key)

    @classmethod
    def to_robot(
        cls, key: str, robot: str, lines: list[str], cause: str, rules_version: str, store_id: str | None = None
    ) -> QueueMessage:
        """A markdown message for a staff group's robot (alerts, review tickets): its key is its
        event, so a retried timer queues it once. ``robot`` names the robot (``ops``, a store id)."""
        return cls(
            message_key=key,
            member_id=robot_recipient(robot),
            channel="robot",
            category="alert",
            text="\n".join(lines),
            cause=cause,
            event_id=key,
            rules_version=rules_version,
            payload={"robot": "markdown"},
            store_id=store_id,
        )


@dataclass(frozen=True, kw_only=True)
class Reply(Instruction):
    """A passive reply on the official account (the answer to this very callback); recorded as
    replied. When nobody is left to answer (``later``), the outbox delivers it instead."""

    message_key: str
    member_id: str
    text: str
    cause: str
    event_id: str
    rules_version: str
    template: str | None = None
    payload: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> Ref:
        return ("message", self.message_key)

    def later(self) -> QueueMessage:
        """The reply of an event the redrive timer finished: a customer-service message, through
        the reply's template outside the 48-hour window."""
        return QueueMessage(
            message_key=self.message_key,
            member_id=self.member_id,
            channel="custom",
            category="service",
            text=self.text,
            cause=self.cause,
            event_id=self.event_id,
            rules_version=self.rules_version,
            payload=dict(self.payload),
            template=self.template,
            when=self.when,
        )


@dataclass(frozen=True, kw_only=True)
class RecordDelivery(Instruction):
    """WeChat's later word on a message it accepted (TEMPLATESENDJOBFINISH, subscribe_msg_sent);
    a message whose send outcome was unknown is settled as sent."""

    message_key: str
    status: str
    msg_id: str | None
    at: datetime
    settle_unknown: bool
    cause: str | None = None  # the message's kind, counted delivered (or not) by it; None: not counted


# --- points -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PostPoints(Instruction):
    """One ledger entry (``chalicelib/ledger.py``). As a duty plans it, ``delta`` is the
    intent: ``credit`` adds it, ``debit`` takes all of it or nothing (redemption), ``reverse``
    takes what the balance covers (refunds, expiry). Before it is written the ledger settles it
    against the balance read (``settled``): the entry's sequence number, the balance before and
    after, what could not be recovered; the executor writes it on the entry's absence and the
    balance's ``seq``. ``order``: ``open`` creates the order's item (an earn), ``reverse`` moves its
    reversed points on the condition that they are still ``order_reversed``, ``void`` creates it
    voided (a refund of an order that earned nothing yet)."""

    member_id: str
    key: str
    delta: int
    mode: Literal["credit", "debit", "reverse"]
    cause: str
    event_id: str
    rules_version: str
    at: datetime
    order_id: str | None = None
    order: Literal["open", "reverse", "void"] | None = None
    order_reversed: int = 0
    order_refunded_fen: int = 0
    amount_fen: int | None = None
    spend_fen: int = 0
    categories: frozenset[str] = frozenset()
    expires_on: str | None = None
    note: str | None = None
    # set by the ledger when it settles the posting against the balance read:
    settled: bool = False
    seq: int = 0  # the entry's number: the balance's seq after it
    balance_before: int = 0
    spend_before: int = 0
    unrecovered: int = 0

    @property
    def ref(self) -> Ref:
        return ("points", f"{self.member_id}|{self.key}")


@dataclass(frozen=True, kw_only=True)
class SetBalance(Instruction):
    """A member's balance after the plan's settled postings (one per member and plan), on the
    condition that its ``seq`` is still ``seq_before``: a concurrent posting makes the plan
    decide again, so the balance is always the sum of the entries and never below zero."""

    member_id: str
    seq_before: int
    seq: int
    balance: int
    spend_fen: int


# --- loyalty records --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecordOnce(Instruction):
    """A loyalty fact written once by its key (a check-in, an invite, a draw, an agenda item)."""

    pk: str
    sk: str
    member_id: str | None
    event_id: str
    rules_version: str
    at: datetime
    status: str | None = None
    number: int | None = None
    value: str | None = None

    @property
    def key(self) -> str:
        return f"{self.pk}|{self.sk}"

    @property
    def ref(self) -> Ref:
        return ("record", self.key)


@dataclass(frozen=True, kw_only=True)
class CountUpTo(Instruction):
    """One more on a loyalty counter (``LoyaltyRecord.number``, absent = 0), on the condition that
    it is still below ``limit``: a catalog item's stock redeemed, a member's redemptions of it.
    The counter needs no initial value, and the limit is the rule's of today. A failed condition
    means the plan was decided on a count that moved: the event decides again (and finds it full)."""

    pk: str
    sk: str
    limit: int
    member_id: str | None  # the member a per-member counter is about (their erase deletes it)
    event_id: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class CountInvite(Instruction):
    """An invite whose grace period passed: the invitee's record moves pending → counted and the
    inviter's count n → n + 1 together, so each invitee counts once and the count has no gaps.
    ``void``: the invitee left within the grace period: pending → void, no count."""

    invitee: str
    inviter: str
    count_before: int
    void: bool = False

    @property
    def ref(self) -> Ref:
        return ("invite", self.invitee)


@dataclass(frozen=True, kw_only=True)
class SaveCursor(Instruction):
    """Where a sweep stands (a page cursor, a finished day): simply replaced."""

    table: Literal["shared", "loyalty"]
    pk: str
    sk: str
    value: str | None
    at: datetime


# --- recall -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecallDecision(Instruction):
    """One member due at a recall (or challenge) stage: treated, held out or skipped. Written
    with the member's recall state (on the condition it is as read), the coupon and the
    message and the day's counters, once by (member, lapse, stage)."""

    member_id: str
    key: str  # <lapse>#<stage>
    day: str  # the local day of the decision (the sweep's, the challenge's)
    lapse: str
    stage: str
    arm: Literal["treated", "holdout", "skipped"]
    store_id: str | None
    window_until: datetime
    attempts: int  # the member's attempts in this lapse, this one included
    now: datetime
    rules_version: str
    reason: str | None = None
    coupon: IssueCoupon | None = None
    message: QueueMessage | None = None
    previous: Mapping[str, object] = field(default_factory=dict)  # what the member said when read

    @property
    def ref(self) -> Ref:
        return ("recall", f"{self.member_id}|{self.key}")


@dataclass(frozen=True, kw_only=True)
class MarkReturned(Instruction):
    """The member was active again inside a recall record's window: the record counts them as
    returned, once (its arm's and store's counters come with it, ``when`` it is new)."""

    member_id: str
    recall_key: str
    at: datetime

    @property
    def ref(self) -> Ref:
        return ("returned", f"{self.member_id}|{self.recall_key}")


@dataclass(frozen=True, kw_only=True)
class CloseRecalls(Instruction):
    """Take recall records off the member's open list (the member was active again)."""

    member_id: str
    keys: frozenset[str]


# --- reviews ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpenTicket(Instruction):
    """A negative review's ticket, once by the review id."""

    ticket_id: str
    member_id: str
    store_id: str | None
    score: int
    order_id: str | None
    opened_at: datetime
    next_at: datetime | None  # the first SLA step
    event_id: str
    rules_version: str
    expires: datetime

    @property
    def ref(self) -> Ref:
        return ("ticket", self.ticket_id)


@dataclass(frozen=True, kw_only=True)
class MoveTicket(Instruction):
    """A ticket's next state, on the condition that it is still as read (``expect_status``,
    ``expect_next_at``); an SLA step is recorded in ``steps`` once (``step``)."""

    ticket_id: str
    expect_status: str
    expect_next_at: datetime | None = None
    check_next_at: bool = False
    status: str | None = None
    step: str | None = None
    next_at: datetime | None = None  # None with ``clear_due``: no step ahead
    clear_due: bool = False
    handled_by: str | None = None
    note: str | None = None
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None


# --- alerts -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MoveAlert(Instruction):
    """One transition of a watched number's alert (open, escalate, remind, close), on the
    condition that the alert is as the checker read it."""

    alert_id: str
    transition: Literal["open", "escalate", "remind", "close"]
    check: str
    scope: str
    level: str
    value: str
    now: datetime
    expect_level: str | None = None
    expect_opened_at: datetime | None = None
    expect_notified_at: datetime | None = None


# --- the weekly digest -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KeepDigest(Instruction):
    """A week's digest (markdown and chart), kept once: the week's messages depend on it."""

    week: str
    value: str

    @property
    def ref(self) -> Ref:
        return ("digest", self.week)


# --- segments ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SetSegments(Instruction):
    """A member's segments and tags as evaluated now (chalicelib/segments). The member's row is
    updated on the condition that ``segments_seq`` is still ``seq_before``: two passes that
    evaluate one member at once write once, the other reads again and finds nothing to change.
    In the same transaction each segment left loses its membership row (``segment#<name>``,
    ``<store>#<member>`` under ``store_before``) and each segment joined gains one; a member whose
    store changed moves every row."""

    member_id: str
    seq_before: int  # 0: never evaluated
    store_before: str | None  # the store part of the member's rows as read (None: no rows)
    store: str  # the store part now (keys.NO_STORE when none)
    before: frozenset[str]
    after: frozenset[str]
    tags: frozenset[str]
    rules_version: str
    rule_hash: str  # of the version's segments.json: a publish that left it alone rewrites nobody
    now: datetime


# --- counters ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AddCounters(Instruction):
    """Numbers added to one counter item (a scope's day, its totals, a cohort)."""

    scope: str
    key: str
    counts: Mapping[str, int]
    expires: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class MarkActive(Instruction):
    """The member was active on this local day (counted once a day)."""

    day: str
    member_id: str
    expires: datetime

    @property
    def ref(self) -> Ref:
        return ("active", f"{self.day}|{self.member_id}")


Plan = list[Instruction]
