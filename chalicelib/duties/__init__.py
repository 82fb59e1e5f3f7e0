"""Duties: one module per duty. Each exposes ``TRIGGERS`` (the event kinds it reacts to),
``gather`` (facts from state, I/O allowed) and ``decide`` (facts, rules, now → plan; pure).
``REGISTRY`` is the order in which they run for one event."""

from __future__ import annotations

from chalicelib.duties import (
    birthday,
    challenge,
    checkin,
    coupons,
    deliveries,
    koc,
    points,
    precision,
    referral,
    returns,
    reviews,
    tiers,
    welcome,
)

REGISTRY = (
    welcome,
    coupons,
    deliveries,
    returns,
    challenge,
    points,
    checkin,
    referral,
    tiers,
    precision,
    birthday,
    koc,
    reviews,
)
