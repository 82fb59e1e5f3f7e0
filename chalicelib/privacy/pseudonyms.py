"""The names an erased member leaves behind, and the one way their id is replaced in stored text.

- ``subject``: HMAC-SHA256 of the member id under ``SIYU_PRIVACY_SECRET``; keys the erase
  records (``Erasure``), so the erase is idempotent and a late event of the id is recognized,
  without storing the id.
- ``pseudonym``: what stays where the id was (``erased_…``). Derived from the id and the erase's
  number, so it is stable across re-runs of one erase, and a member who comes back and is erased
  again gets another pseudonym (their two pasts are not merged, nor linkable without the secret).

Both are one-way for anyone without the secret; whoever holds the secret and an id can recompute
them. That is what lets siyu honour the erase (late events are dropped, see ``guard``), and why
the secret must stay as stable and as closely held as the coupon secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

PREFIX = "erased_"
# The id is replaced where it stands whole: not preceded or followed by a letter or digit. OpenIDs
# and WeCom external user ids have a fixed length (28, 32) and may hold "-" and "_", which siyu's
# own keys also use as separators (``oa:evt:<time>-<openid>-<scene>-<event>``).
_ID_CHARS = "A-Za-z0-9"


def _mac(secret: str, text: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()


def subject(secret: str, member_id: str) -> str:
    return base64.b32encode(_mac(secret, f"subject#{member_id}")).decode("ascii").rstrip("=").lower()


def pseudonym(secret: str, member_id: str, number: int) -> str:
    mac = _mac(secret, f"pseudonym#{member_id}#{number}")
    return PREFIX + base64.b32encode(mac).decode("ascii")[:24].lower()


def _pattern(member_id: str) -> re.Pattern[str]:
    return re.compile(f"(?<![{_ID_CHARS}]){re.escape(member_id)}(?![{_ID_CHARS}])")


def mentions(value: Any, member_id: str) -> bool:
    """Whether a stored value (a string, a set or list of strings) quotes the id."""
    if isinstance(value, str):
        return member_id in value and _pattern(member_id).search(value) is not None
    if isinstance(value, set | frozenset | list):
        return any(mentions(v, member_id) for v in value)
    return False


def substitute(value: Any, member_id: str, replacement: str) -> Any:
    """The value with every whole occurrence of the id replaced; other types unchanged."""
    if isinstance(value, str):
        return _pattern(member_id).sub(replacement, value) if member_id in value else value
    if isinstance(value, set | frozenset):
        return {substitute(v, member_id, replacement) for v in value}
    if isinstance(value, list):
        return [substitute(v, member_id, replacement) for v in value]
    return value
