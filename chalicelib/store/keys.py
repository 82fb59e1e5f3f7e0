"""Every DynamoDB key siyu builds, in one place: the tables' keys and the deterministic keys of
exactly-once work (a coupon's cause, a message, a ledger entry, a decision). A key names its
cause, so the same cause always gets the same key and a write on the key's absence happens
once. Member ids never hold ``#`` (``events.ID_PATTERN``), so keys split unambiguously.

The tables and what their keys look like are described on each model
(``chalicelib/state/models.py``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

# --- events: the dedupe identity of each delivery (docs/wechat.md §1.5), the events table's key ---


def oa_message(msg_id: str, created: int, openid: str) -> str:
    return f"oa:msg:{msg_id}-{created}-{openid}"


def oa_event(created: int, openid: str, event_key: str, name: str) -> str:
    return f"oa:evt:{created}-{openid}-{event_key}-{name}"


def oa_delivery(channel: str, msg_id: str, openid: str) -> str:
    """A template's (``tpl``) or subscribe message's (``sub``) delivery report."""
    return f"oa:{channel}:{msg_id}-{openid}"


def wecom_event(created: int, sender: str, name: str, change: str) -> str:
    return f"wecom:{created}-{sender}-{name}-{change}"


def wecom_contact(created: int, customer: str, change: str, staff: str) -> str:
    return f"wecom:contact:{created}-{customer}-{change}-{staff}"


def wecom_chat(created: int, chat: str, change: str, detail: str) -> str:
    return f"wecom:chat:{created}-{chat}-{change}-{detail}"


def order_event(kind: str, *ids: str) -> str:
    """``orders:paid:<order>``, ``orders:refund:<order>:<refund>``, ``orders:redeem:<code>:<member>`` …"""
    return ":".join(("orders", kind, *ids))


def till_redeem(code: str, order_id: str, voids: int = 0) -> str:
    """A till's redemption of a coupon for an order: a retry of it is this event again (until a
    void gives the coupon back: the next redemption is a new event)."""
    return f"till:redeem:{code}:{order_id}" + (f":{voids}" if voids else "")


def till_void(code: str, order_id: str, voids: int) -> str:
    """A till's void of the coupon's redemption by an order (the coupon's ``voids`` before it)."""
    return f"till:void:{code}:{order_id}:{voids}"


def recall_event(day: str) -> str:
    return f"recall:{day}"


def erase_event(pseudonym: str) -> str:
    return f"erase#{pseudonym}"


# --- causes: coupons' cause keys and the outbox's message keys ---------------------------------


def welcome(member_id: str) -> str:
    return f"welcome#{member_id}"


def refollow(event_id: str) -> str:
    return f"refollow#{event_id}"


def rule_alert(version: str, duty: str) -> str:
    return f"alert#rule#{version}#{duty}"


def ops_alert(kind: str, about: str) -> str:
    """An ops alert of the sender (``budget`` of a month, a message ``failed`` or ``dead``)."""
    return f"alert#{kind}#{about}"


def robot_rate(key_tail: str) -> str:
    return f"robot#{key_tail}"


def tier_change(member_id: str, tier: str, day: str) -> str:
    return f"tier#{member_id}#{tier}#{day}"


def tier_keep(member_id: str, day: str) -> str:
    return f"tier-keep#{member_id}#{day}"


def tier_review(member_id: str, day: str) -> str:
    return f"tier-review#{member_id}#{day}"


def tier_warning(member_id: str, review_on: str) -> str:
    return f"tier-warning#{member_id}#{review_on}"


def invite_unlocked(member_id: str) -> str:
    return f"invite-unlocked#{member_id}"


def referral_reward(inviter: str, ordinal: int) -> str:
    return f"referral#{inviter}#{ordinal}"


def birthday_set(member_id: str, event_id: str) -> str:
    return f"birthday#{member_id}#{event_id}"


def member_ref(member_id: str) -> str:
    """What the till's ``member_ref`` is derived from (``codes.member_ref``): a person's, not an id's."""
    return f"member#{member_id}"


def birthday_benefit(member_id: str, year: int) -> str:
    return f"birthday#{member_id}#{year}"


def precision(member_id: str, category: str, period: str) -> str:
    return f"precision#{member_id}#{category}#{period}"


def helpers_month(group_id: str, month: str) -> str:
    return f"koc#{group_id}#{month}"


def helper(group_id: str, month: str, member_id: str) -> str:
    return f"koc#{group_id}#{month}#{member_id}"


def helper_out(group_id: str, month: str, member_id: str) -> str:
    return f"koc-out#{group_id}#{month}#{member_id}"


def ticket_message(ticket_id: str, step: str) -> str:
    return f"ticket#{ticket_id}#{step}"


# --- identity: which person a platform id is (chalicelib/identity), in the shared table ---------
LINK = "link#"
UNIONID = "unionid#"
MERGE = "merge#"
NO_MERGE = "nomerge#"
IDENTITY = "identity#"  # the outbox keys of identity work


def link(platform_id: str) -> tuple[str, str]:
    """The person a platform id (OA / mini-program openid, WeCom external id, POS code) belongs
    to, when it is not the person's own first id (which needs no link)."""
    return LINK + platform_id, "-"


def unionid_link(unionid: str) -> tuple[str, str]:
    """The person a WeChat UnionID belongs to: written once, on the id's absence."""
    return UNIONID + unionid, "-"


def merge_record(absorbed: str) -> tuple[str, str]:
    """The record of a merge, keyed by the person merged away (a person is merged away once)."""
    return MERGE + absorbed, "-"


def no_merge(one: str, other: str) -> tuple[str, str]:
    """Ops undid the link of these two persons: never merge them again on their own."""
    first, second = sorted((one, other))
    return f"{NO_MERGE}{first}#{second}", "-"


def identity_task(kind: str, subject: str) -> str:
    """The outbox key of a piece of identity work (``unionid#<id>``: learn the UnionID of a
    platform id; ``merge#<a>#<b>``: merge two persons): once per subject."""
    return f"{IDENTITY}{kind}#{subject}"


def merged_entry(sk: str, absorbed: str) -> str:
    """Where an absorbed person's ledger row lands when the survivor has the same key already."""
    return f"{sk}@{absorbed}"


# --- points (one partition per member) ---------------------------------------------------------
BALANCE = "balance"
ENTRY = "entry#"
ORDER = "order#"


def entry(cause_key: str) -> str:
    return ENTRY + cause_key


def order(order_id: str) -> str:
    return ORDER + order_id


def earn(order_id: str) -> str:
    return f"earn#{order_id}"


def refund(order_id: str, refund_id: str) -> str:
    return f"refund#{order_id}#{refund_id}"


def redeem_points(redemption_id: str) -> str:
    return f"redeem#{redemption_id}"


def checkin_points(day: str) -> str:
    return f"checkin#{day}"


def expiry(month: str) -> str:
    return f"expire#{month}"


def expiry_reminder(member_id: str, month: str) -> str:
    return f"points-expiry#{member_id}#{month}"


ERASE = "erase"  # the entry that forfeits an erased member's balance


def merge_points(absorbed: str, number: int) -> str:
    """The entry that brings a merged person's balance to the survivor (chalicelib/identity):
    one per merge (``number``: the how-many-th merge of the person; merged again after an undo
    is another merge)."""
    return f"merge#{absorbed}#{number}"


def unmerge_points(absorbed: str, at: datetime) -> str:
    """The entry that gives it back when ops undo the merge."""
    return f"unmerge#{absorbed}#{int(at.timestamp())}"


def referral_points(ordinal: int) -> str:
    return f"referral#{ordinal}"


# --- the points catalog (rules/catalog.json), in the loyalty table --------------------------------


def catalog_redemption(channel: str, *ids: str) -> str:
    """A catalog redemption: ``till:<store>:<redemption>`` or ``mp:<redemption>`` (the caller's id
    is unique in its own channel only). The event, the ledger entry and the coupon derive from it."""
    return ":".join((channel, *ids))


def catalog_event(redemption: str) -> str:
    return f"catalog:{redemption}"


def catalog_coupon(redemption: str) -> str:
    return f"catalog#{redemption}"


def catalog_stock(item_id: str, store_id: str | None) -> tuple[str, str]:
    """How many of an item were redeemed: chain-wide (``chain``) or at one store (``store#<id>``)."""
    return f"stock#{item_id}", f"store#{store_id}" if store_id else "chain"


def catalog_limit(member_id: str, item_id: str, month: str | None) -> tuple[str, str]:
    """How many of an item one member redeemed: in a local month (``<item>#2026-11``) or ever."""
    return f"redeemed#{member_id}", f"{item_id}#{month or 'ever'}"


# --- experiments (chalicelib/experiments) ------------------------------------------------------


def exposures(experiment: str) -> str:
    """The partition of an experiment's exposures: one record per member (sk: the member id),
    written once, with the arm and the time of the first exposure."""
    return f"experiment#{experiment}"


def experiment_event(experiment: str, member_id: str) -> str:
    """The cause of a member's exposure when no event causes it (a timer's, a test's)."""
    return f"experiment#{experiment}#{member_id}"


# --- metrics -----------------------------------------------------------------------------------
CHAIN = "chain"
TOTAL = "total"


def cohort(day: date | str) -> str:
    return f"cohort#{day if isinstance(day, str) else day.isoformat()}"


def active(day: str) -> str:
    """The partition of the markers of the members active on a local day."""
    return f"active#{day}"


# --- loyalty records ---------------------------------------------------------------------------


def checkins_of(member_id: str) -> str:
    return f"checkin#{member_id}"


def week_entrants(week: str) -> str:
    return f"checkins#{week}"


def lottery(week: str) -> str:
    return f"lottery#{week}"


DRAW = "draw"


def lottery_prize(week: str, member_id: str) -> str:
    return f"lottery#{week}#{member_id}"


def checkin_reply(member_id: str, day: str) -> str:
    return f"checkin#{member_id}#{day}"


def checkin_again(event_id: str) -> str:
    return f"checkin-again#{event_id}"


def member_code_reply(event_id: str) -> str:
    return f"member-code#{event_id}"


def checkin_badge(member_id: str) -> str:
    return f"checkin-badge#{member_id}"


def badge(member_id: str) -> str:
    return f"badge#{member_id}"


def invitee(member_id: str) -> str:
    return f"invitee#{member_id}"


def inviter(member_id: str) -> str:
    return f"inviter#{member_id}"


INVITE = "-"
COUNT = "count"


def agenda(day: date | str) -> str:
    return f"due#{day if isinstance(day, str) else day.isoformat()}"


def agenda_item(kind: str, member_id: str) -> str:
    return f"{kind}#{member_id}"


def birthdays(month: str) -> str:
    return f"birthdays#{month}"


def roster(group_id: str) -> str:
    return f"group#{group_id}"


def helpers(group_id: str) -> str:
    return f"koc#{group_id}"


CURSOR = "cursor"  # the loyalty timer's finished steps: ("cursor", <step>)


def loyalty_day(day: str, version: str) -> str:
    return f"day#{day}#{version}"


def agenda_step(day: str, kind: str) -> str:
    return f"due#{day}#{kind}"


def expiry_step(month: str) -> str:
    return f"expiry#{month}"


def expiry_reminder_step(month: str) -> str:
    return f"expiry-reminder#{month}"


def birthday_step(year: int, month: int) -> str:
    return f"birthday#{year}-{month:02d}"


def helpers_step(month: str) -> str:
    return f"koc#{month}"


# --- recall ------------------------------------------------------------------------------------


def recall_record(lapse: str, stage: str) -> str:
    return f"{lapse}#{stage}"


def recall_cause(member_id: str, record: str, cause: str = "recall") -> str:
    """The cause key of a recall (or challenge) decision: its coupon's code and its message key."""
    return f"{cause}#{member_id}#{record}"


def challenge_reward(cause_key: str) -> str:
    return f"{cause_key}#reward"


def recall_record_of(cause_key: str) -> str:
    """``recall#<member>#<lapse>#<stage>`` → ``<lapse>#<stage>``."""
    _, lapse, stage = cause_key.rsplit("#", 2)
    return f"{lapse}#{stage}"


# --- alerts ------------------------------------------------------------------------------------
ALERTS = "alerts"


def alert(check: str, scope: str) -> str:
    return f"{check}#{scope}"


def alert_message(alert_id: str, opened_at: datetime, step: str) -> str:
    return f"alert#{alert_id}#{opened_at:%Y%m%dT%H%M}#{step}"


def measured(day: str, version: str) -> str:
    return f"measured#{day}#{version}"


# --- the weekly digest -----------------------------------------------------------------------
DIGEST = "digest"


def digest_event(week: str) -> str:
    return f"digest#{week}"


def digest_message(week: str, part: str) -> str:
    return f"digest#{week}#{part}"


# --- shared ------------------------------------------------------------------------------------
COUNTERS = "count"
SWEEP = "sweep"


LOCK = "lock"
TOKEN = "token"


def force_refresh(app: str) -> str:
    return f"force_refresh#{app}"


def force_refresh_budget(app: str, day: str) -> str:
    return f"force_refresh#{app}#{day}"


def rate_slot(name: str, second: int) -> str:
    return f"{name}#{second}"


def group_slot(group_id: str, day: str, slot: str) -> str:
    return f"slot#{group_id}#{day}#{slot}"


def group_mass(group_id: str, day: str) -> str:
    """A customer group's company mass messages of one local day (WeCom allows one)."""
    return f"mass#{group_id}#{day}"


def calendar_push(group_id: str, day: str, slot: str) -> str:
    """The content calendar's push to one group in one slot of one day (chalicelib/campaigns)."""
    return f"calendar#{group_id}#{day}#{slot}"


def campaign_message(name: str, occurrence: str, recipient: str) -> str:
    """A campaign's message to one member or group for one occurrence of its schedule."""
    return f"campaign#{name}#{occurrence}#{recipient}"


def calendar_missing(store_id: str, day: str) -> str:
    """The alert, the day before, that a store's calendar slots of ``day`` have no content."""
    return f"calendar-missing#{store_id}#{day}"


def campaign_scope(name: str) -> str:
    """The counters of one campaign (Metric scope): queued per occurrence."""
    return f"campaign#{name}"


def same_kind(member_id: str, cause: str, day: str) -> str:
    return f"kind#{member_id}#{cause}#{day}"


def sent_in_week(member_id: str, week: str) -> str:
    return f"sent#{member_id}#{week}"


def promos_in_week(member_id: str, week: str) -> str:
    return f"promo#{member_id}#{week}"


def cap(member_id: str, category: str, period: str) -> str:
    return f"cap#{member_id}#{category}#{period}"


def budget(month: str) -> str:
    return f"budget#{month}"


def template_quota(day: str) -> str:
    return f"quota#template#{day}"


def custom_quota(member_id: str, window: str) -> str:
    return f"quota#custom#{member_id}#{window}"


def consent(member_id: str, template_id: str) -> str:
    """The subscribe-message consents a member gave a template and siyu has not used (one each)."""
    return f"consent#{member_id}#{template_id}"


def member_counter_prefixes(member_id: str) -> tuple[str, ...]:
    """The prefixes of every counter the sender keeps under a member's (or a group's) id."""
    m = member_id
    return (f"cap#{m}#", f"kind#{m}#", f"sent#{m}#", f"promo#{m}#", f"quota#custom#{m}#", f"slot#{m}#", f"mass#{m}#")


def reservation(message_key: str) -> str:
    return f"reserve#{message_key}"


def release(message_key: str) -> str:
    return f"release#{message_key}"


def sent(message_key: str) -> str:
    return f"sent#{message_key}"


def dropped(message_key: str) -> str:
    return f"dropped#{message_key}"


def mark_member(member_id: str, code: int) -> str:
    return f"mark#{member_id}#{code}"


def sweep_cursor(day: str, stage: str) -> str:
    return f"recall#{day}#{stage}"


def sweep_day(day: str) -> str:
    return f"sweep#recall#{day}"


# --- segments (chalicelib/segments) -------------------------------------------------------------
NO_STORE = "-"  # the store part of a membership row of a member siyu knows no store of
SEGMENTS_DAY = "segments"  # Shared(SWEEP, "segments"): the last local day whose full pass finished


def segment(name: str) -> str:
    """The partition of one segment's membership rows (LoyaltyRecord): one query lists it."""
    return f"segment#{name}"


def segment_member(store_id: str | None, member_id: str) -> str:
    """A membership row's sort key, store first: a store's members are one ``begins_with`` query."""
    return f"{store_id or NO_STORE}#{member_id}"


def segment_store_prefix(store_id: str | None) -> str:
    return f"{store_id or NO_STORE}#"


def segments_cursor(day: str) -> str:
    """Shared(SWEEP, …): where a day's full pass over the members stands."""
    return f"segments#{day}"


def segments_cause(member_id: str, seq: int) -> str:
    """The transaction's cause: the member's evaluation that moves them past ``seq``."""
    return f"segments#{member_id}#{seq}"


ERASED = "erased"  # Shared("erased", <subject>): an erase's tombstone (chalicelib/privacy/guard.py)


# --- the console's audit log (ConsoleAction) ---------------------------------------------------


def audit_month(at: datetime) -> str:
    """The audit log's partition: the UTC month of the change (``2026-11``)."""
    return f"{at.astimezone(UTC):%Y-%m}"


def audit_entry(at: datetime, token: str) -> str:
    """One change: its time, then a random token, so changes at the same instant both stay."""
    return f"{at.isoformat()}#{token}"
