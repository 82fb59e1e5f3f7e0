"""Who is in which group of an experiment: a stable salted hash of (experiment, member), so a
member stays in their group for the whole experiment, on every container and every retry.

``arm_of`` answers the holdout or an arm by weight, or None when the experiment does not reach
the member now: the rule file is off or outside its window, pilot stores or rollout
(``chalicelib/rules/scope.py``), or the experiment is outside its exposure window (from
``starts_at`` until ``conversion_days`` before ``ends_at``: the last member exposed can still
convert inside the window; ``Experiment.exposure_ends_at``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from chalicelib.rules.loader import RuleSet
from chalicelib.rules.models import FILES, HOLDOUT, Experiment, RuleFile
from chalicelib.rules.scope import in_scope

SCOPE_ID = "experiments"  # the rollout hash of the file's own scope (Scoped.rollout_percent)


def unit(salt: str, member_id: str) -> float:
    """A member's stable position in [0, 1) for one experiment (64 bits of SHA-256)."""
    digest = hashlib.sha256(f"experiment:{salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick(experiment: Experiment, position: float) -> str:
    """The group at ``position``: the first ``holdout_percent`` % are held out, the rest split
    among the arms by weight, in the order the rules list them."""
    held = float(experiment.holdout_percent) / 100
    if position < held:
        return HOLDOUT
    left = (position - held) / (1 - held) * sum(arm.weight for arm in experiment.arms)
    for arm in experiment.arms:
        left -= arm.weight
        if left < 0:
            return arm.name
    return experiment.arms[-1].name


def arm_of(rules: RuleSet, experiment: str, member_id: str, now: datetime, store_id: str | None = None) -> str | None:
    """The member's group in the experiment now (module docstring), or None."""
    found = rules.experiments.experiments.get(experiment)
    if found is None or not in_scope(rules.experiments, SCOPE_ID, member_id, store_id, now):
        return None
    if not found.starts_at <= now < found.exposure_ends_at:
        return None
    return pick(found, unit(found.salt or experiment, member_id))


@dataclass(frozen=True)
class Variant:
    """A member's version of a rule file under a rule-change experiment: the arm's value set at
    the pointer (the holdout keeps the file as published)."""

    experiment: str
    arm: str
    rule: RuleFile


def variant(
    rules: RuleSet, file_name: str, member_id: str, now: datetime, store_id: str | None = None
) -> Variant | None:
    """The first experiment that changes ``file_name`` and reaches the member now, and the file
    as the member's group gets it; None when none does (the duty uses the file as published)."""
    for name, experiment in rules.experiments.experiments.items():
        change = experiment.rule_change
        if change is None or change.file != file_name:
            continue
        arm = arm_of(rules, name, member_id, now, store_id)
        if arm is not None:
            return Variant(name, arm, _changed(rules.content_hash, rules.files.get(file_name, "{}"), name, arm, rules))
    return None


def _changed(content_hash: str, text: str, experiment: str, arm: str, rules: RuleSet) -> RuleFile:
    change = rules.experiments.experiments[experiment].rule_change
    assert change is not None
    value = None if arm == HOLDOUT else json.dumps(change.values[arm], default=str)
    return _build(content_hash, change.file, text, change.pointer, value)


@lru_cache(maxsize=64)
def _build(content_hash: str, file_name: str, text: str, pointer: str, value: str | None) -> RuleFile:
    """The file with ``value`` (JSON) at ``pointer``; validated when the rule set was checked
    (chalicelib/rules/check.py), so this cannot fail for a published set. Cached per rule set."""
    data = json.loads(text, parse_float=Decimal)
    if value is not None:
        data = copy.deepcopy(data)
        parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
        holder = data
        for part in parts[:-1]:
            holder = holder[part]
        holder[parts[-1]] = json.loads(value, parse_float=Decimal)
    return FILES[file_name].model_validate(data)
