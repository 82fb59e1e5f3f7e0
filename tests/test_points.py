"""The points ledger: orders earn once, refunds reverse what the order earned, redemptions never
overdraw, and the balance always equals the sum of the entries (``siyu points audit``)."""

import json
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import ledger, pipeline, runtime
from chalicelib.duties import points as points_duty
from chalicelib.protocol import orders
from chalicelib.state.models import PointsRecord
from chalicelib.store import keys
from siyu.local import callbacks
from tests.helpers import send


def paid(openid: str, order_id: str, amount_fen: int, clock, series_qty: int = 0, **extra) -> dict:
    items = [{"sku": "T1", "category": "tea", "price_fen": amount_fen}]
    if series_qty:
        items.append({"sku": "S1", "series": "SERIES-SIGNATURE", "qty": series_qty, "price_fen": 0})
    return {
        "type": "order_paid",
        "openid": openid,
        "store_id": "S001",
        "at": clock.now().isoformat(),
        "order_id": order_id,
        "amount_fen": amount_fen,
        "items": items,
        **extra,
    }


def refunded(openid: str, order_id: str, refund_id: str, amount_fen: int, clock) -> dict:
    return {
        "type": "order_refunded",
        "openid": openid,
        "at": clock.now().isoformat(),
        "order_id": order_id,
        "refund_id": refund_id,
        "amount_fen": amount_fen,
    }


def redeemed(openid: str, redemption_id: str, points: int, clock) -> dict:
    return {
        "type": "points_redeemed",
        "openid": openid,
        "at": clock.now().isoformat(),
        "redemption_id": redemption_id,
        "points": points,
    }


def process(payload: dict) -> None:
    event = orders.parse(json.dumps(payload).encode(), 65536)
    pipeline.process(runtime.context(), event)


def post(client, aws, clock, payload: dict):
    return send(client, callbacks.order_post(aws, payload, clock.now()))


def test_an_order_earns_base_series_bonus_once_under_retries(client, aws, clock):
    payload = paid("oP1", "O-1", 12_850, clock, series_qty=2)  # 128.5 yuan → 128 + 2 × 5
    for _ in range(3):
        assert post(client, aws, clock, payload).status_code == 200
    assert ledger.balance_of("oP1").points == 138
    [earn] = ledger.entries("oP1", "earn#")
    assert earn.delta == 138 and earn.cause == "order" and earn.rules_version.startswith("bundled-")
    assert earn.expires_on == "2027-11-30"  # 12 months after November, end of month (rules/loyalty.json)
    assert ledger.audit(["oP1"]) == (1, [])


def test_a_full_refund_reverses_exactly_what_the_order_earned(client, aws, clock):
    post(client, aws, clock, paid("oP2", "O-1", 5_000, clock))
    post(client, aws, clock, paid("oP2", "O-2", 3_000, clock))
    post(client, aws, clock, refunded("oP2", "O-1", "R-1", 5_000, clock))
    post(client, aws, clock, refunded("oP2", "O-1", "R-1", 5_000, clock))  # the POS retries
    assert ledger.balance_of("oP2").points == 30
    [refund] = ledger.entries("oP2", "refund#")
    assert refund.delta == -50 and ledger.balance_of("oP2").spend_fen == 3_000


def test_partial_refunds_reverse_in_proportion_and_never_more_than_earned(client, aws, clock):
    post(client, aws, clock, paid("oP3", "O-1", 10_000, clock))
    post(client, aws, clock, refunded("oP3", "O-1", "R-1", 3_333, clock))
    assert ledger.balance_of("oP3").points == 67
    post(client, aws, clock, refunded("oP3", "O-1", "R-2", 6_667, clock))
    post(client, aws, clock, refunded("oP3", "O-1", "R-3", 500, clock))  # more than was paid
    assert ledger.balance_of("oP3").points == 0
    assert sum(e.delta for e in ledger.entries("oP3", "refund#")) == -100


def test_a_refund_before_its_order_voids_the_order_points(client, aws, clock):
    post(client, aws, clock, refunded("oP4", "O-9", "R-1", 2_000, clock))
    post(client, aws, clock, paid("oP4", "O-9", 2_000, clock))
    assert ledger.balance_of("oP4").points == 0 and ledger.entries("oP4", "earn#") == []


def test_a_redemption_debits_only_what_the_balance_covers_and_the_caller_is_told(client, aws, clock):
    post(client, aws, clock, paid("oP5", "O-1", 10_000, clock))
    too_much = post(client, aws, clock, redeemed("oP5", "X-1", 101, clock)).json_body
    assert too_much["redeemed"] is False and too_much["balance"] == 100
    ok = post(client, aws, clock, redeemed("oP5", "X-2", 60, clock)).json_body
    again = post(client, aws, clock, redeemed("oP5", "X-2", 60, clock)).json_body
    assert (ok["redeemed"], ok["balance"]) == (True, 40) and again["duplicate"] and again["balance"] == 40


