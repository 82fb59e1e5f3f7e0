"""PynamoDB models: the schema of every table. ``infra/resources.json`` declares the same tables
for CloudFormation (a test keeps the two in step); each model's docstring names the access
patterns it serves. Table names are ``SIYU_TABLE_PREFIX`` + the base name, bound at call time.
"""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model


class _Base(Model):
    class Meta:
        abstract = True
        table_name = ""
        region = "ap-east-1"
        host: str | None = None  # the endpoint, set by ``state.binding`` (None: AWS's own)
        billing_mode = "PAY_PER_REQUEST"


class MembersByActiveDay(GlobalSecondaryIndex["Member"]):
    """The recall sweep: the members whose last activity fell on one local day. A stage of N days
    reads the partition of the day N days ago, so a sweep reads the members due, not the table;
    a member who comes back moves to today's partition by the same update that records it."""

    class Meta:
        index_name = "by_active_day"
        projection = AllProjection()

    active_day = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute(range_key=True)


class MembersByInviter(GlobalSecondaryIndex["Member"]):
    """Privacy: the members a member invited (first-touch ``inviter``), whose records quote the
    inviter's id; an erase rewrites them (``chalicelib/privacy``). Sparse: only invited members."""

    class Meta:
        index_name = "by_inviter"
        projection = KeysOnlyProjection()

    inviter = UnicodeAttribute(hash_key=True)


class Member(_Base):
    """One member of the private domain: a person (chalicelib/identity), keyed by the first id siyu
    saw of them (an OA or mini-program openid, a WeCom external user id, a POS code); a person
    merged into another keeps a row that names it (``merged_into``). Access: get by id (every
    event, admin view); conditional update per event; the members whose last activity fell on a
    given day (recall sweep); the members one member invited (privacy erase); a paged scan, once a
    day (the segments pass: chalicelib/segments/sweep.py)."""

    class Meta(_Base.Meta):
        table_name = "members"

    member_id = UnicodeAttribute(hash_key=True)
    origin = UnicodeAttribute(null=True)  # oa | wecom | orders: where we first saw them
    first_seen = UTCDateTimeAttribute(null=True)
    last_active = UTCDateTimeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)  # first-touch attribution
    channel = UnicodeAttribute(null=True)
    inviter = UnicodeAttribute(null=True)
    subscribed = UnicodeAttribute(null=True)  # "yes" | "no": follows the official account
    subscribed_at = UTCDateTimeAttribute(null=True)
    unsubscribed_at = UTCDateTimeAttribute(null=True)
    groups = UnicodeSetAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    service_window_until = UTCDateTimeAttribute(null=True)  # customer-service messages allowed until
    blocked = UnicodeAttribute(null=True)  # "yes" once WeChat says the member blocked the account
    refused_templates = UnicodeSetAttribute(null=True)  # subscribe templates the member refused
    consented = UnicodeSetAttribute(null=True)  # subscribe templates accepted (their grants: keys.consent)
    service_window_action = UnicodeAttribute(null=True)  # what opened the window: message | follow | click | scan
    # Recall (chalicelib/recall): the local day of the last activity (chain time zone) keys the
    # sweep's index; a lapse is named by that day.
    active_day = UnicodeAttribute(null=True)
    recall_open = UnicodeSetAttribute(null=True)  # recall records still waiting for a return
    recall_lapse = UnicodeAttribute(null=True)  # the lapse the attempts below count in
    recall_attempts = NumberAttribute(null=True)
    recall_last_at = UTCDateTimeAttribute(null=True)  # cooldown between recalls
    order_days = UnicodeSetAttribute(null=True)  # local days with a paid order (YYYY-MM-DD)
    challenge = UnicodeAttribute(null=True)  # the latest low-repurchase challenge's record key
    challenge_arm = UnicodeAttribute(null=True)  # its arm: treated | holdout
    challenge_done = UnicodeAttribute(null=True)  # "yes" once it was completed

    # --- loyalty (issue 7): written by chalicelib/loyalty and the loyalty duties only ---
    tier = UnicodeAttribute(null=True)  # loyalty.json tier name; absent = the entry tier
    tier_since = UTCDateTimeAttribute(null=True)
    tier_review_on = UnicodeAttribute(null=True)  # local date (YYYY-MM-DD) of the next downgrade check
    birthday = UnicodeAttribute(null=True)  # MM-DD, from the questionnaire or the member profile
    loyalty_tags = UnicodeSetAttribute(null=True)  # tier tags (early_access), badges, brand_helper
    invite_unlocked_at = UTCDateTimeAttribute(null=True)  # referral: spent enough to invite
    checkin_day = UnicodeAttribute(null=True)  # the latest check-in's local date (YYYY-MM-DD)
    checkin_streak = NumberAttribute(null=True)  # and the streak it made
    erasing = UnicodeAttribute(null=True)  # "yes" while chalicelib/privacy erases the member

    # --- segments (issue 21): written by chalicelib/segments only (plans.SetSegments) ---
    segments = UnicodeSetAttribute(null=True)  # segments.json segments the member is in
    segment_tags = UnicodeSetAttribute(null=True)  # segments.json tags (price_sensitive); not loyalty_tags
    segments_store = UnicodeAttribute(null=True)  # the store part of their membership rows (keys.segment_member)
    segments_version = UnicodeAttribute(null=True)  # the rule version they were evaluated under
    segments_rule = UnicodeAttribute(null=True)  # its segments.json's hash (segments.sweep.rule_hash)
    segments_at = UTCDateTimeAttribute(null=True)  # when
    segments_seq = NumberAttribute(null=True)  # evaluations written: the condition of the next one

    # --- one person (chalicelib/identity): the member is a person, each platform id maps to one ---
    ids = UnicodeSetAttribute(null=True)  # "<source>/<platform id>": every id of this person
    unionid = UnicodeAttribute(null=True)  # WeChat's UnionID, once learned (docs/unionid.md)
    absorbed = UnicodeSetAttribute(null=True)  # persons merged into this one (their coupons are its)
    merged_into = UnicodeAttribute(null=True)  # on a merged person: the person it now is
    merged_at = UTCDateTimeAttribute(null=True)

    by_active_day = MembersByActiveDay()
    by_inviter = MembersByInviter()


