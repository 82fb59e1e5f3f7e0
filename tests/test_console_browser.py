"""The console as a person uses it: headless Chromium (Debian's chromium + chromium-driver, driven
by selenium) against the local stack on 127.0.0.1, with two weeks of a small chain sent through the
real webhooks. Log in, read the week, find a member, answer a ticket, break a rule and see the
error at its line, preview and publish a change, meet a conflict, roll back; a store manager
cannot see another store. Each page is photographed into build/console-screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from chalicelib import settings
from chalicelib.console import auth
from chalicelib.state.models import Alert, ConsoleAction, Recall, RuleRecord, Ticket
from tests import console_chain
from tests.conftest import TEST_ENV

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "console-screenshots"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PACKAGES = ["chromium", "chromium-driver", "fonts-wqy-microhei"]  # the font: Chinese on the screenshots
WAIT_S = 15

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in requirements-dev.txt: run make install")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def _browser_or_skip() -> None:
    """Install Debian's chromium and its driver when missing (root only: CI and this machine);
    elsewhere skip, saying why, loudly."""
    if Path(CHROMIUM).exists() and Path(DRIVER).exists():
        return
    reason = f"the console's browser tests need {CHROMIUM} and {DRIVER}: apt-get install -y {' '.join(PACKAGES)}"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"\n*** SKIPPING BROWSER TESTS: {reason} (not root here) ***\n")
        pytest.skip(reason)
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=300)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True, timeout=600)
    if done.returncode != 0 or not Path(DRIVER).exists():
        print(f"\n*** SKIPPING BROWSER TESTS: apt-get could not install them: {done.stderr[-400:]!r} ***\n")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def stack(dynamodb_local) -> Iterator[object]:
    """One local stack for the module (the ``live`` fixture's set-up, kept for every test here),
    its rules published as v1 and a small chain sent through its webhooks."""
    from chalicelib.rules import loader
    from chalicelib.state import binding
    from siyu.local import stack as local_stack

    _browser_or_skip()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_ENV.items():
            patch.setenv(name, value)
        patch.delenv("SIYU_RULES_DIR", raising=False)
        patch.setenv("SIYU_TABLE_PREFIX", f"siyu-console-{uuid.uuid4().hex[:8]}-")
        patch.setenv("SIYU_DYNAMODB_ENDPOINT", dynamodb_local.endpoint)
        patch.setenv("SIYU_LOG_LEVEL", "WARNING")
        patch.setenv("SIYU_OUTBOX_QUEUE", "local")
        patch.setenv("SIYU_WECHAT_API_BASE", "")
        patch.setenv("SIYU_WECOM_API_BASE", "")
        loader.clear_cache()
        binding._bound = None
        running = local_stack.start(port=0, timer_tick=0.5, wechat_port=0)
        try:
            local_stack.sync_rules()
            now = datetime.now(UTC)
            console_chain.seed(running.url, settings.current(), now, days=10)
            _recall_experiment(now)
            _open_alert(now)
            yield running
        finally:
            running.stop()
            binding._bound = None
            loader.clear_cache()


def _recall_experiment(now: datetime) -> None:
    """Decisions of last week's 7-day recall: S001 large enough to measure, S002 not."""
    day = (now - timedelta(days=5)).date().isoformat()
    with Recall.batch_write() as batch:
        for i in range(160):
            store = "S001" if i < 150 else "S002"
            arm = "holdout" if i % 3 == 0 else "treated"
            back = (arm == "treated" and i % 5 < 2) or (arm == "holdout" and i % 9 == 0)
            batch.save(_recall(i, day, store, arm, now, back))


def _recall(i: int, day: str, store: str, arm: str, now: datetime, back: bool) -> Recall:
    return Recall(
        f"oLapsed{i}",
        f"{day}#7d",
        day=day,
        stage="7d",
        store_id=store,
        arm=arm,
        created_at=now,
        window_until=now + timedelta(days=7),
        returned_at=now if back else None,
        rules_version="v1",
    )


def _open_alert(now: datetime) -> None:
    Alert(
        "store_conversion#S001",
        check="store_conversion",
        scope="S001",
        status="open",
        level="orange",
        opened_at=now - timedelta(days=1),
        notified_at=now,
        escalations=1,
        value="11.0%",
    ).save()


@pytest.fixture(scope="module")
def chromium(stack) -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--lang=zh-CN",
        "--window-size=1280,1000",
        "--disable-extensions",
        "--no-first-run",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


# --- how a person acts --------------------------------------------------------------------------


def wait(driver, condition, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout).until(condition)


def text_of(driver, css: str) -> str:
    return wait(driver, until.visibility_of_element_located((By.CSS_SELECTOR, css))).text


def shows(driver, words: str, css: str = "body") -> None:
    wait(driver, until.text_to_be_present_in_element((By.CSS_SELECTOR, css), words))


def log_in(driver, stack, token: str, size: tuple[int, int] = (1280, 1000)) -> None:
    driver.set_window_size(*size)
    driver.get(f"{stack.url}/console#/today")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()  # a new visit: the login screen
    field = wait(driver, until.element_to_be_clickable((By.ID, "token")))
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
    wait(driver, until.visibility_of_element_located((By.CSS_SELECTOR, "[data-test=who]")))


def go(driver, stack, page: str) -> None:
    driver.get(f"{stack.url}/console#/{page}")
    driver.refresh()  # a fresh page, as a person reopening it


def photograph(driver, name: str) -> Path:
    """A screenshot of the whole page (not just the window)."""
    time.sleep(0.3)  # the last paint after the data arrived
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(max(height + 120, 600), 4000))
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def banner_login(stack, who: str) -> str:
    """A login as `make run`'s banner prints it (``ops: …``, ``store manager of S001: …``)."""
    from siyu.local import stack as local_stack

    text = local_stack.banner(stack, "-", None)
    assert f"{stack.url}/console" in text
    return re.search(rf"{re.escape(who)}: (\S+)", text).group(1)


