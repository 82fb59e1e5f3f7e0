"""Rule models: the code's own definition of every rule file (one model per file).

Every model forbids unknown keys, so a typo in a rule file is an error, not a silently ignored
setting. Money is written in yuan by ops and kept in fen (integers) by the code. Every duty's
rule carries the same scoping fields (``Scoped``): on/off, a time window, pilot stores and a
percentage rollout. The JSON Schemas in ``rules/schema/`` are generated from these models
(``siyu rules schema``).
"""

from __future__ import annotations

import math
import re
import string
from datetime import date as date_
from datetime import datetime, timedelta
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

from chalicelib import stats
from chalicelib.rules import kinds

COUPON_CEILING_YUAN = Decimal("500")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


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
        Field(gt=0, le=int(ceiling), decimal_places=2)
        if minimum == "gt"
        else Field(ge=0, le=int(ceiling), decimal_places=2),
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
    rollout_percent: Percent = Field(default=100, validate_default=True, description="Share of members reached, 0-100.")

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


class FreeItem(Strict):
    sku: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")]
    name: Annotated[str, Field(min_length=1, max_length=20)] = Field(description="What the till shows, e.g. 拿铁.")


class CouponSpec(Strict):
    """A coupon a duty gives. ``kind``: ``amount`` takes ``value_yuan`` off; ``percent`` takes
    ``percent_off`` % off, at most ``value_yuan``; ``item`` gives ``item`` free, worth at most
    ``value_yuan``. Each holds to its minimum spend, store scope and validity window at the till."""

    kind: Literal["amount", "percent", "item"] = "amount"
    title: Annotated[str, Field(min_length=1, max_length=20)] = "新人礼券"
    value_yuan: PositiveYuan = Field(  # type: ignore[valid-type]
        description="amount: what it takes off; percent: the most it takes off; item: the item's price."
    )
    percent_off: Annotated[int, Field(ge=1, le=90)] | None = Field(
        default=None, description="percent: the share taken off the basket (10 = 9折)."
    )
    item: FreeItem | None = Field(default=None, description="item: the free item.")
    min_spend_yuan: Yuan = Field(default=0, validate_default=True)  # type: ignore[valid-type]
    starts_after_days: Annotated[int, Field(ge=0, le=30)] = Field(
        default=0, description="Usable from the start of the local day this many days after issue; 0 = at once."
    )
    valid_days: Annotated[int, Field(ge=1, le=365)]
    store_scope: Literal["all", "home_store"] = "all"

    @model_validator(mode="after")
    def _kind_fields(self) -> CouponSpec:
        if (self.kind == "percent") != (self.percent_off is not None):
            raise ValueError("percent_off is given for kind percent, and only for it")
        if (self.kind == "item") != (self.item is not None):
            raise ValueError("item is given for kind item, and only for it")
        if self.starts_after_days >= self.valid_days:
            raise ValueError("starts_after_days must be less than valid_days")
        return self

    @property
    def value_fen(self) -> int:
        return yuan_to_fen(self.value_yuan)

    @property
    def min_spend_fen(self) -> int:
        return yuan_to_fen(self.min_spend_yuan)


WELCOME_PLACEHOLDERS = frozenset({"benefit", "value", "code", "expires", "min_spend", "questionnaire_url", "title"})
Text = Annotated[str, Field(min_length=1, max_length=600)]


WelcomeTrigger = Literal["followed", "joined_group", "contact_added"]


def _welcome_triggers() -> list[WelcomeTrigger]:
    return ["followed", "joined_group"]


class WelcomeRule(Scoped):
    """welcome.json: the new-member gift (新人礼 / 入群礼)."""

    triggers: list[WelcomeTrigger] = Field(default_factory=_welcome_triggers, min_length=1)
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

    def name_of(self, store_id: str | None) -> str:
        """The store's name as customers see it; empty when the rules do not know the store."""
        return next((store.name for store in self.stores if store.id == store_id), "")

    def label_of(self, store_id: str) -> str:
        """How staff messages name a store: its id and, when the rules know it, its name."""
        return f"{store_id} {self.name_of(store_id)}".strip()

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


def _default_caps() -> dict[Category, Caps]:
    return {"promo": Caps(per_day=1, per_week=3), "service": Caps(per_day=5)}


TemplateChannel = Literal["template", "subscribe", "miniprogram_subscribe"]
# Every word some kind of message carries (chalicelib/rules/kinds.py); which of them a template may
# name depends on the kinds that use it (checked across files, chalicelib/rules/check.py).
MESSAGE_PLACEHOLDERS = frozenset().union(*(kinds.words_of(kind) for kind in kinds.KINDS))


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


KindChannel = Literal["custom", "subscribe", "template", "miniprogram_subscribe", "wecom_customer"]
TemplateName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
Short = Annotated[str, Field(min_length=1, max_length=20)]


class MessageKind(Strict):
    """How one kind of member message reaches its member: the channels it may use, in order, and
    the templates the fallbacks need. At send time siyu takes the first channel the member can
    receive now: ``custom`` inside the customer-service window (and its quota), ``subscribe`` /
    ``miniprogram_subscribe`` with a consent not yet used, ``template`` to a follower,
    ``wecom_customer`` to a WeCom contact."""

    channels: list[KindChannel] = Field(min_length=1, max_length=5)
    template: TemplateName | None = Field(default=None, description="messaging.json template for `template`.")
    subscribe: TemplateName | None = Field(default=None, description="Subscribe template for `subscribe`.")
    miniprogram: TemplateName | None = Field(default=None, description="Template for `miniprogram_subscribe`.")
    title: Short = Field(description="The kind as a template field shows it, e.g. 会员等级 ({kind}).")
    summary: Short | None = Field(
        default=None, description="A short line of the message for a 20-character field ({summary}), with its words."
    )

    @model_validator(mode="after")
    def _needs(self) -> MessageKind:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("a channel is listed twice")
        for channel, name in (
            ("template", "template"),
            ("subscribe", "subscribe"),
            ("miniprogram_subscribe", "miniprogram"),
        ):
            if channel in self.channels and getattr(self, name) is None:
                raise ValueError(f"channel {channel} needs {name}: the template it sends")
        return self

    def template_of(self, channel: str) -> str | None:
        return {"template": self.template, "subscribe": self.subscribe, "miniprogram_subscribe": self.miniprogram}.get(
            channel
        )


class ServiceWindow(Strict):
    """What a member's action allows of customer-service messages (docs/wechat.md §3.5)."""

    minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)]
    quota: Annotated[int, Field(ge=1, le=100)]


WindowAction = Literal["message", "follow", "click", "scan", "payment"]


