"""When a message may go out: pure decisions on the messaging rules, in the store's time zone.

- an offer that has ended is dropped, with the reason;
- a member who unfollowed or blocked the account gets nothing on official-account channels;
- alerts for ops go out at any hour; everything else waits out the quiet hours;
- promotions also wait out the promotion-free hours (business hours, docs/domain.md);
- a held message is released at the end of its window plus a stable offset within the spread
  window, so a night's backlog goes out over an hour instead of in one burst.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from chalicelib.rules.models import GroupSlot, MessagingRule, Window

OA_CHANNELS = frozenset({"template", "subscribe", "custom", "miniprogram_subscribe"})


@dataclass(frozen=True)
class Verdict:
    action: Literal["send", "defer", "drop"]
    reason: str = ""
    until: datetime | None = None


def spread_offset(key: str, minutes: int) -> timedelta:
    if minutes <= 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return timedelta(seconds=digest % (minutes * 60))


def window_end_after(window: Window, local: datetime) -> datetime:
    """The first end of ``window`` after the local time ``local`` (which lies inside it)."""
    _, end = window.minutes()
    candidate = datetime.combine(local.date(), time(end // 60, end % 60), local.tzinfo)
    return candidate if candidate > local else candidate + timedelta(days=1)


def _inside(window: Window | None, local: datetime) -> bool:
    return window is not None and window.contains(local.hour * 60 + local.minute)


def judge(
    *,
    key: str,
    category: str,
    channel: str,
    now: datetime,
    zone: ZoneInfo,
    rules: MessagingRule,
    expires_at: datetime | None,
    subscribed: bool | None,
    blocked: bool,
) -> Verdict:
    if expires_at is not None and now >= expires_at:
        return Verdict("drop", "expired: the offer ended before the message could go out")
    if channel in OA_CHANNELS and (subscribed is False or blocked):
        return Verdict("drop", "blocked the account" if blocked else "no longer follows the account")
    if category == "alert" or channel == "wecom_group":  # groups have their own slots
        return Verdict("send")
    local = now.astimezone(zone)
    for _ in range(3):  # leaving one window may land in the other
        held_by = rules.quiet_hours if _inside(rules.quiet_hours, local) else None
        if held_by is None and category == "promo" and _inside(rules.promo_banned_hours, local):
            held_by = rules.promo_banned_hours
        if held_by is None:
            break
        local = window_end_after(held_by, local)
    if local == now.astimezone(zone):
        return Verdict("send")
    until = local + spread_offset(key, rules.release_spread_minutes)
    if expires_at is not None and until >= expires_at:
        return Verdict("drop", "expired: the offer ends before the quiet hours do")
    reason = "quiet hours" if _inside(rules.quiet_hours, now.astimezone(zone)) else "no promotions in business hours"
    return Verdict("defer", reason, until.astimezone(now.tzinfo))


def backoff(attempt: int, base_seconds: int, max_seconds: int, jitter: float) -> timedelta:
    """Exponential backoff with jitter: ``jitter`` in [0, 1) scales between half and full delay."""
    delay = min(max_seconds, base_seconds * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=delay * (0.5 + jitter / 2))


def cap_periods(now: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """The member's local day and ISO week, the periods caps count in."""
    local = now.astimezone(zone)
    year, week, _ = local.isocalendar()
    return local.strftime("%Y-%m-%d"), f"{year}-W{week:02d}"


def next_local_day(now: datetime, zone: ZoneInfo, after: Window) -> datetime:
    """Tomorrow, at the end of the quiet hours, in ``zone``."""
    local = now.astimezone(zone)
    _, end = after.minutes()
    return datetime.combine(local.date() + timedelta(days=1), time(end // 60, end % 60), zone)


def group_slot(slots: list[GroupSlot], now: datetime, zone: ZoneInfo) -> tuple[GroupSlot | None, datetime]:
    """The slot ``now`` lies in (and its local day), or None and the start of the next slot."""
    local = now.astimezone(zone)
    for slot in slots:
        if _inside(slot, local):
            start, _ = slot.minutes()
            day = local if local.hour * 60 + local.minute >= start else local - timedelta(days=1)
            return slot, day
    starts = []
    for slot in slots:
        start, _ = slot.minutes()
        candidate = datetime.combine(local.date(), time(start // 60, start % 60), zone)
        starts.append(candidate if candidate > local else candidate + timedelta(days=1))
    return None, min(starts)
