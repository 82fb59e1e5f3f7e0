"""KPI definitions: each the one formula everything (alerts, digest, reports) uses.

Every KPI is computed from counters summed over a window (``counts``) and, where it needs a base,
the scope's running totals. Each returns ``Value(value, sample)``: ``sample`` is the denominator,
so a check can refuse to judge a rate on too few members; ``value`` is None when the denominator
is zero. Rates are fractions (0.25 = 25 %); money is in fen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Counts = Mapping[str, int]


@dataclass(frozen=True)
class Value:
    value: float | None
    sample: int


def _ratio(numerator: float, denominator: float) -> Value:
    return Value(numerator / denominator if denominator else None, int(denominator))


def interaction_rate(counts: Counts, totals: Counts) -> Value:
    """互动率 = active members / members. Active members: distinct members with any activity
    (message, click, scan, order, redemption, review, …) per day, summed over the window's days;
    members: the scope's member count (``totals["members"]``) times the window's days.

    Example: 120 active member-days over 2 days, 1,000 members → 120 / 2,000 = 6 %."""
    days = max(int(counts.get("days", 1)), 1)
    return _ratio(counts.get("active_members", 0), totals.get("members", 0) * days)


def conversion_rate(counts: Counts, totals: Counts) -> Value:
    """转化率 = paid orders / active members (both over the window).

    Example: 30 orders, 200 active member-days → 15 %."""
    return _ratio(counts.get("orders", 0), counts.get("active_members", 0))


def churn_rate(counts: Counts, totals: Counts) -> Value:
    """流失率 = unfollows / followers at the start of the window (followers now + unfollows −
    follows of the window).

    Example: 5 unfollows, 40 follows, 1,035 followers now → start 1,000 → 0.5 %."""
    start = totals.get("followers", 0) + counts.get("unfollows", 0) - counts.get("follows", 0)
    return _ratio(counts.get("unfollows", 0), start)


def repurchase_rate(counts: Counts, totals: Counts) -> Value:
    """复购率 = orders by members who had ordered on an earlier day / all orders.

    Example: 12 repeat orders of 40 → 30 %."""
    return _ratio(counts.get("repeat_orders", 0), counts.get("orders", 0))


def average_order_value(counts: Counts, totals: Counts) -> Value:
    """客单价 = GMV / paid orders, in fen.

    Example: GMV 104,000 fen over 40 orders → 2,600 fen (26 yuan)."""
    return _ratio(counts.get("gmv_fen", 0), counts.get("orders", 0))


def coupon_redemption_rate(counts: Counts, totals: Counts) -> Value:
    """核销率 = coupons redeemed / coupons issued (both over the window).

    Example: 6 redeemed, 120 issued → 5 %."""
    return _ratio(counts.get("coupons_redeemed", 0), counts.get("coupons_issued", 0))


def retention_d1(counts: Counts, totals: Counts) -> Value:
    """次日留存 = new members active again on the day after their first day / new members, over
    the cohorts of the window (``counts`` summed over ``cohort#<day>`` items).

    Example: 80 new members, 56 back the next day → 70 %."""
    return _ratio(counts.get("retained_d1", 0), counts.get("new_members", 0))


def retention_d7(counts: Counts, totals: Counts) -> Value:
    """7日留存 = new members active on the 7th day after their first day / new members.

    Example: 80 new members, 20 active on day 7 → 25 %."""
    return _ratio(counts.get("retained_d7", 0), counts.get("new_members", 0))


def nps(counts: Counts, totals: Counts) -> Value:
    """NPS = 100 × (promoters (9–10) − detractors (0–6)) / answers; −100 to 100.

    Example: 50 answers, 25 promoters, 10 detractors → 30."""
    answers = counts.get("nps_answers", 0)
    return Value(
        100 * (counts.get("nps_promoters", 0) - counts.get("nps_detractors", 0)) / answers if answers else None,
        answers,
    )


def delivery_rate(counts: Counts, totals: Counts) -> Value:
    """送达率 = member messages delivered / member messages intended (both over the window).
    Delivered: WeChat's receipt says so (template and subscribe messages), or, for the channels
    WeChat gives no receipt for (customer service, WeCom, mini program), it accepted the send.

    Example: 190 delivered of 200 queued → 95 %."""
    return _ratio(counts.get("messages_delivered", 0), counts.get("messages_intended", 0))


KPIS: dict[str, Callable[[Counts, Counts], Value]] = {
    "interaction_rate": interaction_rate,
    "conversion_rate": conversion_rate,
    "churn_rate": churn_rate,
    "repurchase_rate": repurchase_rate,
    "average_order_value": average_order_value,
    "coupon_redemption_rate": coupon_redemption_rate,
    "retention_d1": retention_d1,
    "retention_d7": retention_d7,
    "nps": nps,
    "delivery_rate": delivery_rate,
}
COHORT_KPIS = frozenset({"retention_d1", "retention_d7"})
NAMES = {
    "interaction_rate": "互动率",
    "conversion_rate": "转化率",
    "churn_rate": "流失率",
    "repurchase_rate": "复购率",
    "average_order_value": "客单价",
    "coupon_redemption_rate": "核销率",
    "retention_d1": "次日留存",
    "retention_d7": "7日留存",
    "nps": "NPS",
    "delivery_rate": "送达率",
}
LOWER_IS_BETTER = frozenset({"churn_rate"})