def _default_windows() -> dict[WindowAction, ServiceWindow | None]:
    # wechat.md §3.5, the current table; payment: listed on the intro page only (unverified), and
    # the orders siyu sees are the POS's, not WeChat payments in the account: off
    three = ServiceWindow(minutes=1, quota=3)
    return {"message": ServiceWindow(minutes=48 * 60, quota=5), "follow": three, "click": three, "scan": three}


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
    caps: dict[Category, Caps] = Field(default_factory=_default_caps)
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
    service_windows: dict[WindowAction, ServiceWindow | None] = Field(
        default_factory=_default_windows,
        description="Per member action: how long customer-service messages may follow it, and how many.",
    )
    kinds: dict[Annotated[str, Field(pattern=r"^[a-z_]+$")], MessageKind] = Field(
        default_factory=dict, description="Each kind of member message: its channels in order and their templates."
    )

    def window_of(self, action: str) -> ServiceWindow | None:
        """The customer-service window a member's action opens (None: it opens none)."""
        return next((w for name, w in self.service_windows.items() if name == action), None)

    @property
    def monthly_budget_fen(self) -> int:
        return yuan_to_fen(self.monthly_budget_yuan)


RECALL_PLACEHOLDERS = frozenset({"benefit", "value", "code", "expires", "min_spend", "title", "days", "store"})
StageName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=30)]


class RecallStage(Strict):
    """One stage of the recall flow: members inactive exactly ``days`` days get its message."""

    name: StageName
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