def ops_token() -> str:
    return settings.current().admin_token


def manager_token(*stores: str) -> str:
    return auth.store_token(settings.current(), list(stores))


def set_editor(driver, text: str) -> None:
    """Type into the rule editor as a paste does: the whole text, then the input event."""
    area = driver.find_element(By.CSS_SELECTOR, "textarea[name=rule-text]")
    driver.execute_script(
        "const [el, v] = arguments; const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype,"
        " 'value').set; set.call(el, v); el.dispatchEvent(new Event('input', {bubbles: true}));",
        area,
        text,
    )


def editor_text(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "textarea[name=rule-text]").get_property("value")


def open_rule_file(driver, stack, name: str) -> str:
    go(driver, stack, "rules")
    wait(driver, until.element_to_be_clickable((By.CSS_SELECTOR, f"[data-file='{name}']"))).click()
    shows(driver, "检查通过")
    return editor_text(driver)


# --- the tests ----------------------------------------------------------------------------------


def test_ops_logs_in_and_reads_the_week_the_api_reports_with_its_trend_chart(stack, chromium):
    log_in(chromium, stack, banner_login(stack, "ops"))
    assert "运营" in text_of(chromium, "[data-test=who]")
    shows(chromium, "近7天：")
    api = requests.get(f"{stack.url}/console/api/kpis", headers={auth.TOKEN_HEADER: ops_token()}, timeout=10).json()
    interaction = next(k for k in api["kpis"] if k["name"] == "interaction_rate")
    assert interaction["value"] is not None
    card = text_of(chromium, "[data-kpi=interaction_rate] .value")
    assert card == interaction["text"]  # the digest's own formatting of the same number
    delivery = next(k for k in api["kpis"] if k["name"] == "delivery_rate")  # issue 18: measured now
    shown = "—" if delivery["value"] is None else delivery["text"]  # a KPI without a sample reads —
    assert text_of(chromium, "[data-kpi=delivery_rate] .value") == shown
    wait(chromium, lambda d: d.find_element(By.CSS_SELECTOR, ".chart canvas").get_attribute("data-drawn") == "yes")
    photograph(chromium, "01-today-ops")


