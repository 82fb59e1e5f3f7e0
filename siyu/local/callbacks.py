"""Build callbacks exactly as WeChat, WeCom and the POS would send them: signed, and in safe
mode encrypted. Used by tests, benchmarks and the simulation to drive the real endpoints."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from chalicelib.clock import to_unix
from chalicelib.protocol import orders, xmlsafe
from chalicelib.protocol.crypto import MessageCrypto, sha1_signature
from chalicelib.settings import Settings


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with query string
    headers: dict[str, str]
    body: bytes


def oa_event(
    openid: str, event: str, created: int, event_key: str | None = None, account: str = "gh_siyu_local", **extra: str
) -> str:
    fields: dict[str, str | int] = {
        "ToUserName": account,
        "FromUserName": openid,
        "CreateTime": created,
        "MsgType": "event",
        "Event": event,
    }
    if event_key is not None:
        fields["EventKey"] = event_key
    fields.update(extra)
    return xmlsafe.render(fields)


def oa_popup(
    openid: str, choices: list[tuple[str, str]], created: int, scene: int = 2, account: str = "gh_siyu_local"
) -> str:
    """``subscribe_msg_popup_event``: the member's answer to a subscribe-message popup, one
    ``(template id, "accept" | "reject")`` per template it offered (docs/wechat.md §1.3)."""
    items = "".join(
        f"<List><TemplateId>{xmlsafe.cdata(template_id)}</TemplateId><SubscribeStatusString>"
        f"{xmlsafe.cdata(status)}</SubscribeStatusString><PopupScene>{scene}</PopupScene></List>"
        for template_id, status in choices
    )
    event = oa_event(openid, "subscribe_msg_popup_event", created, account=account)
    return _nest(event, "SubscribeMsgPopupEvent", items)


def oa_subscribe_sent(
    openid: str,
    template_id: str,
    msg_id: int | str,
    created: int,
    error_code: int = 0,
    error_status: str = "success",
    account: str = "gh_siyu_local",
) -> str:
    """``subscribe_msg_sent_event``: WeChat's word on a subscribe message (``bizsend``) it sent."""
    item = (
        f"<List><TemplateId>{xmlsafe.cdata(template_id)}</TemplateId><MsgID>{msg_id}</MsgID>"
        f"<ErrorCode>{error_code}</ErrorCode><ErrorStatus>{xmlsafe.cdata(error_status)}</ErrorStatus></List>"
    )
    return _nest(oa_event(openid, "subscribe_msg_sent_event", created, account=account), "SubscribeMsgSentEvent", item)


def oa_template_finished(
    openid: str, msg_id: int | str, status: str, created: int, account: str = "gh_siyu_local"
) -> str:
    """``TEMPLATESENDJOBFINISH``: WeChat's word on a template message (``MsgID``, capital D)."""
    return oa_event(openid, "TEMPLATESENDJOBFINISH", created, account=account, MsgID=str(msg_id), Status=status)


def _nest(document: str, container: str, inner: str) -> str:
    return document.replace("</xml>", f"<{container}>{inner}</{container}></xml>")


def oa_text(openid: str, content: str, created: int, msg_id: int, account: str = "gh_siyu_local") -> str:
    return xmlsafe.render(
        {
            "ToUserName": account,
            "FromUserName": openid,
            "CreateTime": created,
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
        }
    )


def oa_post(settings: Settings, xml: str, now: datetime, *, safe: bool = True, nonce: str | None = None) -> Request:
    timestamp, nonce = str(to_unix(now)), nonce or str(secrets.randbelow(10**9))
    query = {
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": sha1_signature(settings.wechat_token, timestamp, nonce),
        "openid": "o",
    }
    body = xml
    if safe:
        crypto = MessageCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)
        encrypted = crypto.encrypt(xml)
        query.update(encrypt_type="aes", msg_signature=crypto.sign(timestamp, nonce, encrypted))
        body = xmlsafe.render({"ToUserName": "gh_siyu_local", "Encrypt": encrypted})
    return Request("POST", "/wechat/oa?" + urlencode(query), {"Content-Type": "text/xml"}, body.encode())


