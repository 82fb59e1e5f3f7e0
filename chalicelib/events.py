"""Normalized domain events: one type per meaning, whatever wire format brought it.

An ``Event`` is what the pipeline dedupes, stores, and hands to duties. ``event_id`` is the
deduplication key built from the source's own identity (docs/wechat.md §1.5): retries of one
delivery map to one id, distinct deliveries to distinct ids.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.clock import from_unix, to_unix
from chalicelib.errors import BadRequest

# These ids become DynamoDB keys: a partition key holds 2048 bytes (room is left for the
# prefixes duties add, e.g. ``refollow#``), a sort key 1024 (member ids are sort keys of two
# indexes; member and group ids are parts of many keys). WeChat's openids are 28 characters,
# WeCom's ids at most 64. Longer ids are malformed input, refused before anything is written.
MAX_EVENT_ID_BYTES = 1536
MAX_ID_BYTES = 128

# What a platform id may contain: OA and mini-program openids and WeCom external ids are
# base64url-like, WeCom staff ids letters, digits and "_-@." (docs/wechat.md §1.7); the order
# webhook's ids add ":". Never "/": siyu's own recipients (the staff robots) live there.
ID_PATTERN = re.compile(r"[A-Za-z0-9_\-.@:]+")
ID_RULE = f"1 to {MAX_ID_BYTES} letters, digits or _ - . @ :"
ROBOT = "robot/"


def robot_recipient(name: str) -> str:
    """The outbox recipient of a staff group's WeCom robot (``ops``, a store id): no platform
    id can name it, so no member can read, receive or erase a robot's messages."""
    return ROBOT + name


def robot_of(recipient: str) -> str | None:
    """The robot's name of a robot recipient, else None."""
    return recipient[len(ROBOT) :] if recipient.startswith(ROBOT) else None


def is_platform_id(value: str) -> bool:
    return len(value) <= MAX_ID_BYTES and ID_PATTERN.fullmatch(value) is not None


class Kind(enum.StrEnum):
    FOLLOWED = "followed"
    UNFOLLOWED = "unfollowed"
    SCANNED = "scanned"
    CLICKED = "clicked"
    VIEWED = "viewed"
    MESSAGED = "messaged"
    LOCATED = "located"
    TEMPLATE_DELIVERY = "template_delivery"
    SUBSCRIBE_CONSENT = "subscribe_consent"
    CONTACT_ADDED = "contact_added"
    CONTACT_REMOVED = "contact_removed"
    JOINED_GROUP = "joined_group"
    LEFT_GROUP = "left_group"
    GROUP_CHANGED = "group_changed"
    ORDER_PAID = "order_paid"
    ORDER_REFUNDED = "order_refunded"
    COUPON_REDEEMED = "coupon_redeemed"
    COUPON_VOIDED = "coupon_voided"  # a till voids a redemption (cancelled order)
    REVIEWED = "reviewed"
    NPS_ANSWERED = "nps_answered"
    UNKNOWN = "unknown"
    # loyalty (issue 7), from the order webhook (mini program / POS)
    POINTS_REDEEMED = "points_redeemed"
    CHECKED_IN = "checked_in"
    PROFILE_UPDATED = "profile_updated"


# Kinds that show the member doing something (they move "last active").
ACTIVITY = frozenset(
    {
        Kind.FOLLOWED,
        Kind.SCANNED,
        Kind.CLICKED,
        Kind.VIEWED,
        Kind.MESSAGED,
        Kind.CONTACT_ADDED,
        Kind.JOINED_GROUP,
        Kind.ORDER_PAID,
        Kind.COUPON_REDEEMED,
        Kind.REVIEWED,
        Kind.NPS_ANSWERED,
        Kind.POINTS_REDEEMED,
        Kind.CHECKED_IN,
    }
)


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Event:
    kind: Kind
    event_id: str
    source: str  # "oa" | "wecom" | "orders"
    occurred_at: datetime
    member_id: str | None = None
    store_id: str | None = None
    channel: str | None = None
    inviter: str | None = None
    group_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # The platform id the event came with, when the person it belongs to has another id (their
    # first): ``member_id`` is the person (chalicelib/identity/resolve.py).
    via: str | None = None

    @property
    def platform_id(self) -> str | None:
        """The id this event's member has on its platform (what a message on it is sent to)."""
        return self.via or self.member_id

    def __post_init__(self) -> None:
        if _size(self.event_id) > MAX_EVENT_ID_BYTES:
            raise BadRequest(f"event id longer than {MAX_EVENT_ID_BYTES} bytes")
        named = (
            ("member id", self.member_id),
            ("group id", self.group_id),
            ("inviter", self.inviter),
            ("via", self.via),
        )
        for name, value in named:
            if value and not is_platform_id(value):
                raise BadRequest(f"{name} must be {ID_RULE}")

    def to_json(self) -> str:
        raw = asdict(self)
        raw["kind"] = self.kind.value
        raw["occurred_at"] = to_unix(self.occurred_at)
        return json.dumps(raw, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Event:
        raw = json.loads(text)
        raw["kind"] = Kind(raw["kind"])
        raw["occurred_at"] = from_unix(raw["occurred_at"])
        return cls(**raw)
