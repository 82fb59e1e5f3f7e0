"""Hardened XML in, CDATA-safe XML out (docs/wechat.md §5.1, §1.7).

Parsing rejects DOCTYPE and ENTITY declarations outright (before defusedxml even sees them;
text inside CDATA sections is data, not markup, so a member may write ``<!DOCTYPE``), caps the
size and the nesting depth, and flattens WeChat's one-level ``<xml>`` documents into dicts;
nested elements become nested dicts, repeated elements lists.

A callback document must also have WeChat's shape (``CALLBACKS``): only the elements WeChat
nests may have children, only their list items may repeat. Anything else (two ``<ToUserName>``,
a ``<Content>`` with children) is refused here, before any field is read or anything written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from chalicelib.errors import BadRequest, EntityDeclared

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_DEPTH = 16  # WeChat's deepest documents (subscribe-message events) nest 3 levels below <xml>


@dataclass(frozen=True)
class Shape:
    """The elements that may have children, each with the children that may repeat inside it.
    Every other element is a leaf, and no element repeats unless its parent allows it."""

    containers: Mapping[str, frozenset[str]]


# What WeChat and WeCom nest in their callbacks (docs/wechat.md §1.3, §1.7, §4.3).
CALLBACKS = Shape(
    {
        "SubscribeMsgPopupEvent": frozenset({"List"}),
        "SubscribeMsgChangeEvent": frozenset({"List"}),
        "SubscribeMsgSentEvent": frozenset({"List"}),
        "List": frozenset(),
        "MemChangeList": frozenset({"Item"}),
        "ScanCodeInfo": frozenset(),
        "SendLocationInfo": frozenset(),
        "SendPicsInfo": frozenset(),
        "PicList": frozenset({"item"}),
        "CopyrightCheckResult": frozenset(),
        "ArticleUrlResult": frozenset(),
        "ResultList": frozenset({"item"}),
        "item": frozenset(),
    }
)


def parse(body: bytes, max_bytes: int, shape: Shape | None = CALLBACKS) -> dict[str, Any]:
    """``shape=None`` accepts any tree (siyu's own replies, tests of the parser itself)."""
    if len(body) > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes")
    if not body.strip():
        raise BadRequest("empty body")
    if _DECLARATION.search(_outside_cdata(body)):
        raise EntityDeclared("DOCTYPE or ENTITY declarations are not accepted")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise EntityDeclared("DOCTYPE or ENTITY declarations are not accepted") from exc
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: encoding="rot13" and other non-text codecs
        raise BadRequest(f"malformed XML: {exc}") from exc
    value = _to_value(root, shape)
    if not isinstance(value, dict):
        raise BadRequest("XML root has no fields")
    return value


def _outside_cdata(body: bytes) -> bytes:
    """The body without its closed CDATA sections, found in one pass (a regex would rescan the
    rest of the body for every unclosed ``<![CDATA[``)."""
    parts, at = [], 0
    while (start := body.find(b"<![CDATA[", at)) >= 0:
        end = body.find(b"]]>", start + 9)
        if end < 0:
            break
        parts.append(body[at:start])
        at = end + 3
    parts.append(body[at:])
    return b"".join(parts)


def _to_value(element: Element, shape: Shape | None, depth: int = 0) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if depth >= MAX_DEPTH:  # 64 KB of <a> nests ~9000 deep: past Python's recursion limit
        raise BadRequest(f"XML nested deeper than {MAX_DEPTH} levels")
    repeatable: frozenset[str] = frozenset()  # the root (<xml>) repeats nothing
    if shape is not None and depth > 0:
        if element.tag not in shape.containers:
            raise BadRequest(f"element {_name(element.tag)} may not contain elements")
        repeatable = shape.containers[element.tag]
    out: dict[str, Any] = {}
    for child in children:
        value = _to_value(child, shape, depth + 1)
        if child.tag not in out:
            out[child.tag] = value
        elif shape is not None and child.tag not in repeatable:
            raise BadRequest(f"element {_name(child.tag)} appears more than once")
        else:
            existing = out[child.tag]
            out[child.tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
    return out


def _name(tag: str) -> str:
    """An element's name for a refusal: ours to quote, cut short (names are not member data)."""
    return tag[:40]


def as_list(value: Any) -> list[Any]:
    """A single ``<List>`` parses to a dict, several to a list: normalise (docs/wechat.md §1.3)."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def cdata(text: str) -> str:
    """Wrap in CDATA, splitting any ``]]>`` so user text cannot close the section."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render(fields: dict[str, str | int]) -> str:
    parts = []
    for name, value in fields.items():
        rendered = str(value) if isinstance(value, int) else cdata(value)
        parts.append(f"<{name}>{rendered}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"
