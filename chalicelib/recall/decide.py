"""Who gets what at one recall stage: pure, from the member as the sweep read it.

A member due at a stage is, in this order:

1. outside the stage (audience, scope of the rule) → not recorded at all;
2. not reachable or not to be disturbed → ``skipped`` with the reason (unsubscribed, blocked,
   refused the template, no channel outside the 48 h window, cooldown, attempts used up);
3. in the holdout → ``holdout``: recorded, watched for a return, sent nothing;
4. otherwise ``treated``: the stage's coupon and message.

The holdout is drawn after eligibility, so both arms are eligible members and their return
rates compare like with like. The draw is a stable hash of (member, lapse): the same member is
in the same arm at every stage of one lapse, and a new lapse draws again. Both arms update the
member's cooldown and attempts the same way, so later stages stay comparable too.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Literal

from chalicelib.counters import counters_of, scopes_of
from chalicelib.offers import offer
from chalicelib.plans import Instruction, IssueCoupon, QueueMessage, RecallDecision, new
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import RecallStage
from chalicelib.rules.scope import bucket, in_scope
from chalicelib.rules.texts import Blank
from chalicelib.state.models import Member
from chalicelib.store import keys

CAUSE = "recall"
Arm = Literal["treated", "holdout", "skipped"]


def decide(
    member: Member, stage: RecallStage, rules: RuleSet, lapse: date, day: date, now: datetime, code: str
) -> RecallDecision | None:
    """The decision for ``member``, whose last activity fell on ``lapse``, at ``stage`` on the
    sweep's local ``day``; None when the stage does not concern them."""
    rule = rules.recall
    if not _in_audience(stage, member) or not in_scope(rule, CAUSE, member.member_id, member.store_id, now):
        return None
    key = keys.recall_record(lapse.isoformat(), stage.name)
    same_lapse = member.recall_lapse == lapse.isoformat()
    attempts = int(member.recall_attempts or 0) if same_lapse else 0
    base = {
        "member_id": member.member_id,
        "key": key,
        "day": day.isoformat(),
        "lapse": lapse.isoformat(),
        "stage": stage.name,
        "store_id": member.store_id,
        "window_until": now + timedelta(days=rule.attribution_days),
        "now": now,
        "rules_version": rules.version,
        "previous": {"lapse": member.recall_lapse, "attempts": member.recall_attempts},
    }
    channel, reason = _reach(member, stage, rules, now)
    if reason is None:
        reason = _restraint(member, attempts, rules, now)
    if reason is not None:
        return RecallDecision(**base, arm="skipped", reason=reason, attempts=attempts)  # type: ignore[arg-type]
    if bucket(f"{CAUSE}-holdout#{lapse.isoformat()}", member.member_id) < rule.holdout_percent:
        return RecallDecision(**base, arm="holdout", attempts=attempts + 1)  # type: ignore[arg-type]
    coupon, message = _plan(member, stage, rules, key, channel or "", now, code, day)
    return RecallDecision(**base, arm="treated", attempts=attempts + 1, coupon=coupon, message=message)  # type: ignore[arg-type]


def plan_of(decision: RecallDecision) -> list[Instruction]:
    """The decision and its counters (``recall_due`` / ``recall_<arm>``, the coupon issued), which
    count only if the decision is new."""
    counts = Counter({"recall_due": 1, f"recall_{decision.arm}": 1})
    if decision.coupon is not None:
        counts.update({"coupons_issued": 1, f"coupons_issued:{decision.coupon.cause}": 1})
    return [decision, *counters_of(scopes_of(decision.store_id, counts), decision.day, when=new(decision))]


def _in_audience(stage: RecallStage, member: Member) -> bool:
    in_group = bool(member.groups)
    return stage.audience == "all" or (stage.audience == "group_members") == in_group


def _reach(member: Member, stage: RecallStage, rules: RuleSet, now: datetime) -> tuple[str | None, str | None]:
    """(channel, None) or (None, why the member cannot be reached)."""
    if member.origin == "wecom" or stage.audience == "group_members":
        return "wecom_customer", None
    if member.subscribed != "yes":
        return None, "unsubscribed"
    if member.blocked == "yes":
        return None, "blocked"
    template = rules.messaging.templates.get(stage.template or "")
    if template and template.template_id in (member.refused_templates or set()):
        return None, "refused_template"
    window_open = member.service_window_until is not None and member.service_window_until > now
    if not template and not window_open:
        return None, "no_channel"
    return "custom", None


def _restraint(member: Member, attempts: int, rules: RuleSet, now: datetime) -> str | None:
    rule = rules.recall
    if attempts >= rule.max_attempts_per_lapse:
        return "max_attempts"
    last = member.recall_last_at
    if last is not None and now - last < timedelta(days=rule.cooldown_days):
        return "cooldown"
    return None


def _plan(
    member: Member, stage: RecallStage, rules: RuleSet, key: str, channel: str, now: datetime, code: str, day: date
) -> tuple[IssueCoupon | None, QueueMessage]:
    store = rules.stores.name_of(member.store_id)
    zone = rules.stores.zone_of(member.store_id)
    words: dict[str, str] = {"days": str(stage.days), "store": store}
    coupon = None
    expires_at = now + timedelta(days=rules.recall.attribution_days)
    if stage.coupon is not None:
        given = offer(
            stage.coupon,
            code=code,
            member_id=member.member_id,
            cause=CAUSE,
            cause_key=keys.recall_cause(member.member_id, key),
            event_id=keys.recall_event(day.isoformat()),
            home_store=member.store_id,
            zone=zone,
            now=now,
            rules_version=rules.version,
        )
        coupon, expires_at = given.coupon, given.coupon.expires_at
        words |= given.words
    message = QueueMessage(
        message_key=keys.recall_cause(member.member_id, key),
        member_id=member.member_id,
        channel=channel,
        category=stage.category,
        text=stage.text.format_map(Blank(words)),
        cause=CAUSE,
        event_id=keys.recall_event(day.isoformat()),
        rules_version=rules.version,
        payload=words,
        template=stage.template if channel == "custom" else None,
        store_id=member.store_id,
        expires_at=expires_at,
    )
    return coupon, message
