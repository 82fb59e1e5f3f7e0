"""Who is using the console, and what they may do.

Two roles (issue 20, "who may do what"):

- ``ops``: everything — every store and the chain, publish and roll back rules, erase members;
- ``store_manager``: only their stores (KPIs, alerts, tickets, members, recall rows); may answer
  their stores' tickets and preview rule changes, may not publish rules nor erase.

Every console API call resolves its ``Principal`` here, server-side; the page hides what a role
cannot do, but the check that counts is ``Principal.see`` / ``Principal.require_ops``.

In AWS the console's routes sit behind a Cognito user pool authorizer: API Gateway has checked
the ID token, and the role and stores come from its claims (``custom:role``,
``custom:stores`` = ``S001,S002``). On the local stage (``make run``) a login token is used
instead, in the ``X-Siyu-Console-Token`` header: the admin token (``SIYU_ADMIN_TOKEN``) logs in as
ops, and ``store_token`` derives a store manager's token from it (``store:S001:<mac>``); ``make
run``'s banner prints both. The
admin API keeps its IAM authorizer for machines (``chalicelib/admin.py``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.settings import Settings

Role = Literal["ops", "store_manager"]
ROLES: tuple[Role, ...] = ("ops", "store_manager")
ROLE_NAMES = {"ops": "运营", "store_manager": "店长"}
# The local login travels in its own header: ``Authorization`` belongs to the Cognito ID token
# (API Gateway's authorizer reads it, and Chalice's local server decodes it as a JWT).
TOKEN_HEADER = "X-Siyu-Console-Token"


@dataclass(frozen=True)
class Principal:
    user: str
    role: Role
    stores: frozenset[str]  # a store manager's stores; empty for ops (who sees every store)

    @property
    def is_ops(self) -> bool:
        return self.role == "ops"

    def sees(self, store_id: str | None) -> bool:
        """Ops see every store and the chain; a store manager only their own stores."""
        return self.is_ops or (store_id is not None and store_id in self.stores)

    def see(self, store_id: str | None, what: str = "this") -> None:
        if not self.sees(store_id):
            raise Forbidden(f"{what} belongs to a store outside yours")

    def require_ops(self, what: str) -> None:
        if not self.is_ops:
            raise Forbidden(f"only ops may {what}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "role": self.role,
            "role_name": ROLE_NAMES[self.role],
            "stores": sorted(self.stores),
            "can_publish": self.is_ops,
            "can_erase": self.is_ops,
        }


def _mac(settings: Settings, stores: str) -> str:
    key = settings.admin_token.encode()
    return hmac.new(key, f"console-store-manager:{stores}".encode(), hashlib.sha256).hexdigest()[:24]


def store_token(settings: Settings, stores: list[str]) -> str:
    """The local login of a manager of ``stores`` (``make run``'s banner prints one)."""
    joined = "+".join(sorted(stores))
    return f"store:{joined}:{_mac(settings, joined)}"


def _from_token(settings: Settings, token: str | None) -> Principal:
    if not settings.admin_token:
        raise Unauthorized("the console's local login is closed: SIYU_ADMIN_TOKEN is not set")
    token = (token or "").strip()
    if not token:
        raise Unauthorized(f"missing {TOKEN_HEADER} header")
    if hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        return Principal("ops-token", "ops", frozenset())
    kind, _, rest = token.partition(":")
    stores, _, mac = rest.rpartition(":")
    if kind == "store" and stores and hmac.compare_digest(mac.encode(), _mac(settings, stores).encode()):
        return Principal(f"store-manager:{stores.replace('+', ',')}", "store_manager", frozenset(stores.split("+")))
    raise Unauthorized("wrong console token")


def _from_claims(claims: dict[str, Any]) -> Principal:
    role = str(claims.get("custom:role") or "")
    if role not in ROLES:
        raise Forbidden("this user has no console role (custom:role is ops or store_manager)")
    stores = frozenset(s.strip() for s in str(claims.get("custom:stores") or "").split(",") if s.strip())
    if role == "store_manager" and not stores:
        raise Forbidden("a store manager needs custom:stores")
    user = str(claims.get("email") or claims.get("cognito:username") or claims.get("sub") or "cognito-user")
    return Principal(user, role, frozenset() if role == "ops" else stores)


def claims_of(request: Any) -> dict[str, Any] | None:
    """The ID token's claims, as API Gateway's Cognito authorizer passes them on."""
    authorizer = (getattr(request, "context", None) or {}).get("authorizer") or {}
    claims = authorizer.get("claims")
    return claims if isinstance(claims, dict) and claims else None


def authenticate(settings: Settings, request: Any) -> Principal:
    """The caller of a console API route. Claims count only outside the local stage (the local
    server passes the authorizer through unchecked)."""
    claims = claims_of(request)
    if claims is not None and settings.stage != "local":
        return _from_claims(claims)
    headers = {k.lower(): v for k, v in (getattr(request, "headers", None) or {}).items()}
    return _from_token(settings, headers.get(TOKEN_HEADER.lower()))


def local_logins(settings: Settings, store_ids: list[str]) -> list[str]:
    """The console's logins of the local stage, as ``make run``'s banner prints them: ops, and a
    manager of the first store (any other store's: ``store_token``)."""
    logins = [f"ops: {settings.admin_token}"] if settings.admin_token else ["closed: SIYU_ADMIN_TOKEN is not set"]
    if settings.admin_token and store_ids:
        logins.append(f"store manager of {store_ids[0]}: {store_token(settings, store_ids[:1])}")
    return logins
