"""Abuse: forged, replayed, hostile and malformed input against the three webhooks and the admin
routes, through chalice.test.Client with moto, then property-based fuzzing of the parsers and of
the endpoints.

Every refusal is a 4xx with a JSON reason, never a 5xx, and leaves every table as it was. Where
a case needs the attacker to hold a secret (the token, the AES key, the POS secret) to reach the
code under test, the test signs or encrypts with it and says so.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import struct
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import botocore.client
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chalicelib import web
from chalicelib.errors import BadRequest
from chalicelib.events import MAX_EVENT_ID_BYTES, MAX_ID_BYTES, Event, Kind
from chalicelib.protocol import official_account, orders, work, xmlsafe
from chalicelib.protocol.crypto import MessageCrypto, sha1_signature
from chalicelib.protocol.inbound import EARLIEST, LATEST
from chalicelib.state.models import (
    Coupon,
    EventRecord,
    LoyaltyRecord,
    Member,
    Metric,
    OutboxMessage,
    PointsRecord,
    RuleRecord,
)
from siyu.local import callbacks
from tests.helpers import ADMIN

RULES = Path(__file__).resolve().parent.parent / "rules"
XML = {"Content-Type": "text/xml"}
JSON = {"Content-Type": "application/json"}
PREFIX = b"0123456789abcdef"  # the random 16 bytes of the plaintext, fixed so runs repeat
NONCE = "424242"

# --- what is stored ---------------------------------------------------------------------------

TABLES = (EventRecord, Member, Coupon, OutboxMessage, PointsRecord, LoyaltyRecord, Metric, RuleRecord)


def stored() -> dict[str, int]:
    return {model.__name__: sum(1 for _ in model.scan()) for model in TABLES}


NOTHING = {model.__name__: 0 for model in TABLES}
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


@pytest.fixture
def writes(monkeypatch) -> list[str]:
    """The DynamoDB writes attempted from now on, seen below PynamoDB (as tests/test_faults.py
    counts them): cheaper than scanning every table after each fuzzed request, and stricter."""
    attempted: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def call(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb" and operation in WRITES:
            attempted.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    return attempted


def refused(
    response, status: int, reason: str = "", *, before: dict[str, int] | None = None, case: str = ""
) -> dict[str, Any]:
    """A refusal: the status, a JSON reason containing ``reason``, and no table changed."""
    assert response.status_code == status, (case, response.status_code, response.body[:300])
    answer = json.loads(response.body)
    assert answer["error"] and reason in answer["reason"], (case, answer)
    assert stored() == (NOTHING if before is None else before), case
    return answer


def unix(clock, shift: float = 0) -> str:
    return str(int(clock.now().timestamp() + shift))


# --- requests as WeChat, WeCom and the POS build them (and as an attacker bends them) ----------


def oa_crypto(s) -> MessageCrypto:
    return MessageCrypto(s.wechat_token, s.wechat_aes_key, s.wechat_app_id)


def wecom_crypto(s) -> MessageCrypto:
    return MessageCrypto(s.wecom_token, s.wecom_aes_key, s.wecom_corp_id)


def oa_query(s, timestamp: str, encrypted: str | None, nonce: str = NONCE, token: str | None = None) -> dict[str, str]:
    token = token or s.wechat_token
    query = {
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": sha1_signature(token, timestamp, nonce),
        "openid": "o",
    }
    if encrypted is not None:
        query.update(encrypt_type="aes", msg_signature=sha1_signature(token, timestamp, nonce, encrypted))
    return query


def oa_envelope(encrypted: str) -> bytes:
    return xmlsafe.render({"ToUserName": "gh_siyu_local", "Encrypt": encrypted}).encode()


def wecom_query(s, timestamp: str, encrypted: str, nonce: str = NONCE, token: str | None = None) -> dict[str, str]:
    signature = sha1_signature(token or s.wecom_token, timestamp, nonce, encrypted)
    return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}


def wecom_envelope(s, encrypted: str) -> bytes:
    return xmlsafe.render({"ToUserName": s.wecom_corp_id, "AgentID": "1", "Encrypt": encrypted}).encode()


def post(client, route: str, query: dict[str, str], body: bytes, headers: dict[str, str] = XML):
    return client.http.post(f"{route}?{urlencode(query)}", headers=headers, body=body)


def get(client, route: str, query: dict[str, str]):
    return client.http.get(f"{route}?{urlencode(query)}")


def post_oa(client, s, clock, xml: str):
    """A correct safe-mode delivery of ``xml``, stamped now."""
    encrypted = oa_crypto(s).encrypt(xml, PREFIX)
    return post(client, "/wechat/oa", oa_query(s, unix(clock), encrypted), oa_envelope(encrypted))


def post_wecom(client, s, clock, xml: str):
    encrypted = wecom_crypto(s).encrypt(xml, PREFIX)
    return post(client, "/wechat/work", wecom_query(s, unix(clock), encrypted), wecom_envelope(s, encrypted))


def follow_xml(clock, openid: str = "oNew1") -> str:
    return callbacks.oa_event(openid, "subscribe", int(clock.now().timestamp()), "qrscene_st=S001&ch=poster")


def contact_xml(s, clock, customer: str = "wmNew1", change: str = "add_external_contact") -> str:
    return (
        f"<xml><ToUserName>{s.wecom_corp_id}</ToUserName><FromUserName>sys</FromUserName>"
        f"<CreateTime>{unix(clock)}</CreateTime><MsgType>event</MsgType><Event>change_external_contact</Event>"
        f"<ChangeType>{change}</ChangeType><UserID>zhangsan</UserID><ExternalUserID>{customer}</ExternalUserID>"
        f"<State>st=S001&amp;ch=counter</State></xml>"
    )


def order_headers(s, body: bytes, timestamp: str, secret: str | None = None) -> dict[str, str]:
    signature = orders.sign(secret or s.orders_hmac_secret, timestamp, body)
    return {**JSON, orders.TIMESTAMP_HEADER: timestamp, orders.SIGNATURE_HEADER: signature}


def post_order(client, s, clock, body: bytes, **headers: str):
    return client.http.post("/hooks/orders", headers={**order_headers(s, body, unix(clock)), **headers}, body=body)


def paid(clock, **changes: Any) -> dict[str, Any]:
    order = {
        "type": "order_paid",
        "order_id": "O-1",
        "openid": "oNew1",
        "store_id": "S001",
        "amount_fen": 3200,
        "at": clock.now().isoformat(),
        "items": [{"sku": "tea-1", "category": "milk-tea", "price_fen": 1600, "qty": 2}],
    }
    order.update(changes)
    return order


def seal(crypto: MessageCrypto, plain: bytes) -> str:
    """AES-256-CBC as WeChat does it, over bytes of our choosing: padding is the caller's."""
    encryptor = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def frame(message: bytes, receive_id: str, length: int | None = None) -> bytes:
    return PREFIX + struct.pack(">I", len(message) if length is None else length) + message + receive_id.encode()


def pad(data: bytes, block: int = 32) -> bytes:
    n = block - len(data) % block
    return data + bytes([n]) * n


def rule_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in RULES.glob("*.json")}


# === 1. signatures, replays, timestamps, query parameters ======================================


