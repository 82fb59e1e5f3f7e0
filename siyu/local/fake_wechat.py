"""A fake WeChat / WeCom API server for local runs and tests (127.0.0.1 only).

Implements what siyu calls: ``stable_token`` (normal and force-refresh modes, with the
platform's semantics: normal mode returns the same token while it is valid), template,
subscribe (``bizsend``), customer-service and mini-program subscribe sends, WeCom's
``gettoken`` and ``add_msg_template``, and the group-robot webhook. It records every request,
answers after a configurable latency, and can be told to answer the next calls of an endpoint
with given error codes or to hang past the client's timeout.

A customer-group ``add_msg_template`` becomes a task its owner (``sender``) confirms later:
``confirm_group_messages()`` (or ``POST /_fake/group_confirm`` ``{"msgid": …}``, all pending when
none is named) sends them; ``get_groupmsg_task`` / ``get_groupmsg_send_result`` answer as WeCom
does (docs/wechat.md §4.5): task status 0 / 2, per group 1 sent or 3 when the group already had a
mass message that day.

It also answers the two calls through which siyu learns a UnionID (docs/unionid.md): the
official account's ``cgi-bin/user/info`` and WeCom's ``cgi-bin/externalcontact/get``, from
``unionids`` (platform id → UnionID; an id without one is answered as WeChat answers an account
that is not bound to an Open Platform account: no ``unionid`` key).

Control it in-process (``FakeWeChat`` methods) or over HTTP: ``GET /_fake/received``,
``POST /_fake/inject`` ``{"path": "/cgi-bin/message/template/send", "errcodes": [45009]}``,
``POST /_fake/config`` ``{"latency_ms": 100}``, ``POST /_fake/unionids`` ``{"oOA1": "uPerson1"}``,
``POST /_fake/reset``.

With ``enforce`` (``FakeWeChat(enforce=True)`` or ``POST /_fake/config {"enforce": true}``) it
also holds siyu to the platform's rules about users (``siyu/local/fake_platform.py``): the
customer-service window and its quota, following, one send per subscribe consent; and it owes a
delivery receipt for every template and ``bizsend`` send it accepted. It learns what users do
from whoever sends their events, in-process (``interacted``, ``followed``, ``unfollowed``,
``consented``, ``refused``, ``blocked``) or over HTTP (``POST /_fake/interacted``
``{"openid": "o1", "action": "message"}`` [``"at"``: unix seconds], ``/_fake/followed``,
``/_fake/unfollowed``, ``/_fake/blocked`` ``{"openid": "o1"}``, ``/_fake/consented``,
``/_fake/refused`` ``{"openid": "o1", "template_id": "T"}``); ``receipts()`` or ``POST
/_fake/receipts`` pops the receipts as the OA XML WeChat would post to siyu; ``GET
/_fake/refusals`` counts what it refused, by errcode and path. Windows are timed on ``now``
(unix seconds; ``siyu simulate`` passes its virtual clock). Without ``enforce`` every send with
a valid token is accepted, as before.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from siyu.local.fake_platform import ERRMSG, Platform
from siyu.local.serving import LoopbackServer

SEND_PATHS = (
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/subscribe/bizsend",
    "/cgi-bin/message/custom/send",
    "/cgi-bin/message/subscribe/send",
    "/cgi-bin/externalcontact/add_msg_template",
)
HANG = -999  # an injected "errcode" that makes the server hang instead of answering
GROUP_TASK = "/cgi-bin/externalcontact/get_groupmsg_task"
GROUP_RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"


class FakeWeChat:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        *,
        enforce: bool = False,
        now: Callable[[], float] = time.time,
        windows: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        """``windows``: action → (customer-service messages, seconds), replacing §3.5's table
        (``fake_platform.WINDOWS``); add ``"payment"`` to let a payment open one."""
        self.latency_s = latency_s
        self.hang_s = 6.0
        self.enforce, self.now, self._windows = enforce, now, windows
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
            self.platform = Platform(self._windows)
            self.group_tasks: dict[str, dict[str, Any]] = {}  # msgid -> sender, chats, results
            self.group_days: set[tuple[str, str]] = set()  # (chat, day) that received a mass message

    def inject(self, path: str, *errcodes: int) -> None:
        with self._lock:
            self.injected[path].extend(errcodes)

    def invalidate_token(self) -> None:
        """As if someone force-refreshed elsewhere: the token siyu holds is no longer valid."""
        with self._lock:
            self.token = "fake-token-" + secrets.token_hex(6)

    def sent(self, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """The requests received (from the ``since``-th on), of one path or all."""
        with self._lock:
            return [r for r in self.received[since:] if path is None or r["path"] == path]

    def confirm_group_messages(self, msgid: str | None = None) -> int:
        """The owners confirm their pending group mass messages (one, or all): each group gets it,
        unless it had one that day already (status 3). Returns how many tasks were sent."""
        with self._lock:
            day = time.strftime("%Y-%m-%d", time.gmtime(self.now() + 8 * 3600))
            done = 0
            for key, task in self.group_tasks.items():
                if task["status"] == 2 or (msgid is not None and key != msgid):
                    continue
                task["status"], done = 2, done + 1
                for chat in task["chats"]:
                    task["results"][chat] = 3 if (chat, day) in self.group_days else 1
                    self.group_days.add((chat, day))
            return done

    def _group(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            task = self.group_tasks.get(str(body.get("msgid")))
            if task is None:
                return {
                    "errcode": 0,
                    "errmsg": "ok",
                    "next_cursor": "",
                    "task_list" if path == GROUP_TASK else "send_list": [],
                }
            if path == GROUP_TASK:
                return {
                    "errcode": 0,
                    "errmsg": "ok",
                    "next_cursor": "",
                    "task_list": [{"userid": task["sender"], "status": task["status"]}],
                }
            sent = [
                {"chat_id": chat, "userid": task["sender"], "status": task["results"].get(chat, 0)}
                for chat in task["chats"]
                if body.get("userid") == task["sender"]
            ]
            return {"errcode": 0, "errmsg": "ok", "next_cursor": "", "send_list": sent}

    def configure(self, *, enforce: bool | None = None, now: Callable[[], float] | None = None) -> None:
        with self._lock:
            self.enforce = self.enforce if enforce is None else enforce
            self.now = now or self.now

    # -- what users do (told by whoever sends their events) ----------------------------------
    def interacted(self, openid: str, action: str, at: float | None = None) -> None:
        """``action``: message | follow | click | scan | payment (a follow also follows)."""
        with self._lock:
            self.platform.interacted(openid, action, self.now() if at is None else at)

    def followed(self, openid: str) -> None:
        with self._lock:
            self.platform.followed(openid)

    def unfollowed(self, openid: str) -> None:
        with self._lock:
            self.platform.unfollowed(openid)

    def consented(self, openid: str, template_id: str) -> None:
        """One accept of a subscribe-message popup: one send of that template."""
        with self._lock:
            self.platform.consented(openid, template_id)

    def refused(self, openid: str, template_id: str) -> None:
        with self._lock:
            self.platform.refused(openid, template_id)

    def blocked(self, openid: str, blocked: bool = True) -> None:
        """The user refuses template messages: WeChat accepts the send, its receipt says failed."""
        with self._lock:
            self.platform.blocked(openid, blocked)

    def receipts(self) -> list[str]:
        """The delivery receipts owed so far (popped), as the OA XML bodies WeChat posts."""
        with self._lock:
            return self.platform.receipts()

    def refusals(self) -> dict[str, dict[str, int]]:
        """What the platform's rules refused: errcode → API path → count."""
        with self._lock:
            return self.platform.refusal_counts()

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
        if path in ("/cgi-bin/user/info", "/cgi-bin/externalcontact/get", GROUP_TASK, GROUP_RESULT):
            return self._user(path, request) if path not in (GROUP_TASK, GROUP_RESULT) else self._group(path, body)
        if path in SEND_PATHS:
            if request.args.get("access_token") not in (self.token, "fake-wecom-token"):
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            return self._send(path, body)
        return {"errcode": 404, "errmsg": f"fake WeChat does not implement {path}"}

    def _send(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self.enforce:
                now = self.now()
                refused = self.platform.judge(path, body, now)
                if refused is not None:
                    return {"errcode": refused, "errmsg": ERRMSG[refused]}
            msgid = next(self._msgids)
            if self.enforce:
                self.platform.accepted(path, body, msgid, now)
            if body.get("chat_type") == "group":
                chats = [str(c) for c in body.get("chat_id_list") or []]
                self.group_tasks[str(msgid)] = {
                    "sender": body.get("sender"),
                    "chats": chats,
                    "status": 0,
                    "results": {},
                }
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

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
        route = self._routes().get(path)
        if route is None:
            return {"errcode": 404, "errmsg": "unknown control path"}
        try:
            return route(body)
        except (KeyError, ValueError) as exc:
            return {"errcode": 400, "errmsg": f"bad control request: {exc}"}

    def _routes(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "/_fake/received": lambda body: {"received": self.sent()},
            "/_fake/inject": self._control_inject,
            "/_fake/config": self._control_config,
            "/_fake/unionids": self._control_unionids,
            "/_fake/reset": _done(lambda body: self.reset()),
            "/_fake/interacted": _done(
                lambda body: self.interacted(
                    str(body["openid"]), str(body["action"]), float(body["at"]) if "at" in body else None
                )
            ),
            "/_fake/followed": _done(lambda body: self.followed(str(body["openid"]))),
            "/_fake/unfollowed": _done(lambda body: self.unfollowed(str(body["openid"]))),
            "/_fake/blocked": _done(lambda body: self.blocked(str(body["openid"]), bool(body.get("blocked", True)))),
            "/_fake/consented": _done(lambda body: self.consented(str(body["openid"]), str(body["template_id"]))),
            "/_fake/refused": _done(lambda body: self.refused(str(body["openid"]), str(body["template_id"]))),
            "/_fake/receipts": lambda body: {"receipts": self.receipts()},
            "/_fake/refusals": lambda body: {"refusals": self.refusals()},
            "/_fake/group_confirm": lambda body: {"sent": self.confirm_group_messages(body.get("msgid"))},
        }

    def _control_inject(self, body: dict[str, Any]) -> dict[str, Any]:
        self.inject(str(body.get("path")), *[int(code) for code in body.get("errcodes", [])])
        return {"ok": True}

    def _control_config(self, body: dict[str, Any]) -> dict[str, Any]:
        self.latency_s = float(body.get("latency_ms", self.latency_s * 1000)) / 1000
        if "enforce" in body:
            self.configure(enforce=bool(body["enforce"]))
        return {"ok": True, "latency_ms": self.latency_s * 1000, "enforce": self.enforce}

    def _control_unionids(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.unionids.update({str(k): str(v) for k, v in body.items()})
        return {"ok": True}


def _done(step: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A control route that does ``step`` and answers ``{"ok": true}``."""

    def route(body: dict[str, Any]) -> dict[str, Any]:
        step(body)
        return {"ok": True}

    return route
