"""A global send rate shared by every sender: at most N sends per wall-clock second.

Each second is a counter item in the shared table; a sender takes a slot with a conditional
ADD (``count < N``). A full second sends the sender to the next one. This runs on wall time, not
the injected business clock: it paces real calls to WeChat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.effects import is_condition_failure
from chalicelib.state.models import Shared


class RateLimiter:
    def __init__(
        self,
        per_second: int,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = 5.0,
    ) -> None:
        self.per_second, self.wall, self.sleep, self.max_wait_s = per_second, wall, sleep, max_wait_s

    def acquire(self) -> bool:
        """Take a send slot, waiting for a free second up to ``max_wait_s``. False = none free."""
        deadline = self.wall() + self.max_wait_s
        while True:
            now = self.wall()
            second = int(now)
            if self._take(second):
                return True
            if now >= deadline:
                return False
            self.sleep(max(0.0, second + 1 - now))

    def _take(self, second: int) -> bool:
        expires = datetime.fromtimestamp(second, UTC) + timedelta(hours=1)
        try:
            Shared("count", f"rate#{second}").update(
                actions=[Shared.count.add(1), Shared.expires.set(expires)],
                condition=Shared.count.does_not_exist() | (Shared.count < self.per_second),
            )
            return True
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise
            return False