class ByDay(GlobalSecondaryIndex["EventRecord"]):
    """Replay / preview: every event received on a UTC day, in order."""

    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    received_at = UTCDateTimeAttribute(range_key=True)


class EventsByMember(GlobalSecondaryIndex["EventRecord"]):
    """A member's history, newest last."""

    class Meta:
        index_name = "by_member"
        projection = KeysOnlyProjection()

    member_id = UnicodeAttribute(hash_key=True)
    occurred_at = UTCDateTimeAttribute(range_key=True)


class Stalled(GlobalSecondaryIndex["EventRecord"]):
    """Sparse: only events not yet done carry ``stalled``; the redrive timer reads expired leases."""

    class Meta:
        index_name = "stalled"
        projection = KeysOnlyProjection()

    stalled = UnicodeAttribute(hash_key=True)
    lease_until = UTCDateTimeAttribute(range_key=True)


class EventRecord(_Base):
    """Every received event, keyed by its dedupe key (docs/wechat.md §1.5). The conditional put of
    this record is the deduplication; its status moves in_progress → done (or failed, to be
    retried); the stored reply answers WeChat's retries. Kept for ``SIYU_EVENT_TTL_DAYS``."""

    class Meta(_Base.Meta):
        table_name = "events"

    event_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    source = UnicodeAttribute()
    member_id = UnicodeAttribute(null=True)
    occurred_at = UTCDateTimeAttribute()
    received_at = UTCDateTimeAttribute()
    day = UnicodeAttribute()
    body = UnicodeAttribute()  # the normalized event as JSON, for redrive and replay
    status = UnicodeAttribute()  # in_progress | done | failed
    attempts = NumberAttribute(default=1)
    lease_until = UTCDateTimeAttribute(null=True)
    stalled = UnicodeAttribute(null=True)
    reply = UnicodeAttribute(null=True)  # the passive reply (official account)
    answer = UnicodeAttribute(null=True)  # the order webhook's answer (JSON): coupons, points, check-in
    error = UnicodeAttribute(null=True)
    expires = TTLAttribute(null=True)

    by_day = ByDay()
    by_member = EventsByMember()
    stalled_index = Stalled()


