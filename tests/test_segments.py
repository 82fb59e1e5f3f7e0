"""Segments (issue 21): a member's membership follows their facts (an order, time passing), the
rules refuse a condition siyu cannot evaluate, the pass resumes from its cursor and writes each
change once however many passes run, and the sizes per store are one query of the segment."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib import executor, jobs, pipeline, runtime
from chalicelib.events import Event, Kind
from chalicelib.rules import loader
from chalicelib.rules.check import check
from chalicelib.rules.loader import read_dir
from chalicelib.segments import read, sweep
from chalicelib.state.models import Coupon, LoyaltyRecord, Member, Shared
from chalicelib.store import keys
from siyu import cli
from tests.helpers import use_rules

RULES = Path(__file__).resolve().parent.parent / "rules"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, after evaluate_at 04:00


@pytest.fixture
def rules_dir(tmp_path, monkeypatch):
    """``rules_dir(**changes)``: the bundled rules with segments.json changed, made active."""

    def use(**changes) -> Path:
        return use_rules(tmp_path, monkeypatch, {"segments.json": changes})

    return use


def order(member_id: str, at: datetime, order_id: str, store_id: str = "S001", fen: int = 2000) -> None:
    """A paid order through the pipeline, as the order webhook delivers it."""
    data = {"order_id": order_id, "amount_fen": fen, "items": [{"sku": "T1", "category": "milk-tea"}]}
    event = Event(Kind.ORDER_PAID, f"orders:paid:{order_id}", "orders", at, member_id, store_id=store_id, data=data)
    pipeline.process(runtime.context(), event)


def seed(*members: Member) -> None:
    with Member.batch_write() as batch:
        for member in members:
            batch.save(member)


def known(member_id: str, days_quiet: int, store_id: str | None = "S001", first_seen_days: int = 200) -> Member:
    """A member first seen ``first_seen_days`` ago, last active ``days_quiet`` days before NOW."""
    last = NOW - timedelta(days=days_quiet)
    return Member(
        member_id,
        origin="oa",
        subscribed="yes",
        store_id=store_id,
        first_seen=NOW - timedelta(days=first_seen_days),
        last_active=last,
        active_day=(last + timedelta(hours=8)).date().isoformat(),
        updated_at=last,
    )


def rows(segment: str) -> list[tuple[str, str]]:
    return [(r.sk, r.member_id or "") for r in LoyaltyRecord.query(keys.segment(segment))]


def full_pass_again() -> None:
    """Forget that today's full pass ran (as tomorrow would), so the next run does one."""
    for sk in (keys.SEGMENTS_DAY, keys.segments_cursor("2026-11-23")):
        Shared(keys.SWEEP, sk).delete()


# --- membership follows the member's facts -----------------------------------------------------


def test_a_fourth_order_in_a_month_moves_the_member_into_high_value_within_one_timer_run(aws, clock):
    for n in range(3):
        order("oBuyer", NOW - timedelta(days=20 - n * 8), f"A{n}")
    sweep.run(runtime.context())
    member = Member.get("oBuyer")
    assert "high_value" not in (member.segments or set()) and "active" in member.segments
    assert list(read.members_of("high_value")) == []

    clock.set(NOW + timedelta(hours=1))
    order("oBuyer", clock.now(), "A3")
    assert jobs.evaluate_segments() == 1  # the timer: the member touched since their evaluation
    member = Member.get("oBuyer")
    assert "high_value" in member.segments and member.segments_version == runtime.context().rules().version
    assert list(read.members_of("high_value", "S001")) == ["oBuyer"]
    assert read.size("high_value") == 1 and read.size("high_value", "S002") == 0
    assert jobs.evaluate_segments() == 0  # evaluated since the order: not again


def test_a_refunded_order_does_not_count_towards_high_value(aws, clock):
    for n in range(4):
        order("oRefund", NOW - timedelta(days=n), f"R{n}")
    refund = {"order_id": "R0", "refund_id": "F1", "amount_fen": 2000}
    event = Event(Kind.ORDER_REFUNDED, "orders:refund:F1", "orders", NOW, "oRefund", store_id="S001", data=refund)
    pipeline.process(runtime.context(), event)
    sweep.run(runtime.context())
    assert "high_value" not in Member.get("oRefund").segments


