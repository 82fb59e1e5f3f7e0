import pytest

from chalicelib.errors import BadRequest, EntityDeclared
from chalicelib.protocol import xmlsafe

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<xml><Content>&lol2;</Content></xml>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><C>&xxe;</C></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, b"<!doctype xml><xml><a>1</a></xml>"])
def test_doctype_and_entities_are_rejected(body):
    with pytest.raises(EntityDeclared):
        xmlsafe.parse(body, 65536)


@pytest.mark.parametrize("body", [b"<xml><a>1</a>", b"not xml", b"<xml><a>1</b></xml>", b"", b"<xml/>"])
def test_malformed_xml_is_a_bad_request(body):
    with pytest.raises(BadRequest):
        xmlsafe.parse(body, 65536)


def test_oversized_body_is_rejected_before_parsing():
    with pytest.raises(BadRequest, match="larger than"):
        xmlsafe.parse(b"<xml><a>" + b"x" * 70000 + b"</a></xml>", 65536)


def test_user_text_cannot_close_cdata_in_a_reply():
    hostile = "hi]]></Content><MsgType>news</MsgType><Content><![CDATA["
    rendered = xmlsafe.render({"ToUserName": "o1", "Content": hostile, "CreateTime": 1})
    parsed = xmlsafe.parse(rendered.encode(), 65536)
    assert parsed["Content"] == hostile
    assert set(parsed) == {"ToUserName", "Content", "CreateTime"}


def test_single_list_item_parses_like_many():
    one = xmlsafe.parse(b"<xml><E><List><T>a</T></List></E></xml>", 65536)
    two = xmlsafe.parse(b"<xml><E><List><T>a</T></List><List><T>b</T></List></E></xml>", 65536)
    assert xmlsafe.as_list(one["E"]["List"]) == [{"T": "a"}]
    assert xmlsafe.as_list(two["E"]["List"]) == [{"T": "a"}, {"T": "b"}]