CHALLENGE_PLACEHOLDERS = frozenset({"benefit", "value", "code", "expires", "min_spend", "title", "days", "deadline"})


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
    holdout_percent: Percent = Field(
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


# --- loyalty.json (issue 7): points, tiers, check-in, referral, birthday, precision push, KOC ---
# One file, because its sections refer to each other (a tier's multiplier drives earning, the
# birthday benefit is chosen by tier, referral and check-in rewards are points in the same ledger)
# and cross-section mistakes are caught in one model. Every field has a default, so the file
# validates from ``{"enabled": false}`` alone (absent from older rule sets: loyalty is off).

Points = Annotated[int, Field(ge=0, le=1_000_000)]
BigYuan = Annotated[
    Decimal,
    BeforeValidator(_number_only),
    Field(ge=0, le=10_000_000, decimal_places=2),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 10_000_000, "multipleOf": 0.01}),
]
Multiplier = Annotated[
    Decimal,
    BeforeValidator(_number_only),
    Field(ge=1, le=10, decimal_places=2),
    WithJsonSchema({"type": "number", "minimum": 1, "maximum": 10}),
]
Name = Annotated[str, Field(min_length=1, max_length=20)]
Tag = Annotated[str, Field(min_length=1, max_length=30)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")]


def _texts(allowed: frozenset[str], *names: str):
    """A field validator checking the placeholders of the named text fields."""
    return field_validator(*names)(classmethod(lambda cls, v: None if v is None else _check_placeholders(v, allowed)))


POINTS_PLACEHOLDERS = frozenset({"points", "balance", "date"})


class PointsSection(Strict):
    """How orders earn points, when points expire, what members are told."""

    enabled: StrictBool = True
    points_per_yuan: Annotated[Decimal, BeforeValidator(_number_only), Field(ge=0, le=100, decimal_places=2)] = Field(
        default=Decimal(1), description="Points per yuan paid (1 yuan = 1 point); fractions of a point are dropped."
    )
    bonus_series: list[Ident] = Field(default_factory=list, description="Designated series earning a bonus per item.")
    series_bonus_points: Points = Field(default=5, description="Extra points per item of a designated series.")
    expire_after_months: Annotated[int, Field(ge=0, le=120)] = Field(
        default=0, description="Points expire at the end of the month this many months after earning; 0 = never."
    )
    expiry_reminder_days: Annotated[int, Field(ge=0, le=60)] = Field(
        default=7, description="Remind the member this many days before points expire; 0 = no reminder."
    )
    expiry_reminder_text: Text = "您有{points}积分将于{date}到期，当前共{balance}积分，记得来兑换哦。"

    _placeholders = _texts(POINTS_PLACEHOLDERS, "expiry_reminder_text")


TIER_PLACEHOLDERS = frozenset({"tier", "previous", "spend", "date"})


class Tier(Strict):
    name: Name
    min_spend_yuan: BigYuan = Field(default=Decimal(0), description="Spend over the period to reach this tier.")
    min_orders: Annotated[int, Field(ge=0, le=10_000)] = Field(default=0, description="Orders over the period.")
    points_multiplier: Multiplier = Field(default=Decimal(1), description="Points earned × this (1.3 = 30% faster).")
    coupon: CouponSpec | None = Field(default=None, description="Benefit coupon issued on reaching the tier.")
    birthday_coupon: CouponSpec | None = Field(default=None, description="Birthday-month coupon of this tier.")
    tags: list[Tag] = Field(default_factory=list, description="Tags the tier carries, e.g. early_access.")
    discount_percent: Annotated[int, BeforeValidator(_number_only), Field(ge=0, le=50)] = Field(
        default=0, description="Percent off at the till for this tier (10 = 9折); the till reads it with the member."
    )


def _default_tiers() -> list[Tier]:
    return [
        Tier(name="普通"),
        Tier(name="银卡", min_spend_yuan=Decimal(500)),
        Tier(name="金卡", min_spend_yuan=Decimal(2000), points_multiplier=Decimal("1.3"), tags=["early_access"]),
        Tier(name="钻卡", min_spend_yuan=Decimal(5000), points_multiplier=Decimal("1.3"), tags=["early_access"]),
    ]


class TiersSection(Strict):
    """Tiers by spend and orders over a rolling period: up at once, down only at the period end."""

    enabled: StrictBool = True
    period_days: Annotated[int, Field(ge=30, le=730)] = 365
    levels: list[Tier] = Field(default_factory=_default_tiers, min_length=1, max_length=10)
    upgrade_text: Text = "恭喜升级为{tier}会员！近期消费{spend}元，专属权益已发放。"
    downgrade_notice_text: Text = "您的会员等级已由{previous}调整为{tier}（{date}起），多来坐坐就能升回去哦。"
    downgrade_warning_days: Annotated[int, Field(ge=0, le=90)] = Field(
        default=14, description="Warn this many days before a period end that would move the member down; 0 = never."
    )
    downgrade_warning_text: Text = (
        "您的{previous}会员将于{date}复核，按近期消费{spend}元将调整为{tier}，期间消费即可保级哦。"
    )

    _placeholders = _texts(TIER_PLACEHOLDERS, "upgrade_text", "downgrade_notice_text", "downgrade_warning_text")

    @model_validator(mode="after")
    def _ordered(self) -> TiersSection:
        names = [t.name for t in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be different")
        if self.levels[0].min_spend_yuan != 0 or self.levels[0].min_orders != 0:
            raise ValueError("the first tier is the entry tier: min_spend_yuan and min_orders must be 0")
        spends = [t.min_spend_yuan for t in self.levels]
        if spends != sorted(spends):
            raise ValueError("levels go from the lowest tier to the highest: min_spend_yuan must not decrease")
        return self


CHECKIN_PLACEHOLDERS = frozenset({"streak", "points", "balance", "days"})


class CheckinSection(Strict):
    """Daily check-in: one per member per store-local day, streaks, weekly lottery."""

    enabled: StrictBool = True
    keywords: list[Annotated[str, Field(min_length=1, max_length=10)]] = Field(
        default_factory=lambda: ["签到"], description="Texts sent to the official account that check in."
    )
    points: Points = Field(default=1, description="Points per check-in.")
    streak_days: Annotated[int, Field(ge=2, le=365)] = 7
    streak_bonus_points: Points = Field(default=10, description="Bonus each time the streak reaches a multiple.")
    badge_days: Annotated[int, Field(ge=2, le=3650)] = 100
    badge: Tag = "百日打卡"
    text: Text = "签到成功！已连续签到{streak}天，获得{points}积分，当前共{balance}积分。"
    already_text: Text = "今天已经签过到啦，已连续签到{streak}天，明天再来哦。"
    badge_text: Text = "太棒了！您已连续签到{days}天，获得「百日打卡」徽章。"
    lottery_winners: Annotated[int, Field(ge=0, le=1000)] = Field(default=3, description="Winners per weekly draw.")
    lottery_prize: CouponSpec | None = Field(
        default_factory=lambda: CouponSpec(title="签到抽奖券", value_yuan=Decimal(10), valid_days=14)
    )
    lottery_text: Text = "恭喜您在本周签到抽奖中中奖！"

    _placeholders = _texts(CHECKIN_PLACEHOLDERS, "text", "already_text", "badge_text", "lottery_text")


REFERRAL_PLACEHOLDERS = frozenset({"count", "invite_link"})


class ReferralReward(Strict):
    invites: Annotated[int, Field(ge=1, le=1000)]
    coupon: CouponSpec | None = None
    points: Points = 0
    text: Text = "您已成功邀请{count}位好友，奖励已发放！"

    _placeholders = _texts(REFERRAL_PLACEHOLDERS, "text")


def _default_rewards() -> list[ReferralReward]:
    return [
        ReferralReward(invites=1, coupon=CouponSpec(title="邀请好友券", value_yuan=Decimal(5), valid_days=30)),
        ReferralReward(
            invites=3,
            coupon=CouponSpec(title="免单券", value_yuan=Decimal(30), valid_days=30),
            text="您已成功邀请{count}位好友，送您一张免单券！",
        ),
    ]


class ReferralSection(Strict):
    """Invite rewards: an invitee counts once ever, after a grace period still following."""

    enabled: StrictBool = True
    grace_days: Annotated[int, Field(ge=0, le=90)] = Field(
        default=7, description="An invitee who unfollows within this many days does not count."
    )
    unlock_spend_yuan: BigYuan = Field(
        default=Decimal(200), description="Spend needed before a member's invites count; 0 = everyone."
    )
    invite_link: Annotated[str, Field(pattern=r"^https://", max_length=200)] = "https://example.com/siyu/invite"
    unlock_text: Text = "您已解锁专属邀请码！分享链接邀请好友关注：{invite_link}"
    rewards: list[ReferralReward] = Field(default_factory=_default_rewards, max_length=10)

    _placeholders = _texts(REFERRAL_PLACEHOLDERS, "unlock_text")

    @property
    def unlock_spend_fen(self) -> int:
        return yuan_to_fen(self.unlock_spend_yuan)

    @model_validator(mode="after")
    def _distinct(self) -> ReferralSection:
        counts = [r.invites for r in self.rewards]
        if len(set(counts)) != len(counts):
            raise ValueError("each reward needs a different number of invites")
        return self


OFFER_PLACEHOLDERS = frozenset({"benefit", "name", "title", "value", "code", "expires", "tier"})


class CategoryOffer(Strict):
    category: Ident = Field(description="The category id as the POS sends it on order items.")
    name: Name = Field(description="The category as members read it, e.g. 奶茶.")
    coupon: CouponSpec
    text: Text = "您常点的{name}送您一张{value}元{title}，券码 {code}，{expires}前有效。"

    _placeholders = _texts(OFFER_PLACEHOLDERS, "text")


class PrecisionSection(Strict):
    """Members who bought a category more than ``more_than`` times in the period get its coupon."""

    enabled: StrictBool = True
    more_than: Annotated[int, Field(ge=0, le=100)] = 3
    period: Literal["month", "quarter", "year"] = "month"
    offers: list[CategoryOffer] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _distinct(self) -> PrecisionSection:
        categories = [o.category for o in self.offers]
        if len(set(categories)) != len(categories):
            raise ValueError("each category may have one offer")
        return self


class BirthdaySection(Strict):
    """The birthday-month benefit: the member's tier's ``birthday_coupon``, once a year."""

    enabled: StrictBool = True
    text: Text = "生日快乐！{tier}会员生日月礼遇：{value}元{title}，券码 {code}，{expires}前有效。"

    _placeholders = _texts(OFFER_PLACEHOLDERS, "text")


class KocSection(Strict):
    """Each month, the most active share of each store group's members are brand helpers."""

    enabled: StrictBool = True
    share_percent: Percent = Field(default=30, validate_default=True)
    min_events: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=1, description="Events in the month a member needs to be considered at all."
    )
    tag: Tag = "brand_helper"
    text: Text = "感谢您上个月在群里的活跃！您已成为本月品牌体验官，新品试饮会优先邀请您。"


class TillSection(Strict):
    """What the till may do (README, "The till API"), whether or not loyalty duties are on: void a
    redemption, and the member code the mini program shows (``POST /mp/member-code``) with the
    official account's menu entry to it."""

    void_window_minutes: Annotated[int, Field(ge=0, le=7 * 24 * 60)] = Field(
        default=30, description="A till may void a coupon's redemption this long after it (cancelled order); 0 = never."
    )
    member_code_ttl_seconds: Annotated[int, BeforeValidator(_number_only), Field(ge=30, le=3600)] = Field(
        default=180, description="How long a member code is valid: a screenshot older than this is refused."
    )
    menu_key: Ident | None = Field(
        default=None, description="The official account's menu key (CLICK) answered with menu_text; null = none."
    )
    link: Annotated[str, Field(pattern=r"^https://", max_length=200)] = Field(
        default="https://example.com/siyu/member-code", description="The mini program's page that shows the code."
    )
    menu_text: Text = "请点击打开会员码，在收银台出示：{link}"

    _placeholders = _texts(frozenset({"link"}), "menu_text")


class LoyaltyRule(Scoped):
    """loyalty.json: points, tiers, check-in, referral, precision push, birthday, KOC, the till."""

    points: PointsSection = PointsSection()
    tiers: TiersSection = TiersSection()
    checkin: CheckinSection = CheckinSection()
    referral: ReferralSection = ReferralSection()
    precision_push: PrecisionSection = PrecisionSection()
    birthday: BirthdaySection = BirthdaySection()
    koc: KocSection = KocSection()
    till: TillSection = TillSection()

    def tier(self, name: str | None) -> Tier:
        """A tier by name; an unknown or absent name (a renamed tier) is the entry tier."""
        for level in self.tiers.levels:
            if level.name == name:
                return level
        return self.tiers.levels[0]


KPI_NAMES = Literal[
    "interaction_rate",
    "conversion_rate",
    "churn_rate",
    "repurchase_rate",
    "average_order_value",
    "coupon_redemption_rate",
    "retention_d1",
    "retention_d7",
    "nps",
    "delivery_rate",
]
LEVELS = ("notice", "yellow", "orange", "red")


def _core_kpis() -> list[KPI_NAMES]:
    return ["interaction_rate", "conversion_rate", "churn_rate", "nps", "average_order_value"]


class AlertLevel(Strict):
    name: Literal["notice", "yellow", "orange", "red"]
    deviation_percent: Annotated[int, Field(ge=1, le=100)]
    playbook: Text


def _default_levels() -> list[AlertLevel]:
    return [
        AlertLevel(name="notice", deviation_percent=10, playbook="48小时内响应：核对数据，找出原因并记录。"),
        AlertLevel(name="yellow", deviation_percent=15, playbook="客服与社群运营人手增加20%，每日跟进指标。"),
        AlertLevel(name="orange", deviation_percent=25, playbook="成立技术与运营专项组，当日排查原因。"),
        AlertLevel(name="red", deviation_percent=40, playbook="启动专项预算，区域负责人当日介入。"),
    ]


class Suppression(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Annotated[str, Field(min_length=1, max_length=60)]


class Check(Strict):
    """One watched number: a KPI against its target, per store or for the chain."""

    name: StageName
    metric: KPI_NAMES
    scope: Literal["chain", "each_store"] = "each_store"
    target: Annotated[Decimal, BeforeValidator(_number_only), Field(gt=0, le=1_000_000)] = Field(
        description="In the KPI's unit: percent for rates (20 = 20 %), yuan for average_order_value, points for nps."
    )
    direction: Literal["at_least", "at_most"] = "at_least"
    period: Literal["day", "week"] = "day"
    consecutive: Annotated[int, Field(ge=1, le=8)] = Field(
        default=1, description="Breached in this many periods in a row before it alerts (the mildest level counts)."
    )
    floor: Annotated[Decimal, BeforeValidator(_number_only), Field(ge=0, le=1_000_000)] | None = Field(
        default=None, description="An absolute bound (same unit): crossing it is at least a yellow alert."
    )
    min_sample: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=30, description="No judgement when the KPI's denominator is smaller (too few members or orders)."
    )
    robot: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=32)] | None = Field(
        default=None, description="Robot name (SIYU_ROBOT_KEYS); default: the store's id, or ops for the chain."
    )


