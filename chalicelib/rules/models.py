"""Rule models: the code's own definition of every rule file (one model per file).

Every model forbids unknown keys, so a typo in a rule file is an error, not a silently ignored
setting. Money is written in yuan by ops and kept in fen (integers) by the code. Every duty's
rule carries the same scoping fields (``Scoped``): on/off, a time window, pilot stores and a
percentage rollout. The JSON Schemas in ``rules/schema/`` are generated from these models
(``siyu rules schema``).
"""

from __future__ import annotations

import string
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)

COUPON_CEILING_YUAN = Decimal("500")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleFile(Strict):
    """A whole rule file: may name its JSON Schema so editors validate and complete."""

    schema_ref: str | None = Field(default=None, alias="$schema", description="The file's JSON Schema.")


def yuan_to_fen(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


def _check_placeholders(text: str, allowed: frozenset[str]) -> str:
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in allowed:
            allowed_list = ", ".join("{" + a + "}" for a in sorted(allowed))
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed_list}")
    return text


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"time zone {name!r} does not exist (e.g. Asia/Shanghai)") from exc
    return name


Zone = Annotated[str, Field(min_length=1, max_length=64, description="IANA time zone, e.g. Asia/Shanghai")]
StoreId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]


def _number_only(value: object) -> object:
    if isinstance(value, str | bool):
        raise ValueError("must be a number, written without quotes")
    return value


def _money(minimum: str, ceiling: Decimal) -> object:
    bound = {"exclusiveMinimum": 0} if minimum == "gt" else {"minimum": 0}
    return Annotated[
        Decimal,
        BeforeValidator(_number_only),
        Field(**{minimum: 0}, le=int(ceiling), decimal_places=2),
        WithJsonSchema({"type": "number", **bound, "maximum": float(ceiling), "multipleOf": 0.01}),
    ]


Yuan = _money("ge", COUPON_CEILING_YUAN)
PositiveYuan = _money("gt", COUPON_CEILING_YUAN)
Percent = Annotated[
    Decimal,
    BeforeValidator(_number_only),
    Field(ge=0, le=100, decimal_places=2),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100}),
]


class Scoped(RuleFile):
    """Who and when a duty's rule applies to. A member is in the rollout when a stable hash of
    (rule id, member id) falls under the percentage, so raising the percentage only adds members."""

    enabled: StrictBool = Field(default=True, description="Switch the rule on or off: true or false.")
    starts_at: AwareDatetime | None = Field(default=None, description="From when (with offset, e.g. +08:00).")
    ends_at: AwareDatetime | None = Field(default=None, description="Until when (exclusive).")
    pilot_stores: list[StoreId] = Field(
        default_factory=list, description="Only members of these stores; empty = every store."
    )
    rollout_percent: Percent = Field(  # type: ignore[valid-type]
        default=100, validate_default=True, description="Share of members reached, 0-100."
    )

    @model_validator(mode="after")
    def _window(self) -> Scoped:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be later than starts_at")
        return self

    def active_at(self, now: datetime) -> bool:
        return (
            self.enabled
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


class CouponSpec(Strict):
    title: Annotated[str, Field(min_length=1, max_length=20)] = "新人礼券"
    value_yuan: PositiveYuan  # type: ignore[valid-type]
    min_spend_yuan: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    valid_days: Annotated[int, Field(ge=1, le=365)]
    store_scope: Literal["all", "home_store"] = "all"

    @property
    def value_fen(self) -> int:
        return yuan_to_fen(self.value_yuan)

    @property
    def min_spend_fen(self) -> int:
        return yuan_to_fen(self.min_spend_yuan)


WELCOME_PLACEHOLDERS = frozenset({"value", "code", "expires", "min_spend", "questionnaire_url", "title"})
Text = Annotated[str, Field(min_length=1, max_length=600)]


class WelcomeRule(Scoped):
    """welcome.json: the new-member gift (新人礼 / 入群礼)."""

    triggers: list[Literal["followed", "joined_group", "contact_added"]] = Field(
        default_factory=lambda: ["followed", "joined_group"], min_length=1
    )
    coupon: CouponSpec
    text: Text
    refollow_text: Text | None = None
    questionnaire_url: Annotated[str, Field(pattern=r"^https://", max_length=300)] | None = None
    template: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")] | None = Field(
        default=None, description="messaging.json template used when a customer-service message is not allowed"
    )

    @field_validator("text", "refollow_text")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return None if value is None else _check_placeholders(value, WELCOME_PLACEHOLDERS)

    @model_validator(mode="after")
    def _questionnaire_needed(self) -> WelcomeRule:
        if "{questionnaire_url}" in self.text and not self.questionnaire_url:
            raise ValueError("text uses {questionnaire_url} but questionnaire_url is not set")
        return self


class Store(Strict):
    id: StoreId
    name: Annotated[str, Field(min_length=1, max_length=40)]
    timezone: Zone = "Asia/Shanghai"
    groups: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)

    _zone = field_validator("timezone")(classmethod(lambda cls, v: check_zone(v)))


