"""A global send rate shared by every sender: at most N sends per wall-clock second.

Each second is a counter item in the shared table; a sender takes a slot with a conditional
ADD (``count < N``). A full second sends the sender to the next one. This runs on wall time, not
the injected business clock: it paces real calls to WeChat. ``siyu simulate``, which compresses
weeks into minutes, swaps in its virtual time with ``use_pace`` so its runs repeat exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib.state.models import Shared
from chalicelib.store import db, keys
from chalicelib.store.db import Outcome


class Pace:
    """Where the limiters read the time and how they wait: the wall clock, unless replaced."""

    def __init__(self, wall: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.wall, self.sleep = wall, sleep


_pace = Pace()


def use_pace(pace: Pace) -> Pace:
    """Replace the pace of limiters built from now on; returns the previous one."""
    global _pace
    previous, _pace = _pace, pace
    return previous


class RateLimiter:
    """``per_second`` sends per ``window_s`` seconds (1 s for the global rate, 60 s for a robot)."""

    def __init__(
        self,
        per_second: int,
        wall: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        max_wait_s: float = 5.0,
        window_s: int = 1,
        name: str = "rate",
    ) -> None:
        self.wall, self.sleep = wall or _pace.wall, sleep or _pace.sleep
        self.per_second, self.max_wait_s = per_second, max_wait_s
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
        slot = Shared(keys.COUNTERS, keys.rate_slot(self.name, second))
        actions = [Shared.tally.add(1), Shared.expires.set(expires)]
        free = Shared.tally.does_not_exist() | (Shared.tally < self.per_second)
        return db.update(slot, actions, free) is Outcome.NEW
