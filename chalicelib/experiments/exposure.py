"""A member's exposure to an experiment, recorded once: the first time a duty or a campaign
reaches them under it, with their group and the time (the holdout too: they are exposed when
they would have been reached, and get nothing). ``plans.RecordOnce`` on ``experiment#<name>`` /
member id is written on its absence, so duplicates in parallel record one exposure, and a later
one never moves a member's group or first time. The record names the member (``member_id``):
their erase deletes it (chalicelib/privacy)."""

from __future__ import annotations

from datetime import datetime

from chalicelib.experiments.assign import arm_of
from chalicelib.plans import Instruction, RecordOnce
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import HOLDOUT
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


def gate(
    rules: RuleSet,
    experiment: str | None,
    member_id: str,
    now: datetime,
    send: list[Instruction],
    event_id: str | None = None,
    store_id: str | None = None,
) -> tuple[str | None, list[Instruction]]:
    """A campaign's send to one member under its experiment (``experiment``: the experiment that
    names the campaign, or None): the holdout gets its exposure and nothing else; an arm gets its
    exposure and ``send``; a member the experiment does not reach gets ``send`` alone. (A campaign
    whose arms differ in content calls ``exposure`` first and builds each arm's send itself.)"""
    if experiment is None:
        return None, send
    arm, record = exposure(rules, experiment, member_id, now, event_id, store_id)
    if record is None:
        return None, send
    return arm, [record] if arm == HOLDOUT else [record, *send]


def experiment_of(rules: RuleSet, campaign: str) -> str | None:
    """The experiment that tests a campaign (the first that names it), or None."""
    return next((name for name, e in rules.experiments.experiments.items() if e.campaign == campaign), None)
