"""Phase groups and stalls: how many calls share one 20 ms clock without piling up.

Sans-I/O first (MediaEngine on a virtual clock): calls fill a phase group before another opens
as far from it as the period allows, ticking one group advances only its calls, every call
still sends exactly one packet per period, and ticks lost to a stall move the RTP timestamps
on (RFC 3550 §5.1) while the sequence numbers stay continuous. Then MediaRuntime over
loopback: each group's packets leave at its own place in the period, and a stalled event loop
is caught up the same way, with the stall counted.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import socket
import statistics
import struct
import time

import pytest

from dsp.g711 import G711Law
from rtp.engine import MediaEngine
from rtp.errors import RtpError
from rtp.latching import Address
from rtp.packet import RtpPacket, pack_plain
from rtp.seq import ts_diff
from rtp.session import MediaSession, SessionConfig
from rtp.transport import MediaRuntime

PTIME = 0.020
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the constant is 35 there
PEER = Address("127.0.0.1", 39000)


def session(n: int, peer: Address = PEER) -> MediaSession:
    return MediaSession(
        SessionConfig(
            ssrc=0x1000 + n,
            initial_seq=65530,  # the numbers wrap during the tests
            initial_timestamp=0xFFFFFF00,
            cname=f"call-{n}",
            remote_rtp=peer,
            remote_rtcp=Address(peer.host, peer.port + 1),
        ),
        now=0.0,
    )


def engine_with(calls: int, *, phases: int, group_calls: int) -> MediaEngine:
    engine = MediaEngine(phases=phases, group_calls=group_calls)
    for n in range(calls):
        engine.add(f"call-{n}", session(n), G711Law.PCMU)
    return engine


def rtp_of(engine: MediaEngine, now: float, phase: int | None) -> dict[str, RtpPacket]:
    result = engine.tick(now, phase)
    return {d.call_id: RtpPacket.parse(d.data) for d in result.datagrams if not d.rtcp}


def test_calls_fill_a_group_before_the_next_opens_as_far_away_as_the_period_allows() -> None:
    engine = engine_with(9, phases=10, group_calls=2)
    phases = [engine.phase_of(f"call-{n}") for n in range(9)]
    assert phases[:8] == [0, 0, 5, 5, 2, 2, 7, 7]  # the farthest from the open ones
    assert phases[8] not in {0, 2, 5, 7}
    assert engine.occupied_phases() == sorted(set(phases))
    # Once every group is open, a call joins the smallest.
    full = engine_with(25, phases=10, group_calls=2)
    sizes = sorted(sum(1 for n in range(25) if full.phase_of(f"call-{n}") == p) for p in range(10))
    assert sizes == [2] * 5 + [3] * 5


def test_one_group_ticks_alone_and_every_call_sends_once_per_period() -> None:
    engine = engine_with(8, phases=4, group_calls=2)
    sent: dict[str, list[RtpPacket]] = {f"call-{n}": [] for n in range(8)}
    for period in range(10):
        for phase in range(4):
            packets = rtp_of(engine, period * PTIME + phase * PTIME / 4, phase)
            assert {engine.phase_of(call) for call in packets} == {phase}
            for call, packet in packets.items():
                sent[call].append(packet)
    for packets in sent.values():
        assert len(packets) == 10
        assert [p.sequence_number for p in packets] == [(65530 + k) & 0xFFFF for k in range(10)]
        assert [ts_diff(p.timestamp, 0xFFFFFF00) for p in packets] == [160 * k for k in range(10)]
    # Without a phase, a tick advances every call at once (one group's behaviour).
    assert set(rtp_of(engine, 0.2, None)) == set(sent)


def test_ticks_lost_to_a_stall_move_the_timestamp_and_keep_the_numbering() -> None:
    engine = engine_with(2, phases=2, group_calls=1)
    before = rtp_of(engine, 0.0, None)
    engine.skip(3, phase=engine.phase_of("call-1"))
    after = rtp_of(engine, 0.08, None)
    stalled = after["call-1"]
    assert stalled.sequence_number == (before["call-1"].sequence_number + 1) & 0xFFFF
    assert ts_diff(stalled.timestamp, before["call-1"].timestamp) == 4 * 160
    # The other group was not stalled.
    assert ts_diff(after["call-0"].timestamp, before["call-0"].timestamp) == 160


def test_pack_plain_is_the_packet_serialised_and_checks_the_same_ranges() -> None:
    for marker in (False, True):
        packet = RtpPacket(8, 0xFFFF, 0xFFFFFFFF, 0xDEADBEEF, b"\xd5" * 160, marker)
        assert pack_plain(8, 0xFFFF, 0xFFFFFFFF, 0xDEADBEEF, b"\xd5" * 160, marker) == bytes(packet)
    with pytest.raises(RtpError, match="payload type must be in 0..127"):
        pack_plain(128, 0, 0, 0, b"", False)
    with pytest.raises(RtpError, match="sequence number must be 16 bits"):
        pack_plain(0, 0x10000, 0, 0, b"", False)


# ----------------------------------------------------------------- loopback
async def _arrivals(
    calls: int, runtime: MediaRuntime, seconds: float
) -> list[list[tuple[float, RtpPacket]]]:
    """Attach calls that send to one phone socket each; collect (arrival, packet) per call."""
    loop = asyncio.get_running_loop()
    phones = []
    for _ in range(calls):
        phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        phone.bind(("127.0.0.1", 0))
        phone.setblocking(False)
        phone.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        phones.append(phone)
    got: list[list[tuple[float, RtpPacket]]] = [[] for _ in phones]

    def read(n: int) -> None:
        # The kernel's receive time (SO_TIMESTAMPNS), not this loop's: on loopback it is when
        # the packet was sent, however late this callback runs on a busy machine.
        data, ancillary, _, _ = phones[n].recvmsg(2048, 64)
        at = time.time()
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                at = seconds + nanoseconds / 1e9
        got[n].append((at, RtpPacket.parse(data)))

    try:
        for n, phone in enumerate(phones):
            port = 0
            for candidate in range(43000 + 40 * n, 43040 + 40 * n, 2):  # bounded search
                try:
                    runtime.bind(f"call-{n}", candidate)
                except OSError:
                    continue
                port = candidate
                break
            assert port, "no free RTP port pair"
            runtime.attach(f"call-{n}", session(n, Address(*phone.getsockname())), G711Law.PCMU)
            loop.add_reader(phone.fileno(), read, n)
        await asyncio.sleep(seconds)
    finally:
        for phone in phones:
            loop.remove_reader(phone.fileno())
            phone.close()
        runtime.close()
    return got


async def test_each_group_sends_at_its_own_place_in_the_period() -> None:
    # A shared machine can hold this process off the CPU for most of a half second, and then
    # the groups' packets leave together; groups that are really 5 ms apart show it in a
    # quieter window, while a schedule that sends them together never does. Three windows.
    spreads = []
    for _ in range(3):
        runtime = MediaRuntime("127.0.0.1", phases=4)
        runtime.engine.group_calls = 1  # one call per group: four groups, 5 ms apart
        got = await _arrivals(4, runtime, 0.5)
        assert runtime.schedule_start is None  # closed: the schedule went with the last call
        assert runtime.stats.late_packets <= runtime.stats.packets_sent
        offsets = []
        for n, arrivals in enumerate(got):
            assert len(arrivals) >= 15, n
            # where in the period the call's packets left: their circular mean, so a call
            # whose packets straddle the period's edge is not split into two
            angles = [2 * math.pi * (at % PTIME) / PTIME for at, _ in arrivals]
            mean = math.atan2(
                statistics.fmean(map(math.sin, angles)), statistics.fmean(map(math.cos, angles))
            )
            offsets.append((mean / (2 * math.pi) * PTIME) % PTIME)
        spread = sorted(round(((o - offsets[0]) % PTIME) * 1000) for o in offsets)
        spreads.append(spread)
        if spread == pytest.approx([0, 5, 10, 15], abs=1.5):
            return
    raise AssertionError(f"no window had the groups 5 ms apart: {spreads}")


async def test_a_stalled_loop_catches_up_and_the_timestamps_say_how_long_it_stood() -> None:
    runtime = MediaRuntime("127.0.0.1", phases=2)
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, time.sleep, 0.15)  # the whole process stalls for 150 ms
    got = await _arrivals(1, runtime, 0.6)
    packets = [p for _, p in got[0]]
    seqs = [p.sequence_number for p in packets]
    assert seqs == [(seqs[0] + k) & 0xFFFF for k in range(len(seqs))]  # nothing resent
    steps = [ts_diff(b.timestamp, a.timestamp) // 160 for a, b in itertools.pairwise(packets)]
    assert max(steps) > 1  # the stall shows as a timestamp jump ...
    assert sum(steps) - len(steps) == runtime.stats.skipped_frames > 0  # ... of what was skipped


async def test_a_burst_of_packets_queued_on_a_call_socket_is_all_taken_in() -> None:
    runtime = MediaRuntime("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
        phone.bind(("127.0.0.1", 0))
        port = 0
        for candidate in range(43400, 43440, 2):  # bounded search for a free pair
            try:
                runtime.bind("burst", candidate)
            except OSError:
                continue
            port = candidate
            break
        assert port, "no free RTP port pair"
        call = session(0, Address(*phone.getsockname()))
        runtime.attach("burst", call, G711Law.PCMU)
        try:
            for n in range(30):  # faster than any tick: they queue on the socket together
                packet = RtpPacket(0, n, 160 * n, 0xB0B, b"\xff" * 160)
                phone.sendto(bytes(packet), ("127.0.0.1", port))
            for _ in range(50):  # bounded wait
                if call.counters.received == 30:
                    break
                await asyncio.sleep(0.01)
            assert call.counters.received == 30
        finally:
            runtime.close()
