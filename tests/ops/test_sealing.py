"""PHI sealing (AES-GCM with key ids, rotation) and the backoff schedule, offline."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config import ConfigError, load_settings
from agent.retry import Backoff
from agent.sealing import KEY_ID_BYTES, Sealer, SealError, decode_key, key_id

OLD, NEW = os.urandom(32), os.urandom(32)


@given(st.binary(max_size=2000), st.binary(max_size=64))
def test_what_is_sealed_opens_to_the_same_bytes(plaintext: bytes, aad: bytes) -> None:
    sealer = Sealer([OLD])
    assert sealer.open(sealer.seal(plaintext, aad), aad) == plaintext


def test_the_plaintext_is_not_in_the_sealed_value_and_nonces_differ() -> None:
    sealer = Sealer([OLD])
    secret = b'{"first_name":"Ann","phone":"+12125550134"}'
    a, b = sealer.seal(secret, b"call:1"), sealer.seal(secret, b"call:1")
    assert secret not in a and b"2125550134" not in a
    assert a != b  # a fresh nonce each time
    assert a[1 : 1 + KEY_ID_BYTES] == key_id(OLD)


def test_rotation_seals_with_the_first_key_and_opens_with_any() -> None:
    before = Sealer([OLD]).seal(b"dob 1975-11-02", b"call:1")
    rotated = Sealer([NEW, OLD])
    assert rotated.open(before, b"call:1") == b"dob 1975-11-02"
    after = rotated.seal(b"dob 1975-11-02", b"call:1")
    assert after[1 : 1 + KEY_ID_BYTES] == key_id(NEW)
    with pytest.raises(SealError, match="not configured"):
        Sealer([OLD]).open(after, b"call:1")  # an instance not yet given the new key


def test_a_value_moved_to_another_key_or_altered_does_not_open() -> None:
    sealer = Sealer([OLD])
    sealed = sealer.seal(b"member XGH123456789", b"call:1")
    with pytest.raises(SealError, match="authentication"):
        sealer.open(sealed, b"call:2")
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError, match="authentication"):
        sealer.open(flipped, b"call:1")
    with pytest.raises(SealError, match="version"):
        sealer.open(b"\x02" + sealed[1:], b"call:1")


def test_keys_are_checked_when_the_settings_load() -> None:
    assert decode_key(base64.b64encode(NEW).decode()) == NEW
    with pytest.raises(SealError, match="16, 24 or 32 bytes"):
        decode_key(base64.b64encode(b"short").decode())
    with pytest.raises(ConfigError, match="state_keys.*needed with redis_url"):
        load_settings({"redis_url": "redis://127.0.0.1:6390/0"})
    with pytest.raises(ConfigError, match="state_keys.*not valid base64"):
        load_settings({"state_keys": ["not base64!"]})
    with pytest.raises(ConfigError, match="smtp_tls"):
        load_settings({"smtp_tls": "ssl"})
    with pytest.raises(ConfigError, match="smtp_ca_file.*is not a file"):
        load_settings({"smtp_ca_file": "/nonexistent/ca.pem"})
    ok = load_settings(
        {"redis_url": "redis://127.0.0.1:6390/0", "state_keys": [base64.b64encode(NEW).decode()]}
    )
    assert ok.state_ttl_seconds == 3600 and ok.redis_prefix == "voiceagent:"


def test_backoff_doubles_from_the_base_to_the_cap() -> None:
    backoff = Backoff(base_s=5.0, cap_s=3600.0)
    assert [backoff.delay_s(n) for n in range(0, 4)] == [0.0, 5.0, 10.0, 20.0]
    assert backoff.delay_s(11) == 3600.0  # 5 * 2**10 = 5120, capped
    assert backoff.delay_s(10_000) == 3600.0  # a week-long outage does not overflow
    assert backoff.delay_s(2, jitter=0.5) == 5.0