class StoresRule(RuleFile):
    """stores.json: the chain's stores, their time zones and WeCom groups."""

    default_timezone: Zone = "Asia/Shanghai"
    stores: list[Store] = Field(default_factory=list)

    _zone = field_validator("default_timezone")(classmethod(lambda cls, v: check_zone(v)))

    def zone_of(self, store_id: str | None) -> ZoneInfo:
        for store in self.stores:
            if store.id == store_id:
                return ZoneInfo(store.timezone)
        return ZoneInfo(self.default_timezone)

    def store_of_group(self, group_id: str | None) -> str | None:
        for store in self.stores:
            if group_id in store.groups:
                return store.id
        return None

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(store.id for store in self.stores)


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Time of day, HH:MM")]


class Window(Strict):
    """A daily window in the store's time zone; ``end`` before ``start`` wraps past midnight."""

    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("start and end are the same time: the window would be empty")
        return self

    def minutes(self) -> tuple[int, int]:
        def parse(text: str) -> int:
            hours, minutes = text.split(":")
            return int(hours) * 60 + int(minutes)

        return parse(self.start), parse(self.end)

    def contains(self, minute_of_day: int) -> bool:
        start, end = self.minutes()
        return start <= minute_of_day < end if start < end else minute_of_day >= start or minute_of_day < end


Count = Annotated[int, Field(ge=0, le=10_000)]


class Caps(Strict):
    per_day: Count | None = None
    per_week: Count | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Caps:
        if self.per_day is not None and self.per_week is not None and self.per_day > self.per_week:
            raise ValueError(f"per_day ({self.per_day}) cannot be larger than per_week ({self.per_week})")
        return self


Category = Literal["promo", "service", "alert"]
TemplateChannel = Literal["template", "subscribe", "miniprogram_subscribe"]
MESSAGE_PLACEHOLDERS = frozenset({"text", "title", "value", "code", "expires", "store"})


class Template(Strict):
    """A WeChat template / subscribe-message template and how siyu fills its fields."""

    channel: TemplateChannel
    template_id: Annotated[str, Field(min_length=1, max_length=128)]
    fields: dict[Annotated[str, Field(pattern=r"^[a-z_]+[0-9]*$")], Annotated[str, Field(min_length=1, max_length=200)]]
    url: Annotated[str, Field(pattern=r"^https://")] | None = None
    page: Annotated[str, Field(max_length=200)] | None = None

    @field_validator("fields")
    @classmethod
    def _placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            _check_placeholders(text, MESSAGE_PLACEHOLDERS)
        return value


class Prices(Strict):
    """What one message costs on each channel (yuan), for the monthly budget."""

    template: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    subscribe: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    custom: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    miniprogram_subscribe: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    wecom_customer: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    wecom_group: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    robot: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]


class Retry(Strict):
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    base_seconds: Annotated[int, Field(ge=1, le=3600)] = 2
    max_seconds: Annotated[int, Field(ge=1, le=86_400)] = 600