def test_a_refund_after_the_points_were_spent_takes_what_is_left_and_records_the_rest(client, aws, clock):
    post(client, aws, clock, paid("oP6", "O-1", 10_000, clock))
    post(client, aws, clock, redeemed("oP6", "X-1", 80, clock))
    post(client, aws, clock, refunded("oP6", "O-1", "R-1", 10_000, clock))
    [refund] = ledger.entries("oP6", "refund#")
    assert ledger.balance_of("oP6").points == 0 and refund.delta == -20 and refund.unrecovered == 80


def test_a_gold_member_earns_thirty_percent_faster(client, aws, clock):
    from chalicelib.rules.loader import load_dir
    from chalicelib.settings import PROJECT_DIR

    rules = load_dir(PROJECT_DIR / "rules")
    assert points_duty.earned_points(rules.loyalty, "金卡", 10_000, []) == 130
    assert points_duty.earned_points(rules.loyalty, "普通", 10_000, []) == 100
    assert points_duty.earned_points(rules.loyalty, "renamed-tier", 999, []) == 9


def test_bad_redemptions_are_a_clear_400_with_nothing_written(client, aws, clock):
    response = post(client, aws, clock, {**redeemed("oP7", "X-1", 5, clock), "points": -5})
    assert response.status_code == 400 and "/points" in response.json_body["reason"]
    assert list(PointsRecord.scan()) == []


def test_the_audit_reports_a_tampered_balance(client, aws, clock):
    post(client, aws, clock, paid("oP8", "O-1", 1_000, clock))
    PointsRecord("oP8", keys.BALANCE).update(actions=[PointsRecord.balance.set(999)])
    checked, differences = ledger.audit()
    assert checked == 1 and [(d.member_id, d.balance, d.ledger_sum) for d in differences] == [("oP8", 999, 10)]


# --- property: random interleavings ------------------------------------------------------

ORDERS = 4
operation = st.one_of(
    st.tuples(st.just("pay"), st.integers(0, ORDERS - 1), st.integers(0, 50_000), st.integers(0, 3)),
    st.tuples(st.just("refund"), st.integers(0, ORDERS - 1), st.integers(0, 2), st.integers(1, 60_000)),
    st.tuples(st.just("redeem"), st.integers(0, 3), st.integers(1, 400), st.just(0)),
)


class Model:
    """The ledger's meaning, without a database: what the balance must be."""

    def __init__(self) -> None:
        self.balance = 0
        self.orders: dict[int, points_duty.OrderState] = {}
        self.done: set[tuple] = set()

    def apply(self, op: tuple) -> None:
        kind, a, b, c = op
        if kind == "pay":
            key = ("pay", a)
            if key in self.done or a in self.orders:
                return
            self.done.add(key)
            earned = b // 100 + c * 5
            self.orders[a] = points_duty.OrderState(earned, 0, 0, b, False)
            self.balance += earned
        elif kind == "refund":
            key = ("refund", a, b)
            if key in self.done:
                return
            self.done.add(key)
            order = self.orders.get(a)
            if order is None:
                self.orders[a] = points_duty.OrderState(0, 0, c, 0, True)
                return
            wanted = points_duty.reversal(order, c)
            taken = min(wanted, self.balance)
            self.balance -= taken
            self.orders[a] = points_duty.OrderState(
                order.earned, order.reversed + taken, order.refunded_fen + c, order.amount_fen, order.voided
            )
        else:
            key = ("redeem", a)
            if key in self.done:  # a redemption id is answered once, accepted or refused
                return
            self.done.add(key)
            if self.balance >= b:
                self.balance -= b


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=14))
def test_any_interleaving_of_orders_duplicates_refunds_and_redemptions_keeps_the_ledger_balanced(aws, clock, ops):
    member = f"oH{uuid.uuid4().hex[:10]}"
    model, amounts, redemptions = Model(), {}, {}  # what the first delivery of each id said
    for op in ops:
        kind, a, b, c = op
        if kind == "pay":
            amount, qty = amounts.setdefault(a, (b, c))  # a duplicate delivery repeats the payload
            op = ("pay", a, amount, qty)
            payload = paid(member, f"{member}-O-{a}", amount, clock, series_qty=qty)
        elif kind == "refund":
            payload = refunded(member, f"{member}-O-{a}", f"R-{a}-{b}", c, clock)
        else:
            b = redemptions.setdefault(a, b)
            op = ("redeem", a, b, 0)
            payload = redeemed(member, f"{member}-X-{a}", b, clock)  # ids are global, like the POS's
        process(payload)
        model.apply(op)
        current = ledger.balance_of(member)
        assert current.points >= 0
        assert current.points == model.balance, (op, current, model.balance)
        clock.advance(timedelta(seconds=1))
    assert ledger.audit([member]) == (1, [])
    earns = ledger.entries(member, "earn#")
    assert len(earns) == len({e.order_id for e in earns})  # every order earns at most once
    for item in PointsRecord.query(member, PointsRecord.sk.startswith(keys.ORDER)):
        assert 0 <= (item.reversed or 0) <= (item.earned or 0)


