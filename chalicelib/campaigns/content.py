"""What a calendar push says: ``content_for`` (pure).

In order: a campaign scheduled into this slot of this day for the group (its text for the
experiment arm, the store's override, or its own); a dated piece for the day (and slot, and
store); else a piece of the theme's pool (the holiday's pool on a holiday) by a stable rotation,
so the same theme next week says something else and a re-run picks the same piece. None: nothing
to say, which alerts the store the day before (``pushes.missing_alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.campaigns.calendar import Push
from chalicelib.rules.models import Campaign, CampaignsRule, Piece


@dataclass(frozen=True)
class Content:
    text: str
    link: str | None
    source: str  # campaign:<name> | dated | pool:<theme>#<n>

    @property
    def message(self) -> str:
        return f"{self.text}\n{self.link}" if self.link else self.text


def campaign_text(campaign: Campaign, store_id: str | None, arm: str | None = None) -> str:
    """A campaign's text: the experiment arm's variant, else the store's override, else its own."""
    if arm is not None and arm in campaign.variants:
        return campaign.variants[arm]
    if store_id is not None and store_id in campaign.stores:
        return campaign.stores[store_id]
    return campaign.text


def slot_campaign(rule: CampaignsRule, push: Push) -> Campaign | None:
    """The campaign that takes this group's slot on this day, if one does."""
    for campaign in rule.campaigns:
        at = campaign.schedule.calendar
        if at is None or at.date != push.day or at.slot != push.slot.name:
            continue
        groups = campaign.audience.groups
        if groups != "all" and push.group_id not in (groups or []):
            continue
        if campaign.pilot_stores and push.store_id not in campaign.pilot_stores:
            continue
        if campaign.active_at(push.at):
            return campaign
    return None


def _fits(piece: Piece, push: Push) -> bool:
    return (piece.slot is None or piece.slot == push.slot.name) and (not piece.stores or push.store_id in piece.stores)


def content_for(rule: CampaignsRule, push: Push, arm: str | None = None) -> Content | None:
    """The push's content (see the module docstring). ``arm``: the experiment arm of the group
    when the slot's campaign names an experiment (the caller looks it up)."""
    campaign = slot_campaign(rule, push)
    if campaign is not None:
        return Content(campaign_text(campaign, push.store_id, arm), campaign.link, f"campaign:{campaign.name}")
    pieces = rule.calendar.pieces
    dated = [p for p in pieces if p.date == push.day and _fits(p, push)]
    if dated:
        best = sorted(dated, key=lambda p: (p.slot is None, not p.stores))[0]  # the most specific
        return Content(best.text, best.link, "dated")
    pool = [p for p in pieces if p.date is None and p.theme == push.theme and _fits(p, push)]
    if not pool:
        return None
    slots = [slot.name for slot in rule.calendar.slots]
    n = (push.day.toordinal() // 7 + slots.index(push.slot.name)) % len(pool)
    return Content(pool[n].text, pool[n].link, f"pool:{push.theme}#{n}")