def test_ops_finds_a_member_by_coupon_code_and_sees_points_coupons_and_messages(stack, chromium):
    member = "oShopperS001-3-0"
    view = requests.get(
        f"{stack.url}/admin/members/{member}", headers={"Authorization": "Bearer test-admin-token"}, timeout=10
    ).json()
    code = view["coupons"][0]["code"]
    log_in(chromium, stack, ops_token())
    go(chromium, stack, "members")
    box = wait(chromium, until.element_to_be_clickable((By.CSS_SELECTOR, "input[name=q]")))
    box.send_keys(code)
    chromium.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    shows(chromium, member, "[data-test=member-id]")
    shows(chromium, "积分明细")
    body = chromium.find_element(By.TAG_NAME, "body").text
    assert code in body and "新人礼" in body and "订单" in body and "被动回复" in body
    assert f"积分 {view['loyalty']['points']}" in body
    photograph(chromium, "02-member")


def test_a_store_manager_answers_their_ticket_on_a_phone_and_it_is_recorded(stack, chromium):
    log_in(chromium, stack, banner_login(stack, "store manager of S001"), size=(390, 844))
    go(chromium, stack, "tickets")
    ticket = wait(
        chromium, until.visibility_of_element_located((By.CSS_SELECTOR, f"[data-ticket='{console_chain.REVIEW_ID}']"))
    )
    assert "待响应" in ticket.text and "下一步：超时未响应" in ticket.text
    ticket.find_element(By.CSS_SELECTOR, "input[name=by]").send_keys("店长王")
    ticket.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("已电话致歉")
    ticket.find_element(By.CSS_SELECTOR, "[data-action=respond]").click()
    shows(chromium, f"工单 {console_chain.REVIEW_ID} 已记录：已响应")
    stored = Ticket.get(console_chain.REVIEW_ID, consistent_read=True)
    assert (stored.status, stored.handled_by, stored.note) == ("responded", "店长王", "已电话致歉")
    [entry] = [a for a in ConsoleAction.scan() if a.target == console_chain.REVIEW_ID]
    assert (entry.user, entry.action) == ("store-manager:S001", "ticket.respond")
    photograph(chromium, "03-tickets-store-manager-phone")


def test_a_store_manager_cannot_see_another_store(stack, chromium):
    log_in(chromium, stack, manager_token("S002"), size=(390, 844))
    scopes = [o.text for o in Select(chromium.find_element(By.CSS_SELECTOR, "select[name=scope]")).options]
    assert scopes == ["S002 徐家汇店"]
    go(chromium, stack, "tickets")
    shows(chromium, "没有待处理的差评工单")
    go(chromium, stack, f"members/{console_chain.REVIEWER}")  # a member of S001
    assert "没有权限" in text_of(chromium, ".error")
    assert "积分明细" not in chromium.find_element(By.TAG_NAME, "body").text
    go(chromium, stack, "members")
    box = wait(chromium, until.element_to_be_clickable((By.CSS_SELECTOR, "input[name=q]")))
    box.send_keys(console_chain.S002_MEMBER)
    chromium.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    shows(chromium, console_chain.S002_MEMBER, "[data-test=member-id]")
    assert "删除该会员的个人数据" not in chromium.find_element(By.TAG_NAME, "body").text  # no erase for managers
    go(chromium, stack, "access")
    shows(chromium, "仅自己的门店")
    photograph(chromium, "04-store-manager-access")


