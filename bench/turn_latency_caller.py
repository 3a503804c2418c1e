"""The turn-latency caller: a SIP/RTP caller that knows to the packet when its speech ends.

Built on our own stacks, like `agent.patient.SimulatedPatient`, but with its RTP leg written
out here (`rtp.pacer` for the 20 ms grid, sequence numbers and timestamps, `rtp.packet` to
parse, `dsp.g711` to code) instead of going through `rtp.transport.MediaRuntime`, so that
the two instants the benchmark needs are read where they happen:

* ``t_end``: CLOCK_MONOTONIC just after ``sendto`` of the RTP packet that carries the last
  non-silent sample of the caller's utterance (its μ-law code decodes to a non-zero sample;
  the utterance is followed by digital silence, so the last such sample is unambiguous);
* ``t_first``: CLOCK_MONOTONIC when the first RTP packet of the agent's next talkspurt whose
  decoded frame is louder than ``LOUD_DBFS`` (the server's VAD energy gate) is received.
  The first packet with the marker bit after ``t_end`` (RFC 3551 §4.1: the engine sets it
  on the first packet of each prompt) is kept as a cross-check: ``t_marker <= t_first``,
  and the difference is the quiet lead-in of the synthesized prompt.

Turn-taking is the patient's: the caller waits until the agent's audio has been quiet for
``QUIET_FRAMES`` after speaking (the 700 ms the endpointers use), then says its next
utterance, sending digital silence in between, 50 packets a second, as a phone does. Every
wait is bounded. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import secrets
import socket
import time
from dataclasses import dataclass, field

import numpy as np

from agent.prompts import PROMPT_LEVEL_DBFS, to_telephone
from agent.providers.espeak import Voice, sample_rate_hz, synthesize
from dsp.g711 import PCM_TO_ULAW, ULAW_SILENCE, ULAW_TO_PCM
from rtp.errors import RtpError
from rtp.pacer import PacedSender, RtpStreamWriter
from rtp.packet import RtpPacket
from sip.call import CallConfirmed, CallEnded
from sip.layer import Address, TransactionLayer
from sip.offer_answer import PCMU, Answer, LocalMedia, accept_answer, build_offer
from sip.sdp import SessionDescription
from sip.transport import SipEndpoint
from sip.uac import Originator
from sip.useragent import UserAgent, UserAgentConfig

LOOPBACK = "127.0.0.1"
FRAME_SAMPLES = 160
PTIME_S = 0.020
LOUD_DBFS = -50.0  # dsp.vad's energy gate: quieter frames are never speech to the server
QUIET_FRAMES = 35  # 700 ms: dsp.endpoint's trailing silence, the patient's turn-taking too
SILENT_PAYLOAD = bytes([ULAW_SILENCE]) * FRAME_SAMPLES
CALLER_VOICE = Voice("en-us+f3")  # not the agent's voice, as the patient's personas do


@dataclass(frozen=True, slots=True)
class Utterance:
    """One caller answer, coded and cut into frames."""

    text: str
    payloads: tuple[bytes, ...]
    last_voiced_frame: int  # index of the frame holding the last non-silent sample

    @property
    def voiced_ms(self) -> float:
        return (self.last_voiced_frame + 1) * PTIME_S * 1000


def make_utterance(text: str, voice: Voice = CALLER_VOICE) -> Utterance:
    """Synthesize ``text`` as the patient does, trimmed to its non-silent samples."""
    pcm = to_telephone(synthesize(text, voice), sample_rate_hz(), PROMPT_LEVEL_DBFS - 4)
    codes = PCM_TO_ULAW[pcm.view(np.uint16)]
    voiced = np.flatnonzero(ULAW_TO_PCM[codes])
    if voiced.size == 0:
        raise ValueError(f"espeak-ng produced silence for {text!r}")
    codes = codes[voiced[0] : voiced[-1] + 1]
    last = len(codes) - 1
    pad = (-len(codes)) % FRAME_SAMPLES
    raw = codes.tobytes() + bytes([ULAW_SILENCE]) * pad
    frames = tuple(raw[i : i + FRAME_SAMPLES] for i in range(0, len(raw), FRAME_SAMPLES))
    return Utterance(text, frames, last // FRAME_SAMPLES)


def frame_dbfs(payload: bytes) -> float:
    """RMS level of one μ-law frame, dBFS."""
    pcm = ULAW_TO_PCM[np.frombuffer(payload, np.uint8)].astype(np.float32)
    mean_square = float(np.dot(pcm, pcm)) / max(len(pcm), 1)
    return 10 * math.log10(mean_square / 32768.0**2 + 1e-30)


@dataclass(slots=True)
class TurnSample:
    """One measured turn (times on CLOCK_MONOTONIC, seconds)."""

    call: int
    turn: int
    text: str
    t_start: float | None = None  # first utterance packet sent
    t_end: float | None = None  # packet with the last non-silent sample sent
    t_end_wall: float | None = None  # the same instant on the wall clock (for server logs)
    t_first: float | None = None  # first loud packet of the agent's answer received
    t_marker: float | None = None  # first marker packet after t_end received
    overlap_frames: int = 0  # loud agent frames received while the caller was speaking

    @property
    def latency_ms(self) -> float | None:
        if self.t_end is None or self.t_first is None:
            return None
        return (self.t_first - self.t_end) * 1000

    @property
    def marker_latency_ms(self) -> float | None:
        if self.t_end is None or self.t_marker is None:
            return None
        return (self.t_marker - self.t_end) * 1000

    def as_dict(self) -> dict[str, object]:
        return {
            "call": self.call,
            "turn": self.turn,
            "text": self.text,
            "latency_ms": self.latency_ms,
            "marker_latency_ms": self.marker_latency_ms,
            "overlap_frames": self.overlap_frames,
            "t_end": self.t_end,
            "t_first": self.t_first,
            "t_end_wall": self.t_end_wall,
        }


class RtpLeg(asyncio.DatagramProtocol):
    """The caller's RTP: a paced PCMU sender and a receiver that watches the agent."""

    def __init__(self, remote: tuple[str, int], payload_type: int) -> None:
        self.remote = remote
        self.payload_type = payload_type
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.writer = RtpStreamWriter(
            ssrc=secrets.randbits(32),
            initial_seq=secrets.randbits(16),
            initial_timestamp=secrets.randbits(32),
        )
        self.pacer = PacedSender(PTIME_S, start=self.loop.time() + PTIME_S, max_burst=3)
        self._timer: asyncio.TimerHandle | None = None
        self._outgoing: collections.deque[tuple[bytes, bool, bool]] = collections.deque()
        self._talkspurt = False
        self.pending: TurnSample | None = None
        self._answered: asyncio.Future[None] | None = None
        # The agent's turn-taking, from loudness: when it last spoke and how long since.
        self.last_loud: float | None = None
        self.quiet_frames = 0
        self._quiet_waiters: list[tuple[float, asyncio.Future[None]]] = []
        self.packets_in = 0
        self.packets_out = 0
        self.bad_packets = 0

    # ----------------------------------------------------------------- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = transport  # type: ignore[assignment]
        self._arm()

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        now = time.monotonic()
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.bad_packets += 1
            return
        if packet.payload_type != self.payload_type:
            return  # telephone-events: the agent never sends them
        self.packets_in += 1
        loud = frame_dbfs(packet.payload) >= LOUD_DBFS
        self._watch_turns(now, loud)
        sample = self.pending
        if sample is None:
            return
        if sample.t_end is None:
            if sample.t_start is not None and loud:
                sample.overlap_frames += 1
            return
        if packet.marker and sample.t_marker is None:
            sample.t_marker = now
        if loud and sample.t_first is None:
            sample.t_first = now
            if self._answered is not None and not self._answered.done():
                self._answered.set_result(None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()
        for _, waiter in self._quiet_waiters:
            if not waiter.done():
                waiter.cancel()

    # ----------------------------------------------------------------- the agent's turns
    def _watch_turns(self, now: float, loud: bool) -> None:
        if loud:
            self.last_loud = now
            self.quiet_frames = 0
            return
        self.quiet_frames += 1
        if self.quiet_frames == QUIET_FRAMES:
            self._wake_quiet_waiters()

    def _wake_quiet_waiters(self) -> None:
        keep = []
        for after, waiter in self._quiet_waiters:
            if self.last_loud is not None and self.last_loud > after:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((after, waiter))
        self._quiet_waiters = keep

    async def agent_finished_after(self, after: float, timeout_s: float) -> bool:
        """Wait until the agent spoke after ``after`` and then went quiet (bounded)."""
        if (
            self.last_loud is not None
            and self.last_loud > after
            and self.quiet_frames >= QUIET_FRAMES
        ):
            return True
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._quiet_waiters.append((after, waiter))
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return False
        return True

    # ----------------------------------------------------------------- our speech
    async def say(self, sample: TurnSample, utterance: Utterance, answer_timeout_s: float) -> None:
        """Speak, then wait (bounded) for the first loud packet of the agent's answer."""
        self.pending = sample
        self._answered = self.loop.create_future()
        for i, payload in enumerate(utterance.payloads):
            self._outgoing.append((payload, i == 0, i == utterance.last_voiced_frame))
        self._talkspurt = True
        speech_s = len(utterance.payloads) * PTIME_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._answered), speech_s + answer_timeout_s)
        self.pending = None
        self._answered = None

    # ----------------------------------------------------------------- sending
    def _arm(self) -> None:
        self._timer = self.loop.call_at(self.pacer.next_deadline(), self._on_tick)

    def _on_tick(self) -> None:
        skipped = self.pacer.skipped
        due = self.pacer.due(self.loop.time())
        if self.pacer.skipped > skipped:
            self.writer.skip(self.pacer.skipped - skipped)
        for _ in range(due):
            self._send_one()
        self._arm()

    def _send_one(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        first = last = False
        if self._outgoing:
            payload, first, last = self._outgoing.popleft()
            marker = first
        else:
            payload, marker = SILENT_PAYLOAD, False
        self.transport.sendto(self.writer.packet(payload, self.payload_type, marker), self.remote)
        sent = time.monotonic()
        self.packets_out += 1
        sample = self.pending
        if sample is not None:
            if first:
                sample.t_start = sent
            if last:
                sample.t_end = sent
                sample.t_end_wall = time.time()


@dataclass(slots=True)
class CallResult:
    """What one call measured."""

    call: int
    answered: bool = False
    ended_by_agent: bool = False
    stopped_because: str = ""
    samples: list[TurnSample] = field(default_factory=list)
    packets_in: int = 0
    packets_out: int = 0


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """An RTP socket on an even loopback port and an RTCP socket on the next one."""
    for _ in range(200):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((LOOPBACK, 0))
        port = int(rtp.getsockname()[1])
        if port % 2 == 0:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind((LOOPBACK, port + 1))
            except OSError:
                rtcp.close()
            else:
                rtp.setblocking(False)
                rtcp.setblocking(False)
                return rtp, rtcp
        rtp.close()
    raise OSError("no free RTP port pair on 127.0.0.1")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class _Drain(asyncio.DatagramProtocol):
    """The RTCP socket: bound so the server's reports land somewhere, and read away."""


class LatencyCaller:
    """Places one call to the agent and measures each turn."""

    def __init__(
        self,
        call: int,
        sip_port: int,
        utterances: list[Utterance],
        *,
        answer_timeout_s: float = 45.0,
        prompt_timeout_s: float = 60.0,
        in_order: bool = False,
    ) -> None:
        self.call = call
        self.server = Address("udp", LOOPBACK, sip_port)
        self.request_uri = f"sip:intake@{LOOPBACK}:{sip_port}"
        self.utterances = utterances
        self.answer_timeout_s = answer_timeout_s
        self.prompt_timeout_s = prompt_timeout_s
        # in_order: the utterances are a script, said once each in order (a whole intake);
        # otherwise each call cycles through them from its own place.
        self.in_order = in_order
        self._confirmed = asyncio.Event()
        self._ended = asyncio.Event()
        self._answer: Answer | None = None
        self._offer: SessionDescription | None = None
        self.result = CallResult(call)

    async def run(self, turns: int, timeout_s: float) -> CallResult:
        """Place the call, take up to ``turns`` turns, hang up; bounded by ``timeout_s``."""
        loop = asyncio.get_running_loop()
        sip_port = _free_udp_port()
        me = Originator(
            from_uri=f"sip:bench@{LOOPBACK}",
            contact_uri=f"sip:bench@{LOOPBACK}:{sip_port}",
            sent_by=f"{LOOPBACK}:{sip_port}",
            user_agent="VoiceAgent-TurnLatency",
        )
        ua = UserAgent(UserAgentConfig(me=me, accept_register=False), TransactionLayer())
        endpoint = SipEndpoint(ua, on_activity=lambda: self._on_sip(ua))
        await endpoint.start(LOOPBACK, sip_port, tcp=False)
        rtp_sock, rtcp_sock = _bind_pair()
        local = LocalMedia(
            LOOPBACK,
            int(rtp_sock.getsockname()[1]),
            codecs=(PCMU,),
            session_id=secrets.randbelow(2**31),
            session_version=1,
            username="bench",
        )
        self._offer = build_offer(local)
        leg: RtpLeg | None = None
        rtcp_transport: asyncio.BaseTransport | None = None
        call_id = ua.invite(self.request_uri, self.server, str(self._offer).encode(), loop.time())
        endpoint.pump()
        try:
            async with asyncio.timeout(timeout_s):
                await self._confirmed.wait()
                answer = self._answer
                if answer is None:
                    self.result.stopped_because = "not answered with usable media"
                    return self.result
                self.result.answered = True
                remote = (answer.remote_address, answer.remote_port)
                _, leg = await loop.create_datagram_endpoint(
                    lambda: RtpLeg(remote, answer.codec.payload_type), sock=rtp_sock
                )
                rtcp_transport, _ = await loop.create_datagram_endpoint(_Drain, sock=rtcp_sock)
                await self._turns(leg, turns)
        except TimeoutError:
            self.result.stopped_because = f"call timeout ({timeout_s:g} s)"
        finally:
            if leg is not None:
                self.result.packets_in = leg.packets_in
                self.result.packets_out = leg.packets_out
                leg.close()
            else:
                rtp_sock.close()
            if rtcp_transport is not None:
                rtcp_transport.close()
            else:
                rtcp_sock.close()
            if not self._ended.is_set():
                ua.hangup(call_id, loop.time())
                endpoint.pump()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), 2.0)
            endpoint.close()
        return self.result

    async def _turns(self, leg: RtpLeg, turns: int) -> None:
        since = time.monotonic()
        for turn in range(turns):
            finished = asyncio.create_task(leg.agent_finished_after(since, self.prompt_timeout_s))
            ended = asyncio.create_task(self._ended.wait())
            done, _ = await asyncio.wait({finished, ended}, return_when=asyncio.FIRST_COMPLETED)
            for task in (finished, ended):
                task.cancel()
            if self._ended.is_set():
                self.result.ended_by_agent = True
                self.result.stopped_because = "agent hung up"
                return
            if finished not in done or not finished.result():
                self.result.stopped_because = "agent silent too long"
                return
            if self.in_order and turn >= len(self.utterances):
                break
            index = turn if self.in_order else (self.call * 7 + turn) % len(self.utterances)
            utterance = self.utterances[index]
            sample = TurnSample(self.call, turn, utterance.text)
            self.result.samples.append(sample)
            await leg.say(sample, utterance, self.answer_timeout_s)
            since = sample.t_first if sample.t_first is not None else time.monotonic()
        self.result.stopped_because = "all turns taken"
        if self.in_order:  # the script's last answer ends the intake: the agent hangs up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), self.prompt_timeout_s)
            self.result.ended_by_agent = self._ended.is_set()

    def _on_sip(self, ua: UserAgent) -> None:
        while (event := ua.next_event()) is not None:
            if isinstance(event, CallConfirmed):
                assert self._offer is not None
                result = accept_answer(
                    self._offer,
                    SessionDescription.parse(event.remote_sdp.decode("utf-8", "replace")),
                )
                if isinstance(result, Answer):
                    self._answer = result
                self._confirmed.set()
            elif isinstance(event, CallEnded):
                self._ended.set()
                self._confirmed.set()