class ReviewSla(Strict):
    """The negative-review SLA (003 §7.1, "1小时响应-24小时处理-72小时追踪"): a review at or below
    ``max_score`` opens a ticket and tells the store; no response within ``respond_minutes``
    alerts the store; unresolved after ``resolve_hours`` escalates to ``escalate_robot``; at
    ``follow_up_hours`` the store is reminded to follow up with the customer."""

    enabled: StrictBool = True
    max_score: Annotated[int, Field(ge=1, le=4)] = Field(default=2, description="Reviews of 1..max_score stars.")
    respond_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    resolve_hours: Annotated[int, Field(ge=1, le=168)] = 24
    follow_up_hours: Annotated[int, Field(ge=1, le=720)] = 72
    escalate_robot: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=32)] = "ops"

    @model_validator(mode="after")
    def _in_order(self) -> ReviewSla:
        if not self.respond_minutes < self.resolve_hours * 60 < self.follow_up_hours * 60:
            raise ValueError("respond_minutes, resolve_hours and follow_up_hours must come in that order")
        return self


class AlertsRule(Scoped):
    """alerts.json: warning thresholds on the KPIs, four levels by deviation from target; the
    negative-review SLA."""

    levels: list[AlertLevel] = Field(default_factory=_default_levels, min_length=1, max_length=4)
    remind_hours: Annotated[int, Field(ge=1, le=720)] = Field(default=24, description="Remind while open.")
    suppress: list[Suppression] = Field(default_factory=list, description="No new alerts in these windows.")
    checks: list[Check] = Field(default_factory=list, max_length=50)
    reviews: ReviewSla = Field(default_factory=ReviewSla, description="Tickets for negative reviews.")

    @model_validator(mode="after")
    def _ordered(self) -> AlertsRule:
        steps = [level.deviation_percent for level in self.levels]
        if steps != sorted(set(steps)):
            raise ValueError("levels go from the mildest to the most severe, each with a larger deviation_percent")
        names = [check.name for check in self.checks]
        if len(set(names)) != len(names):
            raise ValueError("each check needs its own name")
        return self


DIGEST_PLACEHOLDERS = frozenset({"amount", "orders", "share"})
DELIVERY_PLACEHOLDERS = frozenset({"intended", "delivered", "rate", "dropped", "why"})
EXPERIMENT_PLACEHOLDERS = frozenset({"title", "metric", "arm", "baseline", "lift", "p", "verdict"})


class DigestRule(Scoped):
    """digest.json: the weekly digest (周报) for the review meeting."""

    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "wednesday"
    at: HHMM = Field(default="10:00", description="When it is sent, in the chain's time zone.")
    robot: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=32)] = "ops"
    core: list[KPI_NAMES] = Field(
        default_factory=_core_kpis,
        min_length=1,
        max_length=9,
        description="The core metrics, in this order.",
    )
    targets: dict[KPI_NAMES, Annotated[Decimal, BeforeValidator(_number_only), Field(gt=0, le=1_000_000)]] = Field(
        default_factory=dict, description="Targets in the KPI's unit (percent, yuan for average_order_value, points)."
    )
    rank_by: KPI_NAMES = "conversion_rate"
    top_bottom: Annotated[int, Field(ge=1, le=10)] = 3
    tier_benefits_text: Text = Field(
        default="会员等级折扣 {amount}元（{orders}单，占GMV {share}）",
        description="The week's cost of tier discounts given at the till; shown when there was any.",
    )
    delivery_text: Text = Field(
        default="会员消息 应发 {intended} · 送达 {delivered}（{rate}）· 未送达 {dropped}{why}",
        description="The week's member messages: queued, delivered, dropped and why ({why}: by reason).",
    )
    experiments_text: Text = Field(
        default="{title}：{metric} {arm} 对 {baseline} {lift}，p={p}，{verdict}",
        description="One line per experiment, metric and arm, for experiments running or ended in the last 4 weeks.",
    )

    _placeholders = _texts(DIGEST_PLACEHOLDERS, "tier_benefits_text")
    _delivery_words = _texts(DELIVERY_PLACEHOLDERS, "delivery_text")
    _experiment_words = _texts(EXPERIMENT_PLACEHOLDERS, "experiments_text")

    def target_of(self, kpi: str) -> Decimal | None:
        """The target of a KPI named at run time (a digest row, a console card), if one is set."""
        return next((value for name, value in self.targets.items() if name == kpi), None)


ItemId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
STOCK_MAX = 1_000_000
Stock = Annotated[int, Field(ge=0, le=STOCK_MAX)]


class MemberLimit(Strict):
    """How often one member may redeem an item: per local calendar month and/or ever (either may
    be left out: no limit of that kind)."""

    per_month: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="Redemptions per member in one calendar month (the store's time zone)."
    )
    ever: Annotated[int, Field(ge=1, le=1000)] | None = Field(default=None, description="Redemptions per member, ever.")


