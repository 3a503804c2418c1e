"""MediaRuntime over real sockets on 127.0.0.1 (Tier 3): the asyncio shell around the engine.

The test is the phone: plain UDP sockets on the event loop. It checks what the sans-I/O
tests cannot: that the runtime sends to the SDP address until the phone's first packet and
then to wherever the phone really sends from (symmetric RTP), that its packets leave on the
20 ms grid with continuous numbering, that caller audio reaches the `CallMedia` queue and
control events its event queue, and that detaching says BYE on RTCP. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest

from dsp.g711 import G711Law, ulaw_decode, ulaw_encode
from rtp.engine import PlayoutDone, PlayoutStopped
from rtp.latching import Address
from rtp.packet import RtpPacket
from rtp.rtcp import Bye, ReceiverReport, ReportBlock, SenderReport, parse_rtcp
from rtp.seq import ts_diff
from rtp.session import MediaSession, SessionConfig
from rtp.transport import CallMedia, MediaRuntime

LOOPBACK = "127.0.0.1"
OUR_SSRC = 0x0BADCAFE
PHONE_SSRC = 0x5EED5EED
CALL = "loopback-call"


def udp(host: str = LOOPBACK) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


async def recv(sock: socket.socket, within_s: float = 2.0) -> tuple[float, bytes]:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 2048), within_s)
    return time.monotonic(), data


async def drain(sock: socket.socket) -> None:
    """Discard whatever is queued on ``sock`` (bounded)."""
    for _ in range(10_000):
        try:
            sock.recv(2048)
        except BlockingIOError:
            return


@dataclass
class Phone:
    sdp_rtp: socket.socket  # the address the phone's SDP names
    sdp_rtcp: socket.socket
    rtp: socket.socket  # where it really sends from (a NAT'd port, SIPp's -mp)
    rtcp: socket.socket
    runtime: MediaRuntime
    media: CallMedia
    rtp_port: int
    rtcp_port: int


@pytest.fixture
async def phone() -> AsyncIterator[Phone]:
    sdp_rtp, sdp_rtcp, rtp, rtcp = udp(), udp(), udp(), udp()
    runtime = MediaRuntime(LOOPBACK)
    port = 0
    for candidate in range(42000, 42200, 2):  # bounded search for a free even pair
        try:
            runtime.bind(CALL, candidate)
        except OSError:
            continue
        port = candidate
        break
    assert port, "no free RTP port pair"
    session = MediaSession(
        SessionConfig(
            ssrc=OUR_SSRC,
            initial_seq=100,
            initial_timestamp=5000,
            cname="loopback",
            remote_rtp=Address(LOOPBACK, port_of(sdp_rtp)),
            remote_rtcp=Address(LOOPBACK, port_of(sdp_rtcp)),
            rtcp_interval_s=0.4,
        ),
        runtime.loop.time(),
    )
    media = runtime.attach(CALL, session, G711Law.PCMU)
    yield Phone(sdp_rtp, sdp_rtcp, rtp, rtcp, runtime, media, port, port + 1)
    runtime.close()
    for sock in (sdp_rtp, sdp_rtcp, rtp, rtcp):
        sock.close()


async def test_latches_to_the_phones_real_port_and_paces_on_the_20_ms_grid(phone: Phone) -> None:
    # Before the phone has sent anything, silence goes to the SDP address.
    _, data = await recv(phone.sdp_rtp)
    first = RtpPacket.parse(data)
    assert first.ssrc == OUR_SSRC and first.payload == b"\xff" * 160
    # The phone speaks from another port of the same host: our media follows it there.
    hello = RtpPacket(0, 1, 160, PHONE_SSRC, b"\xff" * 160)
    phone.rtp.sendto(bytes(hello), (LOOPBACK, phone.rtp_port))
    await recv(phone.rtp)
    await drain(phone.sdp_rtp)
    phone.media.play(np.full(8000, 1000, dtype=np.int16))  # 1 s of a (DC) prompt
    arrivals: list[tuple[float, RtpPacket]] = []
    for _ in range(60):
        at, data = await recv(phone.rtp)
        arrivals.append((at, RtpPacket.parse(data)))
    packets = [p for _, p in arrivals]
    seqs = [p.sequence_number for p in packets]
    assert seqs == list(range(seqs[0], seqs[0] + 60))
    assert [ts_diff(p.timestamp, packets[0].timestamp) for p in packets] == [
        160 * n for n in range(60)
    ]
    markers = [n for n, p in enumerate(packets) if p.marker]
    assert len(markers) == 1 and packets[markers[0]].payload != b"\xff" * 160
    # Absolute pacing: 59 intervals take 1.18 s, give or take a tick on a busy machine.
    span = arrivals[-1][0] - arrivals[0][0]
    assert span == pytest.approx(59 * 0.020, abs=0.040)
    event = await asyncio.wait_for(phone.media.events.get(), 2.0)
    assert event == PlayoutDone()
    # Nothing went to the SDP address after the latch.
    with pytest.raises(BlockingIOError):
        phone.sdp_rtp.recv(2048)
    assert phone.runtime.stats.send_errors == 0


async def test_a_stranger_is_rejected_and_caller_audio_reaches_the_queue(phone: Phone) -> None:
    tone = (1500 * np.sin(2 * np.pi * 440 * np.arange(160 * 20) / 8000)).astype(np.int16)
    codes = ulaw_encode(tone).tobytes()
    start = time.monotonic()
    for n in range(20):  # 400 ms of tone on the 20 ms grid (absolute schedule)
        packet = RtpPacket(0, 10 + n, 160 * n, PHONE_SSRC, codes[n * 160 : (n + 1) * 160])
        phone.rtp.sendto(bytes(packet), (LOOPBACK, phone.rtp_port))
        await asyncio.sleep(max(0.0, start + 0.020 * (n + 1) - time.monotonic()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.2", 0))
        bleed = RtpPacket(0, 31, 160 * 21, PHONE_SSRC, b"\x00" * 160)
        stranger.sendto(bytes(bleed), (LOOPBACK, phone.rtp_port))
        await asyncio.sleep(0.1)
    session = phone.runtime.engine.session(CALL)
    assert session is not None
    assert session.counters.rejected_source == 1
    frames = []
    with contextlib.suppress(asyncio.TimeoutError):
        for _ in range(40):
            frame = await asyncio.wait_for(phone.media.audio.get(), 0.5)
            assert frame is not None
            frames.append(frame)
            if not frame.concealed and frame.timestamp == 160 * 19:
                break
    real = [f for f in frames if not f.concealed]
    assert [f.timestamp for f in real] == [160 * n for n in range(20)]
    heard = np.concatenate([f.pcm for f in real])
    np.testing.assert_array_equal(heard, ulaw_decode(ulaw_encode(tone)))


async def test_rtcp_latches_reports_flow_and_detach_says_bye(phone: Phone) -> None:
    for n in range(5):
        packet = RtpPacket(0, n, 160 * n, PHONE_SSRC, b"\xff" * 160)
        phone.rtp.sendto(bytes(packet), (LOOPBACK, phone.rtp_port))
    report = ReceiverReport(
        PHONE_SSRC, (ReportBlock(OUR_SSRC, fraction_lost=32, cumulative_lost=4),)
    )
    phone.rtcp.sendto(bytes(report), (LOOPBACK, phone.rtcp_port))
    # The next report comes to the port the phone's RTCP came from, within 1.5 intervals.
    _, data = await recv(phone.rtcp, within_s=2.0)
    first = parse_rtcp(data)[0]
    assert isinstance(first, SenderReport) and first.ssrc == OUR_SSRC  # we send from the start
    session = phone.runtime.engine.session(CALL)
    assert session is not None
    assert session.report().remote_fraction_lost == 0.125
    assert session.report().remote_cumulative_lost == 4
    phone.media.play(np.full(1600, 500, dtype=np.int16))
    await asyncio.sleep(0.05)
    assert phone.media.stop() > 0
    event = await asyncio.wait_for(phone.media.events.get(), 1.0)
    assert isinstance(event, PlayoutStopped) and event.reason == "stop"
    phone.runtime.detach(CALL)
    for _ in range(10):  # skip any regular report that was already on its way
        _, data = await recv(phone.rtcp, within_s=1.0)
        if isinstance(parse_rtcp(data)[-1], Bye):
            break
    else:
        raise AssertionError("no RTCP BYE after detach")
    assert await asyncio.wait_for(phone.media.events.get(), 1.0) is None  # handle closed
    assert phone.media.closed