class CouponsByMember(GlobalSecondaryIndex["Coupon"]):
    """A member's coupons (admin view, redemption checks)."""

    class Meta:
        index_name = "by_member"
        projection = AllProjection()

    member_id = UnicodeAttribute(hash_key=True)
    issued_at = UTCDateTimeAttribute(range_key=True)


class Coupon(_Base):
    """A coupon, keyed by its code. The code is derived from the cause key (``welcome#m``), so
    the conditional put on the code is the exactly-once guard for the cause. Access: get by code
    (redemption), query by member."""

    class Meta(_Base.Meta):
        table_name = "coupons"

    code = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute()
    cause = UnicodeAttribute()  # welcome | recall | … : the duty
    cause_key = UnicodeAttribute()
    event_id = UnicodeAttribute(null=True)
    title = UnicodeAttribute()
    value_fen = NumberAttribute()
    min_spend_fen = NumberAttribute(default=0)
    stores = UnicodeSetAttribute(null=True)  # absent = every store
    issued_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()
    status = UnicodeAttribute(default="issued")  # issued | redeemed | void (a merge voided a second welcome)
    redeemed_at = UTCDateTimeAttribute(null=True)
    redeemed_order = UnicodeAttribute(null=True)
    redeemed_event = UnicodeAttribute(null=True)  # the one event that redeemed it
    redeemed_store = UnicodeAttribute(null=True)  # the till's store, when a till redeemed it
    voids = NumberAttribute(null=True)  # redemptions of it voided at the till (cancelled orders)
    voided_order = UnicodeAttribute(null=True)  # the latest of them
    voided_at = UTCDateTimeAttribute(null=True)
    kind = UnicodeAttribute(null=True)  # absent = amount; percent | item (rules: CouponSpec)
    percent_off = NumberAttribute(null=True)  # percent: the share off, at most value_fen
    item_sku = UnicodeAttribute(null=True)  # item: the free item, worth at most value_fen
    item_name = UnicodeAttribute(null=True)
    valid_from = UTCDateTimeAttribute(null=True)  # absent = from issued_at
    rules_version = UnicodeAttribute()

    by_member = CouponsByMember()


class OutboxByMember(GlobalSecondaryIndex["OutboxMessage"]):
    """A member's messages (admin view, reconciliation of unknown outcomes)."""

    class Meta:
        index_name = "by_member"
        projection = AllProjection()

    member_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class OutboxDue(GlobalSecondaryIndex["OutboxMessage"]):
    """Sparse: messages waiting to be (re)sent carry ``due``; the release timer reads those whose
    ``not_before`` has passed (deferred by quiet hours, backing off, or never picked up)."""

    class Meta:
        index_name = "due"
        projection = KeysOnlyProjection()

    due = UnicodeAttribute(hash_key=True)
    not_before = UTCDateTimeAttribute(range_key=True)


class OutboxByStatus(GlobalSecondaryIndex["OutboxMessage"]):
    """Recent messages in one state (``siyu outbox``, ops views)."""

    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class OutboxByWeChatId(GlobalSecondaryIndex["OutboxMessage"]):
    """Sparse: the message WeChat's delivery event (TEMPLATESENDJOBFINISH …) refers to."""

    class Meta:
        index_name = "by_wechat_msgid"
        projection = KeysOnlyProjection()

    wechat_msgid = UnicodeAttribute(hash_key=True)


