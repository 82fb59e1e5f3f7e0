"""Filling a rule's text with its values: the one place a text the runtime cannot fill becomes
a rule error (``BadRule``), so the pipeline skips that duty and alerts ops, while a fault of
siyu's own code stays a fault (the event fails and is retried)."""

from __future__ import annotations

from typing import Any

from chalicelib.errors import BadRule


def fill(text: str, **values: Any) -> str:
    """``text.format(**values)``. The checks refuse unknown placeholders at publish time; what
    they let through and still cannot be filled (a format spec such as ``{points:d}`` on a text
    value, a stray ``{0}``) is refused here, naming the kind of mistake, never a value."""
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise BadRule(f"a text cannot be filled ({type(exc).__name__}): check its placeholders") from exc


class Blank(dict[str, Any]):
    """Placeholders without a value (no coupon, no store) read as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


def fill_known(text: str, values: dict[str, Any]) -> str:
    """``text`` with the values it has, the others empty (``""`` if it cannot be filled at all)."""
    try:
        return text.format_map(Blank(values))
    except (IndexError, ValueError, AttributeError):
        return ""