def test_a_broken_rule_shows_its_error_at_its_line_and_cannot_be_published(stack, chromium):
    log_in(chromium, stack, ops_token())
    text = open_rule_file(chromium, stack, "welcome.json")
    broken = text.replace('"value_yuan": 9.9', '"value_yuan": 5000', 1)
    line = next(n for n, row in enumerate(broken.splitlines(), 1) if "5000" in row)
    set_editor(chromium, broken)
    local = text_of(chromium, "[data-test=local-problems]")
    assert f"welcome.json:{line}:19 /coupon/value_yuan 不能大于 500" in local
    shows(
        chromium,
        f"welcome.json:{line}:19 /coupon/value_yuan must be at most 500 (is 5000)",
        "[data-test=server-problems]",
    )
    marked = [el.text for el in chromium.find_elements(By.CSS_SELECTOR, ".gutter .bad")]
    assert str(line) in marked
    chromium.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("试试")
    assert not chromium.find_element(By.CSS_SELECTOR, "[data-action=publish]").is_enabled()
    set_editor(chromium, broken.replace('"enabled": true,', '"enabled": true,,', 1))  # a JSON syntax error
    assert "不是有效的 JSON" in text_of(chromium, "[data-test=local-problems]")
    set_editor(chromium, broken)
    shows(chromium, "must be at most 500", "[data-test=server-problems]")
    photograph(chromium, "05-rules-error-at-its-line")


def test_ops_previews_then_publishes_meets_a_conflict_keeps_the_text_and_rolls_back(stack, chromium):
    log_in(chromium, stack, ops_token())
    text = open_rule_file(chromium, stack, "welcome.json")
    changed = text.replace('"value_yuan": 9.9', '"value_yuan": 12.5', 1)
    set_editor(chromium, changed)
    shows(chromium, "检查通过")
    Select(chromium.find_element(By.CSS_SELECTOR, "select[name=preview-days]")).select_by_visible_text("近30天")
    chromium.find_element(By.CSS_SELECTOR, "[data-action=preview]").click()
    preview = text_of(chromium, "[data-test=preview]")
    assert "影响预览（近30天" in preview
    row = re.search(r"新人礼 S001 (\d+) (\d+) ([\d.]+)元 → ([\d.]+)元", preview)
    coupons = int(row.group(2))
    assert coupons > 0 and float(row.group(3)) == pytest.approx(9.9 * coupons)
    assert float(row.group(4)) == pytest.approx(12.5 * coupons)  # each new member's coupon, 12.5 yuan
    photograph(chromium, "06-rules-preview")
    chromium.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("新人券改为12.5元")
    chromium.find_element(By.CSS_SELECTOR, "[data-action=publish]").click()
    shows(chromium, "已发布并启用 v2（原 v1）", "[data-test=published]")
    assert '"value_yuan": 12.5' in editor_text(chromium)

    # Someone publishes from the command line while ops edit the next change in the page.
    mine = editor_text(chromium).replace('"valid_days": 30', '"valid_days": 45', 1)
    set_editor(chromium, mine)
    files = {
        r: t
        for r, t in requests.get(
            f"{stack.url}/admin/rules", headers={"Authorization": "Bearer test-admin-token"}, timeout=10
        )
        .json()["files"]
        .items()
    }
    files["welcome.json"] = files["welcome.json"].replace('"value_yuan": 12.5', '"value_yuan": 11', 1)
    other = requests.put(
        f"{stack.url}/admin/rules",
        json={"note": "同事改为11元", "files": files},
        headers={"Authorization": "Bearer test-admin-token", "If-Match": "v2"},
        timeout=10,
    )
    assert other.status_code == 200 and other.json()["active"] == "v3"
    chromium.find_element(By.CSS_SELECTOR, "[data-action=preview]").click()
    shows(chromium, "影响预览", "[data-test=preview]")
    chromium.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("有效期45天")
    chromium.find_element(By.CSS_SELECTOR, "[data-action=publish]").click()
    conflict = text_of(chromium, "[data-test=conflict]")
    assert "发布冲突" in conflict and "v3" in conflict and "你的修改没有写入，仍保留在编辑器中" in conflict
    assert "双方都改了：welcome.json" in conflict
    assert '"valid_days": 45' in editor_text(chromium)  # never lost
    assert int(RuleRecord.get("active", "-", consistent_read=True).version) == 3
    shows(chromium, "当前启用 v3")  # the history was read again; the editor kept the text
    photograph(chromium, "07-rules-conflict")
    chromium.find_element(By.CSS_SELECTOR, "[data-test=conflict] button").click()
    shows(chromium, "编辑规则（基于 v3）")
    assert '"valid_days": 45' in editor_text(chromium)
    chromium.find_element(By.CSS_SELECTOR, "[data-action=preview]").click()
    shows(chromium, "v3 → 草稿", "[data-test=preview]")
    chromium.find_element(By.CSS_SELECTOR, "[data-action=publish]").click()
    shows(chromium, "已发布并启用 v4（原 v3）", "[data-test=published]")

    go(chromium, stack, "rules")
    shows(chromium, "当前启用 v4")
    wait(chromium, until.element_to_be_clickable((By.CSS_SELECTOR, "[data-rollback=v1]"))).click()
    wait(chromium, until.alert_is_present()).accept()
    shows(chromium, "已回滚：启用 v1（原 v4）")
    shows(chromium, "当前启用 v1")
    assert int(RuleRecord.get("active", "-", consistent_read=True).version) == 1
    Select(chromium.find_element(By.CSS_SELECTOR, "select[name=diff-a]")).select_by_visible_text("v1")
    Select(chromium.find_element(By.CSS_SELECTOR, "select[name=diff-b]")).select_by_visible_text("v2")
    chromium.find_element(By.CSS_SELECTOR, "[data-action=diff]").click()
    diff = text_of(chromium, "[data-test=diff]")
    assert '+    "value_yuan": 12.5' in diff and '-    "value_yuan": 9.9' in diff
    actions = sorted((a.sk, a.action, a.outcome) for a in ConsoleAction.scan() if a.action.startswith("rules."))
    assert [(a, o) for _, a, o in actions] == [
        ("rules.publish", "ok"),
        ("rules.publish", "conflict"),
        ("rules.publish", "ok"),
        ("rules.rollback", "ok"),
    ]
    photograph(chromium, "08-rules-history-diff")


