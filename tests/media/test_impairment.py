"""Media under an impaired network: 5 % loss, 40 ms jitter, 2 % reordering (issue 3).

The relay (`tests.relay`) is checked first on a virtual clock. Then a caller's speech is
sent from a paced RTP sender through the relay to an in-process `MediaRuntime` (tier 3,
real sockets on 127.0.0.1), and the test checks what a user and an operator would notice:
the decoded audio has a frame for every 20 ms tick (lost packets concealed, never a hole),
turns are still found where the speech really is, and RTCP reports the loss and jitter the
relay actually inflicted (RFC 3550 A.3, A.8), both in `MediaSession.report()` and in the
report block the server sends back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.signal import correlate

from dsp.endpoint import SpeechEnded, SpeechStarted
from dsp.g711 import ulaw_decode, ulaw_encode
from rtp.engine import CallerFrame
from rtp.pacer import RtpStreamWriter
from rtp.rtcp import Bye, ReceiverReport, ReportBlock, SenderReport, parse_rtcp_compound
from rtp.transport import CallMedia
from tests.dsp.speech import Span, espeak, ms_to_samples, scale_to_dbfs, speech_span
from tests.media.conftest import LOOPBACK, OpenCall
from tests.relay import ImpairedPath, Impairment, UdpRelay, rfc3550_jitter

FRAME = 160
PTIME_S = 0.020
IMPAIRED = Impairment(
    loss=0.05, jitter_s=0.040, reorder=0.02, seed=60
)  # 532 packets: 26 lost, 10 reordered


# -- the relay itself, on a virtual clock --------------------------------------------------------


def run_path(imp: Impairment, count: int, spacing_s: float = PTIME_S) -> ImpairedPath:
    path = ImpairedPath(imp)
    for i in range(count):
        path.push(i.to_bytes(4, "big"), now=i * spacing_s)
        path.due(now=i * spacing_s)
    path.due(now=count * spacing_s + 10.0)
    return path


def order(path: ImpairedPath) -> list[int]:
    return [int.from_bytes(f.data, "big") for f in path.log]


def test_a_clean_path_forwards_everything_in_order_without_delay() -> None:
    path = run_path(Impairment(), 100)
    assert order(path) == list(range(100))
    assert all(f.released_s == f.arrived_s for f in path.log)


def test_the_relay_is_seeded_and_its_rates_are_what_was_asked() -> None:
    imp = Impairment(loss=0.05, jitter_s=0.040, reorder=0.02, duplicate=0.01, seed=7)
    a, b = run_path(imp, 20_000), run_path(imp, 20_000)
    assert order(a) == order(b)  # one seed, one pattern
    c = a.counters
    assert c.received == 20_000
    assert c.dropped / c.received == pytest.approx(0.05, abs=0.005)
    assert c.reordered / c.received == pytest.approx(0.02 * 0.95, abs=0.004)
    assert c.duplicated / c.received == pytest.approx(0.01 * 0.95, abs=0.003)
    assert c.forwarded == c.received - c.dropped + c.duplicated
    delays = [f.released_s - f.arrived_s for f in a.log if not f.reordered]
    assert 0.0 <= min(delays) and max(delays) <= 0.040 + PTIME_S


def test_jitter_alone_keeps_order_and_a_reordered_datagram_comes_right_after_the_next() -> None:
    assert order(run_path(Impairment(jitter_s=0.080, seed=3), 2000)) == list(range(2000))
    path = run_path(Impairment(reorder=0.1, seed=3), 2000)
    seen = order(path)
    swapped = [i for i in range(len(seen) - 1) if seen[i] > seen[i + 1]]
    assert len(swapped) == path.counters.reordered > 150
    assert all(seen[i] == seen[i + 1] + 1 for i in swapped)  # exactly one place later
    assert sorted(seen) == list(range(2000))


def test_a_held_datagram_with_no_successor_is_released_at_its_hold_limit() -> None:
    path = ImpairedPath(Impairment(reorder=1.0, reorder_hold_s=0.1))
    path.push(b"x", now=0.0)
    assert path.due(now=0.099) == [] and path.next_deadline() == pytest.approx(0.1)
    assert [f.data for f in path.due(now=0.1)] == [b"x"]


def test_the_queue_is_bounded() -> None:
    path = ImpairedPath(Impairment(delay_s=1.0, max_pending=10))
    for i in range(50):
        path.push(bytes([i]), now=0.0)
    assert path.counters.overflow == 40
    assert len(path.due(now=2.0)) == 10


def test_expected_jitter_of_a_steady_stream_is_zero_and_grows_with_spread() -> None:
    writer = RtpStreamWriter(ssrc=1, initial_seq=0, initial_timestamp=0)
    packets = [writer.packet(bytes(FRAME), 0, False) for _ in range(200)]
    assert rfc3550_jitter((i * PTIME_S, p) for i, p in enumerate(packets)) == 0.0
    rng = np.random.default_rng(1)
    spread = rng.uniform(0, 0.040, 5000)
    writer = RtpStreamWriter(ssrc=1, initial_seq=0, initial_timestamp=0)
    arrivals = [
        (i * PTIME_S + float(d), writer.packet(b"\xff" * FRAME, 0, False))
        for i, d in enumerate(spread)
    ]
    arrivals.sort(key=lambda a: a[0])
    # iid U(0, w) delays: E|D| = w / 3 (reordering included, as A.8 counts arrival order)
    assert rfc3550_jitter(arrivals) == pytest.approx(0.040 / 3, rel=0.15)


async def test_the_relay_shell_forwards_both_ways_on_loopback_and_delays_as_told() -> None:
    loop = asyncio.get_running_loop()
    server_transport, server = await loop.create_datagram_endpoint(
        Collector, local_addr=(LOOPBACK, 0)
    )
    caller_transport, caller = await loop.create_datagram_endpoint(
        Collector, local_addr=(LOOPBACK, 0)
    )
    target = server_transport.get_extra_info("sockname")[:2]
    try:
        async with UdpRelay(target, forward=Impairment(delay_s=0.030)) as relay:
            for i in range(5):
                caller_transport.sendto(bytes([i]), (LOOPBACK, relay.front_port))
            for _ in range(50):  # bounded wait for the delayed datagrams
                if len(server.datagrams) == 5:
                    break
                await asyncio.sleep(0.01)
            server_transport.sendto(b"reply", (LOOPBACK, relay.back_port))
            for _ in range(50):
                if caller.datagrams:
                    break
                await asyncio.sleep(0.01)
    finally:
        server_transport.close()
        caller_transport.close()
    assert [d for _, d in server.datagrams] == [bytes([i]) for i in range(5)]
    assert [d for _, d in caller.datagrams] == [b"reply"]
    assert all(f.released_s - f.arrived_s == pytest.approx(0.030) for f in relay.forward.log)
    with pytest.raises(ValueError, match="127.0.0.1"):
        UdpRelay(("192.0.2.1", 5004))


# -- a call through the relay (tier 3) -----------------------------------------------------------


@dataclass
class Utterance:
    offset: int  # first sample in the whole stream
    pcm: NDArray[np.int16]
    span: Span  # where the speech is, in ms of the whole stream


def caller_stream() -> tuple[NDArray[np.int16], list[Utterance]]:
    """0.6 s quiet, two sentences 1.5 s apart, 1.5 s quiet: about 9 s, 450 packets."""
    texts = [
        "My date of birth is the fourth of July, nineteen eighty two.",
        "I take aspirin every morning and something for my blood pressure.",
    ]
    pieces: list[NDArray[np.int16]] = [np.zeros(ms_to_samples(600), np.int16)]
    utterances: list[Utterance] = []
    for text in texts:
        pcm = scale_to_dbfs(espeak(text), -20.0)
        offset = sum(len(p) for p in pieces)
        utterances.append(Utterance(offset, pcm, speech_span(pcm, offset)))
        pieces += [pcm, np.zeros(ms_to_samples(1500), np.int16)]
    stream = np.concatenate(pieces)
    stream = np.concatenate([stream, np.zeros((-len(stream)) % FRAME, np.int16)])
    return stream, utterances


class PacedSender(asyncio.DatagramProtocol):
    """A caller's phone: one μ-law packet every 20 ms on an absolute schedule."""

    def __init__(self, payloads: list[bytes], destination: tuple[str, int]) -> None:
        self.payloads = payloads
        self.destination = destination
        self.writer = RtpStreamWriter(
            ssrc=0x5EED1234, initial_seq=65500, initial_timestamp=0xFFFFF000
        )  # both wrap mid-call
        self.received: list[bytes] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        loop = asyncio.get_running_loop()
        self.start = loop.time() + PTIME_S
        loop.call_at(self.start, self._send, 0)

    def _send(self, n: int) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.transport.sendto(self.writer.packet(self.payloads[n], 0, n == 0), self.destination)
        if n + 1 < len(self.payloads):
            loop.call_at(self.start + (n + 1) * PTIME_S, self._send, n + 1)
        elif not self.done.done():
            self.done.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((asyncio.get_running_loop().time(), data))


