"""Order webhook from the mini program or the POS: HMAC-authenticated JSON.

Headers: ``X-Siyu-Timestamp`` (Unix seconds) and ``X-Siyu-Signature`` =
``sha256=`` + hex HMAC-SHA256(secret, timestamp + "." + body). Requests older or newer than
the tolerance (300 s) are refused, so a captured request cannot be replayed later; within the
window the order id makes a replay a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from chalicelib.errors import BadRequest, Forbidden, Unauthorized
from chalicelib.events import Event, Kind
from chalicelib.protocol.inbound import EARLIEST, LATEST, Inbound, check_fresh
from chalicelib.store import keys

SIGNATURE_HEADER = "x-siyu-signature"
TIMESTAMP_HEADER = "x-siyu-timestamp"


def _not_bool(value: Any) -> Any:
    """JSON true / false are not numbers (pydantic would read them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not true or false")
    return value


ID_PATTERN = r"^[A-Za-z0-9_\-.:]+$"
ID_MAX = 64
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]


def is_id(value: str) -> bool:
    """An id of this webhook (order, review, refund …): what the admin routes accept as one."""
    return len(value) <= ID_MAX and re.fullmatch(ID_PATTERN, value) is not None


Int = Annotated[int, BeforeValidator(_not_bool)]
Fen = Annotated[Int, Field(ge=0, le=100_000_000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    openid: Id
    store_id: Id | None = None
    at: datetime
    # The member's WeChat UnionID when the mini program or the POS knows it (the mini program's
    # login, code2session: docs/unionid.md): links this id to the person who has it.
    unionid: Id | None = None


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sku: Id
    category: Id | None = None
    series: Id | None = None
    qty: Annotated[Int, Field(ge=1, le=10_000)] = 1
    price_fen: Fen


class OrderPaid(_Body):
    type: Literal["order_paid"]
    order_id: Id
    amount_fen: Fen
    items: list[Item] = Field(default_factory=list, max_length=200)
    coupon_codes: list[Id] = Field(default_factory=list, max_length=20)
    tier_discount_fen: Fen = 0  # what the till took off for the member's tier (GET /pos/members/…)


class OrderRefunded(_Body):
    type: Literal["order_refunded"]
    order_id: Id
    refund_id: Id
    amount_fen: Fen


class CouponRedeemed(_Body):
    type: Literal["coupon_redeemed"]
    coupon_code: Id
    order_id: Id | None = None


class Review(_Body):
    """A customer's review of an order or visit (1-5 stars), from the POS or mini program."""

    type: Literal["review"]
    review_id: Id
    order_id: Id | None = None
    score: Annotated[Int, Field(ge=1, le=5)]


class NpsAnswer(_Body):
    """An answer to "how likely are you to recommend us" (0-10)."""

    type: Literal["nps"]
    answer_id: Id
    score: Annotated[Int, Field(ge=0, le=10)]


class PointsRedeemed(_Body):
    """The mini program or POS spends points; refused (nothing written) when the balance is short."""

    type: Literal["points_redeemed"]
    redemption_id: Id
    points: Annotated[Int, Field(ge=1, le=10_000_000)]
    reason: Annotated[str, Field(max_length=40)] | None = None


class CheckedIn(_Body):
    """A check-in from the mini program (the official account's keyword is the other way in)."""

    type: Literal["checked_in"]
    checkin_id: Id


class ProfileUpdated(_Body):
    """Profile data from the questionnaire or the mini program: the birthday (month and day)."""

    type: Literal["profile_updated"]
    update_id: Id
    birthday: Annotated[str, Field(pattern=r"^(\d{4}-)?(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]

    @field_validator("birthday")
    @classmethod
    def _real_day(cls, value: str) -> str:
        month, day = (int(part) for part in value[-5:].split("-"))
        try:
            date(2000, month, day)  # a leap year: 02-29 is a birthday
        except ValueError as exc:
            raise ValueError("is not a day of the year") from exc  # never the value: a birthday
        return value


class SubscribeConsent(_Body):
    """The mini program's ``wx.requestSubscribeMessage`` answer (docs/wechat.md §3.6): each accepted
    template grants one send of it, each rejected one is never sent."""

    type: Literal["subscribe_consent"]
    consent_id: Id
    accepted: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list, max_length=20)
    rejected: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list, max_length=20)


Body = (
    OrderPaid
    | OrderRefunded
    | CouponRedeemed
    | Review
    | NpsAnswer
    | PointsRedeemed
    | CheckedIn
    | ProfileUpdated
    | SubscribeConsent
)
Payload = Annotated[Body, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Body] = TypeAdapter(Payload)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def authenticate(inbound: Inbound, secret: str, now: datetime, tolerance_s: int) -> None:
    if not secret:
        raise Unauthorized("the order webhook has no secret configured (SIYU_ORDERS_HMAC_SECRET)")
    timestamp = inbound.header(TIMESTAMP_HEADER)
    given = inbound.header(SIGNATURE_HEADER)
    if not timestamp or not given:
        raise Unauthorized(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not (timestamp.isascii() and given.isascii()):  # sign() and compare_digest take ASCII only
        raise Unauthorized("order signature does not match")
    if not hmac.compare_digest(sign(secret, timestamp, inbound.body), given.strip().lower()):
        raise Unauthorized("order signature does not match")
    try:
        check_fresh(timestamp, now, tolerance_s)
    except Forbidden as exc:
        raise Unauthorized(exc.reason) from exc


class CatalogRedeem(BaseModel):
    """``POST /mp/points/redeem`` (the mini program's server, signed like this webhook): spend a
    member's points on a catalog item, once per ``redemption_id``; ``store_id`` where a per-store
    item is collected."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    openid: Id
    item_id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
    redemption_id: Id
    store_id: Id | None = None


def parse_redeem(body: bytes, max_bytes: int) -> CatalogRedeem:
    try:
        return CatalogRedeem.model_validate(load_json(body, max_bytes))
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from exc


def load_json(body: bytes, max_bytes: int) -> Any:
    """A signed JSON body, or ``BadRequest`` (too large, not JSON, not usable as JSON)."""
    if len(body) > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; arrays nested thousands deep
        raise BadRequest(f"body is not usable JSON: {type(exc).__name__}") from exc


def parse(body: bytes, max_bytes: int) -> Event:
    raw = load_json(body, max_bytes)
    try:
        payload = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from exc
    return to_event(payload)


def describe(exc: ValidationError) -> str:
    parts = []
    tags = {
        "order_paid",
        "order_refunded",
        "coupon_redeemed",
        "review",
        "nps",
        "points_redeemed",
        "checked_in",
        "profile_updated",
    }
    for error in exc.errors()[:10]:
        loc = [str(p) for p in error["loc"]]
        if loc and loc[0] in tags:  # pydantic prefixes the union member; ops think in body fields
            loc = loc[1:]
        where = "/" + "/".join(loc)
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def to_event(payload: Body) -> Event:
    at = payload.at if payload.at.tzinfo else None
    if at is None:
        raise BadRequest("/at: needs a time zone offset, e.g. 2026-11-23T10:00:00+08:00")
    if not EARLIEST <= at < LATEST:
        raise BadRequest(f"/at: must be between {EARLIEST.year} and {LATEST.year}")
    kind, key, data = _kind_of(payload)
    return Event(kind, key, "orders", at, payload.openid, store_id=payload.store_id, data=data)


def _kind_of(payload: Body) -> tuple[Kind, str, dict[str, Any]]:
    data = payload.model_dump(mode="json", exclude={"openid", "store_id", "at", "type"})
    if isinstance(payload, OrderPaid):
        kind, key = Kind.ORDER_PAID, keys.order_event("paid", payload.order_id)
    elif isinstance(payload, OrderRefunded):
        kind, key = Kind.ORDER_REFUNDED, keys.order_event("refund", payload.order_id, payload.refund_id)
    elif isinstance(payload, Review):
        kind, key = Kind.REVIEWED, keys.order_event("review", payload.review_id)
    elif isinstance(payload, NpsAnswer):
        kind, key = Kind.NPS_ANSWERED, keys.order_event("nps", payload.answer_id)
    elif isinstance(payload, CouponRedeemed):
        # The reporting member is part of the identity: a refused report (another member's openid)
        # must not take the key that the owner's real redemption needs.
        kind, key = Kind.COUPON_REDEEMED, keys.order_event("redeem", payload.coupon_code, payload.openid)
    elif isinstance(payload, PointsRedeemed):
        kind, key = Kind.POINTS_REDEEMED, keys.order_event("points", payload.redemption_id)
    elif isinstance(payload, CheckedIn):
        kind, key = Kind.CHECKED_IN, keys.order_event("checkin", payload.openid, payload.checkin_id)
    elif isinstance(payload, SubscribeConsent):  # as the official account's popup event reads
        kind, key = Kind.SUBSCRIBE_CONSENT, keys.order_event("consent", payload.openid, payload.consent_id)
        items = [{"template_id": t, "status": "accept"} for t in payload.accepted]
        data = {"items": items + [{"template_id": t, "status": "reject"} for t in payload.rejected]}
    else:
        kind, key = Kind.PROFILE_UPDATED, keys.order_event("profile", payload.openid, payload.update_id)
    return kind, key, data
