"""Group members still silent after the intercept (003 §3.1): listed for ops, never removed.

A group stage (``audience: group_members``) sends silent members an old-member offer first.
Those intercepted at least ``silent_grace_days`` ago (and within the attribution window) who
have not been active since are the candidates ops may remove by hand. siyu removes nobody:
WeCom offers no API to remove an external contact from a customer group, and a removal is a
decision a person should make with the list in front of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.recall.report import records
from chalicelib.rules.loader import RuleSet
from chalicelib.state.models import Member


@dataclass(frozen=True)
class Silent:
    member_id: str
    store_id: str | None
    groups: tuple[str, ...]
    stage: str
    intercepted_at: datetime


def silent_members(rules: RuleSet, now: datetime) -> list[Silent]:
    rule = rules.recall
    stages = {s.name for s in rule.stages if s.audience == "group_members"}
    if not stages:
        return []
    today = now.astimezone(ZoneInfo(rules.stores.default_timezone)).date()
    since = today - timedelta(days=rule.attribution_days)
    until = today - timedelta(days=rule.silent_grace_days)
    found: list[Silent] = []
    for record in records(since, until):
        if record.stage not in stages or record.arm != "treated" or record.returned_at is not None:
            continue
        try:
            member = Member.get(record.member_id)
        except Member.DoesNotExist:
            continue
        if not member.groups or (member.last_active and member.last_active > record.created_at):
            continue  # left the groups, or active again after the window closed
        found.append(
            Silent(member.member_id, record.store_id, tuple(sorted(member.groups)), record.stage, record.created_at)
        )
    return found
