"""What recall achieved, measured against the holdout.

For each stage and store over a period of sweep days: members due (every decision recorded),
skipped (not reachable or resting), treated (sent), held out, and how many of each arm came
back within the attribution window. The lift is the difference of the two return rates, with
a 95 % interval by Newcombe's hybrid score method (Newcombe 1998, method 10), which behaves at
small counts and rates near 0 or 1 where the textbook Wald interval does not. Below
``min_sample`` members in either arm the report says so and claims no lift.

Records whose attribution window is still open are counted as they stand; both arms are
observed for the same time, so the comparison stays fair, only the rates are still rising.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from chalicelib.offers import yuan
from chalicelib.state.models import Recall

Z95 = 1.959963984540054
ALL = "全部"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (centre - spread) / denominator, (centre + spread) / denominator


def newcombe(x1: int, n1: int, x0: int, n0: int, z: float = Z95) -> tuple[float, float, float]:
    """Difference p1 − p0 of two independent proportions and its interval (method 10)."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    difference = p1 - p0
    low = difference - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return difference, low, high


@dataclass
class Row:
    stage: str
    store: str
    due: int = 0
    skipped: int = 0
    treated: int = 0
    holdout: int = 0
    returned_treated: int = 0
    returned_holdout: int = 0
    redeemed: int = 0
    redeemed_fen: int = 0
    window_open: int = 0
    skip_reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, record: Recall, now: datetime) -> None:
        self.due += 1
        if record.arm == "skipped":
            self.skipped += 1
            self.skip_reasons[record.reason or "unknown"] += 1
            return
        returned = record.returned_at is not None
        if record.arm == "treated":
            self.treated += 1
            self.returned_treated += returned
        else:
            self.holdout += 1
            self.returned_holdout += returned
        if record.redeemed_at is not None:
            self.redeemed += 1
            self.redeemed_fen += int(record.redeemed_fen or 0)
        self.window_open += record.window_until > now and not returned

    @property
    def rate_treated(self) -> float | None:
        return self.returned_treated / self.treated if self.treated else None

    @property
    def rate_holdout(self) -> float | None:
        return self.returned_holdout / self.holdout if self.holdout else None

    def lift(self, min_sample: int) -> tuple[float, float, float] | None:
        """(lift, low, high) in proportions, or None when either arm is below ``min_sample``."""
        if self.treated < min_sample or self.holdout < min_sample:
            return None
        return newcombe(self.returned_treated, self.treated, self.returned_holdout, self.holdout)

    @property
    def cost_per_return_fen(self) -> float | None:
        """Redeemed coupon value per treated member who came back."""
        return self.redeemed_fen / self.returned_treated if self.returned_treated else None

    def as_dict(self, min_sample: int) -> dict[str, object]:
        lift = self.lift(min_sample)
        return {
            "stage": self.stage,
            "store": self.store,
            "due": self.due,
            "skipped": self.skipped,
            "skip_reasons": dict(self.skip_reasons),
            "treated": self.treated,
            "holdout": self.holdout,
            "returned_treated": self.returned_treated,
            "returned_holdout": self.returned_holdout,
            "rate_treated": self.rate_treated,
            "rate_holdout": self.rate_holdout,
            "lift": None if lift is None else {"value": lift[0], "low": lift[1], "high": lift[2]},
            "redeemed": self.redeemed,
            "redeemed_fen": self.redeemed_fen,
            "cost_per_return_fen": self.cost_per_return_fen,
            "window_open": self.window_open,
        }


def records(since: date, until: date) -> Iterable[Recall]:
    """Every decision of the sweep days ``since`` … ``until`` (one index query per day)."""
    day = since
    while day <= until:
        yield from Recall.by_day.query(day.isoformat())
        day += timedelta(days=1)


def summarize(decisions: Iterable[Recall], now: datetime) -> list[Row]:
    """Rows per (stage, store), plus each stage over every store (store ``全部``)."""
    rows: dict[tuple[str, str], Row] = {}
    for record in decisions:
        for store in (record.store_id or "-", ALL):
            key = (record.stage, store)
            rows.setdefault(key, Row(record.stage, store)).add(record, now)
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1] == ALL, k[1]))]


def render(rows: list[Row], since: date, until: date, min_sample: int) -> str:
    """The report as ops read it (Chinese)."""
    lines = [f"召回效果 {since.isoformat()} 至 {until.isoformat()}（对照组 = 随机留出、不发送的会员）", ""]
    if not rows:
        return "\n".join([*lines, "该期间没有到期会员。"])
    header = (
        "阶段 | 门店 | 到期 | 跳过 | 已发送 | 对照组 | 回流(发送) | 回流(对照) | 提升（95%区间） | 核销 | 每回流成本"
    )
    lines += [header, "-" * len(header)]
    for row in rows:
        lines.append(
            " | ".join(
                [
                    row.stage,
                    row.store,
                    str(row.due),
                    str(row.skipped),
                    str(row.treated),
                    str(row.holdout),
                    _rate(row.returned_treated, row.rate_treated),
                    _rate(row.returned_holdout, row.rate_holdout),
                    lift_text(row, min_sample),
                    str(row.redeemed),
                    "-" if row.cost_per_return_fen is None else f"{yuan(round(row.cost_per_return_fen))}元",
                ]
            )
        )
    still_open = sum(r.window_open for r in rows if r.store == ALL)
    if still_open:
        lines += ["", f"注：{still_open} 条记录的归因窗口尚未结束，回流率仍可能上升（两组同样计时，比较仍公平）。"]
    return "\n".join(lines)


def lift_text(row: Row, min_sample: int) -> str:
    lift = row.lift(min_sample)
    if lift is None:
        return f"样本不足（每组需≥{min_sample}人）"
    value, low, high = (100 * x for x in lift)
    verdict = "显著" if low > 0 or high < 0 else "不显著"
    return f"{value:+.1f}个百分点 [{low:+.1f}, {high:+.1f}] {verdict}"


def _rate(count: int, rate: float | None) -> str:
    return "-" if rate is None else f"{count} ({100 * rate:.1f}%)"
