"""Duties: one module per duty. Each exposes ``TRIGGERS`` (the event kinds it reacts to),
``gather`` (facts from the event's reads: ``chalicelib.facts.Snapshot``) and ``decide`` (facts,
rules, now → plan; pure), and may declare what the event's one read should fetch for it
(``prefetch``). ``REGISTRY`` is the order in which they run for one event."""

from __future__ import annotations

from chalicelib.duties import (
    birthday,
    catalog,
    challenge,
    checkin,
    deliveries,
    koc,
    member_code,
    points,
    precision,
    recall_returns,
    redemption,
    referral,
    reviews,
    tiers,
    voids,
    welcome,
)

REGISTRY = (
    welcome,
    redemption,
    voids,
    deliveries,
    recall_returns,
    challenge,
    points,
    catalog,
    checkin,
    referral,
    tiers,
    precision,
    birthday,
    koc,
    reviews,
    member_code,
)