class CatalogItem(Strict):
    """One thing points buy (积分兑换): a drink, merchandise or a lottery entry. What the member
    gets is always a coupon (``coupon``): a drink or merchandise is a free-item coupon the till
    honours; a lottery entry is a free-item coupon for one draw, rung up at its nominal price."""

    id: ItemId = Field(description="The item's id, as the till and the mini program name it.")
    name: Annotated[str, Field(min_length=1, max_length=20)] = Field(description="What members see, e.g. 美式咖啡.")
    category: Literal["drink", "merchandise", "lottery"]
    points: Annotated[int, BeforeValidator(_number_only), Field(ge=1, le=1_000_000)] = Field(
        description="The points price."
    )
    coupon: CouponSpec = Field(description="The coupon a redemption issues.")
    stock: Stock | dict[StoreId, Stock] | None = Field(
        default=None,
        description="How many may be redeemed: one number for the chain, {store id: number} per store, "
        "or null for unlimited. Raising it later makes more available; redeemed ones are counted.",
    )
    limit: MemberLimit = Field(default_factory=MemberLimit, description="Per member: per_month and/or ever.")
    starts_at: AwareDatetime | None = Field(default=None, description="Redeemable from (with offset, +08:00).")
    ends_at: AwareDatetime | None = Field(default=None, description="Redeemable until (exclusive).")

    @field_validator("stock", mode="before")
    @classmethod
    def _stock(cls, value: object) -> object:
        """One sentence at ``/stock`` instead of one per member of the union."""
        if value is None:
            return value
        amounts = list(value.items()) if isinstance(value, dict) else [("S001", value)]
        for store_id, amount in amounts:
            if not isinstance(store_id, str) or not re.fullmatch(r"[A-Za-z0-9_\-]{1,32}", store_id):
                raise ValueError(f"{store_id!r} is not a store id")
            if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= STOCK_MAX:
                raise ValueError(f"stock is a whole number from 0 to {STOCK_MAX}, {{store id: number}}, or null")
        return value

    @model_validator(mode="after")
    def _window(self) -> CatalogItem:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be later than starts_at")
        if isinstance(self.stock, dict) and not self.stock:
            raise ValueError("stock per store names at least one store (null: unlimited)")
        return self

    def on_offer(self, now: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (self.ends_at is None or now < self.ends_at)


class CatalogRule(RuleFile):
    """catalog.json: what points buy (积分商城), redeemed at the till or in the mini program."""

    enabled: StrictBool = Field(default=True, description="Switch the catalog on or off: true or false.")
    items: list[CatalogItem] = Field(default_factory=list, max_length=200)

    @field_validator("items")
    @classmethod
    def _unique(cls, items: list[CatalogItem]) -> list[CatalogItem]:
        ids = [item.id for item in items]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"each item needs its own id: {', '.join(twice)} is listed more than once")
        return items

    def item(self, item_id: str) -> CatalogItem | None:
        return next((item for item in self.items if item.id == item_id), None)


# --- segments.json (issue 21): segments and tags over a closed set of member facts -----------
# A condition names one fact and compares it with typed operators: a number with gte / lte / gt /
# lt / eq, a name with ``in``, a yes/no with ``is``. The closed set is CONDITION_FACTS; a fact or
# an operator outside it is refused by ``siyu rules check`` with a sentence (docs/rules.md,
# "Segments"). Every field has a default: the file validates from ``{"enabled": false}``.

SegmentName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=30)]
FactNumber = Annotated[Decimal, BeforeValidator(_number_only), Field(ge=0, le=10_000_000)]
DaysWindow = Annotated[int, BeforeValidator(_number_only), Field(ge=1, le=730)]
NUMERIC_OPERATORS = ("gte", "lte", "gt", "lt", "eq")


class _Compared(Strict):
    """A number compared with one or more of gte / lte / gt / lt / eq (all must hold)."""

    gte: FactNumber | None = None
    lte: FactNumber | None = None
    gt: FactNumber | None = None
    lt: FactNumber | None = None
    eq: FactNumber | None = None

    @model_validator(mode="after")
    def _some_operator(self) -> _Compared:
        if all(getattr(self, op) is None for op in NUMERIC_OPERATORS):
            raise ValueError("compare the number with at least one of gte, lte, gt, lt, eq")
        return self

    def holds(self, value: Decimal | int | None) -> bool:
        """True when every operator given holds; a fact the member does not have never holds."""
        if value is None:
            return False
        checks = {
            "gte": lambda b: value >= b,
            "lte": lambda b: value <= b,
            "gt": lambda b: value > b,
            "lt": lambda b: value < b,
            "eq": lambda b: value == b,
        }
        return all(check(getattr(self, op)) for op, check in checks.items() if getattr(self, op) is not None)


class DaysSinceActive(_Compared):
    """Local days since the member's last activity (any event)."""

    fact: Literal["days_since_active"]


class DaysSinceFirstSeen(_Compared):
    """Local days since siyu first saw the member."""

    fact: Literal["days_since_first_seen"]


class DaysSinceOrder(_Compared):
    """Local days since the member's latest paid order."""

    fact: Literal["days_since_order"]


class Orders(_Compared):
    """Paid orders (not wholly refunded) within the last ``days`` days."""

    fact: Literal["orders"]
    days: DaysWindow = 30


class SpendYuan(_Compared):
    """Net spend in yuan (paid minus refunded) within the last ``days`` days."""

    fact: Literal["spend_yuan"]
    days: DaysWindow = 30


class CategoryOrders(_Compared):
    """Paid orders with an item of ``category`` within the last ``days`` days."""

    fact: Literal["category_orders"]
    category: Annotated[str, Field(min_length=1, max_length=40)]
    days: DaysWindow = 30


class CouponOrderShare(_Compared):
    """The percentage of paid orders within ``days`` that redeemed a coupon; a member with fewer
    than ``min_orders`` orders in the window has no share (the condition does not hold)."""

    fact: Literal["coupon_order_share_percent"]
    days: DaysWindow = 90
    min_orders: Annotated[int, BeforeValidator(_number_only), Field(ge=1, le=1000)] = 3


class TierIn(Strict):
    """The member's tier (loyalty.json tier names; no tier yet = the entry tier)."""

    fact: Literal["tier"]
    in_: list[Name] = Field(alias="in", min_length=1, description='Tier names, e.g. ["金卡", "钻卡"].')


class StoreIn(Strict):
    """The member's store (first-touch attribution)."""

    fact: Literal["store"]
    in_: list[StoreId] = Field(alias="in", min_length=1, description="Store ids from stores.json.")


class ChannelIn(Strict):
    """The channel the member first came through (the QR scene's ``ch``, e.g. poster)."""

    fact: Literal["channel"]
    in_: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(alias="in", min_length=1)


class HasTag(Strict):
    """The member has (``is``: true) or lacks (false) a tag: a tag of this file or a loyalty tag."""

    fact: Literal["has_tag"]
    tag: Tag
    is_: StrictBool = Field(default=True, alias="is")