class OutboxMessage(_Base):
    """An intended or delivered message, keyed by its deterministic idempotency key; recording
    the same key twice is a no-op. States: pending → sending → sent | dropped | failed | unknown,
    or deferred / retrying (back to sending when due); ``replied`` for passive replies.
    Access: get by key; query by member, by status, due ones, by WeChat's msgid."""

    class Meta(_Base.Meta):
        table_name = "outbox"

    message_key = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute()
    channel = UnicodeAttribute()  # passive_reply | template | subscribe | custom | miniprogram_subscribe | …
    category = UnicodeAttribute()  # service | promo | alert
    text = UnicodeAttribute(null=True)
    template = UnicodeAttribute(null=True)  # a messaging.json template name (fallback for custom)
    payload = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    cause = UnicodeAttribute()
    event_id = UnicodeAttribute(null=True)
    rules_version = UnicodeAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)  # the offer's end: not sent after it
    attempts = NumberAttribute(default=0)
    lease_until = UTCDateTimeAttribute(null=True)
    due = UnicodeAttribute(null=True)
    not_before = UTCDateTimeAttribute(null=True)
    reserved = UnicodeAttribute(null=True)  # caps / budget reservation taken (day|week|budget keys)
    sent_channel = UnicodeAttribute(null=True)
    sent_at = UTCDateTimeAttribute(null=True)
    cost_fen = NumberAttribute(null=True)
    wechat_msgid = UnicodeAttribute(null=True)
    response = UnicodeAttribute(null=True)
    delivery = UnicodeAttribute(null=True)  # WeChat's later delivery status (success / failed:…)
    counted = UnicodeAttribute(null=True)  # set with the "sent" counters, in one transaction

    by_member = OutboxByMember()
    due_index = OutboxDue()
    by_status = OutboxByStatus()
    by_wechat_msgid = OutboxByWeChatId()


class RecallsByDay(GlobalSecondaryIndex["Recall"]):
    """Reports and the silent-group list: every recall decision of one sweep day."""

    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class Recall(_Base):
    """One recall decision: a member due at a stage of one lapse, treated, held out or skipped
    (with the reason). The conditional put of ``(member, "<lapse>#<stage>")`` is the exactly-once
    guard of the sweep; ``returned_at`` is set when the member is active again within the
    attribution window, ``redeemed_at`` when the recall's coupon is redeemed. Access: get by
    key (attribution, redemption), query by sweep day (report)."""

    class Meta(_Base.Meta):
        table_name = "recalls"

    member_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)  # <lapse day>#<stage name>
    day = UnicodeAttribute()  # the sweep's local day
    stage = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)
    arm = UnicodeAttribute()  # treated | holdout | skipped
    reason = UnicodeAttribute(null=True)  # why skipped
    created_at = UTCDateTimeAttribute()
    window_until = UTCDateTimeAttribute()
    coupon_code = UnicodeAttribute(null=True)
    coupon_fen = NumberAttribute(null=True)
    message_key = UnicodeAttribute(null=True)
    returned_at = UTCDateTimeAttribute(null=True)
    redeemed_at = UTCDateTimeAttribute(null=True)
    redeemed_fen = NumberAttribute(null=True)
    rules_version = UnicodeAttribute()
    expires = TTLAttribute(null=True)

    by_day = RecallsByDay()


class Metric(_Base):
    """Counters, written at event time (never computed by scanning events). One item per scope
    (``chain`` or a store id) and local day, its counters as top-level numbers named by
    ``chalicelib.counters`` (added atomically, so the item has no fixed attributes
    beyond the keys); ``cohort#<day>`` items hold the new members of a day and how many came
    back on day 1 and day 7; ``total`` the running member and follower counts. Markers
    ``(active#<day>, <member>)`` make "active members" count each member once a day.
    Access: add in one transaction with the event's "counted" guard; query a scope's days in
    a range (a week = 7 items, however many events)."""

    class Meta(_Base.Meta):
        table_name = "metrics"

    scope = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    expires = TTLAttribute(null=True)


class Alert(_Base):
    """The state of one watched number (``<check>#<scope>``): open with its level, or closed.
    Every transition is a conditional update on what the checker read, in one transaction with
    its robot message, so an alert opens, escalates, reminds and closes once each. Access: get
    by id (the checker), scan (``siyu alerts``: one item per check and store, a small table)."""

    class Meta(_Base.Meta):
        table_name = "alerts"

    alert_id = UnicodeAttribute(hash_key=True)
    check = UnicodeAttribute()
    scope = UnicodeAttribute()
    status = UnicodeAttribute()  # open | closed
    level = UnicodeAttribute()  # notice | yellow | orange | red (the highest reached while open)
    opened_at = UTCDateTimeAttribute()
    notified_at = UTCDateTimeAttribute()
    escalations = NumberAttribute(default=0)
    reminders = NumberAttribute(default=0)
    value = UnicodeAttribute(null=True)  # the last measured value, as shown
    closed_at = UTCDateTimeAttribute(null=True)