def _oa_forgeries(s, clock) -> dict[str, tuple[dict[str, str], bytes, str]]:
    """name → (query, body, reason): a delivery for oNew1 bent so one signature no longer holds."""
    crypto = oa_crypto(s)
    mine = crypto.encrypt(follow_xml(clock, "oNew1"), PREFIX)
    other = crypto.encrypt(follow_xml(clock, "oNew2"), PREFIX)
    good = oa_query(s, unix(clock), mine)
    return {
        "msg_signature of another Encrypt": (good, oa_envelope(other), "msg_signature"),
        "msg_signature copied from signature": (
            {**good, "msg_signature": good["signature"]},
            oa_envelope(mine),
            "msg_signature does not match",
        ),
        "signature for another nonce": ({**good, "nonce": "1"}, oa_envelope(mine), "signature does not match"),
        "signature for another timestamp": (
            {**good, "timestamp": unix(clock, -1)},
            oa_envelope(mine),
            "signature does not match",
        ),
        "signed with another token": (
            oa_query(s, unix(clock), mine, token="guess"),
            oa_envelope(mine),
            "signature does not match",
        ),
        "msg_signature non-ASCII": ({**good, "msg_signature": "签名"}, oa_envelope(mine), "msg_signature does not"),
        "signature non-ASCII": ({**good, "signature": "é" * 40}, oa_envelope(mine), "signature does not match"),
        "msg_signature empty": ({**good, "msg_signature": ""}, oa_envelope(mine), "msg_signature does not match"),
    }


def test_forged_official_account_signatures_are_forbidden(client, aws, clock):
    for case, (query, body, reason) in _oa_forgeries(aws, clock).items():
        refused(post(client, "/wechat/oa", query, body), 403, reason, case=case)
    assert post_oa(client, aws, clock, follow_xml(clock)).status_code == 200  # unbent, the delivery counts


def test_forged_url_verification_is_forbidden_and_the_echo_is_not_returned(client, aws, clock):
    good = {**oa_query(aws, unix(clock), None), "echostr": "echo-123"}
    for forged in (
        {**good, "nonce": "1"},
        {**good, "signature": "%FF"},
        {**good, "signature": "\ufffd" * 40},
        {**good, "signature": sha1_signature("guess", good["timestamp"], NONCE)},
    ):
        response = get(client, "/wechat/oa", forged)
        assert b"echo-123" not in response.body
        refused(response, 403, "signature does not match")
    raw = client.http.get(f"/wechat/oa?timestamp={good['timestamp']}&nonce={NONCE}&signature=%FF%FE&echostr=x")
    refused(raw, 403, "signature does not match")


def test_forged_wecom_signatures_are_forbidden(client, aws, clock):
    crypto = wecom_crypto(aws)
    mine = crypto.encrypt(contact_xml(aws, clock, "wmNew1"), PREFIX)
    other = crypto.encrypt(contact_xml(aws, clock, "wmNew2"), PREFIX)
    good = wecom_query(aws, unix(clock), mine)
    for query, body in (
        (good, wecom_envelope(aws, other)),
        ({**good, "nonce": "1"}, wecom_envelope(aws, mine)),
        ({**good, "msg_signature": "é"}, wecom_envelope(aws, mine)),
        (wecom_query(aws, unix(clock), mine, token="guess"), wecom_envelope(aws, mine)),
    ):
        refused(post(client, "/wechat/work", query, body), 403, "msg_signature does not match")
    echo = crypto.encrypt("5927782489442352469", PREFIX)
    forged_echo = {**wecom_query(aws, unix(clock), echo), "echostr": crypto.encrypt("other", PREFIX)}
    refused(get(client, "/wechat/work", forged_echo), 403, "msg_signature does not match")


def test_a_captured_delivery_replayed_later_with_a_new_nonce_is_refused(client, aws, clock):
    encrypted = oa_crypto(aws).encrypt(follow_xml(clock), PREFIX)
    captured_at = unix(clock)
    query, body = oa_query(aws, captured_at, encrypted), oa_envelope(encrypted)
    assert post(client, "/wechat/oa", query, body).status_code == 200
    before = stored()
    clock.advance(timedelta(minutes=10))
    # A new nonce breaks both signatures...
    refused(post(client, "/wechat/oa", {**query, "nonce": "7"}, body), 403, "signature", before=before)
    # ...and re-signed by someone who holds the token, the old timestamp is outside the window.
    resigned = oa_query(aws, captured_at, encrypted, nonce="7")
    refused(post(client, "/wechat/oa", resigned, body), 403, "window", before=before)


def test_a_captured_wecom_delivery_replayed_later_is_refused(client, aws, clock):
    encrypted = wecom_crypto(aws).encrypt(contact_xml(aws, clock), PREFIX)
    captured_at = unix(clock)
    body = wecom_envelope(aws, encrypted)
    assert post(client, "/wechat/work", wecom_query(aws, captured_at, encrypted), body).status_code == 200
    before = stored()
    clock.advance(timedelta(minutes=10))
    resigned = wecom_query(aws, captured_at, encrypted, nonce="7")
    refused(post(client, "/wechat/work", resigned, body), 403, "window", before=before)


def test_a_captured_order_replayed_later_is_refused(client, aws, clock):
    body = json.dumps(paid(clock)).encode()
    headers = order_headers(aws, body, unix(clock))
    assert client.http.post("/hooks/orders", headers=headers, body=body).status_code == 200
    before = stored()
    clock.advance(timedelta(minutes=10))
    refused(client.http.post("/hooks/orders", headers=headers, body=body), 401, "window", before=before)


BAD_TIMESTAMPS = [
    ("stale", -301, "window"),
    ("future", 301, "window"),
    ("ten years ahead", 10 * 365 * 86400, "window"),
    ("epoch", "0", "window"),
    ("400 digits", "9" * 400, "window"),
    ("-400 digits", "-" + "9" * 400, "window"),
    ("not a number", "soon", "not an integer"),
    ("a float", "1795399200.0", "not an integer"),
    ("5000 digits", "9" * 5000, "not an integer"),
]


def test_correctly_signed_requests_with_bad_timestamps_are_refused_everywhere(client, aws, clock):
    """Signed with the right secrets, so only the timestamp is wrong."""
    oa_encrypted = oa_crypto(aws).encrypt(follow_xml(clock), PREFIX)
    wecom_encrypted = wecom_crypto(aws).encrypt(contact_xml(aws, clock), PREFIX)
    echo = wecom_crypto(aws).encrypt("123", PREFIX)
    body = json.dumps(paid(clock)).encode()
    for case, shift, reason in BAD_TIMESTAMPS:
        ts = shift if isinstance(shift, str) else unix(clock, shift)
        answers = [
            post(client, "/wechat/oa", oa_query(aws, ts, oa_encrypted), oa_envelope(oa_encrypted)),
            get(client, "/wechat/oa", {**oa_query(aws, ts, None), "echostr": "e"}),
            post(client, "/wechat/work", wecom_query(aws, ts, wecom_encrypted), wecom_envelope(aws, wecom_encrypted)),
            get(client, "/wechat/work", {**wecom_query(aws, ts, echo), "echostr": echo}),
        ]
        for response in answers:
            refused(response, 403, reason, case=case)
        refused(
            client.http.post("/hooks/orders", headers=order_headers(aws, body, ts), body=body), 401, reason, case=case
        )


MISSING = [
    ("/wechat/oa", "POST", "timestamp", "missing query parameter timestamp"),
    ("/wechat/oa", "POST", "nonce", "missing query parameter nonce"),
    ("/wechat/oa", "POST", "signature", "signature does not match"),
    ("/wechat/oa", "POST", "msg_signature", "msg_signature does not match"),
    ("/wechat/oa", "POST", "encrypt_type", "plain mode is disabled"),
    ("/wechat/oa", "POST", "*", "missing query parameter"),
    ("/wechat/oa", "GET", "echostr", "missing query parameter echostr"),
    ("/wechat/oa", "GET", "signature", "signature does not match"),
    ("/wechat/oa", "GET", "*", "missing query parameter"),
    ("/wechat/work", "POST", "msg_signature", "msg_signature does not match"),
    ("/wechat/work", "POST", "timestamp", "missing query parameter timestamp"),
    ("/wechat/work", "POST", "nonce", "missing query parameter nonce"),
    ("/wechat/work", "GET", "echostr", "missing query parameter echostr"),
    ("/wechat/work", "GET", "*", "missing query parameter"),
]


