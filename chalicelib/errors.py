"""The one error tree of siyu. Routes map it to HTTP answers in one place (``web.py``).

SiyuError
├── BadRequest            400  input we can classify as malformed (XML, JSON, size, decrypt)
│   └── EntityDeclared    400  DOCTYPE / ENTITY in XML
├── Forbidden             403  wrong signature, stale timestamp, wrong receive id
├── Unauthorized          401  missing or wrong credential (admin, order HMAC)
├── NotFound              404  the thing asked for does not exist
├── AlreadyDone                an idempotent effect found its key taken: success, not failure
│   └── Erased                 a late event of an erased member: dropped, which is success
├── BadRule                    a rule file the runtime cannot apply (skipped, ops alerted)
├── InvalidRules          400  a rule set that fails its checks (every problem, located)
├── Conflict              409  changed meanwhile (a rule version, a ticket), or would move back
├── Retryable             503  transient trouble (throttling, a contended item): retry
├── Misconfigured         503  the stage lacks a secret it must not run without
└── DeliveryError              a message that cannot go to WeChat as it is (the sender decides)
    ├── ApiError               WeChat answered with an errcode (docs/wechat.md §3.2)
    ├── NotDelivered           the request never left (connect timeout, connection refused)
    ├── OutcomeUnknown         the request left and no answer came: never re-sent blindly
    └── PayloadInvalid         it would break a platform limit: dropped unsent, with the reason

(``InvalidRules`` is a ``BadRequest``; the statuses are what a route answers.)
"""

from __future__ import annotations

from typing import Any


class SiyuError(Exception):
    status = 500
    code = "internal"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(SiyuError):
    status = 400
    code = "bad_request"


class EntityDeclared(BadRequest):
    code = "entity_declared"


class Forbidden(SiyuError):
    status = 403
    code = "forbidden"


class Unauthorized(SiyuError):
    status = 401
    code = "unauthorized"


class NotFound(SiyuError):
    status = 404
    code = "not_found"


class AlreadyDone(SiyuError):
    status = 200
    code = "already_done"


class Erased(AlreadyDone):
    code = "erased"


class BadRule(SiyuError):
    status = 500
    code = "bad_rule"


class Retryable(SiyuError):
    status = 503
    code = "retry"


class Misconfigured(SiyuError):
    status = 503
    code = "misconfigured"


class Conflict(SiyuError):
    status = 409
    code = "conflict"


class InvalidRules(BadRequest):
    code = "invalid_rules"

    def __init__(self, problems: list) -> None:
        super().__init__(f"{len(problems)} problem(s) in the rule set")
        self.problems = problems


class DeliveryError(SiyuError):
    status = 503
    code = "delivery"


class ApiError(DeliveryError):
    def __init__(self, errcode: int, errmsg: str, response: dict[str, Any]) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode, self.errmsg, self.response = errcode, errmsg, response


class NotDelivered(DeliveryError):
    pass


class OutcomeUnknown(DeliveryError):
    pass


class PayloadInvalid(DeliveryError):
    pass
