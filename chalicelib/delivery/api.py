"""WeChat and WeCom HTTP APIs: tokens and calls (docs/wechat.md §3, §4.4, §5.2).

Errors, drawn once:

    ApiError(errcode)      WeChat answered with a non-zero errcode
    NotDelivered           the request never reached WeChat (connect failure): safe to retry
    OutcomeUnknown         the request left but no answer came (read timeout): do NOT resend
                           blindly; reconcile with the delivery event when it arrives

The access token is ``stable_token`` in normal mode (idempotent across containers), cached in
memory and shared in DynamoDB. On 40001 / 42001 / 40014 the client fetches once more in normal
mode and retries the call once; only if WeChat hands back the very token it just refused does it
force a refresh, behind a lock and a daily budget (20 a day, 30 s apart on WeChat's side).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any, Literal

import requests
from urllib3.exceptions import NewConnectionError

from chalicelib.clock import Clock
from chalicelib.errors import ApiError, NotDelivered, OutcomeUnknown, Retryable
from chalicelib.logs import log
from chalicelib.settings import Settings
from chalicelib.state.models import Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome

TOKEN_ERRORS = frozenset({40001, 42001, 40014})
MARGIN = timedelta(minutes=5)
FORCE_REFRESH_PER_DAY = 20
FORCE_REFRESH_SPACING = timedelta(seconds=30)


_memory: dict[str, tuple[str, datetime]] = {}
_memory_lock = threading.Lock()


def clear_memory() -> None:
    with _memory_lock:
        _memory.clear()


class Tokens:
    """Access tokens of one app (official account, or WeCom corp)."""

    def __init__(
        self, settings: Settings, clock: Clock, http: requests.Session, kind: Literal["oa", "wecom"] = "oa"
    ) -> None:
        self.settings, self.clock, self.http, self.kind = settings, clock, http, kind
        self.app = settings.wechat_app_id if kind == "oa" else settings.wecom_corp_id

    def get(self) -> str:
        now = self.clock.now()
        with _memory_lock:
            cached = _memory.get(self.app)
        if cached and cached[1] > now:
            return cached[0]
        shared = db.get(Shared, keys.TOKEN, self.app)
        if shared is not None and shared.valid_until and shared.valid_until > now and shared.value:
            self._remember(shared.value, shared.valid_until)
            return shared.value
        return self._fetch(force=False)

    def refetch(self, stale: str) -> str:
        """After WeChat refused ``stale``: normal mode once; force only if that returns it again."""
        with _memory_lock:
            _memory.pop(self.app, None)
        fresh = self._fetch(force=False)
        if fresh != stale or self.kind != "oa":
            return fresh
        return self._force_refresh()

    def _remember(self, token: str, valid_until: datetime) -> None:
        with _memory_lock:
            _memory[self.app] = (token, valid_until)

    def _fetch(self, force: bool) -> str:
        if self.kind == "oa":
            body = {
                "grant_type": "client_credential",
                "appid": self.settings.wechat_app_id,
                "secret": self.settings.wechat_app_secret,
                "force_refresh": force,
            }
            data = _post_json(
                self.http, f"{self.settings.wechat_api_base}/cgi-bin/stable_token", body, self.settings.http_timeout_s
            )
        else:
            url = f"{self.settings.wecom_api_base}/cgi-bin/gettoken"
            params = {"corpid": self.settings.wecom_corp_id, "corpsecret": self.settings.wecom_secret}
            data = _get_json(self.http, url, params, self.settings.http_timeout_s)
        if data.get("errcode") or "access_token" not in data:
            raise ApiError(int(data.get("errcode", -1)), str(data.get("errmsg", "no token")), data)
        token = str(data["access_token"])
        valid_until = self.clock.now() + timedelta(seconds=int(data.get("expires_in", 7200))) - MARGIN
        db.save(Shared(keys.TOKEN, self.app, value=token, valid_until=valid_until, expires=valid_until + MARGIN))
        self._remember(token, valid_until)
        log("token.fetched", kind=self.kind, force=force)
        return token

    def _force_refresh(self) -> str:
        now = self.clock.now()
        lock = Shared(
            keys.LOCK,
            keys.force_refresh(self.app),
            expires=now + FORCE_REFRESH_SPACING,
            valid_until=now + FORCE_REFRESH_SPACING,
        )
        free = Shared.pk.does_not_exist() | (Shared.valid_until < now)
        if db.put(lock, free, if_absent=False) is not Outcome.NEW:
            raise Retryable("another container is force-refreshing the token")
        budget = Shared(keys.COUNTERS, keys.force_refresh_budget(self.app, now.strftime("%Y-%m-%d")))
        actions = [Shared.tally.add(1), Shared.expires.set(now + timedelta(days=2))]
        left = Shared.tally.does_not_exist() | (Shared.tally < FORCE_REFRESH_PER_DAY)
        if db.update(budget, actions, left) is not Outcome.NEW:
            log("token.force_budget_spent", app=self.app)
            raise Retryable("today's force-refresh budget is spent")
        return self._fetch(force=True)


def _post_json(http: requests.Session, url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return _call(
        lambda: http.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=(3.05, timeout))
    )


def _get_json(http: requests.Session, url: str, params: dict[str, str], timeout: float) -> dict[str, Any]:
    return _call(lambda: http.get(url, params=params, timeout=(3.05, timeout)))


def _call(do: Any) -> dict[str, Any]:
    try:
        response = do()
    except requests.ConnectTimeout as exc:
        raise NotDelivered("connect timeout") from exc
    except requests.ReadTimeout as exc:
        raise OutcomeUnknown("no answer from WeChat") from exc
    except requests.ConnectionError as exc:
        # Refused or unresolvable: the request never left. Anything else (reset, closed mid-way)
        # may have reached WeChat, so its outcome is unknown.
        if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError):
            raise NotDelivered("connection refused") from exc
        raise OutcomeUnknown(type(exc).__name__) from exc
    try:
        data = response.json()
    except ValueError as exc:
        raise NotDelivered(f"HTTP {response.status_code}, not JSON") from exc
    return data if isinstance(data, dict) else {"errcode": -1, "errmsg": "unexpected answer"}


class WeChatAPI:
    def __init__(self, settings: Settings, clock: Clock, http: requests.Session | None = None) -> None:
        self.settings = settings
        self.http = http or _session()
        self.tokens = {
            "oa": Tokens(settings, clock, self.http, "oa"),
            "wecom": Tokens(settings, clock, self.http, "wecom"),
        }

    def authorize(self, auth: Literal["oa", "wecom", "robot"]) -> None:
        """Have the access token ready (fetched and stored if need be) before a call is made."""
        if auth != "robot":
            self.tokens[auth].get()

    def call(
        self, path: str, body: dict[str, Any], auth: Literal["oa", "wecom", "robot"], robot: str = "ops"
    ) -> dict[str, Any]:
        """POST one API call; returns WeChat's answer (errcode 0) or raises (module docstring)."""
        if auth == "robot":
            url = f"{self.settings.wecom_api_base}{path}?key={self.settings.robot_key(robot)}"
            return self._checked(_post_json(self.http, url, body, self.settings.http_timeout_s))
        tokens = self.tokens[auth]
        base = self.settings.wechat_api_base if auth == "oa" else self.settings.wecom_api_base
        token = tokens.get()
        data = _post_json(self.http, f"{base}{path}?access_token={token}", body, self.settings.http_timeout_s)
        if int(data.get("errcode") or 0) in TOKEN_ERRORS:
            token = tokens.refetch(token)  # once; never a loop
            data = _post_json(self.http, f"{base}{path}?access_token={token}", body, self.settings.http_timeout_s)
        return self._checked(data)

    def query(self, path: str, params: dict[str, str], auth: Literal["oa", "wecom"]) -> dict[str, Any]:
        """GET one read API call (``user/info``, ``externalcontact/get``: docs/unionid.md) with
        the same token handling as ``call``; returns WeChat's answer (errcode 0) or raises."""
        tokens = self.tokens[auth]
        base = self.settings.wechat_api_base if auth == "oa" else self.settings.wecom_api_base
        token = tokens.get()
        data = _get_json(self.http, f"{base}{path}", {**params, "access_token": token}, self.settings.http_timeout_s)
        if int(data.get("errcode") or 0) in TOKEN_ERRORS:
            token = tokens.refetch(token)  # once; never a loop
            data = _get_json(
                self.http, f"{base}{path}", {**params, "access_token": token}, self.settings.http_timeout_s
            )
        return self._checked(data)

    @staticmethod
    def _checked(data: dict[str, Any]) -> dict[str, Any]:
        errcode = int(data.get("errcode") or 0)
        if errcode:
            raise ApiError(errcode, str(data.get("errmsg", "")), data)
        return data


_sessions = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per thread, reused by warm containers."""
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session