def test_missing_query_parameters_are_forbidden(client, aws, clock):
    oa = oa_crypto(aws).encrypt(follow_xml(clock), PREFIX)
    wecom = wecom_crypto(aws).encrypt(contact_xml(aws, clock), PREFIX)
    full = {
        "/wechat/oa": ({**oa_query(aws, unix(clock), oa), "echostr": "e"}, oa_envelope(oa)),
        "/wechat/work": ({**wecom_query(aws, unix(clock), wecom), "echostr": wecom}, wecom_envelope(aws, wecom)),
    }
    for route, method, dropped, reason in MISSING:
        query, body = full[route]
        query = {} if dropped == "*" else {k: v for k, v in query.items() if k != dropped}
        path = f"{route}?{urlencode(query)}" if query else route
        response = client.http.post(path, headers=XML, body=body) if method == "POST" else client.http.get(path)
        refused(response, 403, reason, case=f"{method} {route} without {dropped}")


# === 2. hostile XML =============================================================================

LOL = b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)) * 10) for i in range(1, 10))
HOSTILE_XML = {
    "external entity": b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><ToUserName>gh</ToUserName><Encrypt>&xxe;</Encrypt></xml>",
    "external entity over http": b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]>'
    b"<xml><Encrypt>&xxe;</Encrypt></xml>",
    "parameter entity": b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % dtd SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b" %dtd;]><xml><Encrypt>x</Encrypt></xml>",
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol0 "lol">'
    + LOL
    + b"]><xml><Encrypt>&lol9;</Encrypt></xml>",
    "quadratic blowup": b'<!DOCTYPE xml [<!ENTITY a "'
    + b"x" * 5000
    + b'">]><xml><Encrypt>'
    + b"&a;" * 2000
    + b"</Encrypt></xml>",
    "bare DOCTYPE": b"<!DOCTYPE xml><xml><Encrypt>x</Encrypt></xml>",
    "lower-case, spaced": b"<! doctype xml><xml><Encrypt>x</Encrypt></xml>",
    "UTF-16 external entity": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM '
    '"file:///etc/passwd">]><xml><Encrypt>&xxe;</Encrypt></xml>'.encode("utf-16"),
}


def test_doctype_and_entities_in_the_envelope_are_refused_unexpanded(client, aws, clock):
    queries = {
        "/wechat/oa": oa_query(aws, unix(clock), "x"),  # a valid URL signature: the body is parsed
        "/wechat/work": wecom_query(aws, unix(clock), "x"),  # WeCom parses before it can check anything
    }
    for case, body in HOSTILE_XML.items():
        for route, query in queries.items():
            response = post(client, route, query, body)
            answer = refused(response, 400, "DOCTYPE or ENTITY", case=f"{route} {case}")
            assert answer["error"] == "entity_declared" and b"root:" not in response.body, case
            assert b"lollol" not in response.body, case


INNER_DOCTYPE = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>gh</ToUserName>'
    "<FromUserName>oEvil</FromUserName><CreateTime>{ts}</CreateTime><MsgType>text</MsgType>"
    "<Content>&xxe;</Content><MsgId>1</MsgId></xml>"
)
INNER_LAUGHS = (
    '<!DOCTYPE xml [<!ENTITY lol0 "lol">'
    + LOL.decode()
    + "]><xml><FromUserName>oEvil</FromUserName><CreateTime>{ts}</CreateTime><MsgType>text</MsgType>"
    "<Content>&lol9;</Content><MsgId>2</MsgId></xml>"
)


def test_a_doctype_inside_the_encrypted_payload_is_refused_even_from_a_key_holder(client, aws, clock):
    for inner in (INNER_DOCTYPE, INNER_LAUGHS):
        xml = inner.format(ts=unix(clock))
        for response in (post_oa(client, aws, clock, xml), post_wecom(client, aws, clock, xml)):
            assert refused(response, 400, "DOCTYPE or ENTITY", case=xml[:40])["error"] == "entity_declared"


def test_xml_nested_thousands_deep_is_a_bad_request_not_a_crash(client, aws, clock):
    # <List> may nest (it is one of WeChat's containers), so the depth cap is what stops it.
    deep = "<xml>" + "<List>" * 3000 + "</List>" * 3000 + "</xml>"  # 39 KB, under the size cap
    refused(post(client, "/wechat/work", {"msg_signature": "x", "timestamp": "1", "nonce": "1"}, deep.encode()), 400)
    refused(post(client, "/wechat/oa", oa_query(aws, unix(clock), "x"), deep.encode()), 400, "nested deeper")
    refused(post_oa(client, aws, clock, deep), 400, "nested deeper")  # inside the ciphertext too
    refused(post_wecom(client, aws, clock, deep), 400, "nested deeper")
    flat_but_deep = "<xml>" + "<a>" * 5000 + "</a>" * 5000 + "</xml>"  # no WeChat element nests like this
    refused(post_oa(client, aws, clock, flat_but_deep), 400, "may not contain elements")


# === 3. bodies: size, truncation, ciphertext, encodings ========================================


def test_oversized_bodies_are_refused_before_parsing(client, aws, clock):
    big = b"<xml><Encrypt>" + b"A" * 70_000 + b"</Encrypt></xml>"
    refused(post(client, "/wechat/oa", oa_query(aws, unix(clock), "x"), big), 400, "larger than 65536")
    refused(post(client, "/wechat/work", wecom_query(aws, unix(clock), "x"), big), 400, "larger than 65536")
    body = json.dumps(paid(clock, note="x" * 70_000)).encode()
    refused(post_order(client, aws, clock, body), 400, "larger than 65536")


def _bad_ciphertexts(xml: bytes, receive_id: str, crypto: MessageCrypto) -> dict[str, tuple[str, str]]:
    """name → (Encrypt value, reason). All are then signed correctly: decryption is reached."""
    good = crypto.encrypt(xml.decode(), PREFIX)
    raw = base64.b64decode(good)
    return {
        "cut mid-base64": (good[:-3], "not base64"),
        "not base64 at all": ("这不是密文", "not base64"),
        "not a multiple of 16": (base64.b64encode(raw[:-5]).decode(), "multiple of the AES block"),
        "cut at a block boundary": (base64.b64encode(raw[:-32]).decode(), "padding"),
        "pad byte 0": (seal(crypto, pad(frame(xml, receive_id))[:-1] + b"\x00"), "padding"),
        "pad byte 33": (seal(crypto, pad(frame(xml, receive_id), 16)[:-1] + b"\x21"), "padding"),
        "inconsistent padding": (seal(crypto, pad(frame(xml, receive_id))[:-2] + b"\x07\x02"), "padding"),
        "another receive id": (seal(crypto, pad(frame(xml, "wxSomeoneElse000"))), "receive id"),
        "length beyond the payload": (seal(crypto, pad(frame(xml, receive_id, 10**6))), "length field"),
        "shorter than a header": (seal(crypto, pad(PREFIX[:10])), "too short"),
        "GBK inside": (seal(crypto, pad(frame("<xml><C>会员</C></xml>".encode("gbk"), receive_id))), "not UTF-8"),
        "empty Encrypt": ("", "missing field Encrypt"),
    }


def test_broken_ciphertexts_are_bad_requests_on_both_callbacks(client, aws, clock):
    oa_cases = _bad_ciphertexts(follow_xml(clock).encode(), aws.wechat_app_id, oa_crypto(aws))
    wecom_cases = _bad_ciphertexts(contact_xml(aws, clock).encode(), aws.wecom_corp_id, wecom_crypto(aws))
    for case, (encrypted, reason) in oa_cases.items():
        response = post(client, "/wechat/oa", oa_query(aws, unix(clock), encrypted), oa_envelope(encrypted))
        refused(response, 400, reason, case=f"oa {case}")
    for case, (encrypted, reason) in wecom_cases.items():
        query, body = wecom_query(aws, unix(clock), encrypted), wecom_envelope(aws, encrypted)
        refused(post(client, "/wechat/work", query, body), 400, reason, case=f"wecom {case}")
        if encrypted:  # the URL check decrypts its echostr the same way
            refused(get(client, "/wechat/work", {**query, "echostr": encrypted}), 400, reason, case=f"echo {case}")


