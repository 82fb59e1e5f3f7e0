"""A campaign's member audience: a segment's members per store (``chalicelib.segments.read``,
membership records a timer keeps, never a scan at send time), in the campaign's scope."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from chalicelib.rules.models import Campaign, StoresRule
from chalicelib.rules.scope import in_scope

Finder = Callable[[str, str], Iterable[str]]  # (segment, store id) -> member ids


def segment_members(segment: str, store_id: str) -> list[str]:
    from chalicelib.segments import read

    return list(read.members_of(segment, store_id))


def stores_of(campaign: Campaign, stores: StoresRule) -> list[str]:
    return [s.id for s in stores.stores if not campaign.pilot_stores or s.id in campaign.pilot_stores]


def in_campaign(campaign: Campaign, member_id: str, store_id: str, at: datetime) -> bool:
    """In the campaign's window, pilot stores and rollout (a stable hash of campaign and member)."""
    return in_scope(campaign, f"campaign:{campaign.name}", member_id, store_id, at)


def audience(campaign: Campaign, stores: StoresRule, at: datetime, find: Finder) -> dict[str, list[str]]:
    """Per store, the members a segment campaign reaches at ``at``: in the segment, in its rollout
    (a stable hash of campaign and member, chalicelib/rules/scope.py), each once."""
    segment = campaign.audience.segment
    if segment is None:
        return {}
    seen: set[str] = set()
    reach: dict[str, list[str]] = {}
    for store_id in stores_of(campaign, stores):
        chosen = []
        for member_id in find(segment, store_id):
            if member_id not in seen and in_campaign(campaign, member_id, store_id, at):
                seen.add(member_id)
                chosen.append(member_id)
        reach[store_id] = chosen
    return reach
