"""Coupon codes derived from the cause key: the same cause always yields the same code, so
the conditional put of the coupon (keyed by code) is its exactly-once guard, and the code is
known before the write (a retried event reprints the same code in its reply). The HMAC secret
keeps codes unguessable from the member id."""

from __future__ import annotations

import base64
import hashlib
import hmac

from chalicelib.store import keys


def derive(cause_key: str, secret: str, prefix: str = "SY") -> str:
    mac = hmac.new(secret.encode("utf-8"), cause_key.encode("utf-8"), hashlib.sha256).digest()
    return prefix + base64.b32encode(mac).decode("ascii")[:10]


def welcome(member_id: str, secret: str) -> str:
    """The code of a member's one welcome gift (the welcome duty issues it; a merge of two
    persons looks both up: chalicelib/identity/merge.py)."""
    return derive(keys.welcome(member_id), secret)


def member_ref(member_id: str, secret: str) -> str:
    """The till's name for a person (``GET /pos/members/…``): stable, short, and not their id."""
    return derive(keys.member_ref(member_id), secret, prefix="MR")