ENVELOPE = b"<xml><ToUserName>gh_siyu_local</ToUserName><Encrypt>{e}</Encrypt></xml>"
BODIES = {  # name → (body around a correctly signed Encrypt, reason)
    "cut in half": (ENVELOPE[:40], "malformed XML"),
    "cut before the last tag": (ENVELOPE[:-7], "malformed XML"),
    "cut to its first tag": (ENVELOPE[:5], "malformed XML"),
    "GBK, undeclared": (ENVELOPE.replace(b"gh_siyu_local", "会员中心".encode("gbk")), "malformed XML"),
    "GBK, declared": (b'<?xml version="1.0" encoding="GBK"?>' + "<xml><T>会员</T></xml>".encode("gbk"), "multi-byte"),
    "invalid UTF-8": (ENVELOPE.replace(b"gh_siyu_local", b"\xff\xfe\xc3"), "malformed XML"),
    "a non-text codec declared": (b'<?xml version="1.0" encoding="rot13"?>' + ENVELOPE, "encoding"),
    "an unknown codec declared": (b'<?xml version="1.0" encoding="x-bogus"?>' + ENVELOPE, "unknown encoding"),
    "NUL bytes": (b"\x00\x00\x00\x00", "malformed XML"),
    "empty": (b"", "empty body"),
    "whitespace": (b" \r\n\t ", "empty body"),
}


def test_truncated_wrongly_encoded_and_empty_bodies_are_bad_requests(client, aws, clock):
    oa = oa_crypto(aws).encrypt(follow_xml(clock), PREFIX)
    wecom = wecom_crypto(aws).encrypt(contact_xml(aws, clock), PREFIX)
    for case, (template, reason) in BODIES.items():
        body = template.replace(b"{e}", oa.encode())
        refused(post(client, "/wechat/oa", oa_query(aws, unix(clock), oa), body), 400, reason, case=f"oa {case}")
        body = template.replace(b"{e}", wecom.encode())
        response = post(client, "/wechat/work", wecom_query(aws, unix(clock), wecom), body)
        refused(response, 400, reason, case=f"wecom {case}")


KEY_HOLDER_FIELDS = [
    ({"CreateTime": str(10**20)}, "CreateTime is not a time"),
    ({"CreateTime": "-1"}, "CreateTime is not a time"),
    ({"CreateTime": "1e9"}, "CreateTime is not an integer"),
    ({"FromUserName": "o" * 200}, "member id must be"),
    ({"FromUserName": "robot/ops"}, "member id must be"),  # siyu's own recipients (docs/wechat.md §1.7)
    ({"FromUserName": "o 1"}, "member id must be"),
    ({"Event": "x" * 3000}, "event id longer"),
    ({"EventKey": "qrscene_" + "k" * 3000}, "event id longer"),
    ({"FromUserName": ""}, "missing field FromUserName"),
    ({"Event": ""}, "missing field Event"),
]


def test_field_values_no_callback_carries_are_refused_at_the_edge(client, aws, clock):
    """Values no real callback carries, sealed with the real key: refused at the edge, not 503."""
    base = {"ToUserName": "gh", "FromUserName": "oNew1", "CreateTime": unix(clock), "MsgType": "event"}
    for fields, reason in KEY_HOLDER_FIELDS:
        xml = xmlsafe.render({**base, "Event": "subscribe", **fields})
        refused(post_oa(client, aws, clock, xml), 400, reason, case=reason)
    refused(post_wecom(client, aws, clock, contact_xml(aws, clock, customer="w" * 500)), 400, "member id must be")
    xml = contact_xml(aws, clock).replace(unix(clock), "99999999999999999999")
    refused(post_wecom(client, aws, clock, xml), 400, "CreateTime is not a time")


# === 4. unknown message and event types ========================================================


def test_an_unknown_message_type_is_answered_success_and_recorded_as_a_message(client, aws, clock):
    xml = xmlsafe.render(
        {"ToUserName": "gh", "FromUserName": "oNew1", "CreateTime": unix(clock), "MsgType": "hologram", "MsgId": 77}
    )
    response = post_oa(client, aws, clock, xml)
    assert response.status_code == 200 and response.body == b"success"
    [record] = list(EventRecord.scan())
    assert (
        record.kind == "messaged"
        and record.status == "done"
        and json.loads(record.body)["data"]["msg_type"] == "hologram"
    )
    assert Member.get("oNew1").last_active == clock.now()
    assert not list(Coupon.scan()) and not list(OutboxMessage.scan())


def test_unknown_events_are_answered_success_recorded_once_and_issue_nothing(client, aws, clock):
    names = {"oU1": "WXA_PRIVACY_NOTIFY", "oU2": "Some_Future_Event", "oU3": "subscribe_msg_popup_event_v9"}
    for openid, name in names.items():
        xml = callbacks.oa_event(openid, name, int(clock.now().timestamp()), "key")
        first, retry = post_oa(client, aws, clock, xml), post_oa(client, aws, clock, xml)
        assert (first.status_code, first.body, retry.status_code, retry.body) == (200, b"success", 200, b"success")
    records = {r.member_id: r for r in EventRecord.scan()}
    assert set(records) == set(names)  # one record each: the retry is a duplicate
    for openid, name in names.items():
        record = records[openid]
        assert (
            record.kind == "unknown" and record.status == "done" and json.loads(record.body)["data"] == {"event": name}
        )
        assert Member.get(openid).last_active is None  # seen, but an unknown event is no activity
    assert not list(Coupon.scan()) and not list(OutboxMessage.scan())


WECOM_UNKNOWN = [
    "<xml><ToUserName>c</ToUserName><CreateTime>{ts}</CreateTime><MsgType>event</MsgType>"
    "<Event>change_something_new</Event><ChangeType>whatever</ChangeType></xml>",
    "<xml><ToUserName>c</ToUserName><CreateTime>{ts}</CreateTime><MsgType>hologram</MsgType></xml>",
]


def test_unknown_wecom_callbacks_are_answered_success_and_recorded_without_a_member(client, aws, clock):
    for xml in WECOM_UNKNOWN:
        response = post_wecom(client, aws, clock, xml.format(ts=unix(clock)))
        assert response.status_code == 200 and response.body == b"success"
    records = list(EventRecord.scan())
    assert len(records) == 2 and all(r.kind == "unknown" and r.member_id is None for r in records)
    assert not list(Member.scan()) and not list(Coupon.scan())


def test_an_unknown_contact_change_is_recorded_as_unknown_for_that_customer(client, aws, clock):
    response = post_wecom(client, aws, clock, contact_xml(aws, clock, change="edit_external_contact"))
    assert response.status_code == 200 and response.body == b"success"
    [record] = list(EventRecord.scan())
    assert record.kind == "unknown" and record.member_id == "wmNew1"
    assert not list(Coupon.scan()) and not list(OutboxMessage.scan())


# === 5. the order webhook =======================================================================


def _without(order: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in order.items() if k != name}