class TicketsDue(GlobalSecondaryIndex["Ticket"]):
    """The SLA timer: tickets with a step still ahead, by when it falls due. Sparse: ``due`` is
    removed with the last step. One partition ("due"): negative reviews are few."""

    class Meta:
        index_name = "by_due"
        projection = AllProjection()

    due = UnicodeAttribute(hash_key=True)
    next_at = UTCDateTimeAttribute(range_key=True)


class TicketsByStatus(GlobalSecondaryIndex["Ticket"]):
    """``siyu tickets``: the tickets of one status, newest first."""

    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    opened_at = UTCDateTimeAttribute(range_key=True)


class TicketsByMember(GlobalSecondaryIndex["Ticket"]):
    """A member's tickets (their erase; the admin view)."""

    class Meta:
        index_name = "by_member"
        projection = KeysOnlyProjection()

    member_id = UnicodeAttribute(hash_key=True)
    opened_at = UTCDateTimeAttribute(range_key=True)


class Ticket(_Base):
    """A negative review's ticket (差评工单): opened once per review (a conditional put, in one
    transaction with the store's robot message), then responded, resolved and followed up by
    staff; the SLA timer's steps (``late``, ``escalated``, ``follow_up``) are each recorded in
    ``steps`` in one transaction with their message, so each is sent once. Access: get by review
    id (staff record a response), query by_due (the timer), query by_status (``siyu tickets``),
    query by_member (a member's erase)."""

    class Meta(_Base.Meta):
        table_name = "tickets"

    ticket_id = UnicodeAttribute(hash_key=True)  # the review id
    member_id = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)
    score = NumberAttribute()
    order_id = UnicodeAttribute(null=True)
    opened_at = UTCDateTimeAttribute()  # when the customer wrote the review: the SLA's start
    status = UnicodeAttribute()  # open | responded | resolved | closed
    steps = UnicodeSetAttribute(null=True)  # SLA steps taken: late | escalated | follow_up
    due = UnicodeAttribute(null=True)  # "due" while a step is ahead (the by_due index)
    next_at = UTCDateTimeAttribute(null=True)
    responded_at = UTCDateTimeAttribute(null=True)
    resolved_at = UTCDateTimeAttribute(null=True)
    closed_at = UTCDateTimeAttribute(null=True)
    handled_by = UnicodeAttribute(null=True)  # who recorded the last action (staff name or id)
    note = UnicodeAttribute(null=True)  # staff's note on the last action
    event_id = UnicodeAttribute()
    rules_version = UnicodeAttribute()
    expires = TTLAttribute(null=True)

    by_due = TicketsDue()
    by_status = TicketsByStatus()
    by_member = TicketsByMember()


class RuleRecord(_Base):
    """Rule versions and the active pointer, one partition each (small, strongly consistent):

    - ``("version", "00000007")``: an immutable published rule set (files, hash, author, note);
    - ``("active", "-")``: which version the handlers use, changed only by a conditional write;
    - ``("activation", "<time>#<version>")``: the log of every publish and rollback.

    Access: get the pointer (cached per container), get a version, query versions / activations
    in order, and the publish transaction (put version if absent + move the pointer if unchanged)."""

    class Meta(_Base.Meta):
        table_name = "rules"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    version = NumberAttribute()
    files = UnicodeAttribute(null=True)  # JSON object: file name -> text
    content_hash = UnicodeAttribute(null=True)
    author = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    previous = NumberAttribute(null=True)
    reason = UnicodeAttribute(null=True)  # publish | rollback


class Shared(_Base):
    """State shared by every container, one item per thing: the WeChat access token
    (``token``/app id), locks (``lock``/name), atomic counters (``count``/key: per-member caps
    per category per day and week, the monthly message budget, send-rate slots, force-refresh
    budgets), and identity (``link#<id>``, ``unionid#<u>`` → the person; ``merge#<absorbed>``:
    a merge's record; ``nomerge#<a>#<b>``: ops undid one; chalicelib/identity). Access: get /
    conditional put / conditional ADD by key; transactions across two counters. Counters expire
    by TTL."""

    class Meta(_Base.Meta):
        table_name = "shared"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    value = UnicodeAttribute(null=True)
    tally = NumberAttribute(null=True, attr_name="count")  # ``count`` is Model.count's name
    valid_until = UTCDateTimeAttribute(null=True)
    expires = TTLAttribute(null=True)