class ConsentTo(Strict):
    """The member accepted (``is``: true) the subscribe template ``template`` (messaging.json name) at least once."""

    fact: Literal["consent"]
    template: TemplateName
    is_: StrictBool = Field(default=True, alias="is")


class Subscribed(Strict):
    """The member follows the official account (``is``: true) or not (false)."""

    fact: Literal["subscribed"]
    is_: StrictBool = Field(default=True, alias="is")


NUMERIC_FACTS: dict[str, frozenset[str]] = {
    "days_since_active": frozenset(),
    "days_since_first_seen": frozenset(),
    "days_since_order": frozenset(),
    "orders": frozenset({"days"}),
    "spend_yuan": frozenset({"days"}),
    "category_orders": frozenset({"category", "days"}),
    "coupon_order_share_percent": frozenset({"days", "min_orders"}),
}
NAME_FACTS: dict[str, frozenset[str]] = {"tier": frozenset(), "store": frozenset(), "channel": frozenset()}
YES_NO_FACTS: dict[str, frozenset[str]] = {
    "has_tag": frozenset({"tag"}),
    "consent": frozenset({"template"}),
    "subscribed": frozenset(),
}
CONDITION_FACTS = {**NUMERIC_FACTS, **NAME_FACTS, **YES_NO_FACTS}
ORDER_WINDOW_FACTS = frozenset({"orders", "spend_yuan", "category_orders", "coupon_order_share_percent"})


def _condition_shape(value: object) -> object:
    """One sentence for a fact siyu does not know or an operator of the wrong kind, before the
    models say it in their own words."""
    if not isinstance(value, dict):
        return value
    fact = value.get("fact")
    if fact is None:
        raise ValueError(f"a condition names its fact: one of {', '.join(sorted(CONDITION_FACTS))}")
    if not isinstance(fact, str) or fact not in CONDITION_FACTS:
        raise ValueError(f"{fact!r} is not a fact siyu knows; facts: {', '.join(sorted(CONDITION_FACTS))}")
    given = set(value) - {"fact"} - CONDITION_FACTS[fact]
    if fact in NUMERIC_FACTS:
        kind, allowed = "a number: compare it with gte, lte, gt, lt or eq", set(NUMERIC_OPERATORS)
    elif fact in NAME_FACTS:
        kind, allowed = "a name: compare it with in [ … ]", {"in"}
    else:
        kind, allowed = "yes or no: say is true or is false", {"is"}
    wrong = sorted(given - allowed)
    if wrong:
        raise ValueError(f"{fact} is {kind}, not {', '.join(wrong)}")
    return value


Condition = Annotated[
    DaysSinceActive
    | DaysSinceFirstSeen
    | DaysSinceOrder
    | Orders
    | SpendYuan
    | CategoryOrders
    | CouponOrderShare
    | TierIn
    | StoreIn
    | ChannelIn
    | HasTag
    | ConsentTo
    | Subscribed,
    Field(discriminator="fact"),
    BeforeValidator(_condition_shape),
]


class TagDef(Strict):
    """A tag set on members whose facts meet every condition (``all``); kept in the member's
    ``segment_tags``, evaluated before the segments (which may ask ``has_tag``)."""

    title: Name = Field(description="What ops read, e.g. 价格敏感.")
    description: Annotated[str, Field(max_length=200)] = ""
    all: list[Condition] = Field(min_length=1, max_length=10, description="Conditions that must all hold.")


class SegmentDef(Strict):
    """A segment: the members whose facts meet every condition (``all``). Campaigns name it."""

    title: Name = Field(description="What ops read, e.g. 高价值.")
    description: Annotated[str, Field(max_length=200)] = ""
    all: list[Condition] = Field(min_length=1, max_length=10, description="Conditions that must all hold.")


class SegmentsRule(Scoped):
    """segments.json: segments and tags of members (RFM: 001 §3.2, §4.2; high value 000 §2.5),
    evaluated by the ``evaluate_segments`` timer into membership records (chalicelib/segments)."""

    evaluate_at: HHMM = Field(default="04:00", description="The daily full evaluation starts after this local time.")
    page_size: Annotated[int, Field(ge=10, le=1000)] = Field(default=200, description="Members read per page.")
    tags: dict[SegmentName, TagDef] = Field(default_factory=dict, max_length=20)
    # at most 30: a member whose store changes moves every row, 30 out and 30 in, with their own
    # row 61 items of one transaction (DynamoDB takes 100)
    segments: dict[SegmentName, SegmentDef] = Field(default_factory=dict, max_length=30)

    @model_validator(mode="after")
    def _tags_before_segments(self) -> SegmentsRule:
        for name, tag in self.tags.items():
            for condition in tag.all:
                if isinstance(condition, HasTag) and condition.tag in self.tags:
                    raise ValueError(
                        f"tag {name} asks for tag {condition.tag}: tags are evaluated together, "
                        "only segments may ask has_tag of this file's tags"
                    )
        return self

    def order_window_days(self) -> int:
        """The longest window of any condition on orders (0: none asks about orders)."""
        everything: list[TagDef | SegmentDef] = [*self.tags.values(), *self.segments.values()]
        return max(
            (getattr(c, "days", 0) for d in everything for c in d.all if c.fact in ORDER_WINDOW_FACTS), default=0
        )

    def uses(self, *facts: str) -> bool:
        """Whether any tag or segment asks one of ``facts`` (a pass reads only what is asked)."""
        everything: list[TagDef | SegmentDef] = [*self.tags.values(), *self.segments.values()]
        return any(condition.fact in facts for definition in everything for condition in definition.all)


# --- campaigns.json: the content calendar and campaigns (issue 21) ---------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ThemeName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=30)]
SlotName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=20)]
GroupId = Annotated[str, Field(min_length=1, max_length=64)]
CampaignName = Annotated[str, Field(pattern=r"^[a-z0-9_\-]+$", min_length=1, max_length=40)]
PushText = Annotated[str, Field(min_length=1, max_length=1000)]
Link = Annotated[str, Field(pattern=r"^https://", max_length=500)]


def _plan_themes() -> dict[Weekday, str]:
    # 003 §2.2.2 (1): Mon brand story, Tue new product, Wed member story, Thu offer; Fri-Sun are not
    # in that calendar: 晒单有礼 (003 §2.2.2 (2)) and the weekend in-store check-in (003 §2.2.3 (3))
    return {
        "mon": "brand_story",
        "tue": "new_product",
        "wed": "member_story",
        "thu": "offer",
        "fri": "share_order",
        "sat": "weekend_checkin",
        "sun": "weekend_checkin",
    }


class CalendarSlot(Strict):
    """One push a day per group: at ``at`` (store time, inside the messaging.json group slot of
    the same name). ``wecom_group``: a company mass message to the group (add_msg_template to the
    group owner, who confirms it); ``staff_post``: the text goes to the store staff's robot for the
    group's operator to post in the group themselves (WeCom lets a customer group receive one
    mass message a day, so the second push of the day cannot be one)."""

    name: SlotName
    at: HHMM
    channel: Literal["wecom_group", "staff_post"]


