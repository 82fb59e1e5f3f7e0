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
    e = "SubscribeMsgPopupEvent"
    one = xmlsafe.parse(f"<xml><{e}><List><T>a</T></List></{e}></xml>".encode(), 65536)
    two = xmlsafe.parse(f"<xml><{e}><List><T>a</T></List><List><T>b</T></List></{e}></xml>".encode(), 65536)
    assert xmlsafe.as_list(one[e]["List"]) == [{"T": "a"}]
    assert xmlsafe.as_list(two[e]["List"]) == [{"T": "a"}, {"T": "b"}]


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>gh_a</ToUserName><ToUserName>gh_b</ToUserName></xml>",
        b"<xml><ToUserName><a>gh_a</a></ToUserName></xml>",
        b"<xml><Content>hi<b>x</b></Content></xml>",
        b"<xml><SubscribeMsgPopupEvent><List><TemplateId>a</TemplateId><TemplateId>b</TemplateId></List>"
        b"</SubscribeMsgPopupEvent></xml>",
        b"<xml><SubscribeMsgPopupEvent>x</SubscribeMsgPopupEvent><SubscribeMsgPopupEvent>y</SubscribeMsgPopupEvent></xml>",
        b"<xml><MemChangeList><Item>a</Item><Other>b</Other><Other>c</Other></MemChangeList></xml>",
    ],
)
def test_elements_wechat_never_repeats_or_nests_are_refused(body):
    with pytest.raises(BadRequest, match=r"more than once|may not contain"):
        xmlsafe.parse(body, 65536)


def test_wechat_lists_may_repeat_their_items():
    body = b"<xml><MemChangeList><Item>wm1</Item><Item>wm2</Item></MemChangeList></xml>"
    assert xmlsafe.parse(body, 65536) == {"MemChangeList": {"Item": ["wm1", "wm2"]}}


def test_a_members_text_may_quote_doctype_and_entity_inside_cdata():
    text = "看到 <!DOCTYPE html> 和 <!ENTITY x> 了"
    body = f"<xml><MsgType>text</MsgType><Content><![CDATA[{text}]]></Content></xml>".encode()
    assert xmlsafe.parse(body, 65536)["Content"] == text


def test_a_declaration_outside_cdata_is_still_refused_even_after_a_cdata_section():
    body = b"<xml><A><![CDATA[x]]></A></xml><!DOCTYPE x>"
    with pytest.raises(EntityDeclared):
        xmlsafe.parse(body, 65536)