class PointsExpiring(GlobalSecondaryIndex["PointsRecord"]):
    """Sparse: point credits that expire carry ``expires_month``; the expiry timer reads a month's."""

    class Meta:
        index_name = "expiring"
        projection = KeysOnlyProjection()

    expires_month = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute(range_key=True)


class PointsRecord(_Base):
    """The points ledger, one partition per member (``chalicelib/ledger.py``):

    - ``balance``: the balance, the number of entries (``seq``) and the member's net spend;
    - ``entry#<cause key>`` (``entry#earn#O1``, ``entry#refund#O1#R1``, ``entry#redeem#X`` …): one
      immutable entry per cause, with its sequence number, delta and the balance after it;
    - ``order#<order id>``: what an order earned and how much of that refunds reversed.

    An entry is written in one transaction with the balance (conditioned on the entry's absence
    and on the balance's ``seq``), so the balance is always the sum of the entries.
    Access: query a member's partition (statement, audit, tier spend), get the balance, the
    ledger transaction, scan for the audit of every member, ``expiring`` by month."""

    class Meta(_Base.Meta):
        table_name = "points"

    member_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    balance = NumberAttribute(null=True)
    seq = NumberAttribute(null=True)
    spend_fen = NumberAttribute(null=True)  # balance item: net spend (paid minus refunded)
    delta = NumberAttribute(null=True)
    balance_after = NumberAttribute(null=True)
    cause = UnicodeAttribute(null=True)
    event_id = UnicodeAttribute(null=True)
    rules_version = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    amount_fen = NumberAttribute(null=True)  # earn: the order's amount; refund: the refund's
    categories = UnicodeSetAttribute(null=True)  # earn: the order's categories (precision push)
    expires_on = UnicodeAttribute(null=True)  # credit: local date after which it expires
    expires_month = UnicodeAttribute(null=True)
    unrecovered = NumberAttribute(null=True)  # debit: points the balance could not cover
    earned = NumberAttribute(null=True)  # order item
    reversed = NumberAttribute(null=True)  # order item
    refunded_fen = NumberAttribute(null=True)  # order item
    voided = UnicodeAttribute(null=True)  # order item: "yes" when refunded before it earned
    note = UnicodeAttribute(null=True)
    # a merge of persons (chalicelib/identity/merge.py): the absorbed person's rows are copied
    # whole (``merged_from``: history, not summed; their balance came as one ``merge#`` entry)
    merged_from = UnicodeAttribute(null=True)  # entry / order item: copied from this person
    moved_to = UnicodeAttribute(null=True)  # balance of an absorbed person: posted to this one

    expiring = PointsExpiring()


class LoyaltyByMember(GlobalSecondaryIndex["LoyaltyRecord"]):
    """Privacy: every loyalty record that names a member in ``member_id`` (their check-ins, week
    entries, agenda items, birthday and group rows, and the invites they made), for the erase.
    Sparse: draws, helper lists and cursors name nobody there."""

    class Meta:
        index_name = "by_member"
        projection = KeysOnlyProjection()

    member_id = UnicodeAttribute(hash_key=True)


class LoyaltyRecord(_Base):
    """Loyalty state other than points, one item per fact, each written once by key:

    - ``checkin#<member>`` / ``<local date>``: a check-in and the streak it made;
    - ``checkins#<ISO week>`` / ``<member>``: who checked in that week (the lottery's entrants);
    - ``lottery#<ISO week>`` / ``draw``: the recorded draw (seed, entrants, winners);
    - ``invitee#<member>`` / ``-``: the one invite a member ever counts for (pending → counted | void);
    - ``inviter#<member>`` / ``count``: how many invites counted;
    - ``due#<local date>`` / ``<kind>#<member>``: the loyalty agenda (referral confirmations,
      tier reviews and their warnings) read by the loyalty timer;
    - ``birthdays#<MM>`` / ``<member>``: members born in a month;
    - ``group#<chat id>`` / ``<member>``: who joined a store group; ``koc#<chat id>`` / ``<month>``:
      that month's brand helpers;
    - ``campaign#<name>`` / ``<occurrence>#<member>``: a campaign's message to a segment member
      (its value: the message key), read by the campaign's report (chalicelib/campaigns);
    - ``cursor`` / ``<step>``: a once-only sweep that finished (a month's expiry, a day's agenda).
    - ``segment#<name>`` / ``<store>#<member>``: the member is in the segment (chalicelib/segments),
      written with the member's ``segments`` by ``plans.SetSegments``;
    - ``experiment#<name>`` / ``<member>``: a member's first exposure to an experiment (``status``: the
      group, ``at``: when, ``value``: the store; chalicelib/experiments).

    Access: get / conditional put by key, query one pk (a member's check-ins, a week's entrants,
    a day's agenda, a segment's members, of one store by ``begins_with``, an experiment's
    exposures), the records naming one member (privacy erase)."""

    class Meta(_Base.Meta):
        table_name = "loyalty"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    member_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    number = NumberAttribute(null=True)  # a streak, a count of invites
    value = UnicodeAttribute(null=True)  # JSON or a short value (the draw, a date)
    event_id = UnicodeAttribute(null=True)
    rules_version = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute(null=True)

    by_member = LoyaltyByMember()


