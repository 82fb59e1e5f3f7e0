"""Which channel a message takes: its kind's plan (messaging.json ``/kinds``), judged at send time
against what the member can receive now.

| channel                | the member can receive it when …                                         |
|------------------------|--------------------------------------------------------------------------|
| custom                 | they follow the account and their customer-service window is open        |
|                        | (their own action opened it: docs/wechat.md §3.5; its quota is reserved) |
| subscribe              | they follow and accepted the kind's subscribe template (one accept, one   |
|                        | send: the consent is taken with the reservation)                          |
| template               | they follow the account (not blocked)                                    |
| miniprogram_subscribe  | they use the mini program and accepted its template                      |
| wecom_customer         | they are a WeCom contact                                                 |

A message whose cause is no kind (robots, staff, identity work, rule sets published before the
plans) keeps its queued channel, a customer-service one falling back to its named template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.rules.models import MessagingRule
from chalicelib.state.models import Member, OutboxMessage

OA_CHANNELS = frozenset({"custom", "subscribe", "template"})
SUBSCRIBE_CHANNELS = frozenset({"subscribe", "miniprogram_subscribe"})  # one consent, one send


@dataclass(frozen=True)
class Route:
    channel: str
    template: str | None  # the messaging.json template it sends (template channels)
    planned: bool = True  # from the kind's plan (else the queued channel: no consent is asked for)


def planned(message: OutboxMessage, messaging: MessagingRule) -> list[Route]:
    """Every channel the message may take, in order."""
    kind = messaging.kinds.get(message.cause)
    if kind is None or message.channel not in (*OA_CHANNELS, "wecom_customer", "miniprogram_subscribe"):
        legacy = [Route(message.channel, message.template if message.channel != "custom" else None, False)]
        if message.channel == "custom" and message.template:
            legacy.append(Route("template", message.template, False))
        return legacy
    routes = []
    for channel in kind.channels:
        own = message.template if channel == "template" and message.template else None  # a recall stage's
        routes.append(Route(channel, own or kind.template_of(channel)))
    return routes


def unreachable(route: Route, member: Member | None, messaging: MessagingRule, now: datetime) -> str | None:
    """Why the member cannot receive the message on this route now; None when they can."""
    channel = route.channel
    if channel in ("robot", "wecom_group", "identity"):
        return None
    if member is None:
        return None  # no row of its own (a group, a contact siyu never recorded): sent as queued
    if channel in OA_CHANNELS and (why := _follower(member)) is not None:
        return why
    if channel == "custom" and not (member.service_window_until and member.service_window_until > now):
        return "customer-service window closed"
    if channel in SUBSCRIBE_CHANNELS:
        return _consent(route, member, messaging)
    if channel == "template" and _template_id(route, messaging) in (member.refused_templates or set()):
        return "refused this template"
    if channel == "wecom_customer" and not has_id(member, "wecom"):
        return "not a WeCom contact"
    return None


def _follower(member: Member) -> str | None:
    if not has_id(member, "oa"):
        return "does not follow the account"
    if member.blocked == "yes":
        return "blocked the account"
    if member.subscribed == "no":
        return "no longer follows the account"
    return None


def _consent(route: Route, member: Member, messaging: MessagingRule) -> str | None:
    template = messaging.templates.get(route.template or "")
    if template is None:
        return "no template"
    if route.channel == "miniprogram_subscribe" and not has_id(member, "orders"):
        return "does not use the mini program"
    if template.template_id in (member.refused_templates or set()):
        return "refused this subscription message"
    if route.planned and template.template_id not in (member.consented or set()):
        return "no consent to this subscription message"
    return None


def _template_id(route: Route, messaging: MessagingRule) -> str | None:
    template = messaging.templates.get(route.template or "")
    return template.template_id if template else None


def has_id(member: Member, source: str) -> bool:
    """The person has an id of this source (``oa``, ``wecom``, ``orders``: chalicelib/identity)."""
    if member.ids:
        return any(i.startswith(source + "/") for i in member.ids)
    if member.origin:
        return member.origin == source  # a member from before ids were kept
    return True  # nothing known of its ids: its own id, as every message before the plans assumed


def reach(member: Member, messaging: MessagingRule, now: datetime, grants: dict[str, int]) -> dict[str, object]:
    """What the member can receive now (the member view): each channel with the reason it cannot
    reach them (None: it can), the subscribe templates with their unused consents (``grants``:
    template id → count, read by the caller), and for each kind the channel its plan would take."""
    channels: dict[str, str | None] = {}
    for channel in ("custom", "template", "wecom_customer"):
        channels[channel] = unreachable(Route(channel, None), member, messaging, now)
    subscribe = {
        name: {
            "template_id": template.template_id,
            "consents": grants.get(template.template_id, 0),
            "unreachable": unreachable(Route(template.channel, name), member, messaging, now),
        }
        for name, template in sorted(messaging.templates.items())
        if template.channel in SUBSCRIBE_CHANNELS
    }
    kinds: dict[str, str | None] = {}
    for name, kind in sorted(messaging.kinds.items()):
        routes = [Route(channel, kind.template_of(channel)) for channel in kind.channels]
        kinds[name] = next((r.channel for r in routes if unreachable(r, member, messaging, now) is None), None)
    until = member.service_window_until
    return {
        "service_window": {
            "open": bool(until and until > now),
            "until": until.isoformat() if until else None,
            "opened_by": member.service_window_action,
        },
        "channels": channels,
        "subscribe": subscribe,
        "kinds": kinds,  # None: no channel reaches them now (the message would be dropped)
    }
