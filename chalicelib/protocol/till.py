"""The till API's wire format: JSON, HMAC-signed with a key of the till's own store.

Headers: ``X-Siyu-Store`` (the store id), ``X-Siyu-Timestamp`` (Unix seconds) and
``X-Siyu-Signature`` = ``sha256=`` + hex HMAC-SHA256(key, timestamp + "." + body), where the key is
one of that store's keys in ``SIYU_TILL_KEYS`` (``S001=<key>|<next key>,S002=<key>``): a store may
hold two keys while its tills move to a new one, so keys rotate without downtime. A key acts for
its own store only: a body naming another store is refused (403), whatever its signature.
Requests outside the timestamp tolerance (300 s) are refused, so a captured request cannot be
replayed later; within it, a redeem's order id makes a replay a duplicate.

A ``GET`` has no body: it signs its path instead, timestamp + "." + path, the path as the route
names it, without the API's stage prefix and query (``/pos/members/MC…``), so a signature for
one member code does not look up another. Its store is the header's.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from chalicelib.errors import BadRequest, Forbidden, Unauthorized
from chalicelib.protocol.inbound import Inbound, check_fresh
from chalicelib.protocol.orders import Id, _not_bool, describe, sign

STORE_HEADER = "x-siyu-store"
SIGNATURE_HEADER = "x-siyu-signature"
TIMESTAMP_HEADER = "x-siyu-timestamp"
CODE_PATTERN = r"^[A-Z0-9]{4,32}$"  # what chalicelib/codes.py derives: SY + base32

Code = Annotated[str, Field(pattern=CODE_PATTERN)]
ItemId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]  # rules: CatalogItem.id
Fen = Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=100_000_000)]


class _Signed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    store_id: Id


class _Body(_Signed):
    code: Code


class Check(_Body):
    """``POST /pos/coupons/check``: may the coupon be used on this basket, and for how much."""

    basket_total_fen: Fen  # what the basket costs before the coupon (integer fen)


class Redeem(Check):
    """``POST /pos/coupons/redeem``: use it, for this order, once."""

    order_id: Id


class Void(_Body):
    """``POST /pos/coupons/{code}/void``: the order that redeemed it was cancelled. The code is in
    the body too, so the signature covers it (the path must name the same code)."""

    order_id: Id


class PointsRedeem(_Signed):
    """``POST /pos/points/redeem``: spend a member's points on a catalog item, once per
    ``redemption_id`` (unique at this store). The member is named by the member code they show
    (``chalicelib/protocol/member_code.py``), never by an openid."""

    member_code: Annotated[str, Field(min_length=1, max_length=200)]
    item_id: ItemId
    redemption_id: Id


def keys_of(till_keys: str, store: str) -> list[str]:
    """The keys of ``store`` in ``SIYU_TILL_KEYS`` (``S001=k1|k2,S002=k3``)."""
    for pair in till_keys.split(","):
        name, sep, value = pair.strip().partition("=")
        if sep and name == store:
            return [key for key in value.split("|") if key]
    return []


def authenticate(inbound: Inbound, till_keys: str, now: datetime, tolerance_s: int) -> str:
    """The store whose key signed the request; Unauthorized otherwise (nothing is read first)."""
    store = inbound.header(STORE_HEADER) or ""
    timestamp = inbound.header(TIMESTAMP_HEADER)
    given = (inbound.header(SIGNATURE_HEADER) or "").strip().lower()
    if not store or not timestamp or not given:
        raise Unauthorized(f"missing {STORE_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    keys = keys_of(till_keys, store) if store.isascii() else []
    if not keys:
        raise Unauthorized("no till key for this store (SIYU_TILL_KEYS)")
    if not (timestamp.isascii() and given.isascii()):
        raise Unauthorized("till signature does not match")
    signed = inbound.path.encode("utf-8") if inbound.method == "GET" else inbound.body
    if not any(hmac.compare_digest(sign(key, timestamp, signed), given) for key in keys):
        raise Unauthorized("till signature does not match this store's keys")
    try:
        check_fresh(timestamp, now, tolerance_s)
    except Forbidden as exc:
        raise Unauthorized(exc.reason) from exc
    return store


B = TypeVar("B", bound=_Signed)


def parse(model: type[B], body: bytes, store: str, max_bytes: int) -> B:
    if len(body) > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes")
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not usable JSON: {type(exc).__name__}") from exc
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from exc
    if parsed.store_id != store:
        raise Forbidden("this till's key is for another store")
    return parsed


def parse_void(body: bytes, store: str, max_bytes: int, path_code: str) -> Void:
    parsed = parse(Void, body, store, max_bytes)
    if parsed.code != path_code:
        raise BadRequest("code: the body names another coupon than the path")
    return parsed


def signature(key: str, timestamp: str, body: bytes) -> str:
    """What a till sends in ``X-Siyu-Signature`` (the order webhook's scheme, with the store's key);
    for a ``GET``, ``body`` is the path."""
    return sign(key, timestamp, body)