def _malformed_orders(clock) -> dict[str, tuple[Any, str]]:
    """name → (payload or raw bytes, reason)."""
    at = clock.now().isoformat()
    top = "/: Input should be a valid dictionary"
    return {
        "a list": ([paid(clock)], top),
        "a string": ("order_paid", top),
        "a number": (42, top),
        "null": (None, top),
        "amount is a word": (paid(clock, amount_fen="lots"), "/amount_fen"),
        "amount is true": (paid(clock, amount_fen=True), "/amount_fen: Value error, Input should be a number"),
        "amount has cents": (paid(clock, amount_fen=12.5), "/amount_fen: Input should be a valid integer"),
        "amount is an object": (paid(clock, amount_fen={"fen": 1}), "/amount_fen"),
        "negative amount": (paid(clock, amount_fen=-1), "/amount_fen: Input should be greater than or equal to 0"),
        "huge amount": (paid(clock, amount_fen=10**20), "/amount_fen: Input should be less than or equal to"),
        "infinite amount": (json.dumps(paid(clock)).replace("3200", "1e400").encode(), "/amount_fen: Input should be"),
        "NaN amount": (json.dumps(paid(clock)).replace("3200", "NaN").encode(), "/amount_fen: Input should be"),
        "amount of 5000 digits": (json.dumps(paid(clock)).replace("3200", "9" * 5000).encode(), "not usable JSON"),
        "nested 20000 deep": (b"[" * 20_000 + b"]" * 20_000, "not usable JSON"),
        "items an object": (paid(clock, items={"sku": "a", "price_fen": 1}), "/items"),
        "item price negative": (paid(clock, items=[{"sku": "a", "price_fen": -5}]), "/items/0/price_fen"),
        "item quantity zero": (paid(clock, items=[{"sku": "a", "price_fen": 5, "qty": 0}]), "/items/0/qty"),
        "item quantity true": (paid(clock, items=[{"sku": "a", "price_fen": 5, "qty": True}]), "/items/0/qty"),
        "openid a number": (paid(clock, openid=12345), "/openid"),
        "order id with a space": (paid(clock, order_id="O 1"), "/order_id"),
        "order id of 65 characters": (paid(clock, order_id="O" * 65), "/order_id"),
        "order id with a lone surrogate": (json.dumps(paid(clock)).replace('"O-1"', '"\\ud800"').encode(), "/order_id"),
        "missing order_id": (_without(paid(clock), "order_id"), "/order_id: Field required"),
        "missing amount": (_without(paid(clock), "amount_fen"), "/amount_fen: Field required"),
        "missing at": (_without(paid(clock), "at"), "/at: Field required"),
        "missing openid": (_without(paid(clock), "openid"), "/openid: Field required"),
        "missing type": (_without(paid(clock), "type"), "discriminator 'type'"),
        "unknown type": (paid(clock, type="order_stolen"), "order_stolen"),
        "unknown field": (paid(clock, discount=1), "/discount: Extra inputs"),
        "a key with a lone surrogate": (json.dumps(paid(clock, **{"\ud800": 1})).encode(), "unable to parse raw data"),
        "at without a zone": (paid(clock, at="2026-11-23T10:00:00"), "/at: needs a time zone"),
        "at in year 1": (paid(clock, at="0001-01-01T00:00:00+08:00"), "/at: must be between 1970 and 2100"),
        "at in year 9999": (paid(clock, at="9999-12-31T23:59:59-08:00"), "/at: must be between 1970 and 2100"),
        "at not a time": (paid(clock, at="yesterday"), "/at"),
        "refund negative": (
            {
                "type": "order_refunded",
                "order_id": "O-1",
                "refund_id": "R-1",
                "openid": "o1",
                "amount_fen": -1,
                "at": at,
            },
            "/amount_fen",
        ),
        "review of 6 stars": ({"type": "review", "review_id": "V1", "openid": "o1", "score": 6, "at": at}, "/score:"),
        "NPS of 11": ({"type": "nps", "answer_id": "N1", "openid": "o1", "score": 11, "at": at}, "/score:"),
        "redeem 0 points": (
            {"type": "points_redeemed", "redemption_id": "X1", "openid": "o1", "points": 0, "at": at},
            "/points",
        ),
        "birthday 02-30": (
            {"type": "profile_updated", "update_id": "P1", "openid": "o1", "birthday": "02-30", "at": at},
            "/birthday",
        ),
        "not JSON": (b"{'single': 'quotes'}", "not JSON"),
        "truncated JSON": (json.dumps(paid(clock)).encode()[:-10], "not JSON"),
        "GBK bytes": (json.dumps(paid(clock, openid="张三"), ensure_ascii=False).encode("gbk"), "not JSON"),
        "invalid UTF-8": (b'{"openid": "\xff\xfe"}', "not JSON"),
        "empty body": (b"", "not JSON"),
    }


def test_malformed_orders_are_bad_requests_that_name_the_problem(client, aws, clock):
    for case, (payload, reason) in _malformed_orders(clock).items():
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        refused(post_order(client, aws, clock, body), 400, reason, case=case)
    # Problems are named by the body's own field, not prefixed by the union member's tag.
    at = clock.now().isoformat()
    for payload, reason in (
        ({"type": "review", "review_id": "V1", "score": 6}, "/score: Input should be less than or equal to 5"),
        ({"type": "nps", "answer_id": "N1", "score": -1}, "/score: Input should be greater than or equal to 0"),
    ):
        body = json.dumps({**payload, "openid": "o1", "at": at}).encode()
        assert refused(post_order(client, aws, clock, body), 400)["reason"].startswith(reason)
    # And the hook takes JSON only: the gateway itself refuses another content type.
    body = json.dumps(paid(clock)).encode()
    headers = {**order_headers(aws, body, unix(clock)), "Content-Type": "text/xml"}
    response = client.http.post("/hooks/orders", headers=headers, body=body)
    assert response.status_code == 415 and stored() == NOTHING


def _forged_order_headers(s, clock, body: bytes) -> dict[str, tuple[dict[str, str], str]]:
    now = unix(clock)
    good = order_headers(s, body, now)
    ts, sig = orders.TIMESTAMP_HEADER, orders.SIGNATURE_HEADER
    return {
        "HMAC of another body": (order_headers(s, body + b" ", now), "does not match"),
        "HMAC with a stale timestamp": (order_headers(s, body, unix(clock, -301)), "window"),
        "HMAC with a future timestamp": (order_headers(s, body, unix(clock, 301)), "window"),
        "timestamp changed after signing": ({**good, ts: unix(clock, -1)}, "does not match"),
        "signed with the admin token": (order_headers(s, body, now, secret=s.admin_token), "does not match"),
        "signed with no secret": (order_headers(s, body, now, secret=" "), "does not match"),
        "hex without sha256=": ({**good, sig: good[sig].removeprefix("sha256=")}, "does not match"),
        "missing signature": ({k: v for k, v in good.items() if k != sig}, "missing"),
        "missing timestamp": ({k: v for k, v in good.items() if k != ts}, "missing"),
        "non-ASCII signature": ({**good, sig: "sha256=签名"}, "does not match"),
        "non-ASCII timestamp": ({**good, ts: "１７９５３９９２００"}, "does not match"),
        "signed timestamp of 400 digits": (order_headers(s, body, "9" * 400), "window"),
        "signed timestamp not a number": (order_headers(s, body, "now"), "not an integer"),
    }


def test_forged_or_stale_order_signatures_are_unauthorized(client, aws, clock):
    body = json.dumps(paid(clock)).encode()
    for case, (headers, reason) in _forged_order_headers(aws, clock, body).items():
        refused(client.http.post("/hooks/orders", headers=headers, body=body), 401, reason, case=case)


# === 6. admin routes ============================================================================

ADMIN_ROUTES = [
    ("GET", "/admin/members/oNew1"),
    ("GET", "/admin/rules"),
    ("PUT", "/admin/rules"),
    ("POST", "/admin/rules/v1/activate"),
]
CREDENTIALS = {
    "none": {},
    "wrong token": {"Authorization": "Bearer nope"},
    "right token, Basic scheme": {"Authorization": "Basic test-admin-token"},
    "token without a scheme": {"Authorization": "test-admin-token"},
    "token with a suffix": {"Authorization": "Bearer test-admin-tokenX"},
    "a prefix of the token": {"Authorization": "Bearer test-admin"},
    "empty bearer": {"Authorization": "Bearer "},
    "non-ASCII token": {"Authorization": "Bearer 管理员"},
    # Another route's credential: the POS secret, and a valid order signature.
    "the POS secret": {"Authorization": "Bearer test-orders-secret"},
    "an order signature": {
        orders.TIMESTAMP_HEADER: "1",
        orders.SIGNATURE_HEADER: orders.sign("test-orders-secret", "1", b""),
    },
}