class GroupSlot(Window):
    """A daily slot in which a store's customer groups may receive one push."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=20)]


def _default_slots() -> list[GroupSlot]:
    return [
        GroupSlot(name="morning", start="08:00", end="10:00"),
        GroupSlot(name="evening", start="21:00", end="22:00"),
    ]


class MessagingRule(RuleFile):
    """messaging.json: delivery discipline for every outbound message."""

    quiet_hours: Window = Window(start="22:00", end="08:00")
    promo_banned_hours: Window | None = Window(start="10:00", end="21:00")
    caps: dict[Category, Caps] = Field(
        default_factory=lambda: {"promo": Caps(per_day=1, per_week=3), "service": Caps(per_day=5)}
    )
    release_spread_minutes: Annotated[int, Field(ge=0, le=600)] = 60
    promo_share_max_percent: Annotated[int, Field(ge=0, le=100)] = Field(
        default=40, description="Promotions at most this share of a member's messages over the week."
    )
    promo_share_applies_from: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=5, description="The share is enforced once a member has had this many messages in the week."
    )
    same_kind_max_days_running: Annotated[int, Field(ge=1, le=30)] = Field(
        default=2, description="The same kind of push (same cause) on at most this many days in a row."
    )
    group_slots: list[GroupSlot] = Field(
        default_factory=_default_slots, description="Pushes to a customer group: one per slot per group."
    )
    template_daily_quota: Annotated[int, Field(ge=1, le=100_000_000)] = Field(
        default=100_000, description="Template messages per day for the account (WeChat: 100k, more with followers)."
    )
    robot_per_minute: Annotated[int, Field(ge=1, le=20)] = Field(
        default=20, description="Messages per minute per WeCom group robot (platform limit: 20)."
    )
    monthly_budget_yuan: Annotated[Decimal, BeforeValidator(_number_only), Field(ge=0, le=10_000_000)] = Field(
        default=1000, validate_default=True
    )
    prices: Prices = Prices()
    send_rate_per_second: Annotated[int, Field(ge=1, le=5000)] = 50
    retry: Retry = Retry()
    templates: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")], Template] = Field(default_factory=dict)

    @property
    def monthly_budget_fen(self) -> int:
        return yuan_to_fen(self.monthly_budget_yuan)


RECALL_PLACEHOLDERS = frozenset({"value", "code", "expires", "min_spend", "title", "days", "store"})
Name = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=30)]
TemplateName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]


class RecallStage(Strict):
    """One stage of the recall flow: members inactive exactly ``days`` days get its message."""

    name: Name
    days: Annotated[int, Field(ge=1, le=365, description="Days without activity that make a member due.")]
    audience: Literal["all", "group_members", "not_group_members"] = Field(
        default="all", description="group_members: the silent-group intercept (members of a store group)."
    )
    text: Text
    coupon: CouponSpec | None = None
    template: TemplateName | None = Field(
        default=None, description="messaging.json template for official-account followers outside the 48 h window"
    )
    category: Literal["promo", "service"] = "promo"

    @field_validator("text")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return _check_placeholders(value, RECALL_PLACEHOLDERS)

    @model_validator(mode="after")
    def _coupon_named(self) -> RecallStage:
        if self.coupon is None and any(f"{{{p}}}" in self.text for p in ("value", "code", "expires", "min_spend")):
            raise ValueError("text mentions the coupon but the stage has no coupon")
        return self


CHALLENGE_PLACEHOLDERS = frozenset({"value", "code", "expires", "min_spend", "title", "days", "deadline"})


class Challenge(Strict):
    """The low-repurchase challenge: "order N days in a row and earn a reward" (003 §5.3)."""

    enabled: StrictBool = False
    max_order_days: Annotated[int, Field(ge=1, le=100)] = Field(
        default=2, description="Invite members who ordered on at most this many days in the lookback (incl. today)."
    )
    lookback_days: Annotated[int, Field(ge=7, le=365)] = 90
    min_member_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=30, description="Only members known this long: a new member's first order is not low repurchase."
    )
    consecutive_days: Annotated[int, Field(ge=2, le=14)] = 3
    window_days: Annotated[int, Field(ge=2, le=60)] = Field(default=14, description="Days to complete it.")
    cooldown_days: Annotated[int, Field(ge=1, le=365)] = Field(default=60, description="Days between invitations.")
    invite_text: Text = "连续{days}天到店消费，即可获得{value}元{title}！活动截至{deadline}。"
    reward: CouponSpec = CouponSpec(title="连续到店奖励", value_yuan=Decimal("5"), valid_days=14)
    reward_text: Text = "挑战成功！送您一张{value}元{title}，券码 {code}，{expires}前有效。"
    template: TemplateName | None = Field(
        default=None, description="messaging.json template for official-account followers outside the 48 h window"
    )

    @field_validator("invite_text", "reward_text")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return _check_placeholders(value, CHALLENGE_PLACEHOLDERS)

    @model_validator(mode="after")
    def _window_fits(self) -> Challenge:
        if self.window_days < self.consecutive_days:
            raise ValueError(f"window_days ({self.window_days}) is shorter than consecutive_days")
        return self


class RecallRule(Scoped):
    """recall.json: lapsed-member recall (流失召回) with a holdout that measures the lift."""

    run_at: HHMM = Field(default="09:30", description="When the daily sweep starts (chain time zone).")
    stages: list[RecallStage] = Field(default_factory=list, max_length=10)
    holdout_percent: Percent = Field(  # type: ignore[valid-type]
        default=10, validate_default=True, description="Share of due members held out (they get nothing)."
    )
    attribution_days: Annotated[int, Field(ge=1, le=90)] = Field(
        default=30, description="A member active again within this many days after the stage counts as returned."
    )
    cooldown_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=5, description="At least this many days between two recalls of one member."
    )
    max_attempts_per_lapse: Annotated[int, Field(ge=1, le=10)] = 3
    min_sample: Annotated[int, Field(ge=10, le=100_000)] = Field(
        default=30, description="Fewer treated or held-out members than this: the report claims no lift."
    )
    silent_grace_days: Annotated[int, Field(ge=1, le=90)] = Field(
        default=7, description="Group members still silent this long after the intercept are listed for ops."
    )
    page_size: Annotated[int, Field(ge=10, le=1000)] = 100
    challenge: Challenge = Challenge()

    @model_validator(mode="after")
    def _stages(self) -> RecallRule:
        seen: dict[str, int] = {}
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage name {stage.name} is used twice")
            seen[stage.name] = stage.days
        return self


# file name -> model. A rule set is exactly these files.
FILES: dict[str, type[RuleFile]] = {
    "messaging.json": MessagingRule,
    "recall.json": RecallRule,
    "stores.json": StoresRule,
    "welcome.json": WelcomeRule,
}
# Duty files added after the first release may be absent from a rule set (versions published
# before the duty existed): an absent file means the duty is off. Their models must validate
# from ``{"enabled": false}`` alone (a test checks).
OPTIONAL_FILES: frozenset[str] = frozenset({"recall.json"})
