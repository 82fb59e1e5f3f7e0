"""A member's exposure to an experiment, recorded once: the first time a duty or a campaign
reaches them under it, with their group and the time (the holdout too: they are exposed when
they would have been reached, and get nothing). ``plans.RecordOnce`` on ``experiment#<name>`` /
member id is written on its absence, so duplicates in parallel record one exposure, and a later
one never moves a member's group or first time. The record names the member (``member_id``):
their erase deletes it (chalicelib/privacy)."""

from __future__ import annotations

from datetime import datetime

from chalicelib.experiments.assign import arm_of
from chalicelib.plans import RecordOnce
from chalicelib.rules.loader import RuleSet
from chalicelib.store import keys


def expose(
    rules: RuleSet, experiment: str, member_id: str, arm: str, now: datetime, event_id: str, store_id: str | None
) -> RecordOnce:
    """The exposure record of a member already assigned to ``arm`` (``assign.arm_of``)."""
    return RecordOnce(
        pk=keys.exposures(experiment),
        sk=member_id,
        member_id=member_id,
        event_id=event_id,
        rules_version=rules.version,
        at=now,
        status=arm,
        value=store_id,
    )


def exposure(
    rules: RuleSet,
    experiment: str,
    member_id: str,
    now: datetime,
    event_id: str | None = None,
    store_id: str | None = None,
) -> tuple[str | None, RecordOnce | None]:
    """The member's group now and the instruction recording the exposure; (None, None) when the
    experiment does not reach the member (then the duty goes on as if there were none). A plan
    that must act on the arm only once may depend on it: ``when=plans.new(record)``."""
    arm = arm_of(rules, experiment, member_id, now, store_id)
    if arm is None:
        return None, None
    cause = event_id or keys.experiment_event(experiment, member_id)
    return arm, expose(rules, experiment, member_id, arm, now, cause, store_id)
