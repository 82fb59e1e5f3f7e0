"""Official account (服务号) callback: verify, decrypt, parse, reply (docs/wechat.md §1, §2)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.clock import from_unix, to_unix
from chalicelib.errors import BadRequest, Forbidden
from chalicelib.events import Event, Kind
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto, sha1_signature, signature_matches
from chalicelib.protocol.inbound import Inbound, check_fresh, require_str, require_time
from chalicelib.protocol.scene import parse_scene
from chalicelib.settings import Settings
from chalicelib.store import keys


@dataclass(frozen=True)
class Received:
    event: Event
    account_id: str  # the account's original id (gh_…), the From of our reply
    encrypted: bool


class OfficialAccount:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._crypto = (
            MessageCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)
            if settings.wechat_aes_key
            else None
        )

    def _check_url_signature(self, inbound: Inbound, now: datetime) -> tuple[str, str]:
        timestamp, nonce = inbound.param("timestamp"), inbound.param("nonce")
        expected = sha1_signature(self.settings.wechat_token, timestamp, nonce)
        if not signature_matches(expected, inbound.query.get("signature")):
            raise Forbidden("signature does not match")
        check_fresh(timestamp, now, self.settings.timestamp_tolerance_s)
        return timestamp, nonce

    def verify_url(self, inbound: Inbound, now: datetime) -> str:
        """GET: the echostr is returned unchanged, in every mode (docs/wechat.md §1.1)."""
        self._check_url_signature(inbound, now)
        return inbound.param("echostr")

    def receive(self, inbound: Inbound, now: datetime) -> Received:
        timestamp, nonce = self._check_url_signature(inbound, now)
        outer = xmlsafe.parse(inbound.body, self.settings.max_body_bytes)
        if inbound.query.get("encrypt_type", "").lower() == "aes":
            if self._crypto is None:
                raise Forbidden("safe mode is not configured on this server (SIYU_WECHAT_AES_KEY)")
            encrypted = require_str(outer, "Encrypt")
            self._crypto.check_signature(inbound.query.get("msg_signature"), timestamp, nonce, encrypted)
            inner = xmlsafe.parse(self._crypto.decrypt(encrypted).encode("utf-8"), self.settings.max_body_bytes)
            return Received(to_event(inner), inner.get("ToUserName") or "", True)
        if not self.settings.wechat_allow_plain:
            raise Forbidden("plain mode is disabled: the body is not signed")
        return Received(to_event(outer), outer.get("ToUserName") or "", False)

    def render_text_reply(self, received: Received, text: str, now: datetime) -> str:
        plain = xmlsafe.render(
            {
                "ToUserName": received.event.member_id or "",
                "FromUserName": received.account_id,
                "CreateTime": to_unix(now),
                "MsgType": "text",
                "Content": text,
            }
        )
        if not received.encrypted or self._crypto is None:
            return plain
        timestamp, nonce = str(to_unix(now)), str(secrets.randbelow(10**9))
        encrypted = self._crypto.encrypt(plain)
        return xmlsafe.render(
            {
                "Encrypt": encrypted,
                "MsgSignature": self._crypto.sign(timestamp, nonce, encrypted),
                "TimeStamp": int(timestamp),
                "Nonce": nonce,
            }
        )


def to_event(fields: dict[str, Any]) -> Event:
    """Map one decrypted callback document to its domain event."""
    openid = require_str(fields, "FromUserName")
    created = require_time(fields, "CreateTime")
    msg_type = require_str(fields, "MsgType").lower()
    occurred = from_unix(created)
    if msg_type != "event":
        msg_id = str(fields.get("MsgId") or "")
        data: dict[str, Any] = {"msg_type": msg_type, "msg_id": msg_id}
        if msg_type == "text":
            data["content"] = fields.get("Content") or ""
        return Event(Kind.MESSAGED, keys.oa_message(msg_id, created, openid), "oa", occurred, openid, data=data)
    name = require_str(fields, "Event")
    key = fields.get("EventKey") or ""
    key = key if isinstance(key, str) else ""
    event_id = keys.oa_event(created, openid, key, name)
    lowered = name.lower()
    simple: dict[str, tuple[Kind, dict[str, Any]]] = {
        "unsubscribe": (Kind.UNFOLLOWED, {}),
        "location": (Kind.LOCATED, {}),
    }
    simple |= {"click": (Kind.CLICKED, {"key": key}), "view": (Kind.VIEWED, {"url": key})}
    if lowered in simple:
        kind, data = simple[lowered]
        return Event(kind, event_id, "oa", occurred, openid, data=data)
    if lowered in ("subscribe", "scan"):
        scene = parse_scene(key, subscribe=lowered == "subscribe")
        kind = Kind.FOLLOWED if lowered == "subscribe" else Kind.SCANNED
        channel = scene.channel or "direct"
        return Event(kind, event_id, "oa", occurred, openid, scene.store_id, channel, scene.inviter)
    if lowered in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
        return _consent_event(fields, name, event_id, occurred, openid)
    if lowered in ("templatesendjobfinish", "subscribe_msg_sent_event"):
        return _delivery_event(fields, lowered, occurred, openid)
    return Event(Kind.UNKNOWN, event_id, "oa", occurred, openid, data={"event": name[:64]})


def _delivery_event(fields: dict[str, Any], name: str, occurred: datetime, openid: str) -> Event:
    """WeChat's later word on a template (``MsgID``, ``Status``) or a subscribe message it sent
    (``List`` of ``MsgID``, ``ErrorCode``, ``ErrorStatus``): docs/wechat.md §1.3."""
    if name == "templatesendjobfinish":
        msg_id, status = str(fields.get("MsgID") or ""), str(fields.get("Status") or "")
        data = {"channel": "template", "msg_id": msg_id, "status": status, "ok": status == "success"}
        return Event(Kind.TEMPLATE_DELIVERY, keys.oa_delivery("tpl", msg_id, openid), "oa", occurred, openid, data=data)
    first: Any = next(iter(xmlsafe.as_list(_dig(fields, "SubscribeMsgSentEvent", "List"))), {})
    item: dict[str, Any] = first if isinstance(first, dict) else {}
    msg_id = str(item.get("MsgID") or "")
    data = {
        "channel": "subscribe",
        "msg_id": msg_id,
        "status": str(item.get("ErrorStatus") or ""),
        "ok": str(item.get("ErrorCode") or "") == "0",
    }
    return Event(Kind.TEMPLATE_DELIVERY, keys.oa_delivery("sub", msg_id, openid), "oa", occurred, openid, data=data)


def _dig(fields: dict[str, Any], *path: str) -> Any:
    value: Any = fields
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _consent_event(fields: dict[str, Any], name: str, event_id: str, occurred: datetime, openid: str) -> Event:
    container = "SubscribeMsgPopupEvent" if name.lower().endswith("popup_event") else "SubscribeMsgChangeEvent"
    items = []
    for item in xmlsafe.as_list(_dig(fields, container, "List")):
        if isinstance(item, dict) and item.get("TemplateId"):
            items.append({"template_id": item["TemplateId"], "status": item.get("SubscribeStatusString", "")})
    if not items:
        raise BadRequest(f"{name} carries no List item")
    return Event(Kind.SUBSCRIBE_CONSENT, event_id, "oa", occurred, openid, data={"items": items})
