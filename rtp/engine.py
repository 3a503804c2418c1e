"""The media path of every call, one 20 ms tick at a time, batched across calls (sans-I/O).

Theory of operation
-------------------
`MediaEngine.tick(now)` runs once per ptime for all calls (the shell's `PacedSender` keeps
the absolute schedule). Per tick:

1. *Playout*: each call's `MediaSession.playout(now)` gives a `Frame`, a `Gap` or nothing yet.
2. *Decode*: all frames' G.711 codes are gathered into one ``(calls, 160)`` array and decoded
   with one table lookup (μ-law and A-law rows share a 512-entry table). A gap is concealed
   (`dsp.plc.Concealer`), and the first real frame after it is cross-faded in.
3. *Analyse*: frame levels are computed for the whole batch; webrtcvad is consulted only for
   frames above the energy gate. Per call, the `Vad` hysteresis, the `Endpointer` (turn
   start/end), the `BargeInDetector` (with the `EchoGuard` while we play, re-seeded when
   the jitter buffer slips a frame and so moves the echo) and, for calls that did not
   negotiate RFC 4733, in-band DTMF (`DtmfToneDetector`) run on that frame.
   A quiet call with no turn in progress skips all of that (the common case).
4. *Send*: each call's next outgoing frame (a prompt queued with `play`, else silence) is
   encoded in one batch and stamped by its session (continuous timestamps and sequence
   numbers; marker at each talkspurt start). A barge-in empties the call's queue in the same
   tick, so the next packet after detection already carries silence.

Output: datagrams with their destination, events (`MediaEvent`), and the decoded caller
audio per call for speech recognition. Frame indexes count ticks since the call was added,
so ``frame_index * ptime`` is the call's media time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from dsp.bargein import BargeInState
from dsp.endpoint import SpeechEnded, SpeechStarted
from dsp.g711 import (
    ALAW_SILENCE,
    ALAW_TO_PCM,
    PCM_TO_ALAW,
    PCM_TO_ULAW,
    ULAW_SILENCE,
    ULAW_TO_PCM,
    G711Law,
)
from dsp.vad import VadState
from rtp.channel import FRAME_SAMPLES, Channel
from rtp.dtmf import DtmfEvent, event_code
from rtp.jitter import Frame, GapReason
from rtp.latching import Address
from rtp.session import MediaSession
from rtp.tick import (
    CallerFrame,
    Datagram,
    DtmfDigit,
    EngineConfig,
    MediaEvent,
    Payload,
    PlayoutDone,
    PlayoutStopped,
    TickResult,
    build_caller_frame,
    build_datagram,
)

__all__ = [
    "FRAME_SAMPLES",
    "CallerFrame",
    "Datagram",
    "DtmfDigit",
    "EngineConfig",
    "MediaEngine",
    "MediaEvent",
    "Payload",
    "PlayoutDone",
    "PlayoutStopped",
    "TickResult",
]

_DECODE = np.concatenate([ULAW_TO_PCM, ALAW_TO_PCM]).astype(np.int16)
_FULL_SCALE_SQ = 32768.0**2
_SILENT_PCM = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_SILENT_PCM.flags.writeable = False  # shared by every silent call; nobody may write to it
_SILENT_PAYLOAD = {
    G711Law.PCMU: bytes([ULAW_SILENCE]) * FRAME_SAMPLES,
    G711Law.PCMA: bytes([ALAW_SILENCE]) * FRAME_SAMPLES,
}


class MediaEngine:
    """All calls' media, advanced together by `tick`.

    With ``phases`` > 1 the shell ticks one phase group at a time, ``ptime / phases`` apart,
    so a call's packet waits only for its own group's work, not every call's. A group fills
    to ``group_calls`` (a tick has a fixed cost) before another opens, as far as possible
    from the open ones; then calls join the smallest. ``tick(now)`` advances every call.
    """

    def __init__(
        self, config: EngineConfig | None = None, *, phases: int = 1, group_calls: int = 25
    ) -> None:
        if phases < 1 or group_calls < 1:
            raise ValueError("phases and group_calls must be at least 1")
        self.config = config or EngineConfig()
        self.phases = phases
        self.group_calls = group_calls
        self._channels: dict[str, Channel] = {}
        self._groups: list[dict[str, Channel]] = [{} for _ in range(phases)]
        self._gate_ms = _FULL_SCALE_SQ * 10 ** (self.config.vad.scorer.gate_dbfs / 10)
        self.on_audio: Callable[[str, NDArray[np.int16]], None] | None = None

    def add(self, call_id: str, session: MediaSession, law: G711Law) -> None:
        """Start processing a call (in the phase group `_place` picks)."""
        previous = self._channels.get(call_id)
        if previous is not None:  # re-added: the new session replaces the old one
            self._groups[previous.phase].pop(call_id, None)
        phase = self._place()
        channel = Channel(call_id, session, law, self.config, phase)
        self._channels[call_id] = channel
        self._groups[phase][call_id] = channel

    def _place(self) -> int:
        """The phase group a new call joins (see the class docstring)."""
        sizes, n = [len(group) for group in self._groups], self.phases
        opened = [p for p in range(n) if sizes[p]]
        roomy = [p for p in opened if sizes[p] < self.group_calls]
        closed = [p for p in range(n) if not sizes[p]]
        if roomy or not closed or not opened:
            return min(roomy or range(n), key=lambda p: sizes[p])
        # the closed group farthest from the nearest open one, around the period
        return max(closed, key=lambda p: min(min((p - q) % n, (q - p) % n) for q in opened))

    def phase_of(self, call_id: str) -> int:
        """The phase group of a call: its ticks come ``phase * ptime / phases`` into a period."""
        return self._channels[call_id].phase

    def occupied_phases(self) -> list[int]:
        """The phase groups that have calls, in order."""
        return [p for p, group in enumerate(self._groups) if group]

    def remove(self, call_id: str, now: float) -> Datagram | None:
        """Stop processing a call; returns its final RTCP BYE compound, if it can be sent."""
        channel = self._channels.pop(call_id, None)
        if channel is None:
            return None
        self._groups[channel.phase].pop(call_id, None)
        destination = channel.session.rtcp_destination
        if destination is None:
            return None
        return Datagram(call_id, channel.session.close(now), destination, rtcp=True)

    def session(self, call_id: str) -> MediaSession | None:
        """The RTP session of a call."""
        channel = self._channels.get(call_id)
        return channel.session if channel else None

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._channels

    def __len__(self) -> int:
        return len(self._channels)

    def play(self, call_id: str, pcm: NDArray[np.int16]) -> None:
        """Queue 8 kHz PCM for the caller (padded with silence to whole frames)."""
        channel = self._channels[call_id]
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("play() takes 1-D int16 PCM at 8 kHz")
        pad = (-len(pcm)) % FRAME_SAMPLES
        if pad:
            pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
        if channel.stopped:  # stopped since the last tick: this is a new talkspurt
            channel.stopped = False
            channel.talkspurt = True
        channel.outgoing.extend(pcm.reshape(-1, FRAME_SAMPLES))

    def stop(self, call_id: str) -> int:
        """Drop whatever is queued for a call; returns the frames dropped."""
        channel = self._channels.get(call_id)
        if channel is None:
            return 0
        dropped = len(channel.outgoing)
        channel.outgoing.clear()
        if dropped:
            channel.stopped = True  # no PlayoutDone for this prompt: PlayoutStopped instead
            channel.pending.append(PlayoutStopped(dropped, "stop"))
        return dropped

    def send_digits(
        self, call_id: str, digits: str, *, tone_ms: int = 100, gap_ms: int = 80
    ) -> None:
        """Queue RFC 4733 telephone-events for ``digits`` (one event per digit).

        Each event: an update every tick for ``tone_ms`` (marker on the first), then the end
        packet three times (RFC 4733 §2.5.1.4), then ``gap_ms`` of ordinary audio.
        """
        channel = self._channels[call_id]
        if channel.session.config.telephone_event_pt is None:
            raise ValueError("telephone-event was not negotiated for this call")
        ticks = max(1, tone_ms // 20)
        for digit in digits:
            code = event_code(digit)
            for k in range(ticks):
                payload = bytes(DtmfEvent(code, end=False, duration=FRAME_SAMPLES * (k + 1)))
                channel.dtmf.append((payload, k == 0))
            end = bytes(DtmfEvent(code, end=True, duration=FRAME_SAMPLES * ticks))
            channel.dtmf.extend([(end, False)] * 3)
            channel.dtmf.extend([(b"", False)] * max(1, gap_ms // 20))

    def is_playing(self, call_id: str) -> bool:
        """Whether a prompt is queued or playing."""
        channel = self._channels.get(call_id)
        return bool(channel and (channel.outgoing or channel.speaking))

    # ----------------------------------------------------------------- the tick
    def tick(self, now: float, phase: int | None = None) -> TickResult:
        """Advance every call (or the calls of one phase group) by one frame period."""
        result = TickResult()
        group = self._channels if phase is None else self._groups[phase]
        if not group:
            return result
        channels = list(group.values())
        for channel in channels:
            if channel.pending:
                for payload in channel.pending:
                    result.events.append(MediaEvent(channel.call_id, channel.frame_index, payload))
                channel.pending.clear()
        received = self._receive(channels, now, result)
        self._analyse(received, result)
        self._send(channels, now, result)
        for channel in channels:
            channel.frame_index += 1
            session = channel.session
            if now >= session.next_rtcp_deadline():
                report = session.rtcp_due(now)
                destination = session.rtcp_destination
                if report is not None and destination is not None:
                    result.datagrams.append(
                        Datagram(channel.call_id, report, destination, rtcp=True)
                    )
        return result

    def skip(self, frames: int, phase: int | None = None) -> None:
        """Account for ticks the shell could not run (a stalled process).

        The calls' frame indexes and outgoing RTP timestamps move on, so both still tell
        media time (RFC 3550 §5.1: the timestamp gap says how long nothing was sent).
        """
        group = self._channels if phase is None else self._groups[phase]
        for channel in group.values():
            channel.frame_index += frames
            channel.session.skip(frames)

    def _receive(
        self, channels: list[Channel], now: float, result: TickResult
    ) -> list[tuple[Channel, NDArray[np.int16]]]:
        rows: list[Channel] = []
        payloads: list[bytes] = []
        row_stamps: list[int] = []
        gaps: list[Channel] = []
        gap_stamps: list[int] = []
        mixed_laws = False
        for channel in channels:
            session = channel.session
            if session.has_digits:
                for digit in session.digits():
                    result.events.append(
                        MediaEvent(
                            channel.call_id, channel.frame_index, DtmfDigit(digit.digit, "rfc4733")
                        )
                    )
            item = session.playout(now)
            if item is None:
                continue
            timestamp = item.timestamp
            if isinstance(item, Frame) or item.reason is GapReason.LOST:
                offset = (timestamp - channel.frame_index * FRAME_SAMPLES) & 0xFFFFFFFF
                if offset != channel.media_offset:
                    channel.track_slip(timestamp)
            if isinstance(item, Frame) and len(item.payload) == FRAME_SAMPLES:
                rows.append(channel)
                payloads.append(item.payload)
                row_stamps.append(timestamp)
                mixed_laws = mixed_laws or channel.law_offset != 0
            else:
                gaps.append(channel)  # lost, late, or an odd-sized frame: conceal
                gap_stamps.append(timestamp)
        out: list[tuple[Channel, NDArray[np.int16]]] = []
        audio = result.audio
        if rows:
            codes = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(rows), -1)
            if mixed_laws:
                offsets = np.asarray([c.law_offset for c in rows], dtype=np.int32)[:, None]
                pcm = _DECODE[codes.astype(np.int32) + offsets]
            else:
                pcm = ULAW_TO_PCM[codes]
            for i, channel in enumerate(rows):
                frame = pcm[i]
                if channel.concealer.concealing:
                    frame = channel.concealer.receive(frame)
                out.append((channel, frame))
                channel.history.append(frame)
                audio[channel.call_id] = build_caller_frame(
                    channel.frame_index, frame, row_stamps[i], False
                )
        for i, channel in enumerate(gaps):
            history = (
                np.concatenate(list(channel.history))
                if channel.history
                else np.zeros(FRAME_SAMPLES, dtype=np.int16)
            )
            frame = channel.concealer.conceal(history)
            out.append((channel, frame))
            channel.history.append(frame)
            audio[channel.call_id] = build_caller_frame(
                channel.frame_index, frame, gap_stamps[i], True
            )
        return out

    def _analyse(
        self, received: list[tuple[Channel, NDArray[np.int16]]], result: TickResult
    ) -> None:
        if not received:
            return
        frames = np.stack([frame for _, frame in received]).astype(np.float32)
        mean_square = np.einsum("ij,ij->i", frames, frames) / FRAME_SAMPLES
        # Python lists: indexing a numpy array per call costs more than the whole batch
        loud: list[bool] = (mean_square >= self._gate_ms).tolist()
        levels: list[float] = (10.0 * np.log10(mean_square / _FULL_SCALE_SQ + 1e-30)).tolist()
        quiet, idle = VadState.QUIET, BargeInState.IDLE
        bargein_enabled = self.config.bargein_enabled
        events = result.events
        for i, (channel, frame) in enumerate(received):
            if channel.inband is not None:
                digit = channel.inband.push(frame)
                if digit is not None:
                    events.append(
                        MediaEvent(channel.call_id, channel.frame_index, DtmfDigit(digit, "inband"))
                    )
            is_loud = loud[i]
            vad = channel.vad
            if (
                not is_loud
                and not channel.turn_open
                and not channel.speaking
                and vad.state is quiet
            ):
                continue  # nothing can change: keep the hot path cheap
            # the batch already applied the energy gate: only loud frames reach the model
            is_speech = is_loud and channel.scorer.model_is_speech(frame)
            state = vad.advance(is_speech, levels[i])
            event = channel.endpointer.update(state, channel.frame_index, vad.active)
            if isinstance(event, SpeechStarted):
                channel.turn_open = True
                events.append(MediaEvent(channel.call_id, channel.frame_index, event))
            elif isinstance(event, SpeechEnded):
                channel.turn_open = False
                events.append(MediaEvent(channel.call_id, channel.frame_index, event))
            # an idle detector with no prompt playing stays idle: skip the call
            if bargein_enabled and (channel.speaking or channel.bargein.state is not idle):
                self._check_bargein(channel, state, frame, result)

    def _check_bargein(
        self, channel: Channel, state: VadState, frame: NDArray[np.int16], result: TickResult
    ) -> None:
        near_end = True
        if channel.speaking and channel.echo is not None and state.is_speech_frame:
            near_end = channel.echo.measure(frame).near_end
        barge = channel.bargein.update(state, channel.speaking, channel.frame_index, near_end)
        if barge is not None:
            dropped = len(channel.outgoing)
            channel.outgoing.clear()
            channel.stopped = True
            result.events.append(MediaEvent(channel.call_id, channel.frame_index, barge))
            result.events.append(
                MediaEvent(
                    channel.call_id, channel.frame_index, PlayoutStopped(dropped, "barge_in")
                )
            )

    def _send(self, channels: list[Channel], now: float, result: TickResult) -> None:
        sending: list[tuple[Channel, Address]] = []
        playing: list[int] = []  # indexes into sending of the calls that play a prompt
        frames: list[NDArray[np.int16]] = []
        for channel in channels:
            destination = channel.session.destination
            if destination is None:
                continue
            if channel.dtmf and self._send_event(channel, destination, now, result):
                continue  # this tick carries a telephone-event instead of audio
            if channel.outgoing:
                playing.append(len(sending))
                frames.append(channel.outgoing.popleft())
            sending.append((channel, destination))
        if not sending:
            return
        # Only prompt frames are encoded (in one batch); silence is a constant payload.
        pcm = ulaw = alaw = None
        if frames:
            pcm = np.stack(frames)
            bits = pcm.view(np.uint16)
            ulaw = PCM_TO_ULAW[bits]
            if any(sending[i][0].law is G711Law.PCMA for i in playing):
                alaw = PCM_TO_ALAW[bits]
        playing.append(-1)  # sentinel
        row = 0
        datagrams, events = result.datagrams, result.events
        for i, (channel, destination) in enumerate(sending):
            was_speaking = channel.speaking
            if i == playing[row]:
                assert pcm is not None and ulaw is not None
                frame = pcm[row]
                codes = alaw if alaw is not None and channel.law is G711Law.PCMA else ulaw
                payload = codes[row].tobytes()
                row += 1
                channel.speaking = True
            else:
                frame = _SILENT_PCM
                payload = _SILENT_PAYLOAD[channel.law]
                channel.speaking = False
            if channel.echo is not None and (channel.speaking or channel.echo_tail):
                channel.feed_echo_guard(frame, was_speaking)
            start = channel.speaking and (channel.talkspurt or not was_speaking)
            channel.talkspurt = False
            data = channel.session.send_audio(payload, start, now)
            datagrams.append(build_datagram(channel.call_id, data, destination, False))
            if was_speaking and not channel.speaking:
                if not channel.stopped:
                    events.append(MediaEvent(channel.call_id, channel.frame_index, PlayoutDone()))
                channel.stopped = False

    @staticmethod
    def _send_event(channel: Channel, destination: Address, now: float, result: TickResult) -> bool:
        """Send this tick's RFC 4733 packet, if one is due (True when one was sent)."""
        payload, start = channel.dtmf.popleft()
        if not payload:
            return False  # a gap between digits: this tick carries audio
        data = channel.session.send_event(payload, start, now)
        channel.session.skip_frame()
        result.datagrams.append(build_datagram(channel.call_id, data, destination, False))
        return True
