"""The campaigns timer (``run_campaigns``, every 15 minutes): records what the groups and the
members get, each once, as scheduled outbox messages; the sender delivers them at their time
through every rule of the outbox (slots, caps, quiet hours, quotas, budget, the group's one mass
message a day: docs/wechat.md §4.5).

- Calendar pushes of the next 24 hours: one per group per slot per day, keyed
  ``calendar#<group>#<day>#<slot>`` (written on the key's absence), so parallel or repeated runs
  record one. ``wecom_group`` slots: a mass message to the group (add_msg_template to the group
  owner, who confirms); ``staff_post`` slots: the text to the store staff's robot for the group's
  operator to post (docs/rules.md, "The content calendar").
- The day before, at ``missing_alert_at`` store time: one alert to the store's robot naming each
  slot of tomorrow that has no content.
- Campaigns scheduled ``at`` a time or ``weekly``: from half an hour before their time, one
  message per group or per segment member per occurrence (``campaign#<name>#<occurrence>#<who>``),
  with a record of each member message for the report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from chalicelib import executor
from chalicelib.campaigns import calendar, content, members
from chalicelib.campaigns.calendar import Push
from chalicelib.experiments import assign, exposure
from chalicelib.logs import log
from chalicelib.plans import Instruction, QueueMessage, RecordOnce, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import WEEKDAYS, Campaign
from chalicelib.rules.texts import fill_known
from chalicelib.runtime import Context
from chalicelib.store import keys

AHEAD = timedelta(hours=24)  # calendar pushes are recorded up to a day before their time
LATE = timedelta(hours=1)  # and still after it, while the slot lasts (the sender expires it at its end)
LEAD = timedelta(minutes=30)  # a campaign's audience is read this long before its time
CAUSE = "calendar"
Arm = Callable[[Campaign, str, str], str | None]  # (campaign, member id, her store) -> experiment arm


@dataclass
class Run:
    pushes: int = 0
    missing: int = 0
    alerts: int = 0
    campaign_messages: int = 0
    queued: list[str] = field(default_factory=list)  # to hand to the queue now (alerts)


def run(ctx: Context, find: members.Finder | None = None, arm: Arm | None = None) -> Run:
    rules, now = ctx.rules(), ctx.clock.now()
    result = Run()
    for push in due_pushes(rules, now):
        said = content.content_for(rules.campaigns, push)
        message = push_message(rules, push, said)
        if message is None:
            result.missing += 1
            continue
        result.pushes += _record([message], message.message_key, now).kept(message)
    for alert in missing_alerts(rules, now):
        applied = _record([alert], alert.message_key, now)
        result.alerts += applied.kept(alert)
        result.queued += applied.messages
    for campaign, occurrence, at in due_campaigns(rules, now):
        result.campaign_messages += _campaign(rules, campaign, occurrence, at, now, find, arm)
    log(
        "campaigns.run",
        pushes=result.pushes,
        missing=result.missing,
        alerts=result.alerts,
        campaign_messages=result.campaign_messages,
    )
    return result


def _record(plan: list[Instruction], cause: str, now: datetime) -> executor.Applied:
    return executor.execute(plan, cause, now)


def due_pushes(rules: RuleSet, now: datetime) -> list[Push]:
    """The calendar pushes whose time lies within the next 24 hours (or passed less than an hour ago)."""
    days = sorted(
        {
            (now + timedelta(days=n)).astimezone(rules.stores.zone_of(s.id)).date()
            for s in rules.stores.stores
            for n in (-1, 0, 1)
        }
    )
    return [p for day in days for p in calendar.pushes_on(rules, day) if now - LATE <= p.at <= now + AHEAD]


def slot_end(rules: RuleSet, push: Push) -> datetime:
    """The end of the messaging.json group slot the push is in: the sender drops it after that."""
    window = next((s for s in rules.messaging.group_slots if s.name == push.slot.name), None)
    if window is None:
        return push.at + LATE
    end = calendar.local_at(push.day, window.end, rules.stores.zone_of(push.store_id))
    return end if end > push.at else end + timedelta(days=1)


def push_message(rules: RuleSet, push: Push, said: content.Content | None) -> QueueMessage | None:
    """The outbox message of one calendar push (None: no content, or a group without an owner)."""
    if said is None:
        return None
    key = keys.calendar_push(push.group_id, push.day.isoformat(), push.slot.name)
    at, ends = push.at.astimezone(UTC), slot_end(rules, push).astimezone(UTC)
    if push.slot.channel == "wecom_group":
        owner = rules.campaigns.calendar.owners.get(push.group_id)
        if owner is None:
            log("campaigns.no_owner", group=push.group_id)
            return None
        return QueueMessage(
            message_key=key,
            member_id=push.group_id,
            channel="wecom_group",
            category="promo",
            text=said.message,
            cause=CAUSE,
            event_id=key,
            rules_version=rules.version,
            payload={"sender": owner, "source": said.source},
            store_id=push.store_id,
            not_before=at,
            expires_at=ends,
        )
    words = {
        "slot": _title(rules, push),
        "store": rules.stores.label_of(push.store_id),
        "group": push.group_id,
        "at": push.slot.at,
        "text": said.message,
    }
    staff = QueueMessage.to_robot(
        key,
        push.store_id,
        [fill_known(rules.campaigns.calendar.staff_text, words)],
        CAUSE,
        rules.version,
        push.store_id,
    )
    return dataclasses.replace(staff, payload={"robot": "text"}, not_before=at, expires_at=ends)


def _title(rules: RuleSet, push: Push) -> str:
    titles = rules.campaigns.calendar.theme_titles
    return push.holiday or titles.get(push.theme, push.theme)


def missing_alerts(rules: RuleSet, now: datetime) -> list[QueueMessage]:
    """From ``missing_alert_at`` (store time) on, one alert per store naming tomorrow's slots with no
    content (its key: store and day, so it is sent once)."""
    rule = rules.campaigns
    if not (rule.enabled and rule.calendar.enabled):
        return []
    alerts = []
    for store in rules.stores.stores:
        local = now.astimezone(rules.stores.zone_of(store.id))
        if f"{local:%H:%M}" < rule.calendar.missing_alert_at:
            continue
        tomorrow = local.date() + timedelta(days=1)
        lines = [
            _missing_line(rules, p)
            for p in calendar.pushes_on(rules, tomorrow, store.id)
            if content.content_for(rule, p) is None
        ]
        if lines:
            key = keys.calendar_missing(store.id, tomorrow.isoformat())
            alerts.append(QueueMessage.to_robot(key, store.id, lines, CAUSE, rules.version, store.id))
    return alerts


def _missing_line(rules: RuleSet, push: Push) -> str:
    words = {
        "store": rules.stores.label_of(push.store_id),
        "day": push.day.isoformat(),
        "slot": f"{push.slot.at} 群{push.group_id}",
        "theme": _title(rules, push),
    }
    return fill_known(rules.campaigns.calendar.missing_text, words)


# --- campaigns with their own schedule --------------------------------------------------------------


def occurrences(campaign: Campaign, rules: RuleSet, now: datetime) -> Iterator[tuple[str, datetime]]:
    """The campaign's occurrences around ``now``: (its id, its time). A calendar-slot campaign has
    none of its own: it takes the calendar's push (``content.slot_campaign``)."""
    schedule = campaign.schedule
    if schedule.at is not None:
        yield f"{schedule.at.astimezone(UTC):%Y%m%dT%H%M}", schedule.at
    elif schedule.weekly is not None:
        zone = rules.stores.zone_of(None)
        today = now.astimezone(zone).date()
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            if WEEKDAYS[day.weekday()] == schedule.weekly.weekday:
                yield day.isoformat(), calendar.local_at(day, schedule.weekly.at, zone)