PUBLISH = json.dumps({"note": "takeover", "files": rule_files()}).encode()  # a complete, valid rule set


def _admin_request(client, method: str, path: str, headers: dict[str, str]):
    if method == "GET":
        return client.http.get(path, headers=headers)
    if method == "PUT":
        return client.http.put(path, headers={**JSON, **headers}, body=PUBLISH)
    return client.http.post(path, headers={**JSON, **headers}, body=b'{"note": "takeover"}')


def test_admin_routes_refuse_missing_wrong_and_foreign_credentials(client, aws, clock):
    """One token opens every admin route (there are no per-route scopes); the POS's secret is
    another route's credential. A token in the query string counts for nothing."""
    for method, path in ADMIN_ROUTES:
        for case, credential in CREDENTIALS.items():
            response = _admin_request(client, method, path + "?token=test-admin-token", credential)
            answer = refused(response, 401, case=f"{method} {path} {case}")
            assert "loyalty" not in answer and "files" not in answer  # nothing of the member or the rules leaks
    response = _admin_request(client, "PUT", "/admin/rules", ADMIN)  # the same publish with the token
    assert response.status_code == 200 and response.json_body["active"] == "v1"
    assert len(list(RuleRecord.query("version"))) == 1


def test_an_iam_identity_is_not_trusted_on_the_local_stage(aws, clock):
    """Only API Gateway's IAM authorizer fills the identity; outside AWS the token is required."""
    request = SimpleNamespace(headers={}, context={"identity": {"userArn": "arn:aws:iam::1:user/mallory"}})
    response = web.admin_member(request, "oNew1")
    assert response.status_code == 401 and "missing bearer token" in response.body


MALFORMED_ADMIN = [
    ("POST", "/admin/rules/v²/activate", {}, b"{}", "version must look like v7"),
    ("POST", "/admin/rules/v١٢/activate", {}, b"{}", "version must look like v7"),
    ("POST", "/admin/rules/v" + "9" * 30 + "/activate", {}, b"{}", "version must look like v7"),
    ("POST", "/admin/rules/v1/activate", {"If-Match": "v²"}, b"{}", "If-Match must name a version"),
    ("POST", "/admin/rules/v1/activate", {}, b"[1]", "body must be a JSON object"),
    ("PUT", "/admin/rules", {"If-Match": "v" + "9" * 5000}, PUBLISH, "If-Match must name a version"),
    ("PUT", "/admin/rules", {}, b'{"note": ' + b"9" * 5000 + b"}", "not usable JSON"),
    ("PUT", "/admin/rules", {}, b"[" * 20_000 + b"]" * 20_000, "not usable JSON"),
    ("PUT", "/admin/rules", {}, b"\xff\xfe", "not JSON"),
    ("PUT", "/admin/rules", {}, b'{"files": []}', 'body needs "files"'),
]


def test_malformed_admin_requests_are_bad_requests(client, aws, clock):
    for method, path, headers, body, reason in MALFORMED_ADMIN:
        send = client.http.put if method == "PUT" else client.http.post
        refused(send(path, headers={**ADMIN, **JSON, **headers}, body=body), 400, reason, case=f"{method} {path[:40]}")


def test_rule_files_that_break_the_parser_are_reported_as_problems(client, aws, clock):
    files = {**rule_files(), "welcome.json": "[" * 5000 + "]" * 5000}
    response = client.http.put(
        "/admin/rules", headers={**ADMIN, **JSON}, body=json.dumps({"note": "n", "files": files})
    )
    answer = refused(response, 400, "problem(s)")
    assert {"file": "welcome.json", "message": "not usable JSON: RecursionError"} in [
        {"file": p["file"], "message": p["message"]} for p in answer["problems"]
    ]
    # A file name with a lone surrogate (JSON's "\\ud800") is quoted back as the same escape.
    body = json.dumps({"note": "n", "files": {**rule_files(), "\ud800.json": "{}"}}).encode()
    response = client.http.put("/admin/rules", headers={**ADMIN, **JSON}, body=body)
    answer = refused(response, 400, "problem(s)")
    assert [p["file"] for p in answer["problems"]] == ["\ud800.json"]


# === 7. property-based fuzzing ==================================================================

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run and in CI
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Text XML 1.0 can carry (no \r: parsers normalise it to \n), biased towards markup and CJK.
xml_text = st.text(
    st.sampled_from(list("<>&'\"] \t\n会员签到\U0001f600"))
    | st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=24,
)
xml_name = st.text("abXY_.-0会员", max_size=6).map(lambda rest: "n" + rest)
FIELD_NAMES = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
    "EventKey",
    "Content",
    "MsgId",
    "MsgID",
    "Status",
    "SubscribeMsgPopupEvent",
    "SubscribeMsgSentEvent",
    "List",
    "TemplateId",
    "ErrorCode",
    "ChangeType",
    "ExternalUserID",
    "UserID",
    "State",
    "ChatId",
    "UpdateDetail",
    "MemChangeList",
    "Item",
    "Encrypt",
]
field_name = st.sampled_from(FIELD_NAMES) | xml_name
leaf = (
    xml_text
    | st.integers(min_value=-(10**25), max_value=10**25).map(str)
    | st.sampled_from(
        ["subscribe", "SCAN", "event", "text", "qrscene_st=S001", "change_external_chat", "add_member", "1795399200"]
    )
)
# A tree of elements: a leaf is text, a dict maps element names to a subtree or to a list of
# subtrees (repeated elements). Lists hold no lists, so each tree has exactly one rendering.
trees = st.recursive(
    leaf,
    lambda children: st.dictionaries(
        field_name,
        children | st.lists(leaf | st.dictionaries(field_name, children, max_size=2), max_size=3),
        max_size=3,
    ),
    max_leaves=10,
)
documents = st.dictionaries(field_name, trees, min_size=1, max_size=6)


