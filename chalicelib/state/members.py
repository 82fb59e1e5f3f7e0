"""What one event says about its member: the ``TouchMember`` instruction of its plan, and the
member as they will be once it is written (what the duties decide on). Pure."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo

from chalicelib import plans
from chalicelib.clock import SHANGHAI
from chalicelib.events import ACTIVITY, Event, Kind
from chalicelib.state.models import Member

DEFAULT_WINDOWS = {"message": timedelta(hours=48)}  # a rule set from before the windows were rules
WINDOW_ACTIONS = {Kind.MESSAGED: "message", Kind.FOLLOWED: "follow", Kind.CLICKED: "click", Kind.SCANNED: "scan"}
# The sources whose member id is the member's own id there (a till names the coupon's holder)
PLATFORMS = frozenset({"oa", "wecom", "orders"})


def local_day(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).date().isoformat()


def touch(
    event: Event,
    before: Member | None,
    now: datetime,
    zone: tzinfo = SHANGHAI,
    windows: Mapping[str, timedelta] = DEFAULT_WINDOWS,
) -> plans.TouchMember | None:
    """First seen, last active forward-only with its local day in the chain's ``zone`` (the key of
    the recall sweep's index), first-touch attribution (store, channel, inviter), subscription,
    group membership, order days. None for an event that names no member."""
    if not event.member_id:
        return None
    at = event.occurred_at
    previous = before.last_active if before is not None else None
    moves = event.kind in ACTIVITY and (previous is None or previous <= at)
    inviter = event.inviter if event.inviter and event.inviter != event.member_id else None
    window, action = _window(event, before, windows)
    return plans.TouchMember(
        member_id=event.member_id,
        at=at,
        now=now,
        source=event.source,
        existed=before is not None,
        store_id=event.store_id,
        channel=event.channel,
        inviter=inviter,
        last_active=at if moves else None,
        active_day=local_day(at, zone) if moves else None,
        previous_active=previous,
        service_window_until=window,
        service_window_action=action,
        subscribed="yes" if event.kind is Kind.FOLLOWED else "no" if event.kind is Kind.UNFOLLOWED else None,
        add_group=event.group_id if event.group_id and event.kind is Kind.JOINED_GROUP else None,
        remove_group=event.group_id if event.group_id and event.kind is Kind.LEFT_GROUP else None,
        order_day=local_day(at, zone) if event.kind is Kind.ORDER_PAID else None,
        platform=f"{event.source}/{event.platform_id}" if event.source in PLATFORMS else None,
        unionid=str(event.data["unionid"]) if event.data.get("unionid") else None,
    )


def _window(
    event: Event, before: Member | None, windows: Mapping[str, timedelta]
) -> tuple[datetime | None, str | None]:
    """The customer-service window the member's action opens (docs/wechat.md §3.5: its length by
    action from messaging.json ``service_windows``), when it ends later than the one already open."""
    action = WINDOW_ACTIONS.get(event.kind) if event.source == "oa" else None
    if action is None or action not in windows:
        return None, None
    until = event.occurred_at + windows[action]
    current = before.service_window_until if before is not None else None
    if current is not None and current >= until:
        return None, None
    return until, action


def after(before: Member | None, touch_: plans.TouchMember) -> Member:
    """The member as stored once ``touch_`` is written (the same rules as the update's actions)."""
    member = copy.deepcopy(before) if before is not None else Member(touch_.member_id)
    member.first_seen = member.first_seen or touch_.at
    member.origin = member.origin or touch_.source
    member.updated_at = touch_.now
    member.store_id = member.store_id or touch_.store_id
    member.channel = member.channel or touch_.channel
    member.inviter = member.inviter or touch_.inviter
    if touch_.last_active is not None:
        member.last_active, member.active_day = touch_.last_active, touch_.active_day
    if touch_.service_window_until is not None:
        member.service_window_until = touch_.service_window_until
        member.service_window_action = touch_.service_window_action
    if touch_.subscribed is not None:
        member.subscribed = touch_.subscribed
        if touch_.subscribed == "yes":
            member.subscribed_at = touch_.at
        else:
            member.unsubscribed_at = touch_.at
    if touch_.add_group:
        member.groups = (member.groups or set()) | {touch_.add_group}
    if touch_.remove_group:
        member.groups = (member.groups or set()) - {touch_.remove_group} or None
    if touch_.order_day:
        member.order_days = (member.order_days or set()) | {touch_.order_day}
    if touch_.platform:
        member.ids = (member.ids or set()) | {touch_.platform}
    member.unionid = member.unionid or touch_.unionid
    return member


def platform_ids(member: Member) -> set[str]:
    """Every platform id of the person (``ids`` holds ``<source>/<id>``; their own first id too)."""
    return {i.split("/", 1)[1] for i in member.ids or () if "/" in i} | {member.member_id}
