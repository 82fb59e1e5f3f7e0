"""STAND-IN from the campaigns branch (issue 21): the segments helper builds the real
``members_of`` (the membership records of a segment in a store) with this signature; keep theirs
when merging. Campaigns call it through ``chalicelib.campaigns.members``."""

from __future__ import annotations


def members_of(segment: str, store_id: str) -> list[str]:
    """The ids of the members of ``segment`` at ``store_id`` (stand-in: none)."""
    return []
