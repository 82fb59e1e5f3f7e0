"""Hardened XML in, CDATA-safe XML out (wechat.md §5.1).

Parsing rejects DOCTYPE and ENTITY declarations outright (before defusedxml even sees them),
caps the size and the nesting depth, and flattens WeChat's one-level ``<xml>`` documents into
dicts; nested elements become nested dicts, repeated elements lists.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from chalicelib.errors import BadRequest, EntityDeclared

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_DEPTH = 16  # WeChat's deepest documents (subscribe-message events) nest 3 levels below <xml>


def parse(body: bytes, max_bytes: int) -> dict[str, Any]:
    if len(body) > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes")
    if not body.strip():
        raise BadRequest("empty body")
    if _DECLARATION.search(body):
        raise EntityDeclared("DOCTYPE or ENTITY declarations are not accepted")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise EntityDeclared("DOCTYPE or ENTITY declarations are not accepted") from exc
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: encoding="rot13" and other non-text codecs
        raise BadRequest(f"malformed XML: {exc}") from exc
    value = _to_value(root)
    if not isinstance(value, dict):
        raise BadRequest("XML root has no fields")
    return value


def _to_value(element: Element, depth: int = 0) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if depth >= MAX_DEPTH:  # 64 KB of <a> nests ~9000 deep: past Python's recursion limit
        raise BadRequest(f"XML nested deeper than {MAX_DEPTH} levels")
    out: dict[str, Any] = {}
    for child in children:
        value = _to_value(child, depth + 1)
        if child.tag in out:
            existing = out[child.tag]
            out[child.tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[child.tag] = value
    return out


def as_list(value: Any) -> list[Any]:
    """A single ``<List>`` parses to a dict, several to a list: normalise (wechat.md §1.3)."""
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
