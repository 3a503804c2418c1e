"""The asyncio shell of the media path: RTP/RTCP sockets, the 20 ms clock, per-call handles.

`MediaRuntime` owns one `MediaEngine` and one timer. Each call gets a non-blocking UDP
socket pair (RTP on an even port, RTCP on the next). RTP is read inside the tick of the
call's phase group, just before the group's playout: one ``epoll`` set per group says which
of its sockets hold datagrams, and each datagram keeps its kernel arrival time
(SO_TIMESTAMPNS), so the jitter buffer and the RFC 3550 statistics see when it really came,
not when it was read. That costs one poll per group tick instead of one event-loop callback
per packet, and a stalled loop finds its queued packets still playable instead of
concealing them. RTCP (a packet every few seconds) is read with ``loop.add_reader``.

The timer runs on absolute deadlines from a `PacedSender` (slot n is due at start +
n*slot, so lateness never accumulates); a stalled loop gets a bounded burst of catch-up
ticks, and the ticks it skips still move the calls' RTP timestamps on (RFC 3550 §5.1).
Sends that the kernel refuses (EAGAIN) are dropped and counted, never retried.

*Phases.* The calls are spread over ``phases`` groups (`MediaEngine`), and the period is cut
into as many slots: slot n ticks group ``n % phases``. Each call still sends every ptime, but
its packet waits only for its own group's work, and the load is even across the period. With
one burst per period, a thousand calls' packets would leave up to a whole tick's work (tens
of milliseconds in Python) after their deadline. Slots of empty groups are not woken for.

*Punctuality* (`ClockStats`): per slot, how late the tick started, and per packet, whether it
left more than ``LATE_THRESHOLD_S`` after its slot's deadline. The packet check reads the
system monotonic clock (uvloop's ``loop.time()`` is the same clock, but cached per loop
iteration and in whole milliseconds), every few packets.

`CallMedia` is the conversation layer's handle: control events (turn start/end, barge-in,
DTMF, playout done) on one queue, caller audio frames on another (control skips the data
queue), and ``play(pcm)`` / ``stop()`` for our speech.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import select
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dsp.g711 import G711Law
from rtp.engine import CallerFrame, Datagram, EngineConfig, MediaEngine, MediaEvent, Payload
from rtp.latching import Address
from rtp.pacer import PacedSender
from rtp.session import MediaSession

LATE_THRESHOLD_S = 0.005
DEFAULT_PHASES = 10  # 2 ms slots at 20 ms ptime
_LATE_CHECK_EVERY = 16  # packets between two clock reads while sending
_MAX_AUDIO_QUEUE = 500  # 10 s of caller frames nobody reads: drop the oldest
_MAX_READ_ROUNDS = 4  # polls per group tick: at most this many datagrams per socket
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the socket module lacks it
_TIMESPEC = struct.Struct("@qq")
_CMSG_SPACE = 64


@dataclass(slots=True)
class ClockStats:
    """How punctual the media clock is."""

    ticks: int = 0  # engine ticks run (one per phase group with calls per slot)
    late_ticks: int = 0  # ticks that ran more than LATE_THRESHOLD_S after their deadline
    max_lateness_s: float = 0.0
    skipped_frames: int = 0  # ticks of a phase group with calls skipped after a stall
    packets_sent: int = 0
    late_packets: int = 0  # RTP packets sent more than LATE_THRESHOLD_S after their deadline
    send_errors: int = 0
    packets_received: int = 0


class CallMedia:
    """The conversation layer's view of one call's media."""

    def __init__(self, runtime: MediaRuntime, call_id: str) -> None:
        self.call_id = call_id
        self._runtime = runtime
        self.events: asyncio.Queue[Payload | None] = asyncio.Queue()
        self.audio: asyncio.Queue[CallerFrame | None] = asyncio.Queue(_MAX_AUDIO_QUEUE)
        self.frame_index = 0
        self.closed = False

    def play(self, pcm: NDArray[np.int16]) -> None:
        """Queue 8 kHz int16 PCM to be spoken to the caller."""
        if not self.closed:
            self._runtime.engine.play(self.call_id, pcm)

    def send_digits(self, digits: str) -> None:
        """Send keypad digits as RFC 4733 telephone-events."""
        if not self.closed:
            self._runtime.engine.send_digits(self.call_id, digits)

    def stop(self) -> int:
        """Stop speaking now; returns the frames dropped."""
        return 0 if self.closed else self._runtime.engine.stop(self.call_id)

    @property
    def playing(self) -> bool:
        """Whether our speech is queued or playing."""
        return not self.closed and self._runtime.engine.is_playing(self.call_id)

    async def iter_events(self) -> AsyncIterator[Payload]:
        """Control events until the call's media closes."""
        while (event := await self.events.get()) is not None:
            yield event

    def _deliver_audio(self, frame: CallerFrame) -> None:
        if self.audio.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.audio.get_nowait()
        self.audio.put_nowait(frame)

    def _close(self) -> None:
        self.closed = True
        self.events.put_nowait(None)
        if self.audio.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.audio.get_nowait()
        self.audio.put_nowait(None)


