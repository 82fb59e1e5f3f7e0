"""Known-answer vectors of docs/wechat.md §2.2, and the padding rules of §2.1."""

import pytest

from chalicelib.errors import BadRequest, Forbidden
from chalicelib.protocol.crypto import MessageCrypto, aes_key, pkcs7_pad, pkcs7_unpad, sha1_signature

V3_ENCRYPT = (
    "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7r"
    "Ziwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOyt"
    "pv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4n"
    "LvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2G"
    "o/rOz1BsrASwvauNulCh+++yz+CQzBIuikA=="
)
V3_PLAIN = (
    "<xml><URL><![CDATA[http://wechat.laravel.so/server]]></URL><ToUserName><![CDATA[asdasdasd]]></ToUserName>"
    "<FromUserName><![CDATA[asdasdasdsadasd]]></FromUserName><CreateTime>1234567898</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>12345</MsgId></xml>"
)
V5_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
V5_CORP = "wx49f0ab532d5d035a"
V5_ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
V5_INBOUND = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGym"
    "zxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIi"
    "OAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvcc"
    "TKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
V5_OUT_PLAIN = "\n".join(
    [
        "<xml>",
        "<MsgType><![CDATA[text]]></MsgType>",
        "<Content><![CDATA[test]]></Content>",
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>",
        "<ToUserName><![CDATA[messense]]></ToUserName>",
        "<AgentID>1</AgentID>",
        "<CreateTime>1411525903</CreateTime>",
        "</xml>",
    ]
)
V5_OUT_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtO"
    "bvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8"
    "NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5"
    "oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)


def test_v1_plain_signature_official_example():
    assert sha1_signature("AAAAA", "1714037059", "486452656") == "899cf89e464efb63f54ddac96b0a0a235f53aa78"


def test_v2_plain_signature_with_duplicate_values():
    assert sha1_signature("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"


def test_v3_derived_key():
    key = aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    assert key.hex() == "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"


def test_v3_official_account_signature_and_decrypt_with_pad_21():
    crypto = MessageCrypto("pamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6")
    crypto.check_signature("4f3ad57b6989f09f4eb392acce4f9e93942ed890", "1458300676", "260774613", V3_ENCRYPT)
    assert crypto.decrypt(V3_ENCRYPT) == V3_PLAIN


def test_v3_wrong_app_id_is_rejected():
    crypto = MessageCrypto("pamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxSomeoneElse")
    with pytest.raises(BadRequest, match="receive id"):
        crypto.decrypt(V3_ENCRYPT)


def test_v3_tampered_signature_is_forbidden():
    crypto = MessageCrypto("pamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6")
    with pytest.raises(Forbidden):
        crypto.check_signature("4f3ad57b6989f09f4eb392acce4f9e93942ed891", "1458300676", "260774613", V3_ENCRYPT)


def test_v5_wecom_url_verification():
    crypto = MessageCrypto("123456", V5_KEY, V5_CORP)
    assert aes_key(V5_KEY).hex() == "916c4f115d94103cb15a998f74a0b71787603c398ebdf297d471a71140d2d5a4"
    crypto.check_signature("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", V5_ECHO)
    assert crypto.decrypt(V5_ECHO) == "5927782489442352469"


def test_v5_wecom_inbound_decrypt_with_pad_1():
    crypto = MessageCrypto("123456", V5_KEY, V5_CORP)
    crypto.check_signature("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", V5_INBOUND)
    plain = crypto.decrypt(V5_INBOUND)
    assert "<Content><![CDATA[test]]></Content>" in plain
    assert "4363689963896700987" in plain


def test_v5_wecom_outbound_encrypt_is_byte_exact():
    crypto = MessageCrypto("123456", V5_KEY, V5_CORP)
    encrypted = crypto.encrypt(V5_OUT_PLAIN, random_prefix=b"1234567890123456")
    assert encrypted == V5_OUT_ENCRYPT
    assert crypto.sign("1411525903", "461056294", encrypted) == "407518b7649e86ef23978113f92d27afa9296533"


@pytest.mark.parametrize("size", range(0, 70))
def test_padding_uses_32_byte_blocks_and_round_trips(size):
    data = bytes(range(size))
    padded = pkcs7_pad(data)
    assert len(padded) % 32 == 0 and 1 <= padded[-1] <= 32
    assert pkcs7_unpad(padded) == data


def test_encrypt_decrypt_round_trip_with_chinese_text():
    crypto = MessageCrypto("t", V5_KEY, "wxapp")
    assert crypto.decrypt(crypto.encrypt("<xml>欢迎光临 ]]> 🍵</xml>")) == "<xml>欢迎光临 ]]> 🍵</xml>"


@pytest.mark.parametrize(
    "bad",
    ["not base64!!", "", "AAAA", "QUJDRA==" * 3],
)
def test_garbage_ciphertext_is_a_bad_request_not_a_crash(bad):
    crypto = MessageCrypto("t", V5_KEY, "wxapp")
    with pytest.raises(BadRequest):
        crypto.decrypt(bad)


def test_bad_padding_value_is_rejected():
    with pytest.raises(BadRequest):
        pkcs7_unpad(b"\x00" * 31 + b"\x21")
    with pytest.raises(BadRequest):
        pkcs7_unpad(b"\x00" * 30 + b"\x01\x02")
