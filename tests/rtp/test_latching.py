"""Symmetric RTP latching (RFC 4961): one test per rule, on a virtual clock."""

from __future__ import annotations

import pytest

from rtp.latching import Address, Latch, LatchConfig

SDP = Address("127.0.0.20", 40_000)  # what the peer's SDP c=/m= lines said
SIPP_MP = Address("127.0.0.20", 6_000)  # where SIPp really sends from (its -mp port)
OTHER_HOST = Address("127.0.0.99", 40_000)


def test_latches_the_first_packet_from_the_sdp_host_on_any_port() -> None:
    latch = Latch(SDP)
    assert latch.destination() == SDP  # before any media: answer to the SDP address
    assert latch.accept(SIPP_MP, now=0.0)
    assert latch.latched == SIPP_MP and latch.destination() == SIPP_MP


def test_packets_from_another_host_never_latch() -> None:
    latch = Latch(SDP)
    assert not latch.accept(OTHER_HOST, now=0.0)  # RTP bleed: a stranger got there first
    assert latch.latched is None
    assert latch.accept(SIPP_MP, now=0.1)
    assert latch.stats().rejected == 1


def test_after_latching_other_sources_are_ignored_and_counted() -> None:
    latch = Latch(SDP)
    latch.accept(SIPP_MP, now=0.0)
    assert not latch.accept(SDP, now=0.02)  # same host, other port, while the source is live
    assert not latch.accept(OTHER_HOST, now=0.04)
    assert latch.accept(SIPP_MP, now=0.06)
    assert latch.latched == SIPP_MP
    assert latch.stats() == latch.stats().__class__(accepted=2, rejected=2, latches=1)


def test_relatches_after_the_source_falls_silent_nat_rebinding() -> None:
    latch = Latch(SDP, LatchConfig(rebind_after_s=2.0))
    latch.accept(SIPP_MP, now=0.0)
    latch.accept(SIPP_MP, now=1.0)
    rebound = Address("127.0.0.20", 6_002)
    assert not latch.accept(rebound, now=2.9)  # 1.9 s of silence: not yet
    assert latch.accept(rebound, now=3.0)  # 2 s since the latched source was last heard
    assert latch.latched == rebound
    assert not latch.accept(SIPP_MP, now=3.02)  # the old binding is now the stranger
    assert latch.stats().latches == 2


def test_silence_never_lets_a_different_host_latch() -> None:
    latch = Latch(SDP)
    latch.accept(SIPP_MP, now=0.0)
    assert not latch.accept(OTHER_HOST, now=60.0)
    assert latch.latched == SIPP_MP


def test_reset_after_reinvite_relatches_to_the_new_sdp_host() -> None:
    latch = Latch(SDP)
    latch.accept(SIPP_MP, now=0.0)
    moved = Address("127.0.0.30", 42_000)  # the re-INVITE moved media to another host
    latch.reset(moved)
    assert latch.destination() == moved
    assert not latch.accept(SIPP_MP, now=0.02)  # the old host is no longer the SDP's
    assert latch.accept(Address("127.0.0.30", 7_000), now=0.04)
    assert latch.latched == Address("127.0.0.30", 7_000)


def test_allow_any_host_latches_the_first_source_but_still_only_one() -> None:
    latch = Latch(SDP, LatchConfig(allow_any_host=True))
    assert latch.accept(OTHER_HOST, now=0.0)  # e.g. SDP named a private address behind NAT
    assert not latch.accept(SIPP_MP, now=0.02)
    assert latch.accept(SIPP_MP, now=5.0)  # after silence, any host may take over
    assert latch.latched == SIPP_MP


def test_without_an_sdp_address_nothing_latches_unless_any_host_is_allowed() -> None:
    latch = Latch(None)
    assert not latch.accept(SIPP_MP, now=0.0) and latch.destination() is None
    latch.reset(SDP)  # the late-offer answer arrived in the ACK
    assert latch.accept(SIPP_MP, now=0.1)
    assert Latch(None, LatchConfig(allow_any_host=True)).accept(OTHER_HOST, now=0.0)


@pytest.mark.parametrize(
    ("sdp_host", "source_host"),
    [
        ("127.0.0.20", "::ffff:127.0.0.20"),
        ("::1", "0:0:0:0:0:0:0:1"),
        ("PBX.example", "pbx.example"),
    ],
)
def test_host_spellings_are_compared_as_addresses(sdp_host: str, source_host: str) -> None:
    latch = Latch(Address(sdp_host, 40_000))
    assert latch.accept(Address(source_host, 6_000), now=0.0)


def test_address_from_a_socket_tuple() -> None:
    assert Address.from_tuple(("127.0.0.1", 5004)) == Address("127.0.0.1", 5004)
    assert Address.from_tuple(("::1", 5004, 0, 0)) == Address("::1", 5004)