def test_thirty_quiet_days_move_a_member_from_active_to_lapsed(aws, clock):
    seed(known("oQuiet", days_quiet=1))
    sweep.run(runtime.context())
    assert Member.get("oQuiet").segments == {"active"}
    assert rows("active") == [("S001#oQuiet", "oQuiet")]

    clock.set(NOW + timedelta(days=29))  # 30 local days after the last activity
    assert sweep.run(runtime.context()).day == "2026-12-22"
    member = Member.get("oQuiet")
    assert member.segments == {"lapsed"} and member.segments_seq == 2
    assert rows("active") == [] and rows("lapsed") == [("S001#oQuiet", "oQuiet")]


def test_a_new_member_is_new_until_thirty_days_after_first_seen(aws, clock):
    seed(known("oNew", days_quiet=0, first_seen_days=30), known("oOld", days_quiet=0, first_seen_days=31))
    sweep.run(runtime.context())
    assert "new" in Member.get("oNew").segments and "new" not in Member.get("oOld").segments


def test_a_member_paying_mostly_with_coupons_is_tagged_price_sensitive(aws, clock):
    for n in range(3):
        order("oThrifty", NOW - timedelta(days=10 + n), f"T{n}")
        order("oFull", NOW - timedelta(days=10 + n), f"F{n}")
    for n, buyer in [(0, "oThrifty"), (1, "oThrifty"), (0, "oFull")]:  # 2 of 3 (67 %) and 1 of 3 (33 %)
        prefix = buyer[1]
        Coupon(
            f"C-{buyer}-{n}",
            member_id=buyer,
            cause="welcome",
            cause_key=f"welcome#{buyer}#{n}",
            title="券",
            value_fen=500,
            issued_at=NOW - timedelta(days=20),
            expires_at=NOW + timedelta(days=20),
            status="redeemed",
            redeemed_order=f"{prefix}{n}",
            rules_version="test",
        ).save()
    sweep.run(runtime.context())
    assert Member.get("oThrifty").segment_tags == {"price_sensitive"}
    assert Member.get("oFull").segment_tags is None


def test_a_segment_can_ask_for_a_tag_a_tier_and_a_store(aws, clock, rules_dir):
    rules_dir(
        segments={
            "thrifty_regulars": {
                "title": "精打细算的老客",
                "all": [
                    {"fact": "has_tag", "tag": "price_sensitive"},
                    {"fact": "tier", "in": ["普通"]},
                    {"fact": "store", "in": ["S002"]},
                ],
            },
            "followers": {"title": "关注者", "all": [{"fact": "subscribed", "is": True}]},
        }
    )
    for n in range(3):
        order("oS2", NOW - timedelta(days=n), f"S{n}", store_id="S002")
        Coupon(
            f"C-S2-{n}",
            member_id="oS2",
            cause="welcome",
            cause_key=f"w#{n}",
            title="券",
            value_fen=500,
            issued_at=NOW,
            expires_at=NOW + timedelta(days=9),
            redeemed_order=f"S{n}",
            rules_version="t",
        ).save()
    seed(known("oS1", 0))
    sweep.run(runtime.context())
    assert Member.get("oS2").segments == {"thrifty_regulars"}  # orders alone do not follow the account
    assert Member.get("oS1").segments == {"followers"}
    assert rows("thrifty_regulars") == [("S002#oS2", "oS2")]


# --- the rules refuse what siyu cannot evaluate --------------------------------------------------


def problems_of(segments: dict) -> list[str]:
    files = read_dir(RULES)
    data = json.loads(files["segments.json"])
    data["segments"] = segments
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return [str(p) for p in check({**files, "segments.json": text})[1]]


def segment(*conditions: dict) -> dict:
    return {"s": {"title": "测试", "all": list(conditions)}}


