"""The member at the till: the code the mini program shows, and what the till learns from it.

``issue`` (``POST /mp/member-code``, the mini program's server): the person the openid is
(``identity.resolve.person_of``: a linked or merged id is its person; a new openid with a known
UnionID too), sealed with an expiry into a member code (``protocol.member_code``). One request
(the id's row and links together; a linked id one more); nothing is written.

``look_up`` (``GET /pos/members/{member_code}``, the till): the code opened, then what the
cashier applies to this sale — the tier and its discount, the birthday-month benefit, the points
balance and the coupons usable at this store now (the person's and those of every person merged
into them). Requests: one read (the person's row and links with their points balance), and one
query of the coupon index per owner (one for a person nobody was merged into). Nothing is
written: the sale itself comes as ``order_paid`` (with ``tier_discount_fen``) and coupon redeems.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import codes, ledger
from chalicelib.calendars import local_day
from chalicelib.duties import redemption
from chalicelib.errors import NotFound
from chalicelib.identity.resolve import person_of
from chalicelib.logs import log
from chalicelib.protocol import member_code
from chalicelib.protocol.member_code import CodeRequest
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import CouponSpec
from chalicelib.rules.scope import in_scope
from chalicelib.runtime import Context
from chalicelib.state.models import Coupon, Member, PointsRecord
from chalicelib.store import keys


def issue(ctx: Context, body: CodeRequest) -> dict[str, Any]:
    person, _ = person_of(body.openid, body.unionid)
    if person is None or person.erasing:
        raise NotFound("no member with this openid")
    ttl = ctx.rules().loyalty.till.member_code_ttl_seconds
    expires_at = ctx.clock.now().replace(microsecond=0) + timedelta(seconds=ttl)
    code = member_code.seal(person.member_id, expires_at, ctx.settings.member_code_key)
    log("till.member_code_issued", ttl_s=ttl)
    return {"member_code": code, "expires_at": expires_at.isoformat()}


def look_up(ctx: Context, store: str, code: str) -> dict[str, Any]:
    now = ctx.clock.now()
    member_id = member_code.open_code(code, ctx.settings.member_code_key, now)
    person, reads = person_of(member_id, also=[(PointsRecord, member_id, keys.BALANCE)])
    if person is None or person.erasing:
        raise NotFound("the member of this code is no longer known")
    rules = ctx.rules()
    owners = redemption.owners_of(person.member_id, person)
    held = [coupon for owner in sorted(owners) for coupon in Coupon.by_member.query(owner)]
    usable = sorted((c for c in held if _usable(c, store, now)), key=lambda c: (c.expires_at, c.code))
    tier = rules.loyalty.tier(person.tier)
    benefits = rules.loyalty.tiers.enabled and _in_scope(rules, person, store, now)
    log("till.member_looked_up", store=store, coupons=len(usable), merged=len(owners) - 1)
    return {
        "member_ref": codes.member_ref(person.member_id, ctx.settings.coupon_secret),
        "tier": tier.name,
        "discount_percent": tier.discount_percent if benefits else 0,
        "birthday_benefit": birthday_benefit(person, owners, held, rules, store, now),
        "points_balance": ledger.balance_of(person.member_id, reads).points,
        "coupons": [_shown(c) for c in usable],
    }


def birthday_benefit(
    person: Member, owners: frozenset[str], held: list[Coupon], rules: RuleSet, store: str, now: datetime
) -> dict[str, Any] | None:
    """This month's birthday benefit (the store's month), None outside the member's birthday
    month: the tier's birthday coupon, and whether it was issued and may be used here now."""
    rule = rules.loyalty
    spec = rule.tier(person.tier).birthday_coupon
    today = local_day(now, rules.stores.zone_of(store))
    if not person.birthday or person.birthday[:2] != f"{today.month:02d}":
        return None
    if spec is None or not rule.birthday.enabled or not _in_scope(rules, person, store, now):
        return None
    causes = {keys.birthday_benefit(owner, today.year) for owner in owners}
    coupon = next((c for c in held if c.cause_key in causes), None)
    if coupon is None:
        return {**_promised(spec), "status": "not_issued", "code": None}
    why = redemption.reason(coupon, None, None) or redemption.validity(coupon, store, now)
    return {**_shown(coupon), "status": why or "unused"}


def _in_scope(rules: RuleSet, person: Member, store: str, now: datetime) -> bool:
    return in_scope(rules.loyalty, "loyalty", person.member_id, person.store_id or store, now)


def _usable(coupon: Coupon, store: str, now: datetime) -> bool:
    return redemption.reason(coupon, None, None) is None and redemption.validity(coupon, store, now) is None


def _shown(coupon: Coupon) -> dict[str, Any]:
    return {"code": coupon.code, **redemption.terms_of(coupon)}


def _promised(spec: CouponSpec) -> dict[str, Any]:
    """A coupon the rules give but siyu has not issued yet, as the till shows it."""
    shown: dict[str, Any] = {"kind": spec.kind, "title": spec.title, "value_fen": spec.value_fen}
    if spec.percent_off is not None:
        shown["percent_off"] = spec.percent_off
    if spec.item is not None:
        shown["item"] = {"sku": spec.item.sku, "name": spec.item.name}
    return shown