def render_tree(name: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(render_tree(name, item) for item in value)
    if isinstance(value, dict):
        return f"<{name}>{''.join(render_tree(k, v) for k, v in value.items())}</{name}>"
    return f"<{name}>{escape(value)}</{name}>"


def parsed_form(value: Any) -> Any:
    """What xmlsafe.parse returns for ``render_tree``'s element of this value."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, child in value.items():
        items = [parsed_form(c) for c in child] if isinstance(child, list) else [parsed_form(child)]
        if items:
            out[name] = items if len(items) > 1 else items[0]
    return out or ""


def depth(value: Any) -> int:
    if isinstance(value, list):
        return max((depth(v) for v in value), default=0)
    if isinstance(value, dict) and any(not isinstance(v, list) or v for v in value.values()):
        return 1 + max(depth(v) for v in value.values())
    return 0


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=600) | xml_text.map(lambda t: t.encode("utf-8")))
def test_the_xml_parser_answers_any_bytes_with_fields_or_a_bad_request(body):
    try:
        fields = xmlsafe.parse(body, 65536)
    except BadRequest:
        return
    assert isinstance(fields, dict) and fields


@settings(FUZZ, max_examples=300)
@given(documents)
def test_near_valid_xml_parses_to_the_tree_it_was_built_from(document):
    body = render_tree("xml", document).encode()
    if depth(document) > xmlsafe.MAX_DEPTH:
        with pytest.raises(BadRequest, match="nested deeper"):
            xmlsafe.parse(body, 65536, shape=None)
        return
    expected = parsed_form(document)
    if expected == "":
        with pytest.raises(BadRequest, match="no fields"):
            xmlsafe.parse(body, 65536, shape=None)
        return
    assert xmlsafe.parse(body, 65536, shape=None) == expected


def has_wechat_shape(fields: dict[str, Any], parent: str | None = None) -> bool:
    """Does a parsed tree keep to docs/wechat.md §1.7: only containers have children, only
    their list items repeat (the root, ``parent`` None, repeats nothing)?"""
    repeatable = xmlsafe.CALLBACKS.containers.get(parent, frozenset()) if parent else frozenset()
    for name, value in fields.items():
        items = value if isinstance(value, list) else [value]
        if len(items) > 1 and name not in repeatable:
            return False
        for item in items:
            if isinstance(item, dict) and (
                name not in xmlsafe.CALLBACKS.containers or not has_wechat_shape(item, name)
            ):
                return False
    return True


@settings(FUZZ, max_examples=300)
@given(documents)
def test_a_callback_parses_exactly_when_it_has_wechats_shape(document):
    body = render_tree("xml", document).encode()
    expected = parsed_form(document)
    if depth(document) > xmlsafe.MAX_DEPTH or expected == "":
        return  # the test above
    if has_wechat_shape(expected):
        assert xmlsafe.parse(body, 65536) == expected
    else:
        with pytest.raises(BadRequest, match=r"more than once|may not contain elements"):
            xmlsafe.parse(body, 65536)


HOSTILE_SNIPPETS = [
    b"<!DOCTYPE x>",
    b"<!ENTITY a 'b'>",
    b"&a;",
    b"&#0;",
    b"<",
    b">",
    b"]]>",
    b"<![CDATA[",
    b"\x00",
    b"\xff",
    b"<?xml?>",
    b"</xml>",
]


@settings(FUZZ, max_examples=300)
@given(
    documents,
    st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(["cut", "drop", "insert", "flip"]),
            st.sampled_from(HOSTILE_SNIPPETS),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_xml_is_parsed_or_refused_never_crashes(document, mutations):
    body = bytearray(render_tree("xml", document).encode())
    for position, operation, snippet in mutations:
        at = position % (len(body) + 1)
        if operation == "cut":
            del body[at:]
        elif operation == "drop":
            del body[at : at + 1]
        elif operation == "insert":
            body[at:at] = snippet
        elif body:
            body[at % len(body)] ^= 0x20
    markup = re.sub(rb"<!\[CDATA\[.*?\]\]>", b"", bytes(body), flags=re.DOTALL)  # CDATA text is data
    declared = b"<!DOCTYPE" in markup or b"<!ENTITY" in markup
    try:
        fields = xmlsafe.parse(bytes(body), 65536)
    except BadRequest as exc:
        assert exc.code == "entity_declared" or not declared
        return
    assert isinstance(fields, dict) and not declared


def _check_event(normalized: Event) -> None:
    assert len(normalized.event_id.encode()) <= MAX_EVENT_ID_BYTES
    assert normalized.member_id is None or 0 < len(normalized.member_id.encode()) <= MAX_ID_BYTES
    assert EARLIEST <= normalized.occurred_at < LATEST
    assert Event.from_json(normalized.to_json()) == normalized  # what the journal stores, it reads back


base_fields = st.fixed_dictionaries(
    {
        "FromUserName": st.sampled_from(["oNew1", "wmA"]) | xml_text,
        "CreateTime": st.sampled_from(["1795399200", "0", "-1", "4102444800", "1e9", "x"]) | st.integers().map(str),
        "MsgType": st.sampled_from(["event", "text", "image", ""]),
        "Event": st.sampled_from(
            ["subscribe", "SCAN", "unsubscribe", "CLICK", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH",
             "subscribe_msg_popup_event", "subscribe_msg_change_event", "subscribe_msg_sent_event",
             "change_external_contact", "change_external_chat"]
        ) | xml_text,
        "ChangeType": st.sampled_from(["add_external_contact", "del_follow_user", "del_external_contact", "update"]),
        "UpdateDetail": st.sampled_from(["add_member", "del_member", "change_name"]),
    }
)  # fmt: skip


@settings(FUZZ, max_examples=300)
@given(base_fields, documents)
def test_callback_fields_become_valid_events_or_a_bad_request(base, extra):
    fields = parsed_form({**base, **extra})
    with contextlib.suppress(BadRequest):
        _check_event(official_account.to_event(fields))
    with contextlib.suppress(BadRequest):
        for normalized in work.to_events(fields):
            _check_event(normalized)


@settings(FUZZ, max_examples=200)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()))
def test_decrypting_anything_gives_text_or_a_bad_request(encrypted):
    with contextlib.suppress(BadRequest):
        assert isinstance(MessageCrypto("t", "a" * 43, "wxApp").decrypt(encrypted), str)


@settings(FUZZ, max_examples=200)
@given(
    st.binary(min_size=0, max_size=200),
    st.sampled_from(["wxApp", "wxOther", ""]),
    st.integers(0, 2**32 - 1) | st.none(),
)
def test_decrypting_any_framed_plaintext_gives_text_or_a_bad_request(message, receive_id, length):
    crypto = MessageCrypto("t", "a" * 43, "wxApp")
    try:
        text = crypto.decrypt(seal(crypto, pad(frame(message, receive_id, length))))
    except BadRequest:
        return
    assert text.encode() + b"wxApp" == message + receive_id.encode()  # the message, then our id


@settings(FUZZ, max_examples=100)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=500))
def test_encrypt_then_decrypt_gives_back_any_text(text):
    crypto = MessageCrypto("t", "a" * 43, "wxApp")
    assert crypto.decrypt(crypto.encrypt(text)) == text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
ORDER_KEYS = ["type", "openid", "store_id", "at", "order_id", "amount_fen", "items", "coupon_codes", "refund_id",
              "coupon_code", "review_id", "score", "answer_id", "redemption_id", "points", "reason", "checkin_id",
              "update_id", "birthday"]  # fmt: skip
ODD_VALUES = [-1, 0, 1, 10**8, 10**8 + 1, 10**30, True, False, 1.5, "", "x" * 65, "O 1", None, [], {}, "NaN",
              "2026-11-23T10:00:00", "1795399200", "0001-01-01T00:00:00+14:00",
              "9999-12-31T23:59:59-12:00"]  # fmt: skip


def order_templates(at: str) -> list[dict[str, Any]]:
    common = {"openid": "oF1", "store_id": "S001", "at": at}
    return [
        {
            **common,
            "type": "order_paid",
            "order_id": "O-9",
            "amount_fen": 100,
            "items": [{"sku": "a", "price_fen": 100}],
        },
        {**common, "type": "order_refunded", "order_id": "O-9", "refund_id": "R-1", "amount_fen": 50},
        {**common, "type": "coupon_redeemed", "coupon_code": "C-1", "order_id": "O-9"},
        {**common, "type": "review", "review_id": "V-1", "score": 5},
        {**common, "type": "nps", "answer_id": "N-1", "score": 9},
        {**common, "type": "points_redeemed", "redemption_id": "X-1", "points": 10, "reason": "gift"},
        {**common, "type": "checked_in", "checkin_id": "K-1"},
        {**common, "type": "profile_updated", "update_id": "P-1", "birthday": "11-30"},
    ]


mutation = st.tuples(
    st.sampled_from(["drop", "set", "add"]),
    st.sampled_from(ORDER_KEYS) | st.text(max_size=8),
    st.sampled_from(ODD_VALUES) | json_values,
)
near_valid_orders = st.builds(
    lambda template, changes: _mutate(template, changes),
    st.sampled_from(order_templates("2026-11-23T10:00:00+08:00")),
    st.lists(mutation, max_size=3),
)


KINDS = {
    "order_paid": Kind.ORDER_PAID,
    "order_refunded": Kind.ORDER_REFUNDED,
    "coupon_redeemed": Kind.COUPON_REDEEMED,
    "review": Kind.REVIEWED,
    "nps": Kind.NPS_ANSWERED,
    "points_redeemed": Kind.POINTS_REDEEMED,
    "checked_in": Kind.CHECKED_IN,
    "profile_updated": Kind.PROFILE_UPDATED,
}


def _mutate(order: dict[str, Any], changes: list[tuple[str, str, Any]]) -> dict[str, Any]:
    order = dict(order)
    for operation, key, value in changes:
        if operation == "drop":
            order.pop(key, None)
        else:
            order[key] = value
    return order


def _check_order_event(normalized: Event) -> None:
    _check_event(normalized)
    assert normalized.event_id.startswith("orders:") and normalized.source == "orders"
    for name in ("amount_fen", "points", "score"):
        if name in normalized.data:
            value = normalized.data[name]
            assert type(value) is int and 0 <= value <= 100_000_000
    for item in normalized.data.get("items", []):
        assert type(item["price_fen"]) is int and type(item["qty"]) is int and item["qty"] >= 1


@settings(FUZZ, max_examples=300)
@given(json_values)
def test_any_json_value_is_an_order_event_or_a_bad_request(value):
    with contextlib.suppress(BadRequest):
        _check_order_event(orders.parse(json.dumps(value).encode(), 65536))


@settings(FUZZ, max_examples=400)
@given(near_valid_orders)
def test_near_valid_orders_with_fields_mutated_are_events_or_bad_requests(order):
    try:
        parsed = orders.parse(json.dumps(order).encode(), 65536)
    except BadRequest:
        return
    _check_order_event(parsed)
    assert parsed.member_id == order["openid"] and parsed.kind is KINDS[order["type"]]


# --- through HTTP -----------------------------------------------------------------------------


def _answered_without_a_5xx(response, writes: list[str]) -> None:
    """2xx, or a 4xx with a reason that wrote nothing; ``writes`` is cleared for the next request."""
    assert response.status_code < 500, (response.status_code, response.body[:300])
    event(f"HTTP {response.status_code}")  # the spread shows with --hypothesis-show-statistics
    if response.status_code >= 400:
        assert not writes, (writes, response.body[:300])
        answer = json.loads(response.body)  # siyu's {"error", "reason"}, or the gateway's own message
        assert answer.get("reason") or answer.get("message") or answer.get("Message")
    writes.clear()


@st.composite
def sealed_callbacks(draw, clock) -> str:
    """A callback document an attacker with the key could send: near-valid fields, random extras."""
    base = draw(base_fields)
    base["CreateTime"] = draw(st.sampled_from([unix(clock), unix(clock, -86400)]) | st.just(base["CreateTime"]))
    extra = draw(documents)
    return render_tree("xml", {**extra, **base} if draw(st.booleans()) else {**base, **extra})


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzzed_official_account_callbacks_get_2xx_or_4xx_and_refusals_store_nothing(client, aws, clock, writes, data):
    crypto = oa_crypto(aws)
    shape = data.draw(st.sampled_from(["bytes", "envelope", "sealed"]))
    if shape == "bytes":
        body = data.draw(st.binary(max_size=400))
        query = oa_query(aws, unix(clock), "x")
    elif shape == "envelope":
        encrypted = data.draw(xml_text | st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()))
        query, body = oa_query(aws, unix(clock), encrypted), render_tree("xml", {"Encrypt": encrypted}).encode()
    else:
        encrypted = crypto.encrypt(data.draw(sealed_callbacks(clock)), PREFIX)
        query, body = oa_query(aws, unix(clock), encrypted), oa_envelope(encrypted)
    _answered_without_a_5xx(post(client, "/wechat/oa", query, body), writes)


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_fuzzed_wecom_callbacks_get_2xx_or_4xx_and_refusals_store_nothing(client, aws, clock, writes, data):
    if data.draw(st.booleans()):
        body, query = data.draw(st.binary(max_size=400)), wecom_query(aws, unix(clock), "x")
    else:
        encrypted = wecom_crypto(aws).encrypt(data.draw(sealed_callbacks(clock)), PREFIX)
        body, query = wecom_envelope(aws, encrypted), wecom_query(aws, unix(clock), encrypted)
    _answered_without_a_5xx(post(client, "/wechat/work", query, body), writes)


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzzed_orders_get_2xx_or_4xx_and_refusals_store_nothing(client, aws, clock, writes, data):
    templates = order_templates(clock.now().isoformat())
    shape = data.draw(st.sampled_from(["near-valid", "near-valid", "any JSON", "bytes"]))
    if shape == "bytes":
        body = data.draw(st.binary(max_size=200))
    else:
        near_valid = st.builds(_mutate, st.sampled_from(templates), st.lists(mutation, max_size=2))
        body = json.dumps(data.draw(near_valid if shape == "near-valid" else json_values)).encode()
    _answered_without_a_5xx(post_order(client, aws, clock, body), writes)


query_values = st.text(max_size=40) | st.sampled_from(["", "0", "9" * 400, "%FF", "é"]) | st.integers().map(str)


@settings(FUZZ, max_examples=100)
@given(
    route=st.sampled_from(["/wechat/oa", "/wechat/work"]),
    method=st.sampled_from(["GET", "POST"]),
    query=st.dictionaries(
        st.sampled_from(["signature", "msg_signature", "timestamp", "nonce", "echostr", "encrypt_type", "openid"])
        | st.text(max_size=8),
        query_values,
        max_size=7,
    ),
    body=st.binary(max_size=100),
)
def test_fuzzed_query_strings_get_2xx_or_4xx_and_store_nothing(client, aws, clock, writes, route, method, query, body):
    path = f"{route}?{urlencode(query)}"
    response = client.http.post(path, headers=XML, body=body) if method == "POST" else client.http.get(path)
    _answered_without_a_5xx(response, writes)
    assert response.status_code >= 400  # no signature can be guessed


@settings(FUZZ, max_examples=50)
@given(
    route=st.sampled_from(ADMIN_ROUTES),
    authorization=st.text(max_size=40).filter(lambda t: "test-admin-token" not in t)
    | st.sampled_from(["Bearer", "Bearer  ", "bearer x", "Bearer test-admin-token2"]),
)
def test_fuzzed_admin_credentials_are_all_unauthorized(client, aws, clock, writes, route, authorization):
    headers = {"Authorization": authorization.replace("\n", " ").replace("\r", " ")}
    response = _admin_request(client, *route, headers)
    _answered_without_a_5xx(response, writes)
    assert response.status_code == 401


@settings(FUZZ, max_examples=50)
@given(
    version=st.from_regex(r"\A[vV]?[0-9]{1,3}\Z") | st.text(max_size=20).filter(lambda t: not set(t) & set("/?#")),
    if_match=st.sampled_from(["", "v1", "1", '"v2"', "v²"]) | st.text(max_size=12),
)
def test_fuzzed_rule_versions_and_preconditions_get_4xx(client, aws, clock, writes, version, if_match):
    headers = {**ADMIN, **JSON, "If-Match": if_match}
    response = client.http.post(f"/admin/rules/{version}/activate", headers=headers, body=b"{}")
    _answered_without_a_5xx(response, writes)
    assert response.status_code in (400, 403, 404)  # 403: the gateway's answer when no route matches


def test_the_unbent_requests_are_accepted_and_stored(client, aws, clock, writes):
    """The refusals above are not vacuous: the requests they bend are accepted and written (and
    the write counter the fuzzing relies on sees those writes)."""
    assert post_oa(client, aws, clock, follow_xml(clock)).status_code == 200
    assert set(writes) == {"TransactWriteItems"}  # the event's one commit
    assert post_wecom(client, aws, clock, contact_xml(aws, clock)).status_code == 200
    assert post_order(client, aws, clock, json.dumps(paid(clock, order_id="O-2")).encode()).status_code == 200
    counts = stored()
    assert counts["EventRecord"] == 3 and counts["Member"] == 2 and counts["Coupon"] >= 1