def _default_calendar_slots() -> list[CalendarSlot]:
    return [
        CalendarSlot(name="morning", at="08:30", channel="wecom_group"),
        CalendarSlot(name="evening", at="21:00", channel="staff_post"),
    ]


class Holiday(Strict):
    """A holiday's greeting replaces the day's theme (002 §3.4)."""

    date: date_
    name: Annotated[str, Field(min_length=1, max_length=20)]
    verified: StrictBool = Field(default=False, description="The date is checked against an official calendar.")


class Piece(Strict):
    """A piece of content. Dated: for that day (and slot, if named). Undated: in its theme's pool."""

    theme: ThemeName | None = None
    date: date_ | None = None
    slot: SlotName | None = None
    stores: list[StoreId] = Field(default_factory=list, description="Only these stores; empty = every store.")
    text: PushText
    link: Link | None = None

    @model_validator(mode="after")
    def _placed(self) -> Piece:
        if self.date is None and self.theme is None:
            raise ValueError("a piece needs a date (a dated piece) or a theme (the theme's pool)")
        return self


class CalendarRule(Strict):
    """The content calendar: per group, each day's theme (or holiday) in each slot."""

    enabled: StrictBool = True
    themes: dict[Weekday, ThemeName] = Field(default_factory=_plan_themes, description="Each weekday's theme.")
    theme_titles: dict[ThemeName, Annotated[str, Field(min_length=1, max_length=20)]] = Field(
        default_factory=dict, description="How staff messages name a theme, e.g. 品牌故事."
    )
    slots: list[CalendarSlot] = Field(default_factory=_default_calendar_slots, max_length=4)
    holidays: list[Holiday] = Field(default_factory=list)
    holiday_theme: ThemeName = Field(default="holiday", description="The pool a holiday without its own piece uses.")
    pieces: list[Piece] = Field(default_factory=list, description="Dated pieces, and each theme's pool.")
    owners: dict[GroupId, Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=dict, description="Each group's owner: the WeCom staff userid who confirms its mass message."
    )
    missing_alert_at: HHMM = Field(
        default="17:00", description="The day before, at this store time, a slot with no content alerts the store."
    )
    staff_text: Text = Field(
        default="【今日群内容·{slot}】{store} 群{group}，请于{at}发到客户群：\n{text}",
        description="The staff robot's message for a staff_post slot.",
    )
    missing_text: Text = Field(
        default="【内容缺失】{store} 明天（{day}）{slot}（{theme}）还没有内容，请在 campaigns.json 补充。",
        description="The alert the day before for a slot with no content.",
    )

    _staff = field_validator("staff_text")(
        classmethod(lambda cls, v: _check_placeholders(v, frozenset({"slot", "store", "group", "at", "text"})))
    )
    _missing = field_validator("missing_text")(
        classmethod(lambda cls, v: _check_placeholders(v, frozenset({"store", "day", "slot", "theme"})))
    )

    @model_validator(mode="after")
    def _one_per_slot(self) -> CalendarRule:
        names = [slot.name for slot in self.slots]
        if len(set(names)) != len(names):
            raise ValueError("a slot is listed twice: one push per group per slot")
        if sum(slot.channel == "wecom_group" for slot in self.slots) > 1:
            raise ValueError("at most one wecom_group slot: a customer group receives one mass message a day")
        return self


class Audience(Strict):
    """Who a campaign reaches: a segment's members (a message each), or store groups."""

    segment: Annotated[str, Field(pattern=r"^[a-z0-9_\-]+$", max_length=40)] | None = None
    groups: list[GroupId] | Literal["all"] | None = None

    @model_validator(mode="after")
    def _one(self) -> Audience:
        if (self.segment is None) == (self.groups is None):
            raise ValueError("name either segment or groups")
        return self


class WeeklyAt(Strict):
    weekday: Weekday
    at: HHMM


class SlotAt(Strict):
    """A calendar slot of one day: the campaign's content replaces the calendar's there."""

    date: date_
    slot: SlotName


class Schedule(Strict):
    at: AwareDatetime | None = Field(default=None, description="Once, at this time (with offset, e.g. +08:00).")
    weekly: WeeklyAt | None = None
    calendar: SlotAt | None = None

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        if sum(x is not None for x in (self.at, self.weekly, self.calendar)) != 1:
            raise ValueError("name exactly one of at, weekly, calendar")
        return self


class Campaign(Scoped):
    """One campaign: audience, kind, content, schedule; scoped like every rule."""

    name: CampaignName
    title: Annotated[str, Field(min_length=1, max_length=20)]
    audience: Audience
    kind: Annotated[str, Field(pattern=r"^[a-z_]+$")] = "campaign"
    text: PushText
    link: Link | None = None
    schedule: Schedule
    stores: dict[StoreId, PushText] = Field(default_factory=dict, description="Per-store text overrides.")
    variants: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")], PushText] = Field(
        default_factory=dict,
        description="Text per arm of the experiment that tests the campaign (experiments.json names it); "
        "an arm without one gets the campaign's text.",
    )

    @model_validator(mode="after")
    def _fits(self) -> Campaign:
        if self.schedule.calendar is not None and self.audience.groups is None:
            raise ValueError("a calendar slot is a group push: its audience names groups")
        return self


class MassLimit(Strict):
    """WeCom: a customer group receives at most one mass message a day (docs/wechat.md §4.5)."""

    period: Literal["day"] = "day"
    count: Annotated[int, Field(ge=1, le=1)] = 1


class CampaignsRule(Scoped):
    """campaigns.json: the content calendar of the store groups and the campaigns."""

    calendar: CalendarRule = CalendarRule(enabled=False)
    campaigns: list[Campaign] = Field(default_factory=list)
    group_mass_limit: MassLimit = MassLimit()

    @model_validator(mode="after")
    def _names(self) -> CampaignsRule:
        names = [c.name for c in self.campaigns]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"campaign {twice[0]} is listed twice")
        return self

    def campaign(self, name: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.name == name), None)


ExperimentMetric = Literal["conversion", "redemption", "order_value"]
# The rule files whose duty takes each member's version of the file under a rule-change
# experiment (chalicelib/experiments/assign.py, variant): welcome.json (chalicelib/duties/welcome.py).
# An experiment on another file would change nothing, so rules check refuses it.
TESTABLE_FILES = frozenset({"welcome.json"})
ExperimentName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=40)]
HOLDOUT = "holdout"


class Arm(Strict):
    """One arm of an experiment: its name and its share of the members not held out."""

    name: ExperimentName
    weight: Annotated[int, BeforeValidator(_number_only), Field(ge=1, le=100)] = 1


class RuleChange(Strict):
    """A rule change under test: the value at ``pointer`` of ``file`` that each arm gets (the
    holdout keeps the file's own value). Checked: the file and pointer exist, every arm's value
    makes a valid file (chalicelib/rules/check.py)."""

    file: Annotated[str, Field(pattern=r"^[a-z_]+\.json$")]
    pointer: Annotated[str, Field(pattern=r"^(/[^/]+)+$", max_length=200)] = Field(
        description="JSON pointer of the setting, e.g. /coupon/value_yuan."
    )
    values: dict[ExperimentName, object] = Field(description="Arm name -> the value it gets.")


