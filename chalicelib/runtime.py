"""What a handler needs, assembled per invocation: settings (read now), the clock (injected),
the bound tables, and the active rules."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib import logs
from chalicelib import settings as settings_module
from chalicelib.clock import Clock, SystemClock
from chalicelib.errors import Misconfigured
from chalicelib.rules import loader
from chalicelib.rules.loader import RuleSet
from chalicelib.settings import Settings
from chalicelib.state.binding import bind

_clock: Clock = SystemClock()


def use_clock(clock: Clock) -> Clock:
    """Swap the process clock (tests, the simulation's virtual time); returns the old one."""
    global _clock
    previous, _clock = _clock, clock
    return previous


@dataclass(frozen=True)
class Context:
    settings: Settings
    clock: Clock

    def rules(self) -> RuleSet:
        return loader.active(self.settings)


def context() -> Context:
    missing = settings_module.missing_secrets()
    if missing:
        raise Misconfigured(f"stage needs {', '.join(missing)} to be set")
    current = settings_module.current()
    logs.configure(current.log_level)
    bind(current)
    return Context(current, _clock)
