"""The siyu command line against moto."""

import json

from siyu import cli
from siyu.local import callbacks
from tests.helpers import send


def test_member_show_prints_what_the_admin_route_shows(client, aws, clock, capsys):
    xml = callbacks.oa_event("oCli", "subscribe", int(clock.now().timestamp()), "qrscene_st=S003")
    send(client, callbacks.oa_post(aws, xml, clock.now()))
    assert cli.main(["member", "show", "oCli"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["store_id"] == "S003" and shown["coupons"][0]["value"] == "9.9"


def test_member_show_for_an_unknown_member_exits_1_with_a_reason(aws, clock, capsys):
    assert cli.main(["member", "show", "oNobody"]) == 1
    assert "no member oNobody" in capsys.readouterr().err


def test_config_lists_every_variable(capsys):
    from chalicelib.settings import VARIABLES

    assert cli.main(["config"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in VARIABLES)
