"""The kinds of message siyu sends a member, and the words each carries (what its template and
subscribe-message fields may use, messaging.json ``/kinds``).

A kind is the cause its duty gives the outbox record (``OutboxMessage.cause``); its words are the
placeholders of its rule texts, which the duty passes with the message (``QueueMessage.payload``),
so a template field can say what the text says. Every template may also use ``text`` (the whole
message: for long fields only), ``kind`` and ``summary`` (the kind's own ``title`` and
``summary`` in messaging.json) and ``store``. ``siyu rules check`` holds messaging.json to this:
every kind has a channel plan, every placeholder a template of a kind uses is one of its words,
and every plan reaches a member who only follows the account.
"""

from __future__ import annotations

COUPON = frozenset({"title", "benefit", "value", "code", "expires", "min_spend"})
COMMON = frozenset({"text", "kind", "summary", "store"})

KINDS: dict[str, frozenset[str]] = {
    "welcome": COUPON | {"questionnaire_url"},
    "recall": COUPON | {"days", "store"},
    "challenge": COUPON | {"days", "deadline"},
    "tier": frozenset({"tier", "previous", "spend", "date"}) | COUPON,
    "birthday": COUPON | {"tier", "name"},
    "precision_push": COUPON | {"name", "tier"},
    "referral": frozenset({"count", "invite_link"}) | COUPON,
    "points_expiry": frozenset({"points", "balance", "date"}),
    "checkin": frozenset({"streak", "points", "balance", "days"}),
    "checkin_lottery": COUPON,
    "koc": frozenset(),
    "campaign": frozenset({"title", "link"}),  # campaigns.json (chalicelib/campaigns)
}


def words_of(kind: str) -> frozenset[str]:
    """What a template of this kind may name."""
    return KINDS.get(kind, frozenset()) | COMMON
