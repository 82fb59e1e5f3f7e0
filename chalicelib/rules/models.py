"""Rule models: the code's own definition of every rule file (one model per file).

Every model forbids unknown keys, so a typo in a rule file is an error, not a silently ignored
setting. Money is written in yuan by ops and kept in fen (integers) by the code.
"""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COUPON_CEILING_YUAN = Decimal("500")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    schema_ref: str | None = Field(default=None, alias="$schema")


def yuan_to_fen(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


def _check_placeholders(text: str, allowed: frozenset[str]) -> str:
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in allowed:
            allowed_list = ", ".join("{" + a + "}" for a in sorted(allowed))
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed_list}")
    return text


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"time zone {name!r} does not exist (e.g. Asia/Shanghai)") from exc
    return name


Yuan = Annotated[Decimal, Field(ge=0, le=COUPON_CEILING_YUAN, decimal_places=2)]
StoreId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]


class CouponSpec(Strict):
    title: Annotated[str, Field(min_length=1, max_length=20)] = "新人礼券"
    value_yuan: Annotated[Decimal, Field(gt=0, le=COUPON_CEILING_YUAN, decimal_places=2)]
    min_spend_yuan: Yuan = Decimal("0")
    valid_days: Annotated[int, Field(ge=1, le=365)]
    store_scope: Literal["all", "home_store"] = "all"

    @property
    def value_fen(self) -> int:
        return yuan_to_fen(self.value_yuan)

    @property
    def min_spend_fen(self) -> int:
        return yuan_to_fen(self.min_spend_yuan)


WELCOME_PLACEHOLDERS = frozenset({"value", "code", "expires", "min_spend", "questionnaire_url", "title"})


class WelcomeRule(Strict):
    """welcome.json: the new-member gift (新人礼 / 入群礼)."""

    enabled: bool = True
    triggers: list[Literal["followed", "joined_group", "contact_added"]] = Field(
        default_factory=lambda: ["followed", "joined_group"], min_length=1
    )
    coupon: CouponSpec
    text: Annotated[str, Field(min_length=1, max_length=600)]
    refollow_text: Annotated[str, Field(min_length=1, max_length=600)] | None = None
    questionnaire_url: Annotated[str, Field(pattern=r"^https://", max_length=300)] | None = None

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
    timezone: str = "Asia/Shanghai"
    groups: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _check_zone(v)))


class StoresRule(Strict):
    """stores.json: the chain's stores, their time zones and WeCom groups."""

    default_timezone: str = "Asia/Shanghai"
    stores: list[Store] = Field(default_factory=list)

    _zone = field_validator("default_timezone")(classmethod(lambda cls, v: _check_zone(v)))

    @model_validator(mode="after")
    def _unique(self) -> StoresRule:
        seen: set[str] = set()
        groups: set[str] = set()
        for store in self.stores:
            if store.id in seen:
                raise ValueError(f"store id {store.id} appears twice")
            seen.add(store.id)
            for group in store.groups:
                if group in groups:
                    raise ValueError(f"group {group} belongs to two stores")
                groups.add(group)
        return self

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


# file name -> model. Each file in the rules directory must be one of these.
FILES: dict[str, type[Strict]] = {
    "welcome.json": WelcomeRule,
    "stores.json": StoresRule,
}
