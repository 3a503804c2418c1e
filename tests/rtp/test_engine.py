"""MediaEngine: two calls wired back to back on a virtual clock (Tier 2, no sockets).

A *caller* engine and an *agent* engine each run one call; every 20 ms tick both engines
tick at the same virtual time, and each RTP/RTCP datagram one sends is handed to the other's
`MediaSession` (optionally dropped). The caller plays real speech (espeak-ng through G.711)
or tones; the agent hears it, and the tests check what a person on either end would notice:
turns detected where the speech really is, prompts that end or stop, a barge-in that cuts
the prompt at once, lost packets that do not click, DTMF decoded once.

Times in the caller's stream are read from the RTP timestamps the agent's frames carry
(`CallerFrame.timestamp`), so they do not depend on how long the jitter buffer held them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.typing import NDArray

from dsp.bargein import BargeIn
from dsp.dtmf import dtmf_tone
from dsp.endpoint import SpeechEnded, SpeechStarted
from dsp.g711 import G711Law, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from rtp.dtmf import DtmfEvent, event_code
from rtp.engine import (
    CallerFrame,
    DtmfDigit,
    EngineConfig,
    MediaEngine,
    MediaEvent,
    Payload,
    PlayoutDone,
    PlayoutStopped,
)
from rtp.latching import Address
from rtp.packet import RtpPacket
from rtp.rtcp import Bye, ReceiverReport, SenderReport, parse_rtcp
from rtp.seq import ts_diff
from rtp.session import MediaSession, SessionConfig
from tests.dsp.speech import espeak, ms_to_samples, scale_to_dbfs, speech_span, white_noise

PTIME = 0.020
CALLER, AGENT = "caller", "agent"
CALLER_RTP = Address("127.0.0.1", 30000)
AGENT_RTP = Address("127.0.0.2", 40000)
CALLER_TS0 = 0xFFFF0000  # the caller's timestamps wrap during the longer tests
SILENT_PCMU = b"\xff" * 160
TOLERANCE_MS = 60.0


@dataclass
class Side:
    """One end: an engine with one call, and everything it sent and reported."""

    call_id: str
    address: Address
    engine: MediaEngine
    session: MediaSession
    sent: list[tuple[int, RtpPacket]] = field(default_factory=list)  # (tick, packet)
    rtcp: list[tuple[int, bytes]] = field(default_factory=list)
    events: list[MediaEvent] = field(default_factory=list)
    heard: list[CallerFrame] = field(default_factory=list)

    def of(self, kind: type[object]) -> list[MediaEvent]:
        return [e for e in self.events if isinstance(e.event, kind)]

    def kinds(self) -> list[str]:
        return [type(e.event).__name__ for e in self.events]

    def play(self, pcm: NDArray[np.int16]) -> None:
        self.engine.play(self.call_id, pcm)


def make_side(
    call_id: str,
    address: Address,
    peer: Address,
    *,
    ssrc: int,
    ts0: int,
    telephone_event: bool,
    law: G711Law,
    config: EngineConfig | None,
) -> Side:
    session = MediaSession(
        SessionConfig(
            ssrc=ssrc,
            initial_seq=65000,
            initial_timestamp=ts0,
            cname=call_id,
            payload_type=8 if law is G711Law.PCMA else 0,
            telephone_event_pt=101 if telephone_event else None,
            remote_rtp=peer,
            remote_rtcp=Address(peer.host, peer.port + 1),
            rtcp_interval_s=1.0,
        ),
        now=0.0,
    )
    engine = MediaEngine(config)
    engine.add(call_id, session, law)
    return Side(call_id, address, engine, session)


class Wire:
    """Two engines back to back; ``drop(side, packet)`` decides which RTP packets are lost."""

    def __init__(
        self,
        *,
        telephone_event: bool = True,
        law: G711Law = G711Law.PCMU,
        agent_config: EngineConfig | None = None,
    ) -> None:
        # The caller is a person, not a bot: its engine must not stop its own speech when
        # the agent talks over it.
        caller_config = EngineConfig(bargein_enabled=False)
        self.caller = make_side(
            CALLER, CALLER_RTP, AGENT_RTP, ssrc=0xCA11E4, ts0=CALLER_TS0,
            telephone_event=telephone_event, law=law, config=caller_config,
        )  # fmt: skip
        self.agent = make_side(
            AGENT, AGENT_RTP, CALLER_RTP, ssrc=0xA6E47, ts0=1234,
            telephone_event=telephone_event, law=law, config=agent_config,
        )  # fmt: skip
        self.tick_no = 0
        self.drop: Callable[[Side, RtpPacket], bool] = lambda side, packet: False
        self.before_tick: Callable[[int], None] = lambda tick: None

    @property
    def now(self) -> float:
        return self.tick_no * PTIME

    def other(self, side: Side) -> Side:
        return self.agent if side is self.caller else self.caller

    def step(self) -> None:
        self.before_tick(self.tick_no)
        now = self.now
        for side in (self.caller, self.agent):
            result = side.engine.tick(now)
            side.events += result.events
            if side.call_id in result.audio:
                side.heard.append(result.audio[side.call_id])
            peer = self.other(side)
            for datagram in result.datagrams:
                if datagram.rtcp:
                    assert datagram.destination == Address(peer.address.host, peer.address.port + 1)
                    side.rtcp.append((self.tick_no, datagram.data))
                    source = Address(side.address.host, side.address.port + 1)
                    peer.session.receive_rtcp(datagram.data, source, now)
                    continue
                assert datagram.destination == peer.address
                packet = RtpPacket.parse(datagram.data)
                side.sent.append((self.tick_no, packet))
                if not self.drop(side, packet):
                    peer.session.receive_rtp(datagram.data, side.address, now)
        self.tick_no += 1

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.step()

    def run_until_quiet(self, side: Side, limit: int = 3000) -> None:
        """Tick until ``side`` has nothing left to play, plus 1.5 s for the far end."""
        for _ in range(limit):
            if not side.engine.is_playing(side.call_id):
                break
            self.step()
        else:
            raise AssertionError("prompt never finished")
        self.run(75)


def stream_ms(frame: CallerFrame) -> float:
    """Where a frame the agent heard sits in the caller's stream (ms from its first packet)."""
    return ts_diff(frame.timestamp, CALLER_TS0) / 8.0


