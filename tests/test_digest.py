"""The weekly digest: built from the counters of a synthetic week, within the robot's size
limit, with its chart; sent once at the rule's hour; stored and read again."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pynamodb.expressions.operand import Path as Attr

from chalicelib import jobs, runtime
from chalicelib.metrics import digest
from chalicelib.state.models import Alert, Metric, OutboxMessage
from siyu import cli

MONDAY = date(2026, 11, 16)  # 2026-W47
ROOT = Path(__file__).resolve().parent.parent


def synthetic_week(seed: int = 3) -> None:
    chance = random.Random(seed)
    for scope, size in (("chain", 3000), ("S001", 1200), ("S002", 1000), ("S003", 800)):
        Metric(scope, "total").update(actions=[Attr("members").set(size), Attr("followers").set(int(size * 0.9))])
        for i in range(14):
            day = MONDAY - timedelta(days=7) + timedelta(days=i)
            active = int(size * chance.uniform(0.06, 0.12))
            orders = int(active * chance.uniform(0.1, 0.2))
            counts = {
                "active_members": active,
                "orders": orders,
                "repeat_orders": orders // 3,
                "gmv_fen": orders * chance.randint(2200, 3000),
                "follows": chance.randint(5, 30),
                "unfollows": chance.randint(0, 5),
                "coupons_issued": chance.randint(20, 60),
                "coupons_redeemed": chance.randint(1, 10),
                "messages_sent": chance.randint(50, 200),
                "message_cost_fen": chance.randint(100, 900),
                "nps_answers": 20,
                "nps_promoters": chance.randint(6, 12),
                "nps_detractors": chance.randint(1, 5),
            }
            Metric(scope, day.isoformat()).update(actions=[Attr(k).set(v) for k, v in counts.items()])
            Metric(scope, f"cohort#{day.isoformat()}").update(
                actions=[Attr("new_members").set(40), Attr("retained_d1").set(chance.randint(20, 32))]
            )
    now = datetime(2026, 11, 20, 2, tzinfo=UTC)
    Alert(
        "store_conversion#S001",
        check="store_conversion",
        scope="S001",
        status="open",
        level="orange",
        opened_at=now,
        notified_at=now,
        value="11.0%",
    ).save()


def test_a_digest_for_a_synthetic_week_has_every_section_within_the_robot_limit(aws, clock):
    synthetic_week()
    built = digest.build(runtime.context().rules(), MONDAY, datetime(2026, 11, 25, 2, tzinfo=UTC))
    text = built.markdown
    assert text.startswith("## 私域周报 2026-W47（11月16日–11月22日）")
    for words in (
        "**全连锁**",
        "> 互动率",
        "> 转化率",
        "环比",
        "目标 15%",
        "> 新增关注",
        "未解除预警 1 条",
        "S001 转化率 橙色预警",
        "门店排名（转化率）",
        "**各门店**",
        "静安寺店",
        "天河城店",
    ):
        assert words in text, words
    assert len(text.encode("utf-8")) <= digest.ROBOT_MARKDOWN_BYTES
    assert built.chart_png.startswith(b"\x89PNG\r\n\x1a\n") and len(built.chart_png) > 20_000


def test_a_digest_too_long_for_the_robot_drops_store_lines_and_says_so(aws, clock, monkeypatch):
    synthetic_week()
    monkeypatch.setattr(digest, "ROBOT_MARKDOWN_BYTES", 1250)
    text = digest.build(runtime.context().rules(), MONDAY, datetime(2026, 11, 25, 2, tzinfo=UTC)).markdown
    assert len(text.encode("utf-8")) <= 1250 and text.endswith("…（其余门店见 siyu digest）")


def test_the_digest_is_sent_once_at_the_rule_hour_and_read_again(aws, clock, tmp_path, capsys):
    synthetic_week()
    clock.set(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # Wednesday 09:00 Shanghai: not yet (10:00)
    assert jobs.send_weekly_digest() is None
    clock.set(datetime(2026, 11, 25, 2, 5, tzinfo=UTC))
    assert jobs.send_weekly_digest() == "2026-W47"
    assert jobs.send_weekly_digest() is None  # the hourly timer again: already sent
    sent = sorted(m.message_key for m in OutboxMessage.scan() if m.cause == "digest")
    assert sent == ["digest#2026-W47#chart", "digest#2026-W47#markdown"]
    out = tmp_path / "w47.md"
    assert cli.main(["digest", "--week", "2026-W47", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("## 私域周报 2026-W47")
    assert "![每日趋势](w47.png)" in out.read_text(encoding="utf-8")
    assert (tmp_path / "w47.png").read_bytes().startswith(b"\x89PNG")
    assert cli.main(["digest", "--week", "2026-47"]) == 2
    assert "a week is written like 2026-W47" in capsys.readouterr().out


def test_handlers_other_than_the_digest_do_not_load_the_chart_library():
    code = "import sys, app; print('matplotlib' in sys.modules, 'mplfonts' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_without_the_chart_layer_the_digest_still_goes_out_without_its_chart(aws, clock, monkeypatch):
    import builtins

    synthetic_week()
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "chalicelib.metrics" and args and "chart" in (args[2] or ()):
            raise ImportError("no module named matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    clock.set(datetime(2026, 11, 25, 2, 5, tzinfo=UTC))
    assert jobs.send_weekly_digest() == "2026-W47"
    assert [m.message_key for m in OutboxMessage.scan() if m.cause == "digest"] == ["digest#2026-W47#markdown"]