def due_campaigns(rules: RuleSet, now: datetime) -> list[tuple[Campaign, str, datetime]]:
    if not rules.campaigns.enabled:
        return []
    return [
        (campaign, occurrence, at)
        for campaign in rules.campaigns.campaigns
        for occurrence, at in occurrences(campaign, rules, now)
        if at - LEAD <= now < at + LATE and campaign.active_at(at)
    ]


def _campaign(
    rules: RuleSet,
    campaign: Campaign,
    occurrence: str,
    at: datetime,
    now: datetime,
    find: members.Finder | None,
    arm: Arm | None,
) -> int:
    """One occurrence's messages, each recorded once. Under the experiment that tests the campaign
    (experiments.json names it), each segment member's exposure is recorded with her message, and a
    member of the holdout gets her exposure alone (chalicelib/experiments/exposure.py, gate)."""
    experiment = exposure.experiment_of(rules, campaign.name) if campaign.audience.segment is not None else None
    if experiment is not None and arm is None:
        arm = _arms(rules, experiment, now)
    created = 0
    for message in campaign_messages(rules, campaign, occurrence, at, now, find or members.segment_members, arm):
        plan: list[Instruction] = [message]
        if campaign.audience.segment is not None:
            plan.append(_ledger(campaign, occurrence, message, now))
        _, plan = exposure.gate(rules, experiment, message.member_id, now, plan, message.event_id, message.store_id)
        created += _record(plan, message.message_key, now).kept(message)
    return created


