"""Birthday month (生日月礼遇): a member whose birthday is known (the questionnaire or the member
profile, ``profile_updated`` on the order webhook) gets their tier's ``birthday_coupon`` in
their birthday month, once a year (docs/domain.md, "Loyalty").

The loyalty timer grants the month's benefits on the first day of each month (members are
found on the ``birthdays#<MM>`` index written here); a birthday entered during its own month
is granted at once. The coupon's code is derived from ``birthday#<member>#<year>``: once a
year, whatever the retries, and even if the member edits their birthday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib import offers
from chalicelib.calendars import chinese_date, local_day
from chalicelib.events import Event, Kind
from chalicelib.facts import Snapshot
from chalicelib.plans import Instruction, QueueMessage, RecordOnce, UpdateLoyalty, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.scope import in_scope
from chalicelib.rules.texts import fill
from chalicelib.settings import Settings
from chalicelib.state.models import Member
from chalicelib.store import keys

TRIGGERS = frozenset({Kind.PROFILE_UPDATED})
CAUSE = "birthday"


@dataclass(frozen=True)
class Facts:
    event: Event
    member_id: str
    home_store: str | None
    tier: str | None
    secret: str


def gather(event: Event, member: Member | None, reads: Snapshot, settings: Settings) -> Facts | None:
    if member is None or event.member_id is None or not event.data.get("birthday"):
        return None
    return Facts(event, event.member_id, member.store_id or event.store_id, member.tier, settings.coupon_secret)


def decide(facts: Facts, rules: RuleSet, now: datetime) -> list[Instruction]:
    event = facts.event
    month_day = str(event.data["birthday"])[-5:]  # MM-DD (a year, if given, is not kept)
    plan: list[Instruction] = [
        UpdateLoyalty(
            key=keys.birthday_set(facts.member_id, event.event_id), member_id=facts.member_id, birthday=month_day
        ),
        RecordOnce(
            pk=keys.birthdays(month_day[:2]),
            sk=facts.member_id,
            member_id=facts.member_id,
            event_id=event.event_id,
            rules_version=rules.version,
            at=now,
        ),
    ]
    today = local_day(now, rules.stores.zone_of(facts.home_store))
    if month_day[:2] == f"{today.month:02d}":
        plan += benefit(facts.member_id, facts.tier, facts.home_store, now, rules, facts.secret, event.event_id)
    return plan


def benefit(
    member_id: str, tier: str | None, home_store: str | None, now: datetime, rules: RuleSet, secret: str, event_id: str
) -> list[Instruction]:
    """The tier's birthday coupon and its message, once in the (store-local) year of ``now``."""
    rule = rules.loyalty
    spec = rule.tier(tier).birthday_coupon
    if not rule.birthday.enabled or spec is None or not in_scope(rule, "loyalty", member_id, home_store, now):
        return []
    zone = rules.stores.zone_of(home_store)
    today = local_day(now, zone)
    cause_key = keys.birthday_benefit(member_id, today.year)
    issued = offers.coupon(spec, member_id, CAUSE, cause_key, event_id, rules.version, today, zone, home_store, secret)
    words = {
        "tier": rule.tier(tier).name,
        "name": rule.tier(tier).name,
        "title": spec.title,
        "value": offers.yuan(issued.value_fen),
        "benefit": offers.benefit(issued),
        "code": issued.code,
        "expires": chinese_date(local_day(issued.expires_at, zone)),
    }
    text = fill(rule.birthday.text, **words)
    message = QueueMessage(
        message_key=cause_key,
        member_id=member_id,
        channel="custom",
        category="service",
        text=text,
        cause=CAUSE,
        event_id=event_id,
        rules_version=rules.version,
        when=new(issued),
        store_id=home_store,
        expires_at=issued.expires_at,
        payload=words,
    )
    return [issued, message]
