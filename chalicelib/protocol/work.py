"""WeCom (企业微信) callback: always encrypted, receive id = CorpID (docs/wechat.md §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.clock import from_unix
from chalicelib.errors import Forbidden
from chalicelib.events import Event, Kind
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto
from chalicelib.protocol.inbound import Inbound, check_fresh, require_str, require_time
from chalicelib.protocol.scene import parse_scene
from chalicelib.settings import Settings
from chalicelib.store import keys


class WeCom:
    def __init__(self, settings: Settings) -> None:
        if not settings.wecom_aes_key:
            raise Forbidden("WeCom callbacks are not configured on this server (SIYU_WECOM_AES_KEY)")
        self.settings = settings
        self._crypto = MessageCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)

    def _open(self, inbound: Inbound, encrypted: str, now: datetime) -> str:
        timestamp, nonce = inbound.param("timestamp"), inbound.param("nonce")
        self._crypto.check_signature(inbound.query.get("msg_signature"), timestamp, nonce, encrypted)
        check_fresh(timestamp, now, self.settings.timestamp_tolerance_s)
        return self._crypto.decrypt(encrypted)

    def verify_url(self, inbound: Inbound, now: datetime) -> str:
        """GET: decrypt echostr and return its plaintext, nothing else (docs/wechat.md §4.1)."""
        return self._open(inbound, inbound.param("echostr"), now)

    def receive(self, inbound: Inbound, now: datetime) -> list[Event]:
        outer = xmlsafe.parse(inbound.body, self.settings.max_body_bytes)
        plain = self._open(inbound, require_str(outer, "Encrypt"), now)
        return to_events(xmlsafe.parse(plain.encode("utf-8"), self.settings.max_body_bytes))


def to_events(fields: dict[str, Any]) -> list[Event]:
    created = require_time(fields, "CreateTime")
    occurred = from_unix(created)
    name = str(fields.get("Event") or fields.get("MsgType") or "")
    change = str(fields.get("ChangeType") or "")
    if name == "change_external_contact":
        return [_contact_event(fields, created, change)]
    if name == "change_external_chat":
        return _chat_events(fields, created, change)
    return [
        Event(
            Kind.UNKNOWN,
            keys.wecom_event(created, str(fields.get("FromUserName", "")), name, change),
            "wecom",
            occurred,
            data={"event": name[:64], "change": change[:64]},
        )
    ]


def _contact_event(fields: dict[str, Any], created: int, change: str) -> Event:
    customer = require_str(fields, "ExternalUserID")
    staff = str(fields.get("UserID") or "")
    event_id = keys.wecom_contact(created, customer, change, staff)
    occurred = from_unix(created)
    if change == "add_external_contact":
        scene = parse_scene(str(fields.get("State") or ""), subscribe=False)
        return Event(
            Kind.CONTACT_ADDED,
            event_id,
            "wecom",
            occurred,
            customer,
            store_id=scene.store_id,
            channel=scene.channel or "wecom",
            inviter=scene.inviter,
            data={"staff": staff, "welcome_code": str(fields.get("WelcomeCode") or "")},
        )
    if change in ("del_follow_user", "del_external_contact"):
        by = "customer" if change == "del_follow_user" else "staff"
        data = {"staff": staff, "by": by, "source": str(fields.get("Source") or "")}
        return Event(Kind.CONTACT_REMOVED, event_id, "wecom", occurred, customer, data=data)
    return Event(Kind.UNKNOWN, event_id, "wecom", occurred, customer, data={"change": change[:64]})


def _chat_events(fields: dict[str, Any], created: int, change: str) -> list[Event]:
    chat = require_str(fields, "ChatId")
    detail = str(fields.get("UpdateDetail") or "")
    occurred = from_unix(created)
    members = _changed_members(fields.get("MemChangeList"))
    if change == "update" and detail in ("add_member", "del_member") and members:
        joined = detail == "add_member"
        scene_field = "JoinScene" if joined else "QuitScene"
        data = {"scene": str(fields.get(scene_field) or "")}
        return [
            Event(
                Kind.JOINED_GROUP if joined else Kind.LEFT_GROUP,
                keys.wecom_chat(created, chat, detail, member),
                "wecom",
                occurred,
                member,
                group_id=chat,
                channel="group" if joined else None,
                data=data,
            )
            for member in members
        ]
    count = str(fields.get("MemChangeCnt") or "")
    return [
        Event(
            Kind.GROUP_CHANGED,
            keys.wecom_chat(created, chat, change, detail),
            "wecom",
            occurred,
            group_id=chat,
            data={"change": change[:64], "detail": detail[:64], "count": count},
        )
    ]


def _changed_members(value: Any) -> list[str]:
    """``MemChangeList`` holds one ``Item`` per changed member (shape UNVERIFIED, docs/wechat.md §4.3)."""
    if not isinstance(value, dict):
        return []
    return [m for m in xmlsafe.as_list(value.get("Item")) if isinstance(m, str) and m]