def frame_at(side: Side, frame_index: int) -> CallerFrame:
    (frame,) = [f for f in side.heard if f.frame_index == frame_index]
    return frame


def line(pcm: NDArray[np.int16], seed: int) -> NDArray[np.int16]:
    """``pcm`` on a phone line: -60 dBFS of noise under it, then μ-law's quantisation."""
    mixed = pcm.astype(np.float64) + white_noise(len(pcm), -60.0, seed)
    return ulaw_decode(ulaw_encode(np.clip(np.round(mixed), -32768, 32767).astype(np.int16)))


def silence(ms: float) -> NDArray[np.int16]:
    return np.zeros(ms_to_samples(ms), dtype=np.int16)


def voiced(ms: float, f0_hz: float = 125.0, dbfs: float = -18.0) -> NDArray[np.int16]:
    """A steady vowel-like sound: ten harmonics of ``f0_hz`` falling at 6 dB per octave."""
    t = np.arange(ms_to_samples(ms)) / 8000.0
    x = sum(np.sin(2 * np.pi * f0_hz * h * t + h) / h for h in range(1, 11))
    x *= 32768 * 10 ** (dbfs / 20) / np.sqrt(np.mean(x**2))
    return np.round(x).astype(np.int16)


# ----------------------------------------------------------------- playout
def test_a_prompt_reaches_the_far_end_intact_and_playout_done_follows_once() -> None:
    wire = Wire()
    wire.run(10)
    prompt = voiced(1000)
    wire.caller.play(prompt)
    wire.run_until_quiet(wire.caller)
    frames = [f for f in wire.agent.heard if 10 * 160 <= ts_diff(f.timestamp, CALLER_TS0)]
    frames = frames[:50]
    assert not any(f.concealed for f in frames)
    heard = np.concatenate([f.pcm for f in frames])
    np.testing.assert_array_equal(heard, ulaw_decode(ulaw_encode(prompt)))  # bit exact
    (done,) = wire.caller.of(PlayoutDone)
    assert done.frame_index == 10 + 50  # the tick after the last frame went out
    assert wire.caller.of(PlayoutStopped) == []
    assert not wire.caller.engine.is_playing(CALLER)