class _Sockets:
    __slots__ = ("rtcp", "rtp")

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.rtp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtcp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            for sock, p in ((self.rtp, port), (self.rtcp, port + 1)):
                sock.setblocking(False)
                sock.bind((host, p))
            with contextlib.suppress(OSError):  # without it, arrival is the time of reading
                self.rtp.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


class MediaRuntime:
    """Every call's RTP, on one event loop and one clock."""

    def __init__(
        self,
        host: str,
        *,
        config: EngineConfig | None = None,
        ptime_s: float = 0.020,
        phases: int = DEFAULT_PHASES,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.host = host
        self.loop = loop or asyncio.get_running_loop()
        self.engine = MediaEngine(config, phases=phases)
        self.ptime_s = ptime_s
        self.phases = phases
        self.stats = ClockStats()
        # Media events by type name (SpeechStarted, BargeIn, DtmfDigit...), for metrics read
        # at scrape time: a few per turn, never per packet.
        self.event_counts: collections.Counter[str] = collections.Counter()
        self._sockets: dict[str, _Sockets] = {}
        self._handles: dict[str, CallMedia] = {}
        self._pacer: PacedSender | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sources: dict[tuple[str, int], Address] = {}  # one Address per peer socket
        # per phase group: the epoll set of its RTP sockets, and what each fd belongs to
        self._polls = [select.epoll() for _ in range(phases)]
        self._readers: dict[int, tuple[MediaSession, socket.socket]] = {}

    # ----------------------------------------------------------------- calls
    def bind(self, call_id: str, rtp_port: int) -> None:
        """Open the RTP/RTCP sockets for a call before its SDP answer names them.

        Raises:
            OSError: the port pair cannot be bound.
        """
        self._sockets[call_id] = _Sockets(self.host, rtp_port)

    def attach(self, call_id: str, session: MediaSession, law: G711Law) -> CallMedia:
        """Start the media of a call whose sockets are bound."""
        sockets = self._sockets[call_id]
        self._unregister(sockets)  # attached again: the new session takes the sockets
        self.engine.add(call_id, session, law)
        handle = CallMedia(self, call_id)
        self._handles[call_id] = handle
        fd = sockets.rtp.fileno()
        self._polls[self.engine.phase_of(call_id)].register(fd, select.EPOLLIN)
        self._readers[fd] = (session, sockets.rtp)
        self.loop.add_reader(sockets.rtcp.fileno(), self._read_rtcp, session, sockets.rtcp)
        if self._pacer is None:
            self._pacer = PacedSender(
                self.ptime_s / self.phases,
                start=self.loop.time() + self.ptime_s,
                max_burst=3 * self.phases,  # up to three periods of catch-up, as with one
            )
            self._arm()
        return handle

    @property
    def schedule_start(self) -> float | None:
        """When slot 0 was due (``loop.time()`` scale); None while no call is attached.

        A call in phase group ``p`` (`MediaEngine.phase_of`) sends its frames at
        ``schedule_start + p * ptime / phases + k * ptime``.
        """
        return self._pacer.start if self._pacer is not None else None

    def detach(self, call_id: str) -> None:
        """End a call's media: final RTCP BYE, sockets closed, handle closed."""
        now = self.loop.time()
        bye = self.engine.remove(call_id, now)
        sockets = self._sockets.pop(call_id, None)
        if sockets is not None:
            if bye is not None:
                self._sendto(sockets.rtcp, bye)
            self._unregister(sockets)
            sockets.close()
        handle = self._handles.pop(call_id, None)
        if handle is not None:
            handle._close()
        if not self._sockets and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._pacer = None

    def close(self) -> None:
        """Detach every call."""
        for call_id in list(self._sockets):
            self.detach(call_id)

    def _unregister(self, sockets: _Sockets) -> None:
        fd = sockets.rtp.fileno()
        if self._readers.pop(fd, None) is not None:
            for poll in self._polls:
                with contextlib.suppress(OSError):  # registered in one of them
                    poll.unregister(fd)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(sockets.rtcp.fileno())

    # ----------------------------------------------------------------- I/O
    def _read_group(self, phase: int, now: float) -> None:
        """Read every datagram waiting on the RTP sockets of one phase group.

        Each poll round reads one datagram from each ready socket (readiness is level-
        triggered: a socket with more queued is ready again in the next round), so the
        reads never end in a failed ``recvmsg`` and its exception. Arrival times are the
        kernel's receive timestamps, moved from the wall clock onto the loop's clock.
        """
        poll, readers, stats = self._polls[phase], self._readers, self.stats
        wall_offset = time.time() - time.monotonic()
        for _ in range(_MAX_READ_ROUNDS):
            ready = poll.poll(0)
            if not ready:
                return
            for fd, _ in ready:
                reader = readers.get(fd)
                if reader is None:
                    continue
                session, sock = reader
                try:
                    data, ancillary, _, addr = sock.recvmsg(2048, _CMSG_SPACE)
                except OSError:  # ICMP from a peer that went away
                    continue
                stats.packets_received += 1
                arrival = now
                for _, kind, cdata in ancillary:
                    if kind == _SO_TIMESTAMPNS and len(cdata) >= _TIMESPEC.size:
                        seconds, nanoseconds = _TIMESPEC.unpack_from(cdata)
                        arrival = min(now, seconds + nanoseconds * 1e-9 - wall_offset)
                session.receive_rtp(data, self._source(addr), arrival)

    def _read_rtcp(self, session: MediaSession, sock: socket.socket) -> None:
        received = self._receive(sock)
        if received is not None:
            session.receive_rtcp(received[0], received[1], self.loop.time())

    def _receive(self, sock: socket.socket) -> tuple[bytes, Address] | None:
        try:
            data, addr = sock.recvfrom(2048)
        except OSError:  # a spurious wake-up, or ICMP from a peer that went away
            return None
        self.stats.packets_received += 1
        return data, self._source(addr)

    def _source(self, addr: tuple[str, int]) -> Address:
        source = self._sources.get(addr)
        if source is None:
            if len(self._sources) > 4096:  # bounded: peers come and go
                self._sources.clear()
            source = self._sources[addr] = Address(addr[0], addr[1])
        return source

    def _slot(self, deadline: float) -> int:
        assert self._pacer is not None
        return round((deadline - self._pacer.start) / self._pacer.ptime)

    def _arm(self) -> None:
        pacer = self._pacer
        assert pacer is not None
        deadline = pacer.next_deadline()
        occupied = self.engine.occupied_phases()
        if occupied:  # sleep through the slots of empty groups
            phase = self._slot(deadline) % self.phases
            ahead = min((p - phase) % self.phases for p in occupied)
            deadline += ahead * pacer.ptime
        self._timer = self.loop.call_at(deadline, self._on_tick)

    def _on_tick(self) -> None:
        pacer = self._pacer
        if pacer is None:
            return
        now = self.loop.time()
        first = self._slot(pacer.next_deadline())
        skipped_before = pacer.skipped
        due = pacer.due(now)
        skipped = pacer.skipped - skipped_before
        occupied = set(self.engine.occupied_phases())
        for slot in range(first, first + skipped):
            if slot % self.phases in occupied:
                self._read_group(slot % self.phases, now)
                self.engine.skip(1, slot % self.phases)
                self.stats.skipped_frames += 1
        for slot in range(first + skipped, first + skipped + due):
            phase = slot % self.phases
            if phase not in occupied:
                continue
            deadline = pacer.start + slot * pacer.ptime
            lateness = now - deadline
            self.stats.ticks += 1
            if lateness > LATE_THRESHOLD_S:
                self.stats.late_ticks += 1
            self.stats.max_lateness_s = max(self.stats.max_lateness_s, lateness)
            self._read_group(phase, now)
            result = self.engine.tick(now, phase)
            self._dispatch(result.datagrams, result.events, result.audio, deadline)
        self._arm()

    def _dispatch(
        self,
        datagrams: list[Datagram],
        events: list[MediaEvent],
        audio: dict[str, CallerFrame],
        deadline: float,
    ) -> None:
        stats = self.stats
        sockets_of = self._sockets
        late = False
        for n, datagram in enumerate(datagrams):
            sockets = sockets_of.get(datagram.call_id)
            if sockets is None:
                continue
            if datagram.rtcp:
                self._sendto(sockets.rtcp, datagram)
                continue
            if n % _LATE_CHECK_EVERY == 0:
                late = time.monotonic() - deadline > LATE_THRESHOLD_S
            destination = datagram.destination
            try:
                sockets.rtp.sendto(datagram.data, (destination.host, destination.port))
            except OSError:  # EAGAIN, or ICMP from a peer that went away
                stats.send_errors += 1
                continue
            stats.packets_sent += 1
            stats.late_packets += late
        for event in events:
            self.event_counts[type(event.event).__name__] += 1
            handle = self._handles.get(event.call_id)
            if handle is not None:
                handle.frame_index = event.frame_index
                handle.events.put_nowait(event.event)
        for call_id, frame in audio.items():
            handle = self._handles.get(call_id)
            if handle is not None:
                handle._deliver_audio(frame)

    def _sendto(self, sock: socket.socket, datagram: Datagram) -> None:
        try:
            sock.sendto(datagram.data, (datagram.destination.host, datagram.destination.port))
            self.stats.packets_sent += 1
        except (BlockingIOError, InterruptedError, OSError):
            self.stats.send_errors += 1
