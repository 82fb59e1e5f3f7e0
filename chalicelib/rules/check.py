"""Check a rule set and say what is wrong in words ops understand.

``check(files)`` takes the rule files as text (name → content) and returns every problem at
once, each with file, line:column, JSON pointer and a sentence:

    welcome.json:7:19 /coupon/value_yuan: must be at most 500 (is 5000)

Problems come from four layers: the file set (unknown or missing files; a duty file added after
the first release may be absent, which turns its duty off), JSON syntax
(including duplicate keys, which JSON parsers silently collapse), the models' own validation,
and cross-file checks (store ids that exist, groups that belong to one store).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import string
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from json_source_map import calculate
from pydantic import BaseModel, ValidationError

from chalicelib.rules import kinds
from chalicelib.rules.models import (
    CONDITION_FACTS,
    FILES,
    OPTIONAL_FILES,
    TESTABLE_FILES,
    CampaignsRule,
    CatalogRule,
    ConsentTo,
    Experiment,
    ExperimentsRule,
    HasTag,
    LoyaltyRule,
    MessagingRule,
    RecallRule,
    RuleFile,
    Scoped,
    SegmentsRule,
    StoreIn,
    StoresRule,
    TierIn,
)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column} {self.pointer or '/'}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "message": self.message,
        }


class _Located:
    """Line/column of JSON pointers in one file (1-based)."""

    def __init__(self, text: str) -> None:
        try:
            self._map = calculate(text)
        except Exception:  # the text already parsed as JSON; a map failure only costs positions
            self._map = {}

    def at(self, pointer: str, key: bool = False) -> tuple[int, int]:
        probe = pointer
        while True:
            entry = self._map.get(probe)
            if entry is not None:
                where = entry.key_start if key and entry.key_start is not None else entry.value_start
                return where.line + 1, where.column + 1
            if not probe:
                return 1, 1
            probe = probe.rsplit("/", 1)[0]
            key = False


def pointer_of(loc: tuple[Any, ...] | list[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise _DuplicateKey(name)
        seen[name] = value
    return seen


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def parse_json(name: str, text: str) -> tuple[Any, list[Problem]]:
    try:
        return json.loads(text, parse_float=Decimal, object_pairs_hook=_no_duplicates), []
    except json.JSONDecodeError as exc:
        return None, [Problem(name, exc.lineno, exc.colno, "", f"not valid JSON: {exc.msg}")]
    except _DuplicateKey as exc:
        line, column = _first_occurrence(text, exc.name)
        return None, [Problem(name, line, column, "", f'the key "{exc.name}" appears twice; keep one')]
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; arrays nested thousands deep
        return None, [Problem(name, 1, 1, "", f"not usable JSON: {type(exc).__name__}")]


def _first_occurrence(text: str, key: str) -> tuple[int, int]:
    needle = json.dumps(key, ensure_ascii=False)
    first = text.find(needle)
    second = text.find(needle, first + 1)
    at = second if second >= 0 else max(first, 0)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (for listing its allowed keys)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = _inner_model(fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def sentence(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind, value = error["type"], error.get("input")
    ctx = {name: re.sub(r"Decimal\('([^']*)'\)", r"\1", str(bound)) for name, bound in (error.get("ctx") or {}).items()}
    shown = f" (is {value})" if isinstance(value, int | float | Decimal | str) and len(str(value)) <= 40 else ""
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        holder = _model_at(model, tuple(error["loc"][:-1]))
        allowed = sorted(f.alias or n for n, f in holder.model_fields.items()) if holder else []
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else (f"; allowed: {', '.join(allowed)}" if allowed else "")
        return f"is not a setting siyu knows{hint}"
    simple = {
        "greater_than": f"must be more than {ctx.get('gt')}{shown}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}{shown}",
        "less_than": f"must be less than {ctx.get('lt')}{shown}",
        "less_than_equal": f"must be at most {ctx.get('le')}{shown}",
        "decimal_max_places": f"must have at most {ctx.get('decimal_places')} decimals{shown}",
        "string_too_long": f"must have at most {ctx.get('max_length')} characters (has {len(str(value))})",
        "too_short": f"must have at least {ctx.get('min_length')} entries",
        "too_long": f"must have at most {ctx.get('max_length')} entries",
        "literal_error": f"must be one of {ctx.get('expected')}{shown}",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "decimal_type": "must be a number",
        "decimal_parsing": "must be a number",
        "string_type": "must be text in double quotes",
        "list_type": "must be a list in [ ]",
        "model_type": "must be an object in { }",
        "dict_type": "must be an object in { }",
        "model_attributes_type": "must be an object in { }",
        "timezone_aware": "needs a time zone offset, e.g. 2026-12-01T00:00:00+08:00",
        "datetime_type": "must be a date and time like 2026-12-01T00:00:00+08:00",
        "datetime_parsing": "must be a date and time like 2026-12-01T00:00:00+08:00",
        "datetime_from_date_parsing": "must be a date and time like 2026-12-01T00:00:00+08:00",
    }
    if kind in simple:
        return simple[kind]
    if kind == "string_too_short":
        return (
            "must not be empty" if ctx.get("min_length") == 1 else f"must have at least {ctx['min_length']} characters"
        )
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        if pattern.startswith("^https://"):
            return f"must start with https://{shown}"
        if pattern.startswith("^([01]"):
            return f"must be a time of day like 08:00{shown}"
        if pattern == "^[a-z0-9_]+$":
            return f"may contain only lower-case letters, digits and _{shown}"
        return f"may contain only letters, digits, - and _{shown}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _validate(name: str, data: Any, text: str) -> tuple[RuleFile | None, list[Problem]]:
    model = FILES[name]
    located = _Located(text)
    if not isinstance(data, dict):
        return None, [Problem(name, 1, 1, "", "must be a JSON object in { }")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _without_union_tags(name, tuple(error["loc"]))
            pointer = pointer_of(loc)
            line, column = located.at(pointer, key=error["type"] == "extra_forbidden")
            problems.append(Problem(name, line, column, pointer, sentence(error, model)))
        return None, problems


def _without_union_tags(name: str, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location in the file: pydantic names a segment condition's fact after its index
    (``all/0/orders/gte``); the file has no such key (``all/0/gte``)."""
    if name != "segments.json":
        return loc
    return tuple(
        part for k, part in enumerate(loc) if not (k and isinstance(loc[k - 1], int) and part in CONDITION_FACTS)
    )