def test_alaw_calls_are_decoded_and_encoded_with_alaw() -> None:
    wire = Wire(law=G711Law.PCMA)
    prompt = voiced(400)
    wire.caller.play(prompt)
    wire.run_until_quiet(wire.caller)
    assert {p.payload_type for _, p in wire.caller.sent} == {8}
    assert wire.caller.sent[-1][1].payload == bytes(alaw_encode(np.zeros(160, np.int16)))
    heard = np.concatenate([f.pcm for f in wire.agent.heard[:20]])
    np.testing.assert_array_equal(heard, alaw_decode(alaw_encode(prompt)))


def test_stop_cuts_the_prompt_reports_playout_stopped_and_the_next_packet_is_silent() -> None:
    wire = Wire()
    wire.caller.play(voiced(2000))
    wire.run(10)
    assert wire.caller.engine.stop(CALLER) == 100 - 10
    wire.run(1)
    tick, packet = wire.caller.sent[-1]
    assert packet.payload == SILENT_PCMU
    (stopped,) = wire.caller.of(PlayoutStopped)
    assert stopped.event == PlayoutStopped(90, "stop") and stopped.frame_index == tick
    wire.run(5)
    assert wire.caller.of(PlayoutDone) == []
    assert not wire.caller.engine.is_playing(CALLER)
    # Stopping with nothing queued drops nothing and reports nothing.
    assert wire.caller.engine.stop(CALLER) == 0
    wire.run(2)
    assert len(wire.caller.of(PlayoutStopped)) == 1


def test_a_prompt_queued_right_after_stop_is_a_new_talkspurt_that_completes() -> None:
    wire = Wire()
    wire.caller.play(voiced(1000))
    wire.run(5)
    wire.caller.engine.stop(CALLER)
    wire.caller.play(voiced(200, f0_hz=200.0))
    wire.run(20)
    markers = [tick for tick, p in wire.caller.sent if p.marker]
    assert markers == [0, 5]
    assert [type(e.event) for e in wire.caller.events] == [PlayoutStopped, PlayoutDone]
    assert wire.caller.of(PlayoutDone)[0].frame_index == 15


# ----------------------------------------------------------------- numbering
def test_marker_at_each_talkspurt_start_and_continuous_numbering_across_silence() -> None:
    wire = Wire()
    schedule = {5: voiced(200), 25: voiced(100), 30: voiced(60)}  # the third joins the second

    def before(tick: int) -> None:
        if tick in schedule:
            wire.caller.play(schedule[tick])

    wire.before_tick = before
    wire.run(50)
    packets = [p for _, p in wire.caller.sent]
    assert len(packets) == 50  # a packet every tick: prompts and silence alike
    assert [tick for tick, p in wire.caller.sent if p.marker] == [5, 25]
    seqs = [p.sequence_number for p in packets]
    assert seqs == [(65000 + n) & 0xFFFF for n in range(50)]
    stamps = [p.timestamp for p in packets]
    assert stamps == [(CALLER_TS0 + 160 * n) & 0xFFFFFFFF for n in range(50)]
    assert {p.ssrc for p in packets} == {0xCA11E4}
    silent = [tick for tick, p in wire.caller.sent if p.payload == SILENT_PCMU]
    assert silent == [*range(0, 5), *range(15, 25), *range(33, 50)]
    assert [e.frame_index for e in wire.caller.of(PlayoutDone)] == [15, 33]


# ----------------------------------------------------------------- speech
UTTERANCES = ("Hello, I would like to book an appointment.", "Yes.", "My date of birth is May 4th.")


