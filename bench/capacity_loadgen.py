"""Load generator of the capacity benchmark: N callers' μ-law speech in, the server's RTP back.

Run by ``bench/media_capacity.py`` (not by hand), pinned to its own core. Every call gets 50
packets a second of looped espeak-ng speech with pauses (``capacity_audio``); calls are
staggered evenly across the 20 ms period, as independent phones would be. Everything goes
out of one socket pair, which the server's sessions latch onto (symmetric RTP), and the
server's packets for all calls come back to it.

Arrival times are the kernel's receive timestamps (SO_TIMESTAMPNS), so the generator's own
scheduling delays do not count against the server. Packet ``k`` of call ``c`` is due at
``origin + offset[c] + k * 20 ms`` (``offset`` is the call's phase group's place in the
period, announced by the server; see ``capacity_common``); its lateness is arrival minus
that. On
loopback the transit is a few microseconds, so this is the server's send lateness. Loss is
counted per stream over the ticks of the measurement window: each tick due in the window
that never arrived is lost. SO_RXQ_OVFL reports datagrams our own socket dropped, kept apart
so an overloaded generator is not taken for a lossy server.
"""

from __future__ import annotations

import argparse
import json
import math
import select
import socket
import struct
import sys
import time
from typing import Any

import numpy as np
from capacity_audio import caller_loop_ulaw
from capacity_common import (
    CALLER_SSRC_BASE,
    FRAME_SAMPLES,
    HOST,
    LATE_S,
    PTIME_S,
    SERVER_SSRC_BASE,
    SO_RXQ_OVFL,
    SO_TIMESTAMPNS,
    big_receive_buffer,
    cpu_seconds,
    pin_to_core,
    server_initial_timestamp,
)

_HEADER = struct.Struct("!BBHII")
_TIMESPEC = struct.Struct("@qq")
_OVERFLOW = struct.Struct("@I")
_HEAD_DTYPE = np.dtype([("b0", "u1"), ("b1", "u1"), ("seq", ">u2"), ("ts", ">u4"), ("ssrc", ">u4")])
_FLUSH_EVERY = 8192
_SEND_BATCH = 256  # sends between two receive passes
_RECV_BATCH = 1024


def realtime_offset() -> float:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, from the tightest of a few paired readings."""
    best = (float("inf"), 0.0)
    for _ in range(50):
        m1 = time.monotonic()
        real = time.time()
        m2 = time.monotonic()
        best = min(best, (m2 - m1, real - (m1 + m2) / 2))
    return best[1]


class Receiver:
    """Collects (call, tick index, arrival) for every packet the server sent us."""

    def __init__(self, calls: int, offset: float) -> None:
        self.calls = calls
        self.offset = offset
        self.ts0 = np.array([server_initial_timestamp(c) for c in range(calls)], dtype=np.int64)
        self.heads: list[bytes] = []
        self.stamps: list[Any] = []
        self.call_chunks: list[np.ndarray] = []
        self.tick_chunks: list[np.ndarray] = []
        self.arrival_chunks: list[np.ndarray] = []
        self.foreign = 0
        self.overflow_drops = 0
        self.rtcp = 0

    def flush(self) -> None:
        """Turn the raw headers and timestamps gathered so far into arrays."""
        if not self.heads:
            return
        heads = np.frombuffer(b"".join(self.heads), dtype=_HEAD_DTYPE)
        arrivals = np.empty(len(self.stamps))
        for i, ancillary in enumerate(self.stamps):
            arrival = math.nan
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(data)
                    arrival = sec + nsec * 1e-9 - self.offset
                elif level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
                    self.overflow_drops = max(self.overflow_drops, _OVERFLOW.unpack(data)[0])
            arrivals[i] = arrival
        call = heads["ssrc"].astype(np.int64) - SERVER_SSRC_BASE
        ok = (call >= 0) & (call < self.calls)
        self.foreign += int((~ok).sum())
        call = call[ok]
        tick = ((heads["ts"][ok].astype(np.int64) - self.ts0[call]) & 0xFFFFFFFF) // FRAME_SAMPLES
        self.call_chunks.append(call)
        self.tick_chunks.append(tick)
        self.arrival_chunks.append(arrivals[ok])
        self.heads.clear()
        self.stamps.clear()

    def analyse(
        self, origin: float, offsets: list[float], start: float, end: float
    ) -> dict[str, Any]:
        """Lateness and loss of the server's packets due within [start, end)."""
        self.flush()
        call = np.concatenate(self.call_chunks) if self.call_chunks else np.zeros(0, np.int64)
        tick = np.concatenate(self.tick_chunks) if self.tick_chunks else np.zeros(0, np.int64)
        arrival = np.concatenate(self.arrival_chunks) if self.arrival_chunks else np.zeros(0)
        first = math.ceil((start - origin) / PTIME_S)
        last = math.ceil((end - origin) / PTIME_S)  # exclusive
        inside = (tick >= first) & (tick < last)
        call, tick, arrival = call[inside], tick[inside], arrival[inside]
        key = call * (last + 1) + tick
        _, index = np.unique(key, return_index=True)  # first arrival of each (call, tick)
        duplicates = len(key) - len(index)
        offset = np.asarray(offsets)[call[index]]
        lateness = arrival[index] - (origin + offset + tick[index] * PTIME_S)
        expected = self.calls * (last - first)
        received = len(index)
        late = int((lateness > LATE_S).sum())
        streams_late = len(np.unique(call[index][lateness > LATE_S]))

        def pct(q: float) -> float | None:
            return float(np.percentile(lateness, q) * 1e3) if received else None

        return {
            "expected": expected,
            "received": received,
            "lost": expected - received,
            "duplicates": duplicates,
            "late": late,
            "streams_with_late": streams_late,
            "lateness_ms": {
                "min": float(lateness.min() * 1e3) if received else None,
                "p50": pct(50),
                "p99": pct(99),
                "p99_9": pct(99.9),
                "max": float(lateness.max() * 1e3) if received else None,
            },
        }


