"""Channels: turn an outbox message into one WeChat / WeCom API request, checking the
platform's payload limits first (a payload WeChat would refuse with 47003 is never sent).

| channel                | API                                              | auth   |
|------------------------|--------------------------------------------------|--------|
| template               | /cgi-bin/message/template/send (docs/wechat.md §3.3)  | oa     |
| subscribe              | /cgi-bin/message/subscribe/bizsend (§3.4)        | oa     |
| custom                 | /cgi-bin/message/custom/send (§3.5, 48 h window) | oa     |
| miniprogram_subscribe  | /cgi-bin/message/subscribe/send (§3.6)           | oa     |
| wecom_customer         | /cgi-bin/externalcontact/add_msg_template        | wecom  |
| wecom_group            | /cgi-bin/externalcontact/add_msg_template (group)| wecom  |
| robot                  | /cgi-bin/webhook/send (§4.4: text/markdown/image)| robot  |

``wecom_customer`` (a staff member's 1:1 message task to an external contact) and ``wecom_group``
(the group owner's message task to a customer group) are not covered by docs/wechat.md; their request
shape follows WeCom's public API and is UNVERIFIED here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.errors import PayloadInvalid
from chalicelib.rules.models import Template
from chalicelib.rules.texts import fill_known

# Field value limits by key prefix (docs/wechat.md §3.3 via WxJava, §3.4): characters.
FIELD_LIMITS = {
    "thing": 20,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "number": 32,
    "symbol": 5,
    "name": 10,
    "amount": 32,
    "time": 32,
    "date": 32,
    "phrase": 5,
    "letter": 32,
}
# Which of a person's ids a channel reaches (the source that gave it: chalicelib/identity): an
# official-account channel the account's openid, the mini program's its openid, WeCom's the
# external contact's id.
SOURCE_OF = {
    "template": "oa",
    "subscribe": "oa",
    "custom": "oa",
    "miniprogram_subscribe": "orders",
    "wecom_customer": "wecom",
}


def address(channel: str, member_id: str, ids: set[str] | None) -> str:
    """The id a message to a person goes to on ``channel``: the person's id from that channel's
    source (their own first id when it is one), else the person id itself (what a member known
    by one id only has always been sent to)."""
    source = SOURCE_OF.get(channel)
    mine = sorted(i.split("/", 1)[1] for i in ids or () if source and i.startswith(source + "/"))
    if not mine:
        return member_id
    return member_id if member_id in mine else mine[0]


TEXT_BYTES = {"custom": 2048, "wecom_customer": 4000, "wecom_group": 4000, "robot_text": 2048, "robot_markdown": 4096}
IMAGE_BYTES = 2 * 1024 * 1024

PATHS = {
    "template": "/cgi-bin/message/template/send",
    "subscribe": "/cgi-bin/message/subscribe/bizsend",
    "custom": "/cgi-bin/message/custom/send",
    "miniprogram_subscribe": "/cgi-bin/message/subscribe/send",
    "wecom_customer": "/cgi-bin/externalcontact/add_msg_template",
    "wecom_group": "/cgi-bin/externalcontact/add_msg_template",
    "robot": "/cgi-bin/webhook/send",
}
AUTH: dict[str, Literal["oa", "wecom", "robot"]] = {
    "template": "oa",
    "subscribe": "oa",
    "custom": "oa",
    "miniprogram_subscribe": "oa",
    "wecom_customer": "wecom",
    "robot": "robot",
}


@dataclass(frozen=True)
class ApiRequest:
    path: str
    body: dict[str, Any]
    auth: Literal["oa", "wecom", "robot"]
    robot: str = "ops"  # which WeCom group robot (SIYU_ROBOT_KEYS), for auth "robot"


def _fits_bytes(text: str, limit: int, what: str) -> str:
    size = len(text.encode("utf-8"))
    if not text:
        raise PayloadInvalid(f"{what} is empty")
    if size > limit:
        raise PayloadInvalid(f"{what} is {size} bytes, the limit is {limit}")
    return text


def template_data(template: Template, values: dict[str, str]) -> dict[str, dict[str, str]]:
    data = {}
    for key, pattern in template.fields.items():
        value = fill_known(pattern, {name: str(v) for name, v in values.items()})  # a word it lacks: empty
        prefix = key.rstrip("0123456789")
        limit = FIELD_LIMITS.get(prefix)
        if not value:
            raise PayloadInvalid(f"field {key} would be empty")
        if limit is not None and len(value) > limit:
            raise PayloadInvalid(f"field {key} has {len(value)} characters, the limit is {limit}")
        data[key] = {"value": value}
    return data


def build(
    channel: str, to: str, text: str | None, payload: dict[str, Any], template: Template | None, client_msg_id: str
) -> ApiRequest:
    """The API request for one message. ``payload`` carries the template values or robot content."""
    if channel in ("template", "subscribe", "miniprogram_subscribe"):
        return _template_request(channel, to, text, payload, template, client_msg_id)
    if channel == "custom":
        content = _fits_bytes(text or "", TEXT_BYTES["custom"], "text")
        return ApiRequest(PATHS[channel], {"touser": to, "msgtype": "text", "text": {"content": content}}, "oa")
    if channel in ("wecom_customer", "wecom_group"):
        content = _fits_bytes(text or "", TEXT_BYTES[channel], "text")
        target = {"external_userid": [to]} if channel == "wecom_customer" else {"chat_id_list": [to]}
        body = {
            "chat_type": "single" if channel == "wecom_customer" else "group",
            **target,
            "text": {"content": content},
        }
        if payload.get("sender"):
            body["sender"] = payload["sender"]
        return ApiRequest(PATHS[channel], body, "wecom")
    if channel == "robot":
        return ApiRequest(PATHS[channel], robot_body(text, payload), "robot", robot=to)
    raise PayloadInvalid(f"unknown channel {channel}")


def _template_request(
    channel: str, to: str, text: str | None, payload: dict[str, Any], template: Template | None, client_msg_id: str
) -> ApiRequest:
    if template is None:
        raise PayloadInvalid(f"channel {channel} needs a template")
    body: dict[str, Any] = {
        "touser": to,
        "template_id": template.template_id,
        "data": template_data(template, {**payload, "text": text or ""}),
    }
    if channel == "template":
        body["client_msg_id"] = client_msg_id  # WeChat's own de-duplication of a re-sent template
        if template.url:
            body["url"] = template.url
    elif channel == "subscribe" and (template.page or template.url):
        body["page"] = template.page or template.url
    elif channel == "miniprogram_subscribe":
        body.update(miniprogram_state="formal", lang="zh_CN")
        if template.page:
            body["page"] = template.page
    return ApiRequest(PATHS[channel], body, AUTH[channel])


def robot_body(text: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    kind = payload.get("robot", "text")
    if kind == "markdown":
        return {
            "msgtype": "markdown",
            "markdown": {"content": _fits_bytes(text or "", TEXT_BYTES["robot_markdown"], "markdown")},
        }
    if kind == "image":
        raw = base64.b64decode(str(payload.get("image_base64", "")))
        if not raw or len(raw) > IMAGE_BYTES:
            raise PayloadInvalid("image is empty or larger than 2 MB")
        return {
            "msgtype": "image",
            "image": {"base64": base64.b64encode(raw).decode("ascii"), "md5": hashlib.md5(raw).hexdigest()},
        }
    return {"msgtype": "text", "text": {"content": _fits_bytes(text or "", TEXT_BYTES["robot_text"], "text")}}


def client_msg_id(message_key: str) -> str:
    """A stable ≤ 32-char id per message: WeChat drops a template re-sent with the same id."""
    return hashlib.sha256(message_key.encode("utf-8")).hexdigest()[:32]


def payload_of(raw: str | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {}
