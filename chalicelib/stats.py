"""The statistics of experiments (002 §4.4: sample size from the expected lift, 95 % confidence,
p < 0.05 and a business-impact check), pure and on the standard library only.

- ``sample_size``: members needed in the baseline group to tell two proportions apart, by the
  normal approximation with the continuity correction of Fleiss, Tytun & Ury (1980), Biometrics
  36:343-346, for unequal groups (``ratio`` = n2 / n1). It reproduces Zar, *Biostatistical
  Analysis*, 4th ed. (1999), Example 24.26, p. 561: p1 = 0.45, p2 = 0.25, α = 0.05 two-sided,
  power 0.90 → n = 127.23 per group; with n2 / n1 = 3 → n1 = 83.15 (and n2 = 249.46), as the
  Unistat manual's worked copy of that example prints them
  (https://www.unistat.com/guide/sample-size-and-power-two-proportions/; tests/test_experiments.py).
- ``proportions``: the difference p1 − p0 with its Wald 95 % interval and the pooled two-proportion
  z-test's two-sided p-value (Agresti, *An Introduction to Categorical Data Analysis*, 2nd ed.,
  2007, §2.2: the Physicians' Health Study, 189 / 11034 vs 104 / 11037 → 0.0077, 95 % CI
  (0.005, 0.011)).
- ``means``: the difference of two means with Welch's standard error and the normal quantile
  (the groups of an experiment are hundreds of members; below ``MIN_MEAN_SAMPLE`` no verdict).
- ``verdict``: what ops read (Chinese): 显著 / 不显著 / 显著但影响太小 / 样本不足.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

NORMAL = NormalDist()
ALPHA = 0.05
MIN_MEAN_SAMPLE = 30

SIGNIFICANT = "显著"
NOT_SIGNIFICANT = "不显著"
TOO_SMALL = "显著但影响太小"
TOO_FEW = "样本不足"


def z_of(alpha: float) -> float:
    """The two-sided critical value: 1.96 for α = 0.05."""
    return NORMAL.inv_cdf(1 - alpha / 2)


def expected_rate(base_rate: float, lift: float, relative: bool) -> float:
    """The rate an arm should reach: ``base_rate`` × (1 + lift) or ``base_rate`` + lift."""
    return base_rate * (1 + lift) if relative else base_rate + lift


def sample_size(p1: float, p2: float, alpha: float = ALPHA, power: float = 0.8, ratio: float = 1.0) -> float:
    """Members needed in group 1 (rate ``p1``) when group 2 (rate ``p2``) has ``ratio`` times as
    many, two-sided at ``alpha`` with ``power`` (Fleiss, Tytun & Ury 1980, eq. 6 and the
    continuity correction; see the module docstring for the worked example it reproduces)."""
    if not (0 < p1 < 1 and 0 < p2 < 1) or p1 == p2:
        raise ValueError("the two rates must differ and lie strictly between 0 and 1")
    if not (0 < alpha < 1 and 0 < power < 1 and ratio > 0):
        raise ValueError("alpha and power lie between 0 and 1, ratio is positive")
    delta = abs(p1 - p2)
    pooled = (p1 + ratio * p2) / (1 + ratio)
    root = z_of(alpha) * math.sqrt((ratio + 1) * pooled * (1 - pooled)) + NORMAL.inv_cdf(power) * math.sqrt(
        ratio * p1 * (1 - p1) + p2 * (1 - p2)
    )
    uncorrected = root**2 / (ratio * delta**2)
    return uncorrected / 4 * (1 + math.sqrt(1 + 2 * (ratio + 1) / (uncorrected * ratio * delta))) ** 2


@dataclass(frozen=True)
class Difference:
    """Arm minus baseline: the estimate, its 95 % interval and the two-sided p-value."""

    value_arm: float
    value_base: float
    n_arm: int
    n_base: int
    estimate: float
    low: float
    high: float
    p_value: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "value_arm": self.value_arm,
            "value_base": self.value_base,
            "n_arm": self.n_arm,
            "n_base": self.n_base,
            "lift": self.estimate,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
        }


def _p_value(statistic: float) -> float:
    return 2 * (1 - NORMAL.cdf(abs(statistic)))


def proportions(x1: int, n1: int, x0: int, n0: int, alpha: float = ALPHA) -> Difference:
    """p1 − p0 with the Wald interval and the pooled z-test (module docstring)."""
    if n1 <= 0 or n0 <= 0 or not (0 <= x1 <= n1 and 0 <= x0 <= n0):
        raise ValueError("each group needs members, and successes between 0 and its size")
    p1, p0 = x1 / n1, x0 / n0
    spread = z_of(alpha) * math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    pooled = (x1 + x0) / (n1 + n0)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p_value = 1.0 if pooled_se == 0 else _p_value((p1 - p0) / pooled_se)
    return Difference(p1, p0, n1, n0, p1 - p0, p1 - p0 - spread, p1 - p0 + spread, p_value)


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, variance


def means(arm: Sequence[float], base: Sequence[float], alpha: float = ALPHA) -> Difference:
    """mean(arm) − mean(base), Welch's standard error, the normal quantile (module docstring)."""
    if not arm or not base:
        raise ValueError("each group needs at least one value")
    m1, v1 = _mean_var(arm)
    m0, v0 = _mean_var(base)
    se = math.sqrt(v1 / len(arm) + v0 / len(base))
    spread = z_of(alpha) * se
    p_value = 1.0 if se == 0 else _p_value((m1 - m0) / se)
    return Difference(m1, m0, len(arm), len(base), m1 - m0, m1 - m0 - spread, m1 - m0 + spread, p_value)


def verdict(difference: Difference, minimum_effect: float, enough: bool, alpha: float = ALPHA) -> str:
    """样本不足 until the planned sample is in (no early peeking); then 显著 when p < α and the
    lift is at least ``minimum_effect`` (in the metric's unit), 显著但影响太小 when p < α but the
    lift is smaller (002 §4.4: 27 % of significant tests rejected for small business impact),
    else 不显著."""
    if not enough:
        return TOO_FEW
    if difference.p_value >= alpha:
        return NOT_SIGNIFICANT
    return SIGNIFICANT if abs(difference.estimate) >= minimum_effect else TOO_SMALL