def oa_verify(settings: Settings, echostr: str, now: datetime) -> Request:
    timestamp, nonce = str(to_unix(now)), str(secrets.randbelow(10**9))
    query = {
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
        "signature": sha1_signature(settings.wechat_token, timestamp, nonce),
    }
    return Request("GET", "/wechat/oa?" + urlencode(query), {}, b"")


def wecom_post(settings: Settings, xml: str, now: datetime) -> Request:
    crypto = MessageCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)
    timestamp, nonce = str(to_unix(now)), str(secrets.randbelow(10**9))
    encrypted = crypto.encrypt(xml)
    query = {"msg_signature": crypto.sign(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
    body = xmlsafe.render({"ToUserName": settings.wecom_corp_id, "AgentID": "1", "Encrypt": encrypted})
    return Request("POST", "/wechat/work?" + urlencode(query), {"Content-Type": "text/xml"}, body.encode())


def wecom_verify(settings: Settings, echo: str, now: datetime) -> Request:
    crypto = MessageCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)
    timestamp, nonce = str(to_unix(now)), str(secrets.randbelow(10**9))
    encrypted = crypto.encrypt(echo)
    query = {
        "msg_signature": crypto.sign(timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": encrypted,
    }
    return Request("GET", "/wechat/work?" + urlencode(query), {}, b"")


def wecom_group_join(corp_id: str, chat_id: str, members: list[str], created: int) -> str:
    items = "".join(f"<Item>{xmlsafe.cdata(m)}</Item>" for m in members)
    return (
        f"<xml><ToUserName>{xmlsafe.cdata(corp_id)}</ToUserName><FromUserName>{xmlsafe.cdata('sys')}"
        f"</FromUserName><CreateTime>{created}</CreateTime><MsgType>{xmlsafe.cdata('event')}</MsgType>"
        f"<Event>{xmlsafe.cdata('change_external_chat')}</Event><ChatId>{xmlsafe.cdata(chat_id)}</ChatId>"
        f"<ChangeType>{xmlsafe.cdata('update')}</ChangeType><UpdateDetail>{xmlsafe.cdata('add_member')}"
        f"</UpdateDetail><JoinScene>3</JoinScene><MemChangeCnt>{len(members)}</MemChangeCnt>"
        f"<MemChangeList>{items}</MemChangeList></xml>"
    )


def order_post(settings: Settings, payload: dict, now: datetime, path: str = "/hooks/orders") -> Request:
    """A signed order-webhook call; ``path`` ``/mp/member-code``: the mini program's server asking
    a member code, signed the same way."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    timestamp = str(to_unix(now))
    headers = {
        "Content-Type": "application/json",
        orders.TIMESTAMP_HEADER: timestamp,
        orders.SIGNATURE_HEADER: orders.sign(settings.orders_hmac_secret, timestamp, body),
    }
    return Request("POST", path, headers, body)


def till_post(path: str, store: str, key: str, payload: dict, now: datetime) -> Request:
    """A till's signed call (``/pos/coupons/check`` …) with one of its store's keys."""
    from chalicelib.protocol import till

    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    timestamp = str(to_unix(now))
    headers = {
        "Content-Type": "application/json",
        till.STORE_HEADER: store,
        till.TIMESTAMP_HEADER: timestamp,
        till.SIGNATURE_HEADER: till.signature(key, timestamp, body),
    }
    return Request("POST", path, headers, body)


def till_get(path: str, store: str, key: str, now: datetime, signed_path: str | None = None) -> Request:
    """A till's signed ``GET`` (``/pos/members/<member code>``): the signature covers the path
    (``signed_path``: sign another one, as a forger would)."""
    from chalicelib.protocol import till

    timestamp = str(to_unix(now))
    headers = {
        till.STORE_HEADER: store,
        till.TIMESTAMP_HEADER: timestamp,
        till.SIGNATURE_HEADER: till.signature(key, timestamp, (signed_path or path).encode("utf-8")),
    }
    return Request("GET", path, headers, b"")