def caller_speech(
    gaps_ms: tuple[float, ...],
) -> tuple[NDArray[np.int16], list[tuple[float, float]]]:
    """The utterances after each gap, on a line; the true spans in ms from the start."""
    parts: list[NDArray[np.int16]] = []
    spans: list[tuple[float, float]] = []
    at = 0
    for text, gap in zip(UTTERANCES, gaps_ms, strict=True):
        clip = scale_to_dbfs(espeak(text), -20.0)
        parts += [silence(gap), clip]
        at += ms_to_samples(gap)
        span = speech_span(clip, at)
        spans.append((span.start_ms, span.end_ms))
        at += len(clip)
    parts.append(silence(1500))
    return line(np.concatenate(parts), seed=5), spans


def test_speech_started_and_ended_match_the_callers_speech_within_60_ms() -> None:
    wire = Wire()
    pcm, spans = caller_speech((500.0, 1200.0, 1000.0))
    wire.caller.play(pcm)
    wire.run_until_quiet(wire.caller)
    started = wire.agent.of(SpeechStarted)
    ended = wire.agent.of(SpeechEnded)
    assert len(started) == len(ended) == len(UTTERANCES), wire.agent.kinds()
    errors = []
    for start, end, (true_start, true_end) in zip(started, ended, spans, strict=True):
        assert isinstance(start.event, SpeechStarted) and isinstance(end.event, SpeechEnded)
        assert start.event.start_frame == end.event.start_frame
        assert start.frame_index < end.frame_index  # start reported before the end
        begin_ms = stream_ms(frame_at(wire.agent, end.event.start_frame))
        end_ms = stream_ms(frame_at(wire.agent, end.event.end_frame - 1)) + 20.0
        errors += [begin_ms - true_start, end_ms - true_end]
        # The turn ends 700 ms of silence after the speech: decided then, not later.
        assert end.frame_index - end.event.end_frame <= 35 + 1
    assert max(abs(e) for e in errors) <= TOLERANCE_MS, errors
    assert wire.caller.of(SpeechStarted) == []  # the agent sent only silence


# ----------------------------------------------------------------- barge-in
def test_barge_in_stops_the_prompt_and_the_very_next_packet_is_silence() -> None:
    wire = Wire()
    greeting = line(scale_to_dbfs(espeak("Thank you for calling the clinic. " * 4), -20.0), 8)
    wire.agent.play(greeting)
    wire.run(75)  # 1.5 s into the prompt the caller talks over it
    interruption = scale_to_dbfs(espeak("Stop, I need a person."), -20.0)
    wire.caller.play(line(interruption, seed=9))
    onset_ms = 75 * 20 + speech_span(interruption).start_ms
    wire.run(100)
    (barge,) = wire.agent.of(BargeIn)
    (stopped,) = wire.agent.of(PlayoutStopped)
    assert barge.frame_index == stopped.frame_index
    assert isinstance(stopped.event, PlayoutStopped) and stopped.event.reason == "barge_in"
    assert stopped.event.frames_left > 50  # most of the greeting was still to come
    by_tick = dict(wire.agent.sent)
    assert by_tick[barge.frame_index].payload == SILENT_PCMU  # sent in the same tick
    assert by_tick[barge.frame_index - 1].payload != SILENT_PCMU  # it was talking until then
    assert all(p.payload == SILENT_PCMU for t, p in wire.agent.sent if t >= barge.frame_index)
    assert wire.agent.of(PlayoutDone) == []
    assert not wire.agent.engine.is_playing(AGENT)
    # Decided quickly, and back-dated to the caller's first word.
    assert isinstance(barge.event, BargeIn)
    heard_onset_ms = stream_ms(frame_at(wire.agent, barge.event.onset_frame))
    assert abs(heard_onset_ms - onset_ms) <= TOLERANCE_MS
    assert barge.event.detected_frame - barge.event.onset_frame <= 8  # 160 ms
    # The caller's turn still opens normally.
    assert len(wire.agent.of(SpeechStarted)) == 1