def test_an_unknown_fact_is_refused_with_the_facts_siyu_knows():
    [problem] = problems_of(segment({"fact": "purchases", "gte": 4}))
    assert problem.startswith("segments.json:") and "/segments/s/all/0: 'purchases' is not a fact siyu knows" in problem
    assert "facts: category_orders, channel, consent" in problem


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"fact": "tier", "gte": 3}, "/segments/s/all/0: tier is a name: compare it with in [ … ], not gte"),
        (
            {"fact": "orders", "in": [4]},
            "/segments/s/all/0: orders is a number: compare it with gte, lte, gt, lt or eq",
        ),
        (
            {"fact": "subscribed", "eq": 1},
            "/segments/s/all/0: subscribed is yes or no: say is true or is false, not eq",
        ),
        ({"fact": "orders", "gte": "4"}, "/segments/s/all/0/gte: must be a number, written without quotes"),
        ({"fact": "orders", "days": 30}, "/segments/s/all/0: compare the number with at least one of gte"),
        ({"fact": "subscribed", "is": "yes"}, "/segments/s/all/0/is: must be true or false"),
        ({"fact": "orders", "days": 0, "gte": 1}, "/segments/s/all/0/days: must be at least 1"),
    ],
)
def test_a_mistyped_operator_is_refused_with_its_place_and_a_sentence(condition, expected):
    found = problems_of(segment(condition))
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"fact": "store", "in": ["S001", "S999"]}, "/segments/s/all/0/in/1: store S999 is not in stores.json"),
        ({"fact": "tier", "in": ["白金卡"]}, "/segments/s/all/0/in/0: tier 白金卡 is not in loyalty.json; tiers: "),
        ({"fact": "consent", "template": "nope"}, "/segments/s/all/0/template: template nope is not a subscribe"),
        ({"fact": "consent", "template": "recall_offer"}, "template recall_offer is not a subscribe template"),
        ({"fact": "has_tag", "tag": "vip"}, "/segments/s/all/0/tag: tag vip is neither defined in /tags nor a loyalty"),
    ],
)
def test_a_condition_naming_what_the_rules_do_not_have_is_refused(condition, expected):
    found = problems_of(segment(condition))
    assert any(expected in p for p in found), found


def test_the_problem_names_the_line_of_the_condition():
    files = read_dir(RULES)
    text = files["segments.json"].replace('"fact": "orders", "days": 30, "gte": 4', '"fact": "orders", "gte": "4"')
    [problem] = [str(p) for p in check({**files, "segments.json": text})[1]]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"gte": "4"' in row)
    assert problem.startswith(f"segments.json:{line}:") and "/segments/high_value/all/0/gte:" in problem


def test_known_loyalty_tags_and_subscribe_templates_are_accepted():
    assert (
        problems_of(
            segment(
                {"fact": "has_tag", "tag": "early_access"},
                {"fact": "has_tag", "tag": "price_sensitive", "is": False},
                {"fact": "consent", "template": "coupon_notice"},
                {"fact": "category_orders", "category": "milk-tea", "days": 90, "gt": 3},
            )
        )
        == []
    )


# --- the pass: resumable, idempotent, once under parallel runs ------------------------------------


def population(n: int) -> list[Member]:
    return [known(f"oM{i:03d}", days_quiet=i % 40, store_id=("S001", "S002", None)[i % 3]) for i in range(n)]


def test_the_full_pass_pauses_at_its_page_budget_and_the_next_run_continues_from_the_cursor(aws, clock, rules_dir):
    rules_dir(page_size=10)
    seed(*population(25))
    first = sweep.run(runtime.context(), max_pages=1)
    assert not first.finished and first.members_read == 10
    assert Shared.get(keys.SWEEP, keys.segments_cursor("2026-11-23")).value not in (None, executor.PASS_DONE)
    second = sweep.run(runtime.context())
    assert second.finished and second.members_read == 15  # the rest, not the first page again
    members = list(Member.scan())
    assert all(m.segments_seq == (1 if m.segments else None) for m in members)  # in none: nothing to write
    assert sorted(m.member_id for m in members if m.segments) == [f"oM{i:03d}" for i in range(7)]  # quiet < 7 days
    assert sweep.run(runtime.context()).day is None  # done for today
    full_pass_again()
    assert sweep.run(runtime.context()).changed == 0  # nothing moved: nothing written


