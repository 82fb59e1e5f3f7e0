"""Member updates: one conditional UpdateItem per event, idempotent under retries."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from pynamodb.exceptions import UpdateError

from chalicelib.clock import SHANGHAI
from chalicelib.events import ACTIVITY, Event, Kind
from chalicelib.state.conditions import is_condition_failure
from chalicelib.state.models import Member

SERVICE_WINDOW = timedelta(hours=48)


def touch(event: Event, now: datetime, zone: tzinfo = SHANGHAI) -> Member | None:
    """Apply what the event says about its member: first seen, last active, first-touch
    attribution (store, channel, inviter), subscription, group membership, order days.

    Every action is idempotent (set / if_not_exists / set add / set delete), so a retried event
    leaves the member as one delivery would. ``last_active`` only moves forward: an event that
    arrives late does not move it back; ``active_day`` (its local day in the chain's ``zone``)
    moves with it and is what the recall sweep's index is keyed by. Returns the member as
    stored after the update.
    """
    if not event.member_id:
        return None
    member = Member(event.member_id)
    actions = _actions(event, now, zone)
    if event.kind in ACTIVITY:
        moves_forward = Member.last_active.does_not_exist() | (Member.last_active <= event.occurred_at)
        active = [Member.last_active.set(event.occurred_at), Member.active_day.set(local_day(event.occurred_at, zone))]
        try:
            member.update(actions=[*actions, *active], condition=moves_forward)
            return member
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise
    member.update(actions=actions)
    return member


def exists(member_id: str) -> bool:
    try:
        Member.get(member_id, attributes_to_get=["member_id"])
    except Member.DoesNotExist:
        return False
    return True


def local_day(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).date().isoformat()


def _actions(event: Event, now: datetime, zone: tzinfo) -> list:
    actions = [
        Member.first_seen.set(Member.first_seen | event.occurred_at),
        Member.origin.set(Member.origin | event.source),
        Member.updated_at.set(now),
    ]
    if event.store_id:
        actions.append(Member.store_id.set(Member.store_id | event.store_id))
    if event.channel:
        actions.append(Member.channel.set(Member.channel | event.channel))
    if event.inviter and event.inviter != event.member_id:
        actions.append(Member.inviter.set(Member.inviter | event.inviter))
    if event.kind is Kind.MESSAGED:  # opens the customer-service window (docs/wechat.md §3.5)
        actions.append(Member.service_window_until.set(event.occurred_at + SERVICE_WINDOW))
    if event.kind is Kind.FOLLOWED:
        actions += [Member.subscribed.set("yes"), Member.subscribed_at.set(event.occurred_at)]
    elif event.kind is Kind.UNFOLLOWED:
        actions += [Member.subscribed.set("no"), Member.unsubscribed_at.set(event.occurred_at)]
    if event.group_id and event.kind is Kind.JOINED_GROUP:
        actions.append(Member.groups.add({event.group_id}))
    elif event.group_id and event.kind is Kind.LEFT_GROUP:
        actions.append(Member.groups.delete({event.group_id}))
    if event.kind is Kind.ORDER_PAID:
        actions.append(Member.order_days.add({local_day(event.occurred_at, zone)}))
    return actions