@pytest.mark.parametrize("copies", [3])
def test_concurrent_duplicates_and_redemptions_against_the_live_stack_post_once(live, copies):
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    import requests

    from chalicelib import settings as settings_module

    s = settings_module.current()

    class Now:
        def now(self):
            return datetime.now(UTC)

    clock = Now()
    payloads = [paid("oLive", f"O-{i}", 10_000, clock) for i in range(4)] * copies
    payloads += [redeemed("oLive", f"X-{i}", 150, clock) for i in range(4)] * copies

    def deliver(payload: dict) -> int:
        request = callbacks.order_post(s, payload, datetime.now(UTC))
        response = requests.post(live.url + request.path, data=request.body, headers=request.headers, timeout=20)
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(deliver, payloads))
    assert set(statuses) <= {200, 503}  # 503: a duplicate still being worked on; the POS retries
    for payload in payloads:  # the POS's retries of whatever was answered 503
        assert deliver(payload) == 200
    balance = ledger.balance_of("oLive")
    earned = ledger.entries("oLive", "earn#")
    redeemed_ = ledger.entries("oLive", "redeem#")
    assert len(earned) == 4 and balance.points == 400 - 150 * len(redeemed_) >= 0
    assert len(redeemed_) <= 2  # redemptions interleave with earnings: never an overdraft
    assert ledger.audit(["oLive"]) == (1, [])


def test_siyu_points_audit_exits_1_and_lists_each_difference(client, aws, clock, capsys):
    from siyu import cli

    post(client, aws, clock, paid("oA1", "O-1", 1_000, clock))
    post(client, aws, clock, paid("oA2", "O-2", 2_000, clock))
    assert cli.main(["points", "audit"]) == 0
    assert "audited 2 member(s): balanced" in capsys.readouterr().out
    PointsRecord("oA2", keys.BALANCE).update(actions=[PointsRecord.balance.add(5)])
    assert cli.main(["points", "audit"]) == 1
    out = capsys.readouterr().out
    assert "oA2: balance 25 but the entries sum to 20" in out and "oA1" not in out.split("audited")[0]


def test_siyu_points_show_prints_the_statement(client, aws, clock, capsys):
    from siyu import cli

    post(client, aws, clock, paid("oS1", "O-1", 1_000, clock))
    post(client, aws, clock, redeemed("oS1", "X-1", 4, clock))
    assert cli.main(["points", "show", "oS1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["balance"] == 6 and [(e["key"], e["delta"], e["balance_after"]) for e in shown["entries"]] == [
        ("earn#O-1", 10, 10),
        ("redeem#X-1", -4, 6),
    ]


# --- expiry ---------------------------------------------------------------------------------


def test_unspent_points_expire_first_in_first_out():
    E = points_duty.Entry
    entries = [E(100, "2026-11-30"), E(50, "2027-01-31"), E(-30, None)]
    assert points_duty.expiring(entries, "2026-11-30") == 70
    assert points_duty.expiring([*entries, E(-70, None)], "2026-11-30") == 0
    assert points_duty.expiring([*entries, E(-70, None)], "2027-01-31") == 50


def test_points_expire_at_the_month_end_once_with_a_reminder_before(client, aws, clock):
    from chalicelib import jobs
    from chalicelib.state.models import OutboxMessage

    def at(y, m, d):
        from datetime import UTC, datetime

        clock.set(datetime(y, m, d, 4, 0, tzinfo=UTC))  # 12:00 Shanghai

    at(2025, 11, 10)
    post(client, aws, clock, paid("oE1", "O-1", 10_000, clock))  # 100 points, expire after 2026-11-30
    post(client, aws, clock, paid("oE1", "O-2", 5_000, clock))
    at(2026, 1, 5)
    post(client, aws, clock, redeemed("oE1", "X-1", 120, clock))  # spends the oldest first
    at(2026, 11, 20)
    jobs.run_loyalty_day()
    assert [m for m in OutboxMessage.scan() if m.cause == "points_expiry"] == []  # 10 days early
    at(2026, 11, 25)
    jobs.run_loyalty_day()
    jobs.run_loyalty_day()
    [reminder] = [m for m in OutboxMessage.scan() if m.cause == "points_expiry"]
    assert "您有30积分将于2026年11月30日到期" in reminder.text
    at(2026, 12, 1)
    jobs.run_loyalty_day()
    at(2026, 12, 2)
    jobs.run_loyalty_day()
    [expiry] = ledger.entries("oE1", "expire#")
    assert expiry.delta == -30 and expiry.sk == "entry#expire#2026-11" and ledger.balance_of("oE1").points == 0
    assert ledger.audit(["oE1"]) == (1, [])


def test_the_admin_view_shows_points_and_tier(client, aws, clock):
    from tests.helpers import ADMIN

    post(client, aws, clock, paid("oV1", "O-1", 1_000, clock))
    view = client.http.get("/admin/members/oV1", headers=ADMIN).json_body
    assert view["loyalty"]["points"] == 10 and view["loyalty"]["tier"] is None