class Erasure(_Base):
    """One erase of a member's personal data (``chalicelib/privacy``): the audit record (no
    personal data: a keyed hash of the member id, the pseudonym left in its place, times, and
    the rows changed per table), the checkpoint that makes the erase resumable, and the
    tombstone that keeps late events of the erased member from recreating a profile.

    Keyed by ``subject`` (HMAC of the member id with ``SIYU_PRIVACY_SECRET``, never the id) and
    the erase's number (a member who comes back and is erased again gets a second record, and a
    second pseudonym). The counts are top-level numbers named ``<table>:<outcome>``
    (``events:deleted``), each added in one transaction with the row it counts, on the condition
    that the run still holds ``lease``. Access: query a subject's latest erase (the erase itself;
    the pipeline, for a member id it has not seen before); scan (a list of erases, a small table)."""

    class Meta(_Base.Meta):
        table_name = "erasures"

    subject = UnicodeAttribute(hash_key=True)
    number = NumberAttribute(range_key=True)
    pseudonym = UnicodeAttribute()
    status = UnicodeAttribute()  # in_progress | completed
    started_at = UTCDateTimeAttribute()
    completed_at = UTCDateTimeAttribute(null=True)
    requested_by = UnicodeAttribute(null=True)  # admin-token, an IAM ARN, cli
    steps_done = UnicodeSetAttribute(null=True)
    lease = UnicodeAttribute(null=True)  # the token of the run working on it
    lease_until = UTCDateTimeAttribute(null=True)


class ConsoleAction(_Base):
    """One change made through the ops console (``chalicelib/console``): who, what, when. The
    audit log of the console; the changes themselves are recorded where they always are (the
    ticket, the rule versions, the erasure).

    Keyed by the UTC month (``month``, ``2026-11``) and ``<ISO time>#<random>``, so the newest
    changes are one query of the current month, newest first. The target names a ticket, a rule
    version or an erase's pseudonym, never a member id; staff notes are not copied here. Access:
    put (once per change), query a month newest first (the console's audit page)."""

    class Meta(_Base.Meta):
        table_name = "console-audit"

    month = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = UTCDateTimeAttribute()
    user = UnicodeAttribute()  # a Cognito user name, or the local login (ops-token, store-manager:S001)
    role = UnicodeAttribute()  # ops | store_manager
    action = UnicodeAttribute()  # ticket.respond | rules.publish | rules.rollback | member.erase | …
    target = UnicodeAttribute()  # ticket id, rule version, erase pseudonym
    outcome = UnicodeAttribute()  # what came of it (ok | conflict | refused | in_progress)
    detail = UnicodeAttribute(null=True)  # a short JSON object: the new status, the version note
    expires = TTLAttribute(null=True)


MODELS: tuple[type[_Base], ...] = (
    Member,
    EventRecord,
    Coupon,
    OutboxMessage,
    RuleRecord,
    Shared,
    PointsRecord,
    LoyaltyRecord,
    Recall,
    Metric,
    Alert,
    Ticket,
    Erasure,
    ConsoleAction,
)
BASE_NAMES: dict[type[Model], str] = {model: model.Meta.table_name for model in MODELS}
