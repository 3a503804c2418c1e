"""PHI at rest: AES-256-GCM with a key id in every ciphertext, so keys can be rotated.

A sealed value is ``version (1 byte) || key id (4 bytes) || nonce (12 bytes) || ciphertext
and tag``. The key id is the first four bytes of SHA-256 over a label and the key, so an
operator configures keys only (no ids to keep in step). The first configured key seals;
any configured key opens. Rotation: put the new key first and keep the old one after it
until every value sealed with it has expired (the state TTL, an hour by default).

The nonce is 96 random bits (NIST SP 800-38D §8.2.2): safe up to about 2**32 values per
key, far beyond what a clinic's state store writes in a key's lifetime. The associated data
binds a value to its logical key name, so a value copied under another call's key does not
open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.errors import AgentError

VERSION = 1
KEY_ID_BYTES = 4
NONCE_BYTES = 12
_HEADER = 1 + KEY_ID_BYTES + NONCE_BYTES


class SealError(AgentError, ValueError):
    """A sealed value cannot be opened (its key is not configured, or it was altered)."""


def key_id(key: bytes) -> bytes:
    """The 4-byte id written in front of values sealed with ``key``."""
    return hashlib.sha256(b"voiceagent state key\x00" + key).digest()[:KEY_ID_BYTES]


def decode_key(text: str) -> bytes:
    """One configured key: base64 of 16, 24 or 32 bytes (AES-128, -192 or -256)."""
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SealError("a state key is not valid base64") from None
    if len(key) not in (16, 24, 32):
        raise SealError(f"a state key must be 16, 24 or 32 bytes, not {len(key)}")
    return key


class Sealer:
    """Seals with the first key, opens with any."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SealError("at least one state key is needed")
        self._sealing_id = key_id(keys[0])
        self._sealing = AESGCM(keys[0])
        self._opening = {key_id(k): AESGCM(k) for k in keys}

    @classmethod
    def from_base64(cls, keys: Sequence[str]) -> Sealer:
        """From the ``state_keys`` setting."""
        return cls([decode_key(k) for k in keys])

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``, bound to ``aad``."""
        nonce = os.urandom(NONCE_BYTES)
        body = self._sealing.encrypt(nonce, plaintext, aad)
        return bytes([VERSION]) + self._sealing_id + nonce + body

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """Decrypt a value sealed by any configured key (raises `SealError`)."""
        if len(sealed) < _HEADER + 16 or sealed[0] != VERSION:
            raise SealError("not a sealed value of a known version")
        cipher = self._opening.get(sealed[1 : 1 + KEY_ID_BYTES])
        if cipher is None:
            raise SealError("sealed with a key that is not configured")
        nonce = sealed[1 + KEY_ID_BYTES : _HEADER]
        try:
            return cipher.decrypt(nonce, sealed[_HEADER:], aad)
        except InvalidTag:
            raise SealError("sealed value failed authentication") from None
