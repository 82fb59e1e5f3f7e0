"""The ops console's API through chalice.test.Client with moto: the same numbers as `siyu kpis`
and the digest, role and store limits enforced on the server, changes made through the admin
API's own functions and written to the audit log, the page and its committed build."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from chalicelib import runtime, settings
from chalicelib.console import auth
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.metrics import digest, kpis
from chalicelib.metrics.alerts import unit
from chalicelib.rules import loader, versions
from chalicelib.state.models import Alert, ConsoleAction, Member, Recall, Ticket
from siyu import cli
from siyu.local import callbacks
from tests.helpers import pos
from tests.helpers import send as send_callback
from tests.test_digest import MONDAY, synthetic_week

ROOT = Path(__file__).resolve().parent.parent
OPS = {"X-Siyu-Console-Token": "test-admin-token"}
JSON_BODY = {"Content-Type": "application/json"}


def manager(*stores: str) -> dict[str, str]:
    return {"X-Siyu-Console-Token": auth.store_token(settings.current(), list(stores))}


def get(client, path: str, headers=OPS):
    return client.http.get(f"/console/api/{path}", headers=headers)


def send(client, method: str, path: str, body: dict, headers=OPS):
    call = getattr(client.http, method.lower())
    return call(f"/console/api/{path}", headers={**headers, **JSON_BODY}, body=json.dumps(body, ensure_ascii=False))


def audit_entries() -> list[ConsoleAction]:
    return sorted(ConsoleAction.scan(), key=lambda a: a.sk)


def publish_bundled(note: str = "v1") -> int:
    files = loader.read_dir(ROOT / "rules")
    return versions.publish(files, note=note, author="test", now=datetime(2026, 11, 1, tzinfo=UTC)).version


# --- the numbers ----------------------------------------------------------------------------------


def cli_kpis(capsys, *args: str) -> dict[str, str]:
    assert cli.main(["kpis", *args]) == 0
    shown = {}
    for line in capsys.readouterr().out.splitlines()[1:]:
        label, value = line.split()[:2]
        shown[label] = value
    return shown


def test_the_last_seven_days_show_the_numbers_of_siyu_kpis_for_the_chain_and_each_store(client, aws, clock, capsys):
    synthetic_week()  # 2026-11-09 … 2026-11-22; the clock is Monday 2026-11-23 in Shanghai
    for scope, args in (("chain", ()), ("S001", ("--store", "S001")), ("S003", ("--store", "S003"))):
        expected = cli_kpis(capsys, *args)
        board = get(client, f"kpis?scope={scope}").json_body
        assert board["window"] == {"label": "近7天", "since": "2026-11-16", "until": "2026-11-22"}
        shown = {}
        for row in board["kpis"]:
            suffix, _ = unit(row["name"])
            shown[row["label"]] = "-" if row["value"] is None else f"{row['value']:.1f}{suffix}"
        assert shown == expected, scope
        assert any(value != "-" for value in shown.values())


def test_a_week_shows_the_numbers_its_digest_shows_week_over_week_and_against_target(client, aws, clock):
    synthetic_week()
    rules = runtime.context().rules()
    built = digest.build(rules, MONDAY, clock.now())
    for scope in built.scopes:
        board = get(client, f"kpis?scope={scope.scope}&week=2026-W47").json_body
        rows = {row["name"]: row for row in board["kpis"]}
        for name in kpis.KPIS:
            now, before = scope.kpi(name).value, scope.kpi(name, previous=True).value
            _, factor = unit(name)
            assert rows[name]["text"] == digest.shown(name, now), (scope.scope, name)
            assert rows[name]["value"] == pytest.approx(None if now is None else now * factor)
            if now is not None and before is not None:
                assert rows[name]["change"] == pytest.approx((now - before) * factor)
        conversion = rows["conversion_rate"]
        assert conversion["target"] == 15.0 and conversion["on_target"] == (conversion["value"] >= 15.0)
    chain = get(client, "kpis?week=2026-W47").json_body
    assert chain["activity"]["follows"] == built.scopes[0].week["follows"]
    assert len(chain["trend"]["days"]) == 28 and chain["trend"]["days"][-1] == "2026-11-22"


def test_the_delivery_rate_is_a_kpi_of_the_board(client, aws, clock):
    board = get(client, "kpis").json_body
    [row] = [row for row in board["kpis"] if row["name"] == "delivery_rate"]
    assert row["label"] == "送达率" and "missing" not in board


# --- who may do what --------------------------------------------------------------------------------


def test_without_a_login_or_with_a_forged_store_token_nothing_is_shown(client, aws, clock):
    assert get(client, "me", headers={}).status_code == 401
    assert get(client, "me", headers={"X-Siyu-Console-Token": "guess"}).status_code == 401
    own = auth.store_token(settings.current(), ["S001"])
    forged = own.replace("store:S001:", "store:S001+S002:")
    assert get(client, "me", headers={"X-Siyu-Console-Token": forged}).status_code == 401
    me = get(client, "me", headers=manager("S001")).json_body
    assert (me["role"], me["stores"], me["can_publish"], me["can_erase"]) == ("store_manager", ["S001"], False, False)
    assert [s["id"] for s in me["scopes"]] == ["S001"]


def test_a_store_manager_sees_only_their_store_on_every_page(client, aws, clock):
    synthetic_week()
    pos(client, aws, clock, "review", "oMine", review_id="R-mine", score=1, store_id="S001")
    pos(client, aws, clock, "review", "oTheirs", review_id="R-theirs", score=2, store_id="S002")
    Member("oTheirs").update(actions=[Member.store_id.set("S002")])
    mine = manager("S001")
    assert get(client, "kpis", headers=mine).json_body["scope"] == "S001"
    assert get(client, "kpis?scope=S002", headers=mine).status_code == 403
    assert get(client, "kpis?scope=chain", headers=mine).status_code == 403
    assert [t["ticket_id"] for t in get(client, "tickets", headers=mine).json_body["tickets"]] == ["R-mine"]
    assert get(client, "tickets/R-theirs", headers=mine).status_code == 403
    answer = send(client, "POST", "tickets/R-theirs", {"action": "respond"}, headers=mine)
    assert answer.status_code == 403 and Ticket.get("R-theirs").status == "open"
    assert get(client, "members/oTheirs", headers=mine).status_code == 403
    assert get(client, "members?q=oTheirs", headers=mine).json_body["members"] == []
    assert get(client, "members/oMine", headers=mine).status_code == 200
    alerts = get(client, "alerts", headers=mine).json_body
    assert [a["scope"] for a in alerts["open"]] == ["S001"]
    Alert(
        "store_conversion#S002",
        check="store_conversion",
        scope="S002",
        status="open",
        level="red",
        opened_at=clock.now(),
        notified_at=clock.now(),
    ).save()
    assert [a["scope"] for a in get(client, "alerts", headers=mine).json_body["open"]] == ["S001"]
    assert {a["scope"] for a in get(client, "alerts").json_body["open"]} == {"S001", "S002"}


def test_a_store_manager_can_neither_publish_roll_back_nor_erase(client, aws, clock):
    publish_bundled()
    pos(client, aws, clock, "order_paid", "oKeep", order_id="O1", amount_fen=2600, store_id="S001")
    mine = manager("S001")
    files = loader.read_dir(ROOT / "rules")
    answer = send(client, "PUT", "rules", {"note": "x", "files": files}, headers={**mine, "If-Match": "v1"})
    assert answer.status_code == 403 and versions.latest_number() == 1
    assert send(client, "POST", "rules/v1/activate", {}, headers=mine).status_code == 403
    answer = send(client, "POST", "members/oKeep/erase", {"confirm": "oKeep"}, headers=mine)
    assert answer.status_code == 403 and Member.get("oKeep").member_id == "oKeep"
    checked = send(client, "POST", "rules/check", {"files": files}, headers=mine)
    assert checked.status_code == 200 and checked.json_body["problems"] == []


def test_in_aws_the_role_and_stores_come_from_the_cognito_claims(env, monkeypatch):
    monkeypatch.setenv("SIYU_STAGE", "prod")
    prod = settings.current()

    def request(claims):
        return SimpleNamespace(context={"authorizer": {"claims": claims}}, headers={})

    who = auth.authenticate(
        prod, request({"email": "wang@example.com", "custom:role": "store_manager", "custom:stores": "S001, S003"})
    )
    assert (who.user, who.role, who.stores) == ("wang@example.com", "store_manager", frozenset({"S001", "S003"}))
    ops = auth.authenticate(prod, request({"cognito:username": "li", "custom:role": "ops"}))
    assert ops.is_ops and ops.sees("S002")
    with pytest.raises(Forbidden):
        auth.authenticate(prod, request({"cognito:username": "x", "custom:role": "admin"}))
    with pytest.raises(Forbidden):
        auth.authenticate(prod, request({"cognito:username": "x", "custom:role": "store_manager"}))
    with pytest.raises(Unauthorized):  # no claims and no admin token in AWS: closed
        monkeypatch.setenv("SIYU_ADMIN_TOKEN", "")
        auth.authenticate(settings.current(), SimpleNamespace(context={}, headers=OPS))


def test_on_the_local_stage_claims_are_not_trusted(env):
    forged = SimpleNamespace(context={"authorizer": {"claims": {"custom:role": "ops"}}}, headers={})
    with pytest.raises(Unauthorized):
        auth.authenticate(settings.current(), forged)


# --- changes: the admin API's functions, and the audit log -----------------------------------------


def test_answering_a_ticket_records_it_as_the_admin_api_does_and_audits_it(client, aws, clock):
    pos(client, aws, clock, "review", "oSad", review_id="R7", score=1, store_id="S001")
    queue = get(client, "tickets", headers=manager("S001")).json_body["tickets"]
    assert queue[0]["next_step"]["step"] == "late"
    answer = send(
        client, "POST", "tickets/R7", {"action": "respond", "by": "店长王", "note": "已致电"}, headers=manager("S001")
    )
    assert answer.status_code == 200 and answer.json_body["status"] == "responded"
    ticket = Ticket.get("R7")
    assert (ticket.status, ticket.handled_by, ticket.note) == ("responded", "店长王", "已致电")
    again = send(client, "POST", "tickets/R7", {"action": "respond"}, headers=manager("S001"))
    assert again.status_code == 200  # a retried click changes nothing, audits nothing
    back = send(client, "POST", "tickets/R7", {"action": "bogus"}, headers=manager("S001"))
    assert back.status_code == 400
    [entry] = audit_entries()
    assert (entry.user, entry.role, entry.action, entry.target, entry.outcome) == (
        "store-manager:S001",
        "store_manager",
        "ticket.respond",
        "R7",
        "ok",
    )
    assert "已致电" not in (entry.detail or "")  # staff notes stay on the ticket
    assert get(client, "audit", headers=manager("S002")).json_body["entries"] == []
    assert get(client, "audit", headers=manager("S001")).json_body["entries"][0]["target"] == "R7"


def test_a_broken_rule_is_located_at_its_line_and_pointer_as_siyu_rules_check_says(client, aws, clock):
    files = loader.read_dir(ROOT / "rules")
    files["welcome.json"] = files["welcome.json"].replace('"value_yuan": 9.9', '"value_yuan": 5000')
    line = next(i for i, text in enumerate(files["welcome.json"].splitlines(), 1) if "5000" in text)
    problems = send(client, "POST", "rules/check", {"files": files}).json_body
    assert problems["problems"] == [
        {
            "file": "welcome.json",
            "line": line,
            "column": 19,
            "pointer": "/coupon/value_yuan",
            "message": "must be at most 500 (is 5000)",
        }
    ]
    assert problems["text"] == [f"welcome.json:{line}:19 /coupon/value_yuan: must be at most 500 (is 5000)"]
    refused = send(client, "PUT", "rules", {"note": "too much", "files": files})
    assert refused.status_code == 400 and refused.json_body["problems"][0]["line"] == line
    assert audit_entries()[-1].outcome == "refused"


def test_preview_then_publish_then_a_stale_publish_is_a_conflict_and_rollback_restores(client, aws, clock):
    publish_bundled()
    follow = callbacks.oa_event("oNewcomer", "subscribe", int(clock.now().timestamp()), "qrscene_st=S001")
    assert send_callback(client, callbacks.oa_post(aws, follow, clock.now())).status_code == 200
    files = loader.read_dir(ROOT / "rules")
    files["welcome.json"] = files["welcome.json"].replace('"value_yuan": 9.9', '"value_yuan": 12.5')
    preview = send(client, "POST", "rules/preview", {"files": files, "days": 7}).json_body
    assert preview["active_version"] == "v1" and preview["candidate_version"] == "草稿" and preview["events"] >= 1
    welcome = [r for r in preview["rows"] if r["duty"] == "welcome"]
    assert (
        welcome and welcome[0]["active"]["face_value_fen"] == 990 and welcome[0]["candidate"]["face_value_fen"] == 1250
    )
    published = send(
        client, "PUT", "rules", {"note": "新人券改为12.5元", "files": files}, headers={**OPS, "If-Match": "v1"}
    )
    assert published.status_code == 200 and published.json_body == {"active": "v2", "previous": "v1", "changed": True}
    clock.set(clock.now() + timedelta(seconds=1))
    stale = send(
        client,
        "PUT",
        "rules",
        {"note": "another", "files": files | {"welcome.json": files["welcome.json"].replace("12.5", "11")}},
        headers={**OPS, "If-Match": "v1"},
    )
    assert stale.status_code == 409 and versions.latest_number() == 2
    clock.set(clock.now() + timedelta(seconds=1))
    diff = get(client, "rules/diff?a=v1&b=v2").json_body["diff"]
    assert '-    "value_yuan": 9.9\n' in diff and '+    "value_yuan": 12.5\n' in diff
    back = send(client, "POST", "rules/v1/activate", {"note": "回滚"}, headers={**OPS, "If-Match": "v2"})
    assert back.status_code == 200 and back.json_body["active"] == "v1"
    assert get(client, "rules").json_body["active"] == "v1"
    assert [(a.action, a.target, a.outcome) for a in audit_entries()] == [
        ("rules.publish", "v2", "ok"),
        ("rules.publish", "expected v1", "conflict"),
        ("rules.rollback", "v1", "ok"),
    ]


def test_erasing_needs_the_typed_id_and_leaves_the_pseudonym_not_the_id_in_the_audit(client, aws, clock):
    pos(client, aws, clock, "order_paid", "oGone", order_id="O5", amount_fen=2600, store_id="S002")
    unconfirmed = send(client, "POST", "members/oGone/erase", {"confirm": "oGon"})
    assert unconfirmed.status_code == 400 and Member.get("oGone")
    erased = send(client, "POST", "members/oGone/erase", {"confirm": "oGone"})
    assert erased.status_code == 200 and erased.json_body["erased"] is True
    assert get(client, "members/oGone").status_code == 404
    [entry] = audit_entries()
    assert (entry.action, entry.target, entry.outcome) == ("member.erase", erased.json_body["pseudonym"], "completed")
    assert "oGone" not in json.dumps(get(client, "audit").json_body)


def test_a_member_is_found_by_id_or_coupon_code_with_points_coupons_messages_and_recalls(client, aws, clock):
    pos(client, aws, clock, "order_paid", "oFound", order_id="O3", amount_fen=4200, store_id="S001")
    Recall(
        "oFound",
        "2026-11-01#7d",
        day="2026-11-08",
        stage="7d",
        store_id="S001",
        arm="holdout",
        created_at=clock.now(),
        window_until=clock.now() + timedelta(days=7),
        rules_version="v1",
    ).save()
    view = get(client, "members/oFound").json_body
    assert view["store_name"] == "S001 静安寺店" and view["points"]["balance"] == 42
    assert [e["cause"] for e in view["points"]["entries"]] == ["order"]
    assert [r["arm"] for r in view["recalls"]] == ["holdout"]
    assert get(client, "members?q=oFound").json_body["members"][0]["matched"] == "member_id"
    assert get(client, "members/bad%20id").status_code == 400


# --- recall -------------------------------------------------------------------------------------


def test_the_recall_report_has_the_lift_interval_or_says_the_sample_is_too_small(client, aws, clock):
    now = clock.now()
    for i in range(200):
        arm = "holdout" if i % 4 == 0 else "treated"
        returned = now if (arm == "treated" and i % 3 == 0) or (arm == "holdout" and i % 12 == 0) else None
        Recall(
            f"oR{i}",
            "2026-11-10#7d",
            day="2026-11-17",
            stage="7d",
            store_id="S001" if i < 190 else "S002",
            arm=arm,
            created_at=now,
            window_until=now + timedelta(days=7),
            returned_at=returned,
            rules_version="v1",
        ).save()
    rows = get(client, "recall?days=30").json_body["rows"]
    by_store = {r["store"]: r for r in rows}
    assert by_store["S001"]["lift"]["low"] < by_store["S001"]["lift"]["value"] < by_store["S001"]["lift"]["high"]
    assert by_store["S002"]["lift"] is None and by_store["S002"]["lift_text"].startswith("样本不足")
    mine = get(client, "recall?days=30", headers=manager("S002")).json_body["rows"]
    assert [r["store"] for r in mine] == ["S002"]


# --- the page -----------------------------------------------------------------------------------


def test_the_page_and_its_assets_are_served_and_unknown_assets_are_404(client, aws, clock):
    page = client.http.get("/console")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    assert "siyu 私域运营台" in html and 'lang="zh-CN"' in html
    script = re.search(r'src="(console/assets/app\.js\?v=\w+)"', html).group(1)
    asset = client.http.get("/" + script.split("?")[0])
    assert asset.status_code == 200 and asset.headers["Content-Type"].startswith("text/javascript")
    for chunk in re.findall(r'"\./(chunk-[A-Z0-9]+\.js)"', asset.body.decode()):
        assert client.http.get(f"/console/assets/{chunk}").status_code == 200
    assert client.http.get("/console/assets/..%2Fstatic.py").status_code == 404
    assert client.http.get("/console/assets/secret.txt").status_code == 404


def test_the_committed_build_is_the_build_of_the_committed_sources():
    """console/build.mjs heads app.js with a hash of console/src and package-lock.json: a source
    change committed without `make console` fails here."""
    console = ROOT / "console"
    digest_ = hashlib.sha256()
    paths = [*sorted(p for p in (console / "src").rglob("*") if p.is_file()), console / "package-lock.json"]
    for path in paths:
        digest_.update(path.relative_to(console).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    first = (ROOT / "chalicelib" / "console" / "static" / "app.js").read_text(encoding="utf-8").splitlines()[0]
    assert first == f"/* siyu console; sources {digest_.hexdigest()} */", "run `make console` and commit the build"
    assert (ROOT / "chalicelib" / "console" / "static" / "index.html").read_bytes() == (
        console / "src" / "index.html"
    ).read_bytes()


def test_in_aws_every_console_api_route_is_behind_the_user_pool_and_users_cannot_grant_themselves_a_role():
    from app import STAFF, app

    template = json.loads((ROOT / "infra" / "resources.json").read_text())
    api_routes = {(path, method): entry for path, methods in app.routes.items() for method, entry in methods.items()}
    console_api = {key: entry for key, entry in api_routes.items() if key[0].startswith("/console/api/")}
    assert len(console_api) >= 15
    assert all(entry.authorizer is STAFF for entry in console_api.values())
    assert api_routes[("/console", "GET")].authorizer is None  # the page itself; its data is behind the pool
    authorizer = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["securityDefinitions"]["console"]
    assert authorizer["x-amazon-apigateway-authorizer"]["providerARNs"] == [{"Fn::GetAtt": ["ConsoleUserPool", "Arn"]}]
    client = template["Resources"]["ConsoleUserPoolClient"]["Properties"]
    assert {"custom:role", "custom:stores"} <= set(client["ReadAttributes"])
    assert not {"custom:role", "custom:stores"} & set(client["WriteAttributes"])
    assert api_routes[("/admin/rules", "PUT")].authorizer is not STAFF  # machines keep IAM
