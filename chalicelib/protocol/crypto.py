"""WeChat / WeCom callback cryptography (docs/wechat.md §1.1, §2, §4.1).

- ``sha1_signature``: SHA-1 over the sorted, joined parts (plain-mode ``signature`` and the
  safe-mode / WeCom ``msg_signature`` alike).
- ``MessageCrypto``: AES-256-CBC, IV = first 16 key bytes, PKCS#7 to 32-byte blocks, plaintext
  ``random(16) || uint32_be(len) || msg || receive_id``.

Comparisons are constant-time. Every failure is a ``BadRequest`` or ``Forbidden``, never an
unclassified exception, so a route can answer 400/403 instead of 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chalicelib.errors import BadRequest, Forbidden

BLOCK = 32  # WeChat pads to 32-byte blocks, not AES's 16.


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_matches(expected: str, given: str | None) -> bool:
    # compare_digest raises TypeError on non-ASCII text; such a signature is simply wrong.
    return given is not None and given.isascii() and hmac.compare_digest(expected, given.lower())


def pkcs7_pad(data: bytes, block: int = BLOCK) -> bytes:
    n = block - len(data) % block
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block: int = BLOCK) -> bytes:
    if not data or len(data) % 16:
        raise BadRequest("ciphertext length is not a multiple of the AES block")
    n = data[-1]
    if not 1 <= n <= block or data[-n:] != bytes([n]) * n:
        raise BadRequest("invalid PKCS#7 padding")
    return data[:-n]


def aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


class MessageCrypto:
    """Encrypt / decrypt callback payloads for one (token, key, receive id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def check_signature(self, msg_signature: str | None, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = sha1_signature(self.token, timestamp, nonce, encrypted)
        if not signature_matches(expected, msg_signature):
            raise Forbidden("msg_signature does not match")

    def decrypt(self, encrypted: str) -> str:
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("Encrypt is not base64") from exc
        if not raw or len(raw) % 16:
            raise BadRequest("ciphertext length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        plain = pkcs7_unpad(decryptor.update(raw) + decryptor.finalize())
        if len(plain) < 20:
            raise BadRequest("decrypted payload too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, tail = plain[20 : 20 + length], plain[20 + length :]
        if len(body) != length:
            raise BadRequest("decrypted length field exceeds the payload")
        if not hmac.compare_digest(tail, self.receive_id.encode("utf-8")):
            raise BadRequest("receive id in the payload is not ours")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("decrypted payload is not UTF-8") from exc

    def encrypt(self, message: str, random_prefix: bytes | None = None) -> str:
        prefix = random_prefix if random_prefix is not None else secrets.token_bytes(16)
        body = message.encode("utf-8")
        plain = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode("utf-8")
        encryptor = self._cipher().encryptor()
        raw = encryptor.update(pkcs7_pad(plain)) + encryptor.finalize()
        return base64.b64encode(raw).decode("ascii")

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return sha1_signature(self.token, timestamp, nonce, encrypted)