@dataclass
class CallRecord:
    frames: list[CallerFrame] = field(default_factory=list)
    events: list[object] = field(default_factory=list)


async def drain(call_media: CallMedia, record: CallRecord) -> None:
    async def audio() -> None:
        while (frame := await call_media.audio.get()) is not None:
            record.frames.append(frame)

    async def events() -> None:
        async for event in call_media.iter_events():
            record.events.append(event)

    await asyncio.gather(audio(), events())


def align(received: NDArray[np.float64], clip: NDArray[np.float64], near: int) -> int:
    """Where ``clip`` starts in ``received``, searched from ``near`` to ``near`` + 0.5 s."""
    window = received[near : near + len(clip) + 4000]
    scores = correlate(window, clip, mode="valid", method="fft")
    return near + int(np.argmax(scores))


@pytest.mark.slow
async def test_speech_through_loss_jitter_and_reordering_plays_on_and_rtcp_tells_the_truth(
    open_call: OpenCall,
) -> None:
    began = time.monotonic()
    loop = asyncio.get_running_loop()
    stream, utterances = caller_stream()
    codes = ulaw_encode(stream)
    payloads = [codes[i : i + FRAME].tobytes() for i in range(0, len(codes), FRAME)]
    rtcp_in, rtcp_sink = await loop.create_datagram_endpoint(Collector, local_addr=(LOOPBACK, 0))
    # the relay's back port is only known once it is bound, and the call needs it
    relay = UdpRelay(forward=IMPAIRED)  # its target is the call's port, bound below
    await relay.start()
    call = open_call(relay.back_port, rtcp_in.get_extra_info("sockname")[1], rtcp_interval_s=1.0)
    relay.target = (LOOPBACK, call.rtp_port)
    record = CallRecord()
    drainer = asyncio.create_task(drain(call.media, record))
    try:
        sender_transport, sender = await loop.create_datagram_endpoint(
            lambda: PacedSender(payloads, (LOOPBACK, relay.front_port)), local_addr=(LOOPBACK, 0)
        )
        await asyncio.wait_for(sender.done, timeout=len(payloads) * PTIME_S + 5.0)
        # let the jitter buffer drain: wait (bounded) for a frame past the last one sent
        needed = len(payloads) + 10
        for _ in range(100):
            if len(record.frames) >= needed:
                break
            await asyncio.sleep(0.02)
        report = call.session.report()
        jitter_stats = call.session.jitter.stats()
        call.detach()
        for _ in range(100):
            if any(
                isinstance(p, Bye)
                for _, d in rtcp_sink.datagrams
                for p in parse_rtcp_compound(d).packets
            ):
                break
            await asyncio.sleep(0.01)
        await asyncio.wait_for(drainer, timeout=2.0)
    finally:
        drainer.cancel()
        relay.close()
        rtcp_in.close()
        sender_transport.close()
    counters = relay.forward.counters
    lost = counters.dropped
    assert counters.received == len(payloads)
    assert 0.035 <= counters.loss_fraction <= 0.065  # the impairment is what was asked
    assert 0.01 <= counters.reordered / counters.received <= 0.03
    assert sender.received, "the server's stream came back through the relay"

    # (a) a frame for every tick, lost packets concealed, nothing a listener hears as a hole
    indexes = [f.frame_index for f in record.frames]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    assert len(indexes) >= len(payloads)
    last_real = max(i for i, f in enumerate(record.frames) if not f.concealed)
    concealed = sum(f.concealed for f in record.frames[: last_real + 1])  # tail: sender gone
    assert abs(concealed - lost) <= max(2, round(0.1 * lost)), (concealed, lost, jitter_stats)

    # (b) turns where the speech is, and the speech itself intact
    received = np.concatenate([f.pcm for f in record.frames]).astype(np.float64)
    started = [e for e in record.events if isinstance(e, SpeechStarted)]
    ended = [e for e in record.events if isinstance(e, SpeechEnded)]
    assert len(started) == len(ended) == len(utterances), record.events
    first = indexes[0]
    findings = []
    for utterance, start, end in zip(utterances, started, ended, strict=True):
        clip = ulaw_decode(ulaw_encode(utterance.pcm)).astype(np.float64)
        at = align(received, clip, max(0, utterance.offset - 800))
        shift_ms = (at - utterance.offset) / 8.0  # stream ms -> received ms
        start_error = (start.start_frame - first) * 20.0 - shift_ms - utterance.span.start_ms
        end_error = (end.end_frame - first) * 20.0 - shift_ms - utterance.span.end_ms
        heard = received[at : at + len(clip)]
        corr = float(np.corrcoef(heard, clip[: len(heard)])[0, 1])
        findings.append(f"start {start_error:+.0f} ms, end {end_error:+.0f} ms, corr {corr:.3f}")
        assert abs(start_error) <= 100.0 and abs(end_error) <= 100.0, findings
        assert corr >= 0.9, findings

    # (c) RTCP: the loss and jitter the relay really inflicted (RFC 3550 A.3, A.8)
    relay_loss = counters.loss_fraction
    expected_jitter_ms = rfc3550_jitter(relay.forward_sent) * 1000.0
    server_loss = report.received_lost / report.packets_expected
    assert server_loss == pytest.approx(relay_loss, rel=0.2)
    assert report.received_jitter_ms == pytest.approx(expected_jitter_ms, rel=0.2)
    blocks: list[ReportBlock] = []
    for _, data in rtcp_sink.datagrams:
        for packet in parse_rtcp_compound(data).packets:
            if isinstance(packet, SenderReport | ReceiverReport):
                blocks += [b for b in packet.reports if b.ssrc == sender.writer.ssrc]
    assert len(blocks) >= 4, "periodic reports (every 0.5-1.5 s) and the final one with BYE"
    final = blocks[-1]
    first_seq = 65500
    rr_expected = final.highest_seq - first_seq + 1
    rr_loss = final.cumulative_lost / rr_expected
    rr_jitter_ms = final.jitter / 8.0
    # highest_seq is extended across the 16-bit wrap (65500 + 532 > 65535)
    assert rr_expected == max(f.index for f in relay.forward.log) + 1
    assert rr_loss == pytest.approx(relay_loss, rel=0.2)
    assert rr_jitter_ms == pytest.approx(expected_jitter_ms, rel=0.2)
    assert any(b.fraction_lost > 0 for b in blocks)
    print(
        f"\nrelay: {counters}\njitter buffer: {jitter_stats}\n"
        f"concealed {concealed} of {last_real + 1} frames, relay lost {lost}\n"
        f"turns: {findings}\n"
        f"loss: relay {relay_loss:.4f}, report() {server_loss:.4f}, RR {rr_loss:.4f}; "
        f"jitter: relay A.8 {expected_jitter_ms:.2f} ms, report() "
        f"{report.received_jitter_ms:.2f} ms, RR {rr_jitter_ms:.2f} ms; "
        f"{len(blocks)} report blocks; {time.monotonic() - began:.1f} s"
    )