def _conversion_only() -> list[ExperimentMetric]:
    return ["conversion"]


class SamplePlan(Strict):
    """What an experiment needs before it starts (chalicelib/stats.py, sample_size)."""

    baseline: str
    base_rate: float
    expected_rate: float
    per_group: dict[str, int] = Field(description="Members needed per group (holdout and each arm).")
    fill_days: int = Field(description="Days of exposures until every group has its members.")
    days_needed: int = Field(description="fill_days plus conversion_days for the last member to convert.")
    window_days: int


class Experiment(Strict):
    """An A/B test of a campaign or a rule change (002 §4.4): arms by a stable hash, a holdout,
    the sample size from the base rate and expected lift (α = 0.05 two-sided, ``power``), results
    per metric against the baseline (the holdout, or the first arm when there is none)."""

    title: Annotated[str, Field(min_length=1, max_length=40)]
    campaign: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=40)] | None = Field(
        default=None, description="campaigns.json campaign under test (its send is the exposure)."
    )
    rule_change: RuleChange | None = None
    arms: list[Arm] = Field(min_length=1, max_length=5)
    holdout_percent: Percent = Field(
        default=10, validate_default=True, description="Share of members held out: they get nothing new."
    )
    metrics: list[ExperimentMetric] = Field(default_factory=_conversion_only, min_length=1)
    base_rate: Annotated[Decimal, BeforeValidator(_number_only), Field(gt=0, lt=100)] = Field(
        description="Today's conversion rate of the members it reaches, in percent (5 = 5 %)."
    )
    expected_lift: Annotated[Decimal, BeforeValidator(_number_only), Field(gt=0, le=1000)] = Field(
        description="The lift the arms should bring, in percent: relative (20 = +20 %) or points (2 = +2 points)."
    )
    lift: Literal["relative", "points"] = "relative"
    minimum_effect: dict[ExperimentMetric, Annotated[Decimal, BeforeValidator(_number_only), Field(ge=0)]] = Field(
        default_factory=dict,
        description="Smallest lift worth having: points for conversion and redemption, yuan for order_value.",
    )
    power: Annotated[int, BeforeValidator(_number_only), Field(ge=50, le=99)] = Field(
        default=80, description="Chance in percent of finding the expected lift when it is there."
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    conversion_days: Annotated[int, Field(ge=1, le=90)] = Field(
        default=7, description="An order within this many days after the exposure converts the member."
    )
    expected_daily_exposures: Annotated[int, BeforeValidator(_number_only), Field(ge=1, le=10_000_000)] = Field(
        description="Members newly reached per day (all groups together)."
    )
    salt: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=40)] | None = Field(
        default=None, description="Changes the hash (a re-run with fresh groups); default: the experiment's name."
    )

    @model_validator(mode="after")
    def _shape(self) -> Experiment:
        if (self.campaign is None) == (self.rule_change is None):
            raise ValueError("an experiment tests either a campaign or a rule_change")
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names) or HOLDOUT in names:
            raise ValueError(f"each arm needs its own name, and none may be called {HOLDOUT}")
        if self.holdout_percent == 0 and len(self.arms) < 2:
            raise ValueError("without a holdout, an experiment needs two arms (the first is the control)")
        if self.rule_change is not None and set(self.rule_change.values) != set(names):
            raise ValueError("rule_change/values gives a value for each arm, and only for them")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be later than starts_at")
        if self.lift == "points" and self.base_rate + self.expected_lift >= 100:
            raise ValueError("base_rate + expected_lift must stay below 100 %")
        return self

    @property
    def exposure_ends_at(self) -> datetime:
        """Members are exposed until ``conversion_days`` before the end: the last can still convert."""
        return max(self.starts_at, self.ends_at - timedelta(days=self.conversion_days))

    def shares(self) -> dict[str, float]:
        """Each group's share of the members reached: the holdout's, then each arm's."""
        rest = 1 - float(self.holdout_percent) / 100
        total = sum(arm.weight for arm in self.arms)
        groups = {HOLDOUT: float(self.holdout_percent) / 100} if self.holdout_percent else {}
        return groups | {arm.name: rest * arm.weight / total for arm in self.arms}

    @property
    def baseline(self) -> str:
        return HOLDOUT if self.holdout_percent else self.arms[0].name

    def plan(self) -> SamplePlan:
        """The members each group needs and the days that takes at the expected exposures."""
        base = float(self.base_rate) / 100
        expected = stats.expected_rate(base, float(self.expected_lift) / 100, self.lift == "relative")
        if not 0 < expected < 1:
            raise ValueError("the expected rate (base_rate with expected_lift) must stay below 100 %")
        shares = self.shares()
        per_group: dict[str, int] = {}
        for name, share in shares.items():
            if name == self.baseline:
                continue
            ratio = share / shares[self.baseline]
            n_base = stats.sample_size(base, expected, power=self.power / 100, ratio=ratio)
            per_group[self.baseline] = max(per_group.get(self.baseline, 0), math.ceil(n_base))
            per_group[name] = math.ceil(n_base * ratio)
        fill = max(n / (self.expected_daily_exposures * shares[name]) for name, n in per_group.items())
        fill_days = math.ceil(fill - 1e-9)
        window = math.floor((self.ends_at - self.starts_at).total_seconds() / 86_400)
        return SamplePlan(
            baseline=self.baseline,
            base_rate=base,
            expected_rate=expected,
            per_group=per_group,
            fill_days=fill_days,
            days_needed=fill_days + self.conversion_days,
            window_days=window,
        )


class ExperimentsRule(Scoped):
    """experiments.json: A/B tests of campaigns and rule changes (002 §4.4)."""

    experiments: dict[ExperimentName, Experiment] = Field(default_factory=dict)
    polluted_at: Annotated[int, Field(ge=2, le=20)] = Field(
        default=5,
        description="A member in this many experiments at once is polluted: the report warns (002 §4.4: 5 tests).",
    )


# file name -> model. A rule set is exactly these files.
FILES: dict[str, type[RuleFile]] = {
    "alerts.json": AlertsRule,
    "catalog.json": CatalogRule,
    "digest.json": DigestRule,
    "messaging.json": MessagingRule,
    "recall.json": RecallRule,
    "stores.json": StoresRule,
    "welcome.json": WelcomeRule,
    "loyalty.json": LoyaltyRule,
    "segments.json": SegmentsRule,
    "campaigns.json": CampaignsRule,
    "experiments.json": ExperimentsRule,
}
# Duty files added after the first release may be absent from a rule set (versions published
# before the duty existed): an absent file means the duty is off. Their models must validate
# from ``{"enabled": false}`` alone (a test checks).
OPTIONAL_FILES: frozenset[str] = frozenset(
    {
        "recall.json",
        "loyalty.json",
        "alerts.json",
        "digest.json",
        "catalog.json",
        "segments.json",
        "campaigns.json",
        "experiments.json",
    }
)