def test_two_passes_at_once_write_one_consistent_membership(aws, clock, rules_dir):
    rules_dir(page_size=10)
    seed(*population(30))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: sweep.run(runtime.context()), range(2)))
    assert all(r.finished for r in results)
    members = list(Member.scan())
    assert all(m.segments_seq == (1 if m.segments else None) for m in members)  # each member written once
    for name in ("active", "lapsed"):
        expected = sorted(
            f"{m.store_id or keys.NO_STORE}#{m.member_id}" for m in members if name in (m.segments or set())
        )
        assert sorted(sk for sk, _ in rows(name)) == expected
    assert read.size("active") + read.size("lapsed") == sum(len(m.segments or ()) for m in members)


def test_an_evaluation_decided_on_a_stale_read_reads_again_and_writes_nothing_twice(aws, clock):
    seed(known("oRace", 0))
    stale = Member.get("oRace")  # read by a second pass before the first one wrote
    first = sweep.run(runtime.context())
    assert first.changed == 1
    late = sweep.Result()
    sweep.evaluate_member(runtime.context(), runtime.context().rules(), stale, late)
    assert late.changed == 0 and Member.get("oRace").segments_seq == 1
    assert rows("active") == [("S001#oRace", "oRace")]


def test_a_dry_run_shows_the_changes_and_writes_nothing(aws, clock, capsys):
    seed(known("oDry", 0))
    assert cli.main(["segments", "evaluate", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "oDry" in out and "joins active" in out and "dry run, nothing written" in out
    assert Member.get("oDry").segments is None and rows("active") == []
    assert Shared.count(keys.SWEEP) == 0  # no cursor either


def test_a_rule_switched_off_empties_its_segments_once(aws, clock, rules_dir):
    seed(known("oOff", 0))
    sweep.run(runtime.context())
    assert rows("active") != []
    rules_dir(enabled=False)
    full_pass_again()
    Shared(keys.SWEEP, keys.SEGMENTS_DAY, value="2026-11-22").save()  # yesterday's, when it was on
    assert sweep.run(runtime.context()).changed == 1
    assert rows("active") == [] and Member.get("oOff").segments is None
    assert sweep.run(runtime.context()).day is None  # off and emptied: no further passes


def test_a_member_whose_store_is_learned_later_moves_their_rows(aws, clock):
    seed(known("oMove", 0, store_id=None))
    sweep.run(runtime.context())
    assert rows("active") == [("-#oMove", "oMove")]
    member = Member.get("oMove")
    member.update(actions=[Member.store_id.set("S002")])  # as a first-touch attribution would
    full_pass_again()
    sweep.run(runtime.context())
    assert rows("active") == [("S002#oMove", "oMove")]


# --- sizes and the CLI -----------------------------------------------------------------------------


def test_sizes_count_each_segment_per_store(aws, clock):
    seed(known("oA", 0), known("oB", 0, store_id="S002"), known("oC", 0, store_id=None), known("oD", 40))
    sweep.run(runtime.context())
    found = read.sizes(runtime.context().rules())
    assert found["active"] == {"S001": 1, "S002": 1, "S003": 0, "-": 1}
    assert found["lapsed"] == {"S001": 1, "S002": 0, "S003": 0}
    assert found["high_value"] == {"S001": 0, "S002": 0, "S003": 0}


def test_siyu_segments_prints_the_sizes_per_store(aws, clock, capsys):
    seed(known("oA", 0), known("oB", 0, store_id="S002"), known("oD", 40))
    sweep.run(runtime.context())
    assert cli.main(["segments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["segment", "title", "S001", "S002", "S003", "total"]
    assert lines[1].split() == ["new", "新会员", "0", "0", "0", "0"]
    assert lines[2].split() == ["active", "活跃会员", "1", "1", "0", "2"]
    assert lines[4].split() == ["lapsed", "流失会员", "1", "0", "0", "1"]
    assert lines[5].endswith("last full pass: 2026-11-23)")


def test_siyu_segments_show_lists_a_stores_members_and_refuses_an_unknown_segment(aws, clock, capsys):
    seed(known("oA", 0), known("oB", 0, store_id="S002"))
    sweep.run(runtime.context())
    assert cli.main(["segments", "show", "active", "--store", "S002"]) == 0
    assert capsys.readouterr().out.splitlines() == ["active 活跃会员 · S002: 1 members", "  oB"]
    assert cli.main(["segments", "show", "vip"]) == 1
    assert "segment vip is not in segments.json" in capsys.readouterr().err
    assert cli.main(["segments", "show", "active", "--store", "S9"]) == 1


def test_the_dry_run_executor_knows_the_instruction(env):
    plan = sweep.SetSegments(
        member_id="o1",
        seq_before=0,
        store_before=None,
        store="S001",
        before=frozenset(),
        after=frozenset({"active"}),
        tags=frozenset(),
        rules_version="v1",
        rule_hash="h",
        now=NOW,
    )
    dry = executor.DryRun()
    dry.run([plan], "c", NOW)
    assert [(w["op"], w["table"]) for w in dry.writes] == [
        ("update", "siyu-test-members"),
        ("put", "siyu-test-loyalty"),
    ]


# --- the member view, the erase ------------------------------------------------------------------


def test_the_member_view_shows_the_members_segments_and_tags(client, aws, clock):
    seed(known("oView", 0))
    sweep.run(runtime.context())
    view = client.http.get("/admin/members/oView", headers={"Authorization": "Bearer test-admin-token"}).json_body
    assert view["segments"]["segments"] == ["active"] and view["segments"]["tags"] == []
    assert view["segments"]["evaluated_at"] == NOW.isoformat()
    assert view["segments"]["rules_version"] == runtime.context().rules().version


def test_an_erased_member_leaves_every_segment(aws, clock):
    from chalicelib.privacy import erase

    seed(known("oGone", 0), known("oStays", 0))
    sweep.run(runtime.context())
    assert erase.erase(runtime.context(), "oGone", "test").status == "completed"
    assert list(read.members_of("active")) == ["oStays"] and read.size("active") == 1


# --- every fact, decided without a database ------------------------------------------------------


def facts(**changes):
    from zoneinfo import ZoneInfo

    from chalicelib.segments.facts import MemberFacts

    values = {
        "member_id": "o1",
        "today": NOW.date(),
        "zone": ZoneInfo("Asia/Shanghai"),
        "store_id": "S001",
        "channel": "poster",
        "tier": "普通",
        "subscribed": True,
        "first_seen": NOW - timedelta(days=100),
        "last_active": NOW - timedelta(days=2),
        "last_order_day": NOW.date() - timedelta(days=5),
        "tags": frozenset({"early_access"}),
        "consented": frozenset(),
        "orders": (),
    }
    return MemberFacts(**(values | changes))


def paid(days_ago: int, fen: int = 3000, categories=("milk-tea",), coupon=False):
    from chalicelib.segments.facts import Order

    return Order(NOW - timedelta(days=days_ago), fen, frozenset(categories), coupon)


def meets(member, condition: dict) -> bool:
    from pydantic import TypeAdapter

    from chalicelib.rules.models import Condition
    from chalicelib.segments.evaluate import meets as evaluate

    rules = loader.load_dir(RULES)
    return evaluate(member, TypeAdapter(Condition).validate_python(condition), rules.messaging)


@pytest.mark.parametrize(
    ("condition", "member", "expected"),
    [
        ({"fact": "days_since_active", "gte": 2, "lt": 3}, facts(), True),
        ({"fact": "days_since_active", "gte": 1}, facts(last_active=None), False),  # never active: no fact
        ({"fact": "days_since_first_seen", "eq": 100}, facts(), True),
        ({"fact": "days_since_order", "lte": 4}, facts(), False),
        ({"fact": "days_since_order", "lte": 4}, facts(last_order_day=None), False),
        ({"fact": "orders", "days": 7, "eq": 2}, facts(orders=(paid(1), paid(6), paid(7))), True),  # day 7 is out
        ({"fact": "orders", "days": 30, "gte": 1}, facts(orders=(paid(1, fen=0),)), False),  # wholly refunded
        ({"fact": "spend_yuan", "days": 30, "gte": 59.5}, facts(orders=(paid(1, 3000), paid(2, 2950))), True),
        ({"fact": "category_orders", "category": "fruit-tea", "gt": 0}, facts(orders=(paid(1),)), False),
        ({"fact": "category_orders", "category": "milk-tea", "gt": 0}, facts(orders=(paid(1),)), True),
        (
            {"fact": "coupon_order_share_percent", "min_orders": 2, "gte": 50},
            facts(orders=(paid(1, coupon=True), paid(2))),
            True,
        ),
        ({"fact": "coupon_order_share_percent", "min_orders": 3, "gte": 0}, facts(orders=(paid(1),)), False),
        ({"fact": "tier", "in": ["金卡", "钻卡"]}, facts(tier="金卡"), True),
        ({"fact": "store", "in": ["S002"]}, facts(), False),
        ({"fact": "channel", "in": ["poster", "menu"]}, facts(), True),
        ({"fact": "has_tag", "tag": "early_access"}, facts(), True),
        ({"fact": "has_tag", "tag": "early_access", "is": False}, facts(), False),
        ({"fact": "consent", "template": "coupon_notice"}, facts(), False),
        ({"fact": "subscribed", "is": False}, facts(subscribed=False), True),
    ],
)
def test_each_fact_compares_as_documented(condition, member, expected):
    assert meets(member, condition) is expected


def test_consent_is_the_templates_wechat_id_among_those_the_member_accepted():
    template_id = loader.load_dir(RULES).messaging.templates["coupon_notice"].template_id
    assert meets(facts(consented=frozenset({template_id})), {"fact": "consent", "template": "coupon_notice"})


# --- reads: the pass reads what it asks about, campaigns read the segment, not the members --------


def test_the_full_pass_reads_the_ledger_only_of_members_who_ordered(aws, clock):
    from siyu.metering import Meter

    seed(*population(60))
    for n in range(3):
        order(f"oBuyer{n}", NOW - timedelta(days=1), f"B{n}")
    order("oLongAgo", NOW - timedelta(days=91), "L1")  # before the longest window asked about (90 days)
    with Meter() as meter:
        result = sweep.run(runtime.context())
    assert result.members_read == 64
    assert 0 < meter.items_read["siyu-test-points"] <= 3 * 3  # the buyers' partitions: balance, entry, order
    # per buyer their ledger and their coupons; today's and yesterday's active members: not per member
    assert meter.calls["Query"] <= 3 * 2 + 2


def test_a_segments_members_are_one_query_of_its_rows_not_of_the_members(aws, clock):
    from siyu.metering import Meter

    seed(*population(60))
    sweep.run(runtime.context())
    with Meter() as meter:
        listed = list(read.members_of("active", "S002"))
        counted = read.size("active", "S002")
    assert listed == ["oM001", "oM004", "oM040", "oM043", "oM046"] and counted == 5  # quiet < 7 days, S002
    assert meter.items_read["siyu-test-members"] == 0 and meter.calls["Scan"] == 0
    assert meter.items_read["siyu-test-loyalty"] == 10  # the store's five rows, read twice


def test_a_publish_that_leaves_segments_json_alone_rewrites_nobody(aws, clock, rules_dir):
    seed(known("oA", 0), known("oB", 40))
    sweep.run(runtime.context())
    first = runtime.context().rules().version
    directory = rules_dir()  # the same segments.json, another stores.json
    stores = json.loads((directory / "stores.json").read_text(encoding="utf-8"))
    stores["stores"][0]["name"] = "静安寺旗舰店"
    (directory / "stores.json").write_text(json.dumps(stores, ensure_ascii=False), encoding="utf-8")
    loader.clear_cache()
    assert runtime.context().rules().version != first
    full_pass_again()
    assert sweep.run(runtime.context()).changed == 0
    rules_dir(
        segments={**json.loads((RULES / "segments.json").read_text())["segments"]}
        | {"active": {"title": "近期活跃", "all": [{"fact": "days_since_active", "lt": 7}]}}
    )
    full_pass_again()
    assert sweep.run(runtime.context()).changed == 2  # the same sets, now named under the new rules
    assert Member.get("oA").segments_version == runtime.context().rules().version
