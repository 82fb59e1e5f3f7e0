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

from chalicelib.state.conditions import is_condition_failure
from chalicelib.state.models import Shared


class RateLimiter:
    """``per_second`` sends per ``window_s`` seconds (1 s for the global rate, 60 s for a robot)."""

    def __init__(
        self,
        per_second: int,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = 5.0,
        window_s: int = 1,
        name: str = "rate",
    ) -> None:
        self.per_second, self.wall, self.sleep, self.max_wait_s = per_second, wall, sleep, max_wait_s
        self.window_s, self.name = window_s, name

    def acquire(self) -> bool:
        """Take a send slot, waiting for a free second up to ``max_wait_s``. False = none free."""
        deadline = self.wall() + self.max_wait_s
        while True:
            now = self.wall()
            window = int(now) // self.window_s * self.window_s
            if self._take(window):
                return True
            if now >= deadline or window + self.window_s - now > deadline - now:
                return False
            self.sleep(max(0.0, window + self.window_s - now))

    def _take(self, second: int) -> bool:
        expires = datetime.fromtimestamp(second, UTC) + timedelta(hours=1)
        try:
            Shared("count", f"{self.name}#{second}").update(
                actions=[Shared.count.add(1), Shared.expires.set(expires)],
                condition=Shared.count.does_not_exist() | (Shared.count < self.per_second),
            )
            return True
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise
            return False
