"""The digest's chart: the chain's daily trend of the week, one PNG.

The only module that imports matplotlib (and the CJK font from ``mplfonts``): handlers other
than the digest never load them, so their cold start does not pay for a plotting library.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplfonts
from matplotlib import font_manager

from chalicelib.metrics import kpis

if TYPE_CHECKING:
    from chalicelib.metrics.digest import Digest
    from chalicelib.rules.loader import RuleSet

FONT = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
RATES = ("interaction_rate", "conversion_rate", "churn_rate", "coupon_redemption_rate")
WEEKDAYS = "一二三四五六日"


def _font() -> str:
    font_manager.fontManager.addfont(str(FONT))
    return font_manager.FontProperties(fname=str(FONT)).get_name()


def render(digest: Digest, rules: RuleSet) -> bytes:
    plt.rcParams["font.family"] = _font()
    plt.rcParams["axes.unicode_minus"] = False
    chain = digest.scopes[0]
    days = [digest.monday + timedelta(days=i) for i in range(7)]
    labels = [f"{d.month}/{d.day}\n周{WEEKDAYS[d.weekday()]}" for d in days]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), dpi=110, sharex=True)
    figure.suptitle(f"私域周报 {digest.week} · 全连锁每日趋势", fontsize=15)
    for name in RATES:
        values = []
        for d in days:
            counts = chain.daily.get(d)
            value = kpis.KPIS[name](counts, chain.totals).value if counts else None
            values.append(None if value is None else value * 100)
        top.plot(range(7), [v if v is not None else float("nan") for v in values], marker="o", label=kpis.NAMES[name])
    highest = max([v for line in top.get_lines() for v in line.get_ydata() if v == v] or [1])
    top.set_ylim(0, highest * 1.3)  # headroom for the legend
    top.set_ylabel("百分比（%）")
    top.set_title("核心比率", fontsize=11, loc="left")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=9, ncol=4)
    active = [chain.daily.get(d, Counter()).get("active_members", 0) for d in days]
    orders = [chain.daily.get(d, Counter()).get("orders", 0) for d in days]
    width = 0.38
    bottom.bar([i - width / 2 for i in range(7)], active, width, label="活跃会员（人）")
    bottom.bar([i + width / 2 for i in range(7)], orders, width, label="订单（单）")
    bottom.set_ylim(0, max([*active, *orders, 1]) * 1.3)
    bottom.set_ylabel("人数 / 单数")
    bottom.set_title("活跃与订单", fontsize=11, loc="left")
    bottom.grid(axis="y", alpha=0.3)
    bottom.legend(loc="upper left", fontsize=9, ncol=2)
    bottom.set_xticks(range(7), labels)
    bottom.set_xlabel("日期（连锁时区）")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
