"""A fake WeChat / WeCom API server for local runs and tests (127.0.0.1 only).

Implements what siyu calls: ``stable_token`` (normal and force-refresh modes, with the
platform's semantics: normal mode returns the same token while it is valid), template,
subscribe (``bizsend``), customer-service and mini-program subscribe sends, WeCom's
``gettoken`` and ``add_msg_template``, and the group-robot webhook. It records every request,
answers after a configurable latency, and can be told to answer the next calls of an endpoint
with given error codes or to hang past the client's timeout.

It also answers the two calls through which siyu learns a UnionID (docs/unionid.md): the
official account's ``cgi-bin/user/info`` and WeCom's ``cgi-bin/externalcontact/get``, from
``unionids`` (platform id → UnionID; an id without one is answered as WeChat answers an account
that is not bound to an Open Platform account: no ``unionid`` key).

Control it in-process (``FakeWeChat`` methods) or over HTTP: ``GET /_fake/received``,
``POST /_fake/inject`` ``{"path": "/cgi-bin/message/template/send", "errcodes": [45009]}``,
``POST /_fake/config`` ``{"latency_ms": 100}``, ``POST /_fake/unionids`` ``{"oOA1": "uPerson1"}``,
``POST /_fake/reset``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from typing import Any

from werkzeug.wrappers import Request, Response

from siyu.local.serving import LoopbackServer

SEND_PATHS = (
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/subscribe/bizsend",
    "/cgi-bin/message/custom/send",
    "/cgi-bin/message/subscribe/send",
    "/cgi-bin/externalcontact/add_msg_template",
)
HANG = -999  # an injected "errcode" that makes the server hang instead of answering


class FakeWeChat:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.hang_s = 6.0
        self._lock = threading.Lock()
        self._msgids = itertools.count(1_000_000)
        self.reset()
        self._server = LoopbackServer(self._app, host, port, "fake-wechat")

    # -- control ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> FakeWeChat:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.received: list[dict[str, Any]] = []
            self.injected: dict[str, deque[int]] = defaultdict(deque)
            self.token = "fake-token-" + secrets.token_hex(6)
            self.token_calls = {"normal": 0, "force": 0}
            self.unionids: dict[str, str] = {}

    def inject(self, path: str, *errcodes: int) -> None:
        with self._lock:
            self.injected[path].extend(errcodes)

    def invalidate_token(self) -> None:
        """As if someone force-refreshed elsewhere: the token siyu holds is no longer valid."""
        with self._lock:
            self.token = "fake-token-" + secrets.token_hex(6)

    def sent(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if path is None or r["path"] == path]

    # -- the API ---------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = Response(
            json.dumps(self._handle(request), ensure_ascii=False), content_type="application/json; charset=utf-8"
        )
        return response(environ, start_response)

    def _handle(self, request: Request) -> dict[str, Any]:
        path = request.path
        if path.startswith("/_fake/"):
            return self._control(path, request)
        body = request.get_json(silent=True) or {}
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            self.received.append({"path": path, "query": dict(request.args), "body": body, "at": time.time()})
            injected = self.injected[path].popleft() if self.injected[path] else None
        if injected is not None:
            return self._injected(injected)
        if path == "/cgi-bin/stable_token":
            return self._stable_token(body)
        if path == "/cgi-bin/gettoken":
            return {"errcode": 0, "access_token": "fake-wecom-token", "expires_in": 7200}
        if path == "/cgi-bin/webhook/send":
            return {"errcode": 0, "errmsg": "ok"}
        if path in ("/cgi-bin/user/info", "/cgi-bin/externalcontact/get"):
            return self._user(path, request)
        if path in SEND_PATHS:
            if request.args.get("access_token") not in (self.token, "fake-wecom-token"):
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            return {"errcode": 0, "errmsg": "ok", "msgid": next(self._msgids)}
        return {"errcode": 404, "errmsg": f"fake WeChat does not implement {path}"}

    def _injected(self, errcode: int) -> dict[str, Any]:
        if errcode == HANG:
            time.sleep(self.hang_s)
            return {"errcode": -1, "errmsg": "too late"}
        return {"errcode": errcode, "errmsg": f"injected {errcode}"}

    def _user(self, path: str, request: Request) -> dict[str, Any]:
        if request.args.get("access_token") not in (self.token, "fake-wecom-token"):
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        with self._lock:
            if path == "/cgi-bin/user/info":
                openid = request.args.get("openid", "")
                if not openid:
                    return {"errcode": 40003, "errmsg": "invalid openid"}
                user: dict[str, Any] = {
                    "subscribe": 1,
                    "openid": openid,
                    "subscribe_time": 1714037059,
                    "tagid_list": [],
                }
                if openid in self.unionids:
                    user["unionid"] = self.unionids[openid]
                return user
            external = request.args.get("external_userid", "")
            if not external:
                return {"errcode": 40096, "errmsg": "invalid external userid", "follow_user": []}
            contact: dict[str, Any] = {"external_userid": external, "name": "顾客", "type": 1, "gender": 0}
            if external in self.unionids:
                contact["unionid"] = self.unionids[external]
            return {"errcode": 0, "errmsg": "ok", "external_contact": contact, "follow_user": []}

    def _stable_token(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if body.get("force_refresh"):
                self.token_calls["force"] += 1
                self.token = "fake-token-" + secrets.token_hex(6)
            else:
                self.token_calls["normal"] += 1
            return {"access_token": self.token, "expires_in": 7200}

    def _control(self, path: str, request: Request) -> dict[str, Any]:
        body = request.get_json(silent=True) or {}
        if path == "/_fake/received":
            return {"received": self.sent()}
        if path == "/_fake/inject":
            self.inject(str(body.get("path")), *[int(code) for code in body.get("errcodes", [])])
            return {"ok": True}
        if path == "/_fake/config":
            self.latency_s = float(body.get("latency_ms", self.latency_s * 1000)) / 1000
            return {"ok": True, "latency_ms": self.latency_s * 1000}
        if path == "/_fake/unionids":
            with self._lock:
                self.unionids.update({str(k): str(v) for k, v in body.items()})
            return {"ok": True}
        if path == "/_fake/reset":
            self.reset()
            return {"ok": True}
        return {"errcode": 404, "errmsg": "unknown control path"}