def _cross_checks(parsed: dict[str, RuleFile], texts: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    stores = parsed.get("stores.json")
    if not isinstance(stores, StoresRule):
        return problems

    def problem(file: str, pointer: str, message: str) -> None:
        line, column = _Located(texts[file]).at(pointer)
        problems.append(Problem(file, line, column, pointer, message))

    _store_problems(stores, problem)
    messaging = parsed.get("messaging.json")
    templates = None
    if isinstance(messaging, MessagingRule):
        _kind_problems(messaging, problem)
        templates = set(messaging.templates)
    for file, rule in parsed.items():
        _rule_refs(file, rule, templates, stores, problem)
    catalog = parsed.get("catalog.json")
    if isinstance(catalog, CatalogRule):
        _catalog_problems(catalog, stores, problem)
    segments = parsed.get("segments.json")
    if isinstance(segments, SegmentsRule):
        loyalty = parsed.get("loyalty.json")
        _segment_problems(segments, stores, loyalty if isinstance(loyalty, LoyaltyRule) else None, messaging, problem)
    campaigns = parsed.get("campaigns.json")
    if isinstance(campaigns, CampaignsRule) and isinstance(messaging, MessagingRule):
        _calendar_problems(campaigns, stores, messaging, problem)
        _campaign_problems(campaigns, stores, messaging, _segment_names(parsed), problem)
    _test_problems(parsed, texts, problem)
    return problems


CAMPAIGNS = "campaigns.json"


def _test_problems(parsed: dict[str, RuleFile], texts: dict[str, str], problem: Any) -> None:
    """Each experiment (``_experiment_problems``); a campaign's variants need an experiment testing it."""
    experiments = parsed.get("experiments.json")
    tested: set[str | None] = set()
    if isinstance(experiments, ExperimentsRule):
        for name, experiment in experiments.experiments.items():
            _experiment_problems(name, experiment, parsed, texts, problem)
            tested.add(experiment.campaign)
    campaigns = parsed.get(CAMPAIGNS)
    for k, campaign in enumerate(campaigns.campaigns if isinstance(campaigns, CampaignsRule) else []):
        if campaign.variants and campaign.name not in tested:
            message = "variants need an experiment in experiments.json that tests this campaign"
            problem(CAMPAIGNS, f"/campaigns/{k}/variants", message)


def _segment_names(parsed: dict[str, RuleFile]) -> set[str] | None:
    """The segments a campaign may name (segments.json), None while the rule set has no such file."""
    segments = parsed.get("segments.json")
    return set(segments.segments) if isinstance(segments, SegmentsRule) else None


def _calendar_problems(rule: CampaignsRule, stores: StoresRule, messaging: MessagingRule, problem: Any) -> None:
    """Calendar slots lie inside messaging.json's group slot of their name and outside business hours
    (003 §2.2.1); owners, pieces and themes name groups, stores, slots and themes that exist."""
    _slot_problems(rule, messaging, problem)
    _owner_problems(rule, stores, problem)
    _piece_problems(rule, stores, problem)


def _slot_problems(rule: CampaignsRule, messaging: MessagingRule, problem: Any) -> None:
    windows = {slot.name: slot for slot in messaging.group_slots}
    banned = messaging.promo_banned_hours
    for k, slot in enumerate(rule.calendar.slots):
        at = f"/calendar/slots/{k}"
        hours, minutes = slot.at.split(":")
        minute = int(hours) * 60 + int(minutes)
        window = windows.get(slot.name)
        if window is None:
            names = ", ".join(windows)
            problem(CAMPAIGNS, f"{at}/name", f"slot {slot.name} is not a group slot of messaging.json: {names}")
        elif not window.contains(minute):
            problem(
                CAMPAIGNS, f"{at}/at", f"{slot.at} is outside the {slot.name} group slot ({window.start}-{window.end})"
            )
        if banned is not None and banned.contains(minute):
            problem(
                CAMPAIGNS, f"{at}/at", f"{slot.at} is in business hours ({banned.start}-{banned.end}): no group pushes"
            )


def _owner_problems(rule: CampaignsRule, stores: StoresRule, problem: Any) -> None:
    """Owners name groups of stores.json; with a mass-message slot, every group has its owner."""
    calendar = rule.calendar
    groups = {group for store in stores.stores for group in store.groups}
    for group in calendar.owners:
        if group not in groups:
            problem(CAMPAIGNS, f"/calendar/owners/{pointer_of([group])[1:]}", f"group {group} is not in stores.json")
    if not (rule.enabled and calendar.enabled and any(s.channel == "wecom_group" for s in calendar.slots)):
        return
    for i, store in enumerate(stores.stores):
        for j, group in enumerate(store.groups):
            if group not in calendar.owners:
                problem(
                    "stores.json",
                    f"/stores/{i}/groups/{j}",
                    f"group {group} has no owner in campaigns.json /calendar/owners: "
                    "its mass message needs the owner who confirms it",
                )


def _piece_problems(rule: CampaignsRule, stores: StoresRule, problem: Any) -> None:
    calendar = rule.calendar
    themes = {*calendar.themes.values(), calendar.holiday_theme}
    slots = {s.name for s in calendar.slots}
    for name in calendar.theme_titles:
        if name not in themes:
            problem(
                CAMPAIGNS, f"/calendar/theme_titles/{name}", f"theme {name} is no weekday's theme nor the holiday's"
            )
    for k, piece in enumerate(calendar.pieces):
        at = f"/calendar/pieces/{k}"
        if piece.theme is not None and piece.theme not in themes:
            problem(CAMPAIGNS, f"{at}/theme", f"theme {piece.theme} is no weekday's theme nor the holiday's")
        if piece.slot is not None and piece.slot not in slots:
            problem(CAMPAIGNS, f"{at}/slot", f"slot {piece.slot} is not a calendar slot")
        _unknown_stores(piece.stores, stores, f"{at}/stores", problem)


def _unknown_stores(named: list[str], stores: StoresRule, at: str, problem: Any) -> None:
    for j, store_id in enumerate(named):
        if store_id not in stores.ids:
            problem(CAMPAIGNS, f"{at}/{j}", f"store {store_id} is not in stores.json")


def _campaign_problems(
    rule: CampaignsRule, stores: StoresRule, messaging: MessagingRule, segments: set[str] | None, problem: Any
) -> None:
    """A campaign names a segment, groups, stores, a kind and a calendar slot that exist."""
    groups = {group for store in stores.stores for group in store.groups}
    slots = {slot.name for slot in rule.calendar.slots}
    for k, campaign in enumerate(rule.campaigns):
        at = f"/campaigns/{k}"
        audience = campaign.audience
        if audience.segment is not None and segments is not None and audience.segment not in segments:
            problem(CAMPAIGNS, f"{at}/audience/segment", f"segment {audience.segment} is not defined in segments.json")
        for j, group in enumerate(audience.groups if isinstance(audience.groups, list) else []):
            if group not in groups:
                problem(CAMPAIGNS, f"{at}/audience/groups/{j}", f"group {group} is not in stores.json")
        named = groups if audience.groups == "all" else set(audience.groups or []) & groups
        for group in sorted(named - set(rule.calendar.owners)):
            problem(CAMPAIGNS, f"{at}/audience", f"group {group} has no owner in /calendar/owners to confirm it")
        if audience.segment is not None and campaign.kind not in messaging.kinds:
            problem(CAMPAIGNS, f"{at}/kind", f"kind {campaign.kind} has no channel plan in messaging.json /kinds")
        for store_id in campaign.stores:
            if store_id not in stores.ids:
                problem(CAMPAIGNS, f"{at}/stores/{store_id}", f"store {store_id} is not in stores.json")
        _unknown_stores(campaign.pilot_stores, stores, f"{at}/pilot_stores", problem)
        slot = campaign.schedule.calendar
        if slot is not None and slot.slot not in slots:
            problem(CAMPAIGNS, f"{at}/schedule/calendar/slot", f"slot {slot.slot} is not a calendar slot")


def _experiment_problems(
    name: str, experiment: Experiment, parsed: dict[str, RuleFile], texts: dict[str, str], problem: Any
) -> None:
    """An experiment names what exists, and reaches its sample size inside its window (the issue's
    "refuse to start one that cannot reach it, or say how long it needs"; chalicelib/stats.py)."""
    at = f"/experiments/{pointer_of([name])[1:]}"
    campaigns = parsed.get("campaigns.json")
    if experiment.campaign is not None and isinstance(campaigns, CampaignsRule):
        _tested_campaign_problems(name, experiment, campaigns, at, problem)
    if experiment.rule_change is not None:
        _rule_change_problems(experiment, at, texts, set(parsed), problem)
    try:
        plan = experiment.plan()
    except ValueError as exc:
        problem("experiments.json", f"{at}/expected_lift", str(exc))
        return
    if plan.days_needed > plan.window_days:
        groups = ", ".join(f"{group} {n}" for group, n in plan.per_group.items())
        problem(
            "experiments.json",
            f"{at}/expected_daily_exposures",
            f"needs {groups} members ({plan.fill_days} days at {experiment.expected_daily_exposures} exposures "
            f"a day, then {experiment.conversion_days} days to convert): {plan.days_needed} days; "
            f"the window has {plan.window_days}",
        )


def _tested_campaign_problems(
    name: str, experiment: Experiment, campaigns: CampaignsRule, at: str, problem: Any
) -> None:
    """The tested campaign exists and sends to a segment's members (the experiment's units), and its
    variants name the experiment's arms."""
    campaign = campaigns.campaign(experiment.campaign or "")
    if campaign is None:
        problem("experiments.json", f"{at}/campaign", f"campaign {experiment.campaign} is not in campaigns.json")
        return
    if campaign.audience.segment is None:
        problem(
            "experiments.json",
            f"{at}/campaign",
            f"campaign {campaign.name} sends to groups; an experiment needs one sent to a segment's members",
        )
    arms = {arm.name for arm in experiment.arms}
    k = campaigns.campaigns.index(campaign)
    for arm in sorted(set(campaign.variants) - arms):
        problem(CAMPAIGNS, f"/campaigns/{k}/variants/{arm}", f"arm {arm} is not an arm of experiment {name}")


def _rule_change_problems(
    experiment: Experiment, at: str, texts: dict[str, str], valid: set[str], problem: Any
) -> None:
    """The changed file exists, its pointer names a setting in it, and each arm's value is valid there."""
    change = experiment.rule_change
    assert change is not None
    where = f"{at}/rule_change"
    if change.file not in TESTABLE_FILES or change.file not in texts:
        testable = ", ".join(sorted(TESTABLE_FILES))
        problem("experiments.json", f"{where}/file", f"an arm can change only a rule file of this set among {testable}")
        return
    if change.file not in valid:
        return  # the file's own problems are reported
    data, _ = parse_json(change.file, texts[change.file])
    parts = [part.replace("~1", "/").replace("~0", "~") for part in change.pointer.split("/")[1:]]
    for arm, value in change.values.items():
        changed = copy.deepcopy(data)
        holder = changed
        for part in parts[:-1]:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or parts[-1] not in holder:
            problem("experiments.json", f"{where}/pointer", f"{change.pointer} is not a setting in {change.file}")
            return
        holder[parts[-1]] = value
        _, invalid = _validate(change.file, changed, texts[change.file])
        for found in invalid[:1]:
            problem(
                "experiments.json",
                f"{where}/values/{pointer_of([arm])[1:]}",
                f"arm {arm}: {change.file} would be invalid: {found.pointer}: {found.message}",
            )


def _rule_refs(file: str, rule: RuleFile, templates: set[str] | None, stores: StoresRule, problem: Any) -> None:
    """The templates a rule file names exist; its pilot stores too."""
    for pointer, named in _template_refs(rule):
        if templates is not None and named not in templates:
            problem(file, pointer, f"template {named} is not defined in messaging.json /templates")
    if isinstance(rule, Scoped):
        for k, store_id in enumerate(rule.pilot_stores):
            if store_id not in stores.ids:
                problem(file, f"/pilot_stores/{k}", f"store {store_id} is not in stores.json")


def _kind_problems(messaging: MessagingRule, problem: Any) -> None:
    """Every kind of member message has a plan that reaches a member who only follows the account,
    with templates of the right channel that name only the kind's words (chalicelib/rules/kinds.py)."""
    for name in sorted(set(kinds.KINDS) - set(messaging.kinds)):
        problem("messaging.json", "/kinds", f"kind {name} has no channel plan (siyu sends it: docs/rules.md)")
    for name, kind in messaging.kinds.items():
        at = f"/kinds/{name}"
        if name not in kinds.KINDS:
            problem(
                "messaging.json", at, f"siyu sends no message of kind {name}; kinds: {', '.join(sorted(kinds.KINDS))}"
            )
            continue
        if "template" not in kind.channels:
            problem(
                "messaging.json",
                f"{at}/channels",
                "no channel reaches a member who only follows the account: add template",
            )
        allowed = kinds.words_of(name)
        _unknown_words(kind.summary or "", kinds.KINDS[name], f"{at}/summary", problem)
        for channel in kind.channels:
            template_name = kind.template_of(channel)
            field = {"template": "template", "subscribe": "subscribe"}.get(channel, "miniprogram")
            if template_name is None:
                continue
            template = messaging.templates.get(template_name)
            if template is None:
                problem("messaging.json", f"{at}/{field}", f"template {template_name} is not defined in /templates")
            elif template.channel != channel:
                problem(
                    "messaging.json",
                    f"{at}/{field}",
                    f"template {template_name} is a {template.channel} template, not {channel}",
                )
            else:
                for key, pattern in template.fields.items():
                    _unknown_words(pattern, allowed, f"/templates/{template_name}/fields/{key}", problem, name)


def _unknown_words(text: str, allowed: frozenset[str], pointer: str, problem: Any, kind: str | None = None) -> None:
    for _, word, _, _ in string.Formatter().parse(text):
        if word is not None and word not in allowed:
            of = f" of kind {kind}" if kind else ""
            problem(
                "messaging.json",
                pointer,
                f"{{{word}}} is not a word messages{of} carry; they carry: {', '.join(sorted(allowed))}",
            )


def _catalog_problems(catalog: CatalogRule, stores: StoresRule, problem: Any) -> None:
    """Stock per store names stores that exist."""
    for k, item in enumerate(catalog.items):
        if not isinstance(item.stock, dict):
            continue
        for store_id in item.stock:
            if store_id not in stores.ids:
                where = f"/items/{k}/stock/{pointer_of([store_id])[1:]}"
                problem("catalog.json", where, f"store {store_id} is not in stores.json")


def _segment_problems(
    rule: SegmentsRule, stores: StoresRule, loyalty: LoyaltyRule | None, messaging: Any, problem: Any
) -> None:
    """The stores, tiers, tags and subscribe templates segments.json names exist."""
    known = _SegmentRefs(
        stores.ids,
        frozenset(t.name for t in loyalty.tiers.levels) if loyalty is not None else None,
        frozenset(rule.tags) | _loyalty_tags(loyalty),
        messaging if isinstance(messaging, MessagingRule) else None,
    )
    for group, definitions in (("tags", rule.tags), ("segments", rule.segments)):
        for name, definition in definitions.items():
            for k, condition in enumerate(definition.all):
                for pointer, message in known.problems(condition):
                    problem("segments.json", f"/{group}/{name}/all/{k}{pointer}", message)


@dataclass(frozen=True)
class _SegmentRefs:
    stores: frozenset[str]
    tiers: frozenset[str] | None  # None: loyalty.json did not validate (its own problems say why)
    tags: frozenset[str]
    messaging: MessagingRule | None

    def problems(self, condition: Any) -> list[tuple[str, str]]:
        """(pointer under the condition, sentence) of each name it uses that does not exist."""
        if isinstance(condition, StoreIn):
            unknown = [(j, s) for j, s in enumerate(condition.in_) if s not in self.stores]
            return [(f"/in/{j}", f"store {s} is not in stores.json") for j, s in unknown]
        if isinstance(condition, TierIn) and self.tiers is not None:
            tiers = ", ".join(sorted(self.tiers))
            return [
                (f"/in/{j}", f"tier {t} is not in loyalty.json; tiers: {tiers}")
                for j, t in enumerate(condition.in_)
                if t not in self.tiers
            ]
        if isinstance(condition, HasTag) and condition.tag not in self.tags:
            return [("/tag", f"tag {condition.tag} is neither defined in /tags nor a loyalty tag")]
        if isinstance(condition, ConsentTo) and self.messaging is not None:
            template = self.messaging.templates.get(condition.template)
            if template is None or template.channel not in ("subscribe", "miniprogram_subscribe"):
                return [("/template", f"template {condition.template} is not a subscribe template in messaging.json")]
        return []


def _loyalty_tags(loyalty: LoyaltyRule | None) -> frozenset[str]:
    """Tags loyalty sets on members: the tiers' tags, the brand helpers' tag, the check-in badge."""
    if loyalty is None:
        return frozenset()
    tier_tags = {tag for tier in loyalty.tiers.levels for tag in tier.tags}
    return frozenset(tier_tags | {loyalty.koc.tag, loyalty.checkin.badge})


def _store_problems(stores: StoresRule, problem: Any) -> None:
    """Store ids listed once; a group belongs to one store."""
    seen: dict[str, int] = {}
    owner: dict[str, str] = {}
    for i, store in enumerate(stores.stores):
        if store.id in seen:
            problem("stores.json", f"/stores/{i}/id", f"store {store.id} is already listed at /stores/{seen[store.id]}")
        seen.setdefault(store.id, i)
        for j, group in enumerate(store.groups):
            if group in owner and owner[group] != store.id:
                problem("stores.json", f"/stores/{i}/groups/{j}", f"group {group} already belongs to {owner[group]}")
            owner.setdefault(group, store.id)


def _template_refs(rule: RuleFile) -> list[tuple[str, str]]:
    """(pointer, template name) of every messaging.json template a rule file names."""
    template = getattr(rule, "template", None)
    refs = [("/template", template)] if template else []
    if isinstance(rule, RecallRule):
        refs += [(f"/stages/{k}/template", s.template) for k, s in enumerate(rule.stages) if s.template]
        if rule.challenge.template:
            refs.append(("/challenge/template", rule.challenge.template))
    return refs


def check(files: dict[str, str]) -> tuple[dict[str, RuleFile], list[Problem]]:
    """Validate a whole rule set. Returns the parsed files (complete only if no problems)."""
    problems: list[Problem] = []
    parsed: dict[str, RuleFile] = {}
    for name in sorted(set(files) - set(FILES)):
        close = difflib.get_close_matches(name, list(FILES), n=1)
        hint = f'; did you mean "{close[0]}"?' if close else f"; rule files are {', '.join(sorted(FILES))}"
        problems.append(Problem(name, 1, 1, "", f"is not a rule file siyu knows{hint}"))
    for name in sorted(FILES):
        if name not in files and name in OPTIONAL_FILES:
            parsed[name] = FILES[name].model_validate({"enabled": False})  # absent: the duty is off
            continue
        if name not in files:
            problems.append(Problem(name, 1, 1, "", "is missing from the rule set"))
            continue
        data, syntax = parse_json(name, files[name])
        problems += syntax
        if syntax:
            continue
        rule, invalid = _validate(name, data, files[name])
        problems += invalid
        if rule is not None:
            parsed[name] = rule
    problems += _cross_checks(parsed, files)
    return parsed, sorted(problems)


def canonical(files: dict[str, str]) -> str:
    """The rule set as canonical JSON (sorted keys, no ``$schema``): formatting-independent."""
    out = {}
    for name in sorted(files):
        data = json.loads(files[name], parse_float=Decimal)
        if isinstance(data, dict):
            data.pop("$schema", None)
        out[name] = data
    return json.dumps(out, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
