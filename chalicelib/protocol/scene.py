"""Parametric QR scene values: where a follower came from (channel, store, inviter).

siyu's QR codes carry a string scene (``QR_LIMIT_STR_SCENE``, at most 64 characters) written
as a query string, e.g. ``st=S001&ch=poster&inv=oAbC…``. Keys: ``st`` store id, ``ch`` channel,
``inv`` inviter's member id. A bare value (numeric scene ids, or codes printed before siyu)
becomes the channel ``qr:<value>`` with no store or inviter. A store or inviter that is not an id
at all (a garbled or hand-made code) is left out: the follow itself still counts. Whether the
store exists and the inviter is a member is for the pipeline and the referral duty to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from chalicelib.events import is_platform_id

SUBSCRIBE_PREFIX = "qrscene_"


@dataclass(frozen=True)
class Scene:
    channel: str | None = None
    store_id: str | None = None
    inviter: str | None = None


def parse_scene(event_key: str | None, *, subscribe: bool) -> Scene:
    value = (event_key or "").strip()
    if subscribe:
        if not value.startswith(SUBSCRIBE_PREFIX):
            return Scene()
        value = value[len(SUBSCRIBE_PREFIX) :]
    if not value:
        return Scene()
    if "=" not in value:
        return Scene(channel=f"qr:{value}")
    fields = parse_qs(value, keep_blank_values=False)

    def first(name: str) -> str | None:
        got = fields.get(name)
        return got[0][:64] if got else None

    def an_id(name: str) -> str | None:
        value = first(name)
        return value if value and is_platform_id(value) else None

    return Scene(channel=first("ch") or "qr", store_id=an_id("st"), inviter=an_id("inv"))


def build_scene(*, store_id: str | None = None, channel: str | None = None, inviter: str | None = None) -> str:
    parts = [f"{k}={v}" for k, v in (("st", store_id), ("ch", channel), ("inv", inviter)) if v]
    scene = "&".join(parts)
    if len(scene) > 64:
        raise ValueError("a QR scene string holds at most 64 characters")
    return scene