def _arms(rules: RuleSet, experiment: str, now: datetime) -> Arm:
    def arm(_campaign: Campaign, member_id: str, store_id: str) -> str | None:
        return assign.arm_of(rules, experiment, member_id, now, store_id)  # as exposure.gate decides

    return arm


def _ledger(campaign: Campaign, occurrence: str, message: QueueMessage, now: datetime) -> RecordOnce:
    """The report's record of one member message of a campaign (erased with the member)."""
    return RecordOnce(
        pk=keys.campaign_scope(campaign.name),
        sk=f"{occurrence}#{message.member_id}",
        member_id=message.member_id,
        event_id=message.event_id,
        rules_version=message.rules_version,
        at=now,
        value=message.message_key,
        when=new(message),
    )


def campaign_messages(
    rules: RuleSet,
    campaign: Campaign,
    occurrence: str,
    at: datetime,
    now: datetime,
    find: members.Finder,
    arm: Arm | None = None,
) -> list[QueueMessage]:
    """One occurrence's messages: to each group (a mass message via its owner), or to each member
    of the segment in the campaign's scope (the kind's channel plan, a promotion)."""
    event = f"campaign:{campaign.name}:{occurrence}"
    held = at.astimezone(UTC) if at > now else None  # scheduled; sent at once when its time has come
    out = []
    if campaign.audience.groups is not None:
        for store_id, group in groups_of(rules, campaign):
            owner = rules.campaigns.calendar.owners.get(group)
            text = content.campaign_text(campaign, store_id)  # a group campaign is never under test
            key = keys.campaign_message(campaign.name, occurrence, group)
            out.append(
                QueueMessage(
                    message_key=key,
                    member_id=group,
                    channel="wecom_group",
                    category="promo",
                    text=_with_link(text, campaign.link),
                    cause=campaign.kind,
                    event_id=event,
                    rules_version=rules.version,
                    payload={"sender": owner} if owner else {},
                    store_id=store_id,
                    not_before=held,
                    expires_at=at + timedelta(days=1),
                )
            )
        return out
    for store_id, ids in members.audience(campaign, rules.stores, at, find).items():
        for member_id in ids:
            picked = arm(campaign, member_id, store_id) if arm else None
            key = keys.campaign_message(campaign.name, occurrence, member_id)
            words = {"title": campaign.title, **({"link": campaign.link} if campaign.link else {})}
            out.append(
                QueueMessage(
                    message_key=key,
                    member_id=member_id,
                    channel="custom",
                    category="promo",
                    text=_with_link(content.campaign_text(campaign, store_id, picked), campaign.link),
                    cause=campaign.kind,
                    event_id=event,
                    rules_version=rules.version,
                    payload=words,
                    store_id=store_id,
                    not_before=held,
                    expires_at=at + timedelta(days=1),
                )
            )
    return out


def _with_link(text: str, link: str | None) -> str:
    return f"{text}\n{link}" if link else text


def groups_of(rules: RuleSet, campaign: Campaign) -> list[tuple[str, str]]:
    wanted = campaign.audience.groups
    return [
        (store.id, group)
        for store in rules.stores.stores
        if not campaign.pilot_stores or store.id in campaign.pilot_stores
        for group in store.groups
        if wanted == "all" or group in (wanted or [])
    ]


def week_days(day: date) -> list[date]:
    return calendar.week_of(day)
