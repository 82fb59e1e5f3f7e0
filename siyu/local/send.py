"""``siyu send``: play WeChat against a running stack (local by default), signed and encrypted
as the real platform would, and show what the member would see."""

from __future__ import annotations

import argparse
import secrets

import requests

from chalicelib import settings as settings_module
from chalicelib.clock import SystemClock, to_unix
from chalicelib.protocol import xmlsafe
from chalicelib.protocol.crypto import MessageCrypto
from chalicelib.protocol.scene import build_scene
from siyu.local import callbacks


def build(args: argparse.Namespace) -> callbacks.Request:
    s = settings_module.current()
    now = SystemClock().now()
    if args.what == "follow":
        scene = build_scene(store_id=args.store, channel=args.channel, inviter=args.inviter)
        xml = callbacks.oa_event(args.member, "subscribe", to_unix(now), "qrscene_" + scene if scene else "")
        return callbacks.oa_post(s, xml, now)
    if args.what == "unfollow":
        return callbacks.oa_post(s, callbacks.oa_event(args.member, "unsubscribe", to_unix(now)), now)
    if args.what == "text":
        xml = callbacks.oa_text(args.member, args.text, to_unix(now), secrets.randbelow(2**63))
        return callbacks.oa_post(s, xml, now)
    xml = callbacks.wecom_group_join(s.wecom_corp_id, args.group, [args.member], to_unix(now))
    return callbacks.wecom_post(s, xml, now)


def show_reply(body: bytes) -> str:
    """Decrypt a safe-mode passive reply and return the text the member would read."""
    s = settings_module.current()
    if not body.startswith(b"<xml>"):
        return body.decode("utf-8", "replace")
    envelope = xmlsafe.parse(body, s.max_body_bytes)
    if "Encrypt" not in envelope:
        return str(envelope.get("Content", ""))
    crypto = MessageCrypto(s.wechat_token, s.wechat_aes_key, s.wechat_app_id)
    inner = xmlsafe.parse(crypto.decrypt(envelope["Encrypt"]).encode("utf-8"), s.max_body_bytes)
    return str(inner.get("Content", ""))


def run(args: argparse.Namespace) -> int:
    request = build(args)
    response = requests.post(
        args.url.rstrip("/") + request.path, data=request.body, headers=request.headers, timeout=10
    )
    print(f"HTTP {response.status_code}")
    print(show_reply(response.content))
    return 0 if response.ok else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    send = sub.add_parser("send", help="send a signed, encrypted callback to a running stack")
    send.add_argument("--url", default="http://127.0.0.1:8000")
    kinds = send.add_subparsers(dest="what", required=True)
    follow = kinds.add_parser("follow", help="a member follows the official account")
    follow.add_argument("member")
    follow.add_argument("--store")
    follow.add_argument("--channel")
    follow.add_argument("--inviter")
    kinds.add_parser("unfollow", help="a member unfollows").add_argument("member")
    text = kinds.add_parser("text", help="a member sends a text message")
    text.add_argument("member")
    text.add_argument("text")
    join = kinds.add_parser("join", help="a customer joins a WeCom customer group")
    join.add_argument("member")
    join.add_argument("--group", default="wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA")
    send.set_defaults(run=run)
