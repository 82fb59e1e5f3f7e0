"""What WeChat enforces about its users, for the fake WeChat (docs/wechat.md §3.2–§3.6).

It learns what users do from the side that sends their events (a test, ``siyu simulate``):
``interacted`` (a message, a follow, a menu click, a scan; a payment only when its window is
configured, since the payment window is unverified), ``followed`` / ``unfollowed``,
``consented`` / ``refused`` (one accept of a subscribe-message popup is one send), ``blocked``.
Then it judges each send as WeChat would:

- customer service (``custom/send``): only inside the window the user's latest action opened,
  with that action's quota (message: 5 in 48 h; follow, click, scan: 3 in 1 minute); outside it
  ``45015``, quota used ``45047``, a user who unfollowed ``43004``;
- template: ``43004`` unless the user follows;
- subscribe (``bizsend``, the mini program's ``subscribe/send``): an unconsumed consent to that
  template, consumed by the send, else ``43101`` (``bizsend`` to a user who unfollowed: ``43004``).

An accepted template or ``bizsend`` send owes a delivery receipt (``TEMPLATESENDJOBFINISH``,
``subscribe_msg_sent_event``), kept until popped. Not thread-safe: the fake WeChat calls it under
its lock. Times are unix seconds on the clock the fake was given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from siyu.local import callbacks

CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"
BIZSEND = "/cgi-bin/message/subscribe/bizsend"
MP_SUBSCRIBE = "/cgi-bin/message/subscribe/send"
ACTIONS = ("message", "follow", "click", "scan", "payment")
# action → (customer-service messages allowed, seconds the window stays open): §3.5's table
WINDOWS: dict[str, tuple[int, float]] = {
    "message": (5, 48 * 3600),
    "follow": (3, 60),
    "click": (3, 60),
    "scan": (3, 60),
}
ERRMSG = {
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
}
BLOCKED_STATUS = "failed:user block"


@dataclass
class User:
    follows: bool = False
    unfollowed: bool = False  # followed once, then left
    blocked: bool = False  # refuses template messages: their receipts say so
    action: str | None = None  # the latest action that opened a customer-service window
    opened_at: float = 0.0
    used: int = 0  # customer-service messages sent in that window
    grants: Counter[str] = field(default_factory=Counter)  # template id → unconsumed accepts


class Platform:
    def __init__(self, windows: dict[str, tuple[int, float]] | None = None) -> None:
        self.windows = dict(WINDOWS if windows is None else windows)
        self.users: dict[str, User] = {}
        self.refusals: Counter[tuple[int, str]] = Counter()  # (errcode, path) → count
        self._receipts: list[str] = []

    def user(self, openid: str) -> User:
        return self.users.setdefault(openid, User())

    # -- what users do -----------------------------------------------------------------------
    def interacted(self, openid: str, action: str, at: float) -> None:
        """The user's action opens a new customer-service window (a follow also makes a follower).
        A payment opens one only when its window is configured."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
        user = self.user(openid)
        if action == "follow":
            self.followed(openid)
        if action in self.windows:
            user.action, user.opened_at, user.used = action, at, 0

    def followed(self, openid: str) -> None:
        user = self.user(openid)
        user.follows, user.unfollowed = True, False

    def unfollowed(self, openid: str) -> None:
        user = self.user(openid)
        user.follows, user.unfollowed, user.action = False, True, None

    def consented(self, openid: str, template_id: str) -> None:
        self.user(openid).grants[template_id] += 1

    def refused(self, openid: str, template_id: str) -> None:
        self.user(openid).grants.pop(template_id, None)

    def blocked(self, openid: str, blocked: bool = True) -> None:
        self.user(openid).blocked = blocked

    # -- what WeChat answers -----------------------------------------------------------------
    def judge(self, path: str, body: dict, now: float) -> int | None:
        """The errcode WeChat refuses this send with (recorded), or None: accepted, and what it
        consumes (a window's quota, a consent) is consumed."""
        openid = str(body.get("touser") or "")
        user = self.users.get(openid) or User()
        code: int | None = None
        if path == CUSTOM:
            code = self._custom(user, now)
        elif path == TEMPLATE:
            code = None if user.follows else 43004
        elif path in (BIZSEND, MP_SUBSCRIBE):
            code = 43004 if path == BIZSEND and user.unfollowed else self._consent(user, str(body.get("template_id")))
        if code is not None:
            self.refusals[(code, path)] += 1
            return code
        if openid and path in (CUSTOM, BIZSEND, MP_SUBSCRIBE):
            self.users[openid] = user  # what the send consumed is kept
        return None

    def _custom(self, user: User, now: float) -> int | None:
        if user.unfollowed:
            return 43004
        if user.action is None:
            return 45015
        quota, seconds = self.windows[user.action]
        if now >= user.opened_at + seconds:
            return 45015
        if user.used >= quota:
            return 45047
        user.used += 1
        return None

    def _consent(self, user: User, template_id: str) -> int | None:
        if user.grants[template_id] <= 0:
            return 43101
        user.grants[template_id] -= 1
        return None

    # -- what WeChat reports later -----------------------------------------------------------
    def accepted(self, path: str, body: dict, msgid: int, now: float) -> None:
        """Queue the delivery receipt an accepted send owes (template and ``bizsend`` only: the
        mini program's results go to the mini program, customer service has none)."""
        openid = str(body.get("touser") or "")
        if path == TEMPLATE:
            status = BLOCKED_STATUS if self.user(openid).blocked else "success"
            self._receipts.append(callbacks.oa_template_finished(openid, msgid, status, int(now)))
        elif path == BIZSEND:
            template_id = str(body.get("template_id") or "")
            self._receipts.append(callbacks.oa_subscribe_sent(openid, template_id, msgid, int(now)))

    def receipts(self) -> list[str]:
        """The receipts owed so far, as the OA XML WeChat posts (popped)."""
        ready, self._receipts = self._receipts, []
        return ready

    def refusal_counts(self) -> dict[str, dict[str, int]]:
        """errcode → API path → refusals."""
        out: dict[str, dict[str, int]] = {}
        for (code, path), n in sorted(self.refusals.items()):
            out.setdefault(str(code), {})[path] = n
        return out