def test_without_barge_in_the_prompt_plays_to_the_end() -> None:
    wire = Wire(agent_config=EngineConfig(bargein_enabled=False))
    wire.agent.play(voiced(1500))
    wire.run(20)
    wire.caller.play(line(scale_to_dbfs(espeak("Stop, I need a person."), -20.0), seed=9))
    wire.run_until_quiet(wire.agent)
    assert wire.agent.of(BargeIn) == [] and len(wire.agent.of(PlayoutDone)) == 1


# ----------------------------------------------------------------- loss
@pytest.mark.parametrize("lost", [[30], [50, 51], [70, 71, 72]])
def test_lost_packets_are_concealed_with_sound_and_without_clicks(lost: list[int]) -> None:
    wire = Wire()
    prompt = voiced(2000)
    wire.caller.play(prompt)
    wire.drop = lambda side, packet: (
        side is wire.caller and ts_diff(packet.timestamp, CALLER_TS0) // 160 in lost
    )
    wire.run(110)
    heard = [f for f in wire.agent.heard if ts_diff(f.timestamp, CALLER_TS0) < 100 * 160]
    positions = [ts_diff(f.timestamp, CALLER_TS0) // 160 for f in heard]
    assert positions == list(range(100))  # one frame per position: none doubled, none missing
    assert [p for p, f in zip(positions, heard, strict=True) if f.concealed] == lost
    out = np.concatenate([f.pcm for f in heard]).astype(np.float64)
    reference = ulaw_decode(ulaw_encode(prompt)).astype(np.float64)
    rms = np.sqrt(np.mean(reference**2))
    first = heard[lost[0]].pcm.astype(np.float64)
    assert np.sqrt(np.mean(first**2)) > 0.5 * rms  # not a hole of silence
    # No clicks: a click is a kink, a second difference sharper than the signal ever has.
    # From the last real sample before the loss through the frame after it, the output bends
    # no more sharply than the real signal does anywhere (silence in the hole bends 2.5 times
    # as sharply at its edges, and repeating the last frame 3.7 times).
    around = out[lost[0] * 160 - 2 : (lost[-1] + 2) * 160]
    sharpest = np.abs(np.diff(reference, 2)).max()
    assert np.abs(np.diff(around, 2)).max() <= 1.1 * sharpest
    # Outside the loss and the recovery fade the audio is exactly what was sent.
    clean = slice((lost[-1] + 2) * 160, 100 * 160)
    np.testing.assert_array_equal(out[clean], reference[clean])


# ----------------------------------------------------------------- DTMF
def press(wire: Wire, digits: str, start_tick: int) -> None:
    """The caller sends RFC 4733 events (4 updates, 3 end copies, 100 ms apart per key)."""
    plan: dict[int, tuple[int, DtmfEvent]] = {}
    tick = start_tick
    for digit in digits:
        code = event_code(digit)
        for n in range(1, 5):
            plan[tick] = (n, DtmfEvent(code, duration=160 * n))
            tick += 1
        for n in range(3):
            plan[tick] = (5 + n, DtmfEvent(code, end=True, duration=800))
            tick += 1
        tick += 3

    def before(tick: int) -> None:
        if tick in plan:
            number, event = plan[tick]
            session = wire.caller.session
            data = session.send_event(bytes(event), number == 1, wire.now)
            wire.agent.session.receive_rtp(data, CALLER_RTP, wire.now)

    wire.before_tick = before


def digits_of(side: Side) -> list[DtmfDigit]:
    return [e.event for e in side.events if isinstance(e.event, DtmfDigit)]


KEYS = "0123456789*#"


def test_rfc4733_digits_become_events_exactly_once() -> None:
    wire = Wire()
    press(wire, KEYS, start_tick=10)
    wire.run(10 + 10 * len(KEYS) + 20)
    assert digits_of(wire.agent) == [DtmfDigit(k, "rfc4733") for k in KEYS]
    assert wire.agent.session.counters.wrong_payload == 0


def dtmf_keys(keys: str) -> NDArray[np.int16]:
    parts = [silence(200)]
    for key in keys:
        parts += [dtmf_tone(key, 0.100, -16.0), silence(100)]
    return line(np.concatenate(parts), seed=3)


def test_inband_tones_are_digits_when_telephone_event_was_not_negotiated() -> None:
    wire = Wire(telephone_event=False)
    wire.caller.play(dtmf_keys(KEYS))
    wire.run_until_quiet(wire.caller)
    assert digits_of(wire.agent) == [DtmfDigit(k, "inband") for k in KEYS]


def test_inband_tones_are_not_decoded_twice_when_rfc4733_is_in_use() -> None:
    wire = Wire(telephone_event=True)
    wire.caller.play(dtmf_keys("159"))
    wire.run_until_quiet(wire.caller)
    assert digits_of(wire.agent) == []  # RFC 4733 senders also leave tones in the audio


# ----------------------------------------------------------------- RTCP
def test_rtcp_reports_flow_both_ways_and_remove_sends_bye() -> None:
    wire = Wire()
    wire.caller.play(voiced(3000))
    lost = {40, 41, 90}
    wire.drop = lambda side, packet: (
        side is wire.caller and ts_diff(packet.timestamp, CALLER_TS0) // 160 in lost
    )
    wire.run(200)  # 4 s: about four reports each way at a 1 s interval
    for side in (wire.caller, wire.agent):
        assert 2 <= len(side.rtcp) <= 9
        kinds = {type(parse_rtcp(data)[0]) for _, data in side.rtcp}
        assert kinds == {SenderReport}  # both send audio (silence included) from the start
    # The agent told the caller how much of the caller's stream it lost.
    report = wire.caller.session.report()
    assert report.remote_cumulative_lost == 3
    assert wire.agent.session.report().received_lost == 3
    assert wire.agent.session.report().remote_cumulative_lost == 0
    bye = wire.agent.engine.remove(AGENT, wire.now)
    assert bye is not None and bye.rtcp
    assert bye.destination == Address(CALLER_RTP.host, CALLER_RTP.port + 1)
    assert isinstance(parse_rtcp(bye.data)[-1], Bye)
    assert AGENT not in wire.agent.engine and len(wire.agent.engine) == 0
    assert wire.agent.engine.remove(AGENT, wire.now) is None


def test_receiver_report_while_nothing_has_been_sent() -> None:
    session = MediaSession(
        SessionConfig(ssrc=1, initial_seq=0, initial_timestamp=0, cname="x", remote_rtp=None),
        now=0.0,
    )
    engine = MediaEngine()
    engine.add("x", session, G711Law.PCMU)
    for n in range(400):
        result = engine.tick(n * PTIME)
        assert result.datagrams == []  # no destination: nothing to send to
    bye = engine.remove("x", 8.0)
    assert bye is None
    assert isinstance(parse_rtcp(session.close(8.0))[0], ReceiverReport)


def test_events_carry_their_call_and_frame_index() -> None:
    wire = Wire()
    wire.caller.play(voiced(100))
    wire.run(10)
    (done,) = wire.caller.events
    assert done == MediaEvent(CALLER, 5, PlayoutDone())
    payload: Payload = done.event
    assert isinstance(payload, PlayoutDone)


def test_send_digits_sends_each_key_as_one_rfc4733_event_decoded_exactly_once() -> None:
    wire = Wire()
    wire.run(5)
    wire.caller.engine.send_digits(wire.caller.call_id, KEYS)
    wire.run(20 * len(KEYS) + 30)
    assert digits_of(wire.agent) == [DtmfDigit(k, "rfc4733") for k in KEYS]
    events = [p for _, p in wire.caller.sent if p.payload_type == 101]
    starts = [p for p in events if p.marker]
    assert len(starts) == len(KEYS)  # the marker opens each event once (RFC 4733 §2.5.1.1)
    # An event's packets share its timestamp; the next audio packet resumes on the grid.
    first_ts = {p.timestamp for p in events}
    assert len(first_ts) == len(KEYS)
    audio = [p for _, p in wire.caller.sent if p.payload_type == 0]
    steps = {(b.timestamp - a.timestamp) % 2**32 for a, b in zip(audio, audio[1:], strict=False)}
    assert steps <= {160 * k for k in range(1, 12)}  # audio timestamps never go backwards