def test_the_alerts_recall_and_audit_pages_show_what_siyu_knows(stack, chromium):
    log_in(chromium, stack, ops_token())
    go(chromium, stack, "alerts")
    row = text_of(chromium, "[data-alert='store_conversion#S001']")
    assert "橙色预警" in row and "已升级" in row
    shows(chromium, "春节促销季")  # the suppression window of alerts.json
    photograph(chromium, "09-alerts")
    go(chromium, stack, "recall")
    shows(chromium, "样本不足（每组需≥30人）")
    shows(chromium, "个百分点 [")
    wait(chromium, lambda d: d.find_element(By.CSS_SELECTOR, ".chart canvas").get_attribute("data-drawn") == "yes")
    photograph(chromium, "10-recall")
    go(chromium, stack, "access")
    shows(chromium, "工单：记录响应")
    shows(chromium, "规则：回滚")
    photograph(chromium, "11-audit")


def test_ops_reads_the_weeks_content_calendar_the_campaigns_and_the_segments(stack, chromium):
    log_in(chromium, stack, ops_token())
    go(chromium, stack, "campaigns")
    api = requests.get(f"{stack.url}/console/api/campaigns", headers={auth.TOKEN_HEADER: ops_token()}, timeout=10)
    week = api.json()
    calendar = text_of(chromium, "[data-test=calendar]")
    assert f"内容日历 {week['week']}" in calendar
    rows = chromium.find_elements(By.CSS_SELECTOR, "[data-test=calendar] tbody tr")
    assert len(rows) == len(week["pushes"]) == 14  # S001's group: a morning and an evening push a day
    assert week["pushes"][0]["text"][:12] in rows[0].text and "品牌故事" in rows[0].text  # Monday's theme
    segments = text_of(chromium, "[data-test=segments]")
    assert "高价值会员（high_value）" in segments and "流失会员（lapsed）" in segments
    photograph(chromium, "12-campaigns")
    go(chromium, stack, "recall")
    shows(chromium, "实验未启用", "[data-test=experiments]")  # the shipped experiments.json is off
