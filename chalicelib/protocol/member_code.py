"""The member code (会员码): what the mini program shows at the till as a QR, and the till reads.

A code is ``MC`` + base32 (RFC 4648 alphabet, upper case, no padding: a QR holds it in
alphanumeric mode) of ``nonce ‖ AES-256-GCM(key, nonce, expiry ‖ member id, aad="MC1")``:

- the member id is the **person's** (``chalicelib/identity``), never the openid the mini program
  asked with, and it travels encrypted: a code says nothing to whoever photographs it;
- the expiry (4 bytes, big-endian Unix seconds) is inside the authenticated plaintext: a code
  cannot be made to live longer, and yesterday's screenshot is refused as expired;
- GCM's tag authenticates both: a changed character is refused (``BadRequest``), never read
  as another member;
- nothing is stored: a code is checked by decrypting it.

The key is derived (HKDF-SHA256) from each secret in ``SIYU_MEMBER_CODE_KEY``, ``|``-separated:
codes are sealed with the first and opened with any, so the key rotates without a code in a
member's hand failing (put the new key first, drop the old one after a code's lifetime). The
12-byte nonce is random: under one key, billions of codes before a collision is likely.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
import struct
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.errors import BadRequest, Misconfigured
from chalicelib.events import MAX_ID_BYTES
from chalicelib.protocol.orders import Id, describe, load_json

PREFIX = "MC"
_AAD = b"MC1"  # the format's version: another layout gets another one
_NONCE, _EXPIRY, _TAG = 12, 4, 16
_SHORTEST = _NONCE + _EXPIRY + 1 + _TAG
_LONGEST = _NONCE + _EXPIRY + MAX_ID_BYTES + _TAG
SHORTEST, LONGEST = (len(PREFIX) + -(-size * 8 // 5) for size in (_SHORTEST, _LONGEST))  # base32: 5 bits a letter
PATTERN = re.compile(rf"^{PREFIX}[A-Z2-7]+$")


class CodeRequest(BaseModel):
    """``POST /mp/member-code``: the mini program's server asks a code for the member it logged in."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    openid: Id
    unionid: Id | None = None  # what the mini program's login gave: a new openid of a known person


def parse_request(body: bytes, max_bytes: int) -> CodeRequest:
    try:
        return CodeRequest.model_validate(load_json(body, max_bytes))
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from exc


def secrets_of(setting: str) -> list[str]:
    """The secrets of ``SIYU_MEMBER_CODE_KEY`` (``<key>|<previous key>``), the sealing one first."""
    found = [secret for secret in setting.split("|") if secret.strip()]
    if not found:
        raise Misconfigured("member codes need SIYU_MEMBER_CODE_KEY")
    return found


@functools.lru_cache(maxsize=8)
def _cipher(secret: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"siyu member code").derive(secret.encode())
    return AESGCM(key)


def seal(member_id: str, expires_at: datetime, setting: str) -> str:
    """The code of ``member_id`` (a person's id), valid until ``expires_at`` (whole seconds)."""
    nonce = os.urandom(_NONCE)
    plain = struct.pack(">I", int(expires_at.timestamp())) + member_id.encode("utf-8")
    sealed = nonce + _cipher(secrets_of(setting)[0]).encrypt(nonce, plain, _AAD)
    return PREFIX + base64.b32encode(sealed).decode("ascii").rstrip("=")


def open_code(code: str, setting: str, now: datetime) -> str:
    """The member id a code names, if one of our keys sealed it and it has not expired; else
    ``BadRequest`` saying which (never the code itself)."""
    secrets = secrets_of(setting)
    if not (SHORTEST <= len(code) <= LONGEST and PATTERN.fullmatch(code)):
        raise BadRequest(f"member code must be {PREFIX} and letters A-Z or digits 2-7, {SHORTEST} to {LONGEST} in all")
    raw = code[len(PREFIX) :]
    try:
        sealed = base64.b32decode(raw + "=" * (-len(raw) % 8))
    except binascii.Error as exc:
        raise BadRequest("member code is not base32") from exc
    nonce, body = sealed[:_NONCE], sealed[_NONCE:]
    for secret in secrets:
        try:
            plain = _cipher(secret).decrypt(nonce, body, _AAD)
        except InvalidTag:
            continue
        break
    else:
        raise BadRequest("member code does not verify: altered, or not issued by siyu's current keys")
    (expiry,) = struct.unpack(">I", plain[:_EXPIRY])
    if expiry <= now.timestamp():
        expired = datetime.fromtimestamp(expiry, UTC).isoformat()
        raise BadRequest(f"member code expired at {expired}: the member refreshes it in the mini program")
    return plain[_EXPIRY:].decode("utf-8")