def run(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    """Send and receive until ``plan['measure_to']`` has passed, then analyse."""
    calls = args.calls
    ports: list[int] = plan["ports"]
    frames = caller_loop_ulaw() if args.audio == "speech" else [b"\xff" * FRAME_SAMPLES]
    loop_frames = len(frames)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((HOST, args.rtp_port))
    rtcp.bind((HOST, args.rtp_port + 1))
    for sock in (rtp, rtcp):
        sock.setblocking(False)
        big_receive_buffer(sock)
    rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rtp.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
    receiver = Receiver(calls, realtime_offset())
    addresses = [(HOST, port) for port in ports]
    # each caller starts the speech loop at its own place, so turns do not line up
    offsets = [(call * 97) % loop_frames for call in range(calls)]
    seq0 = [(call * 4099 + 3) & 0xFFFF for call in range(calls)]
    ts0 = [(call * 160_001 + 99) & 0xFFFFFFFF for call in range(calls)]
    ssrcs = [CALLER_SSRC_BASE + call for call in range(calls)]
    step = PTIME_S / calls
    stop_at: float = plan["measure_to"] + args.tail
    window = (plan["measure_from"], plan["measure_to"])
    t0 = time.monotonic() + 0.05
    call = tick = 0
    due = t0
    sent = sends_late = 0
    max_send_lag = 0.0
    pack = _HEADER.pack
    sendto = rtp.sendto
    heads, stamps = receiver.heads, receiver.stamps
    cpu_start = cpu_end = 0.0
    measuring = False
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        if not measuring and now >= window[0] and cpu_start == 0.0:
            cpu_start, measuring = cpu_seconds(), True
        if measuring and now >= window[1]:
            cpu_end, measuring = cpu_seconds(), False
        batch = 0
        while due <= now and batch < _SEND_BATCH:
            header = pack(
                0x80,
                0x80 if tick == 0 else 0,
                (seq0[call] + tick) & 0xFFFF,
                (ts0[call] + FRAME_SAMPLES * tick) & 0xFFFFFFFF,
                ssrcs[call],
            )
            try:
                sendto(header + frames[(offsets[call] + tick) % loop_frames], addresses[call])
                sent += 1
            except BlockingIOError:
                pass
            lag = now - due
            if window[0] <= due < window[1]:
                max_send_lag = max(max_send_lag, lag)
                sends_late += lag > LATE_S
            call += 1
            if call == calls:
                call = 0
                tick += 1
            due = t0 + tick * PTIME_S + call * step
            batch += 1
        for _ in range(_RECV_BATCH):
            try:
                data, ancillary, _flags, _addr = rtp.recvmsg(2048, 128)
            except BlockingIOError:
                break
            heads.append(data[:12])
            stamps.append(ancillary)
        if len(heads) >= _FLUSH_EVERY:
            receiver.flush()
        for _ in range(_RECV_BATCH):
            try:
                rtcp.recv(2048)
                receiver.rtcp += 1
            except BlockingIOError:
                break
        wait = due - time.monotonic()
        if wait > 0:
            select.select([rtp, rtcp], [], [], min(wait, 0.002))
    if cpu_end == 0.0:
        cpu_end = cpu_seconds()
    offset_drift = realtime_offset() - receiver.offset
    result = receiver.analyse(plan["origin"], plan["offsets"], *window)
    rtp.close()
    rtcp.close()
    return {
        **result,
        "sent": sent,
        "send_late_in_window": sends_late,
        "max_send_lag_ms": max_send_lag * 1e3,
        "socket_overflow_drops": receiver.overflow_drops,
        "foreign_packets": receiver.foreign,
        "rtcp_received": receiver.rtcp,
        "cpu_share": (cpu_end - cpu_start) / (window[1] - window[0]),
        "clock_offset_drift_us": offset_drift * 1e6,
    }


def main() -> int:
    """Entry point: ``capacity_loadgen.py --calls N --plan FILE --rtp-port P``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--plan", required=True, help="the server's ready line, as a file")
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--audio", choices=("speech", "silence"), default="speech")
    parser.add_argument("--core", type=int, default=1)
    parser.add_argument("--tail", type=float, default=0.5, help="s to keep receiving after")
    args = parser.parse_args()
    pin_to_core(args.core)
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    print(json.dumps(run(args, plan)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
