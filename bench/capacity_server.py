"""Server side of the capacity benchmark: N calls' whole media path in one pinned process.

Run by ``bench/media_capacity.py`` (not by hand). The process pins itself to one core, runs
``MediaRuntime`` under uvloop with N calls bound on consecutive loopback port pairs, and
drives it the way the agent does: prompts are played on a share of the calls (and replayed a
few seconds after each ends or is barged in on), control events and caller audio are drained
from every call's queues. It prints one JSON line when ready (ports, schedule origin and the
measurement window, all on the CLOCK_MONOTONIC scale the load generator shares) and one with
the figures when the window has passed, then exits.

Baseline measured in the same process, before any call exists: the CPU cost of one bare UDP
round on loopback (one ``sendto`` plus one ``recvfrom`` of a 172-octet datagram), the least
any media path can spend per call per tick.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import resource
import socket
import sys
import time
from dataclasses import asdict
from typing import Any

from capacity_audio import prompt_pcm
from capacity_common import (
    HOST,
    PTIME_S,
    SERVER_SSRC_BASE,
    cpu_seconds,
    pin_to_core,
    raise_nofile,
    server_initial_seq,
    server_initial_timestamp,
)

import rtp.engine
from dsp.compiled import is_compiled, stale_modules
from dsp.g711 import G711Law
from rtp.latching import Address
from rtp.session import MediaSession, SessionConfig
from rtp.transport import CallMedia, MediaRuntime

_DRAIN_PERIOD_S = 0.1
_PROMPT_GAP_S = 3.0


def udp_round_cost_us(rounds: int = 20_000) -> float:
    """CPU microseconds of one sendto + recvfrom of a 172-octet datagram on loopback."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((HOST, 0))
    rx.setblocking(False)
    address = rx.getsockname()
    data = bytes(172)
    best = float("inf")
    try:
        for _ in range(3):
            start = time.process_time()
            for _ in range(rounds):
                tx.sendto(data, address)
                rx.recvfrom(2048)
            best = min(best, (time.process_time() - start) / rounds * 1e6)
    finally:
        rx.close()
        tx.close()
    return best


def bind_calls(runtime: MediaRuntime, calls: int, base_port: int, limit_port: int) -> list[int]:
    """Bind ``calls`` RTP/RTCP pairs from ``base_port`` up, skipping pairs another program holds."""
    ports: list[int] = []
    port = base_port
    while len(ports) < calls:
        if port + 1 > limit_port:
            raise SystemExit(f"only {len(ports)} free port pairs in {base_port}-{limit_port}")
        try:
            runtime.bind(f"call-{len(ports)}", port)
            ports.append(port)
        except OSError:
            pass
        port += 2
    return ports


class GcWatch:
    """Pauses of the cyclic garbage collector (a long one delays every call's packets)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self.measuring = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        elif self.measuring:
            self.pauses.append((info["generation"], time.perf_counter() - self.started))

    def summary(self) -> dict[str, Any]:
        """Collections per generation and the longest pause, in the window."""
        counts = collections.Counter(generation for generation, _ in self.pauses)
        longest = max((pause for _, pause in self.pauses), default=0.0)
        return {"collections": {str(g): n for g, n in sorted(counts.items())},
                "max_pause_ms": longest * 1e3}  # fmt: skip


class Harness:
    """Plays prompts, drains queues and takes the two snapshots of the measurement window."""

    def __init__(self, runtime: MediaRuntime, handles: list[CallMedia], prompt_every: int):
        self.runtime = runtime
        self.handles = handles
        self.prompt = prompt_pcm()
        self.prompt_calls = list(range(0, len(handles), prompt_every)) if prompt_every else []
        self.was_playing = dict.fromkeys(self.prompt_calls, False)
        self.next_play = dict.fromkeys(self.prompt_calls, 0.0)
        self.events: collections.Counter[str] = collections.Counter()
        self.audio_frames = 0
        self.concealed_frames = 0
        self.prompts_started = 0
        self.harness_cpu_s = 0.0
        self.measuring = False

    def drain(self, now: float) -> None:
        """One pass of the consumer: queues emptied, prompts restarted where due."""
        start = time.process_time()
        for handle in self.handles:
            events = handle.events
            while not events.empty():
                event = events.get_nowait()
                if self.measuring:
                    self.events[type(event).__name__] += 1
            audio = handle.audio
            while not audio.empty():
                frame = audio.get_nowait()
                if self.measuring and frame is not None:
                    self.audio_frames += 1
                    self.concealed_frames += frame.concealed
        for call in self.prompt_calls:
            handle = self.handles[call]
            if handle.playing:
                self.was_playing[call] = True
            elif self.was_playing[call]:
                self.was_playing[call] = False
                self.next_play[call] = now + _PROMPT_GAP_S
            elif now >= self.next_play[call]:
                handle.play(self.prompt)
                self.was_playing[call] = True
                self.prompts_started += self.measuring
        if self.measuring:
            self.harness_cpu_s += time.process_time() - start

    def snapshot(self) -> dict[str, Any]:
        """CPU first (so the sweep below is not billed to the window), then the counters."""
        cpu = cpu_seconds()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic()
        stats = asdict(self.runtime.stats)
        expected = received = lost = jb_lost = jb_late = jb_underruns = jb_dropped = 0
        jb_inserted = 0
        for handle in self.handles:
            session = self.runtime.engine.session(handle.call_id)
            if session is None:
                continue
            report = session.report()
            expected += report.packets_expected
            received += report.packets_received
            lost += report.received_lost
            jitter = session.jitter.stats()
            jb_lost += jitter.lost
            jb_late += jitter.late
            jb_underruns += jitter.underruns
            jb_dropped += jitter.dropped
            jb_inserted += jitter.inserted
        return {
            "cpu_s": cpu,
            "sys_s": usage.ru_stime,
            "involuntary_switches": usage.ru_nivcsw,
            "wall_s": wall,
            "stats": stats,
            "in_expected": expected,
            "in_received": received,
            "in_lost": lost,
            "jb_lost": jb_lost,
            "jb_late": jb_late,
            "jb_underruns": jb_underruns,
            "jb_dropped": jb_dropped,
            "jb_inserted": jb_inserted,
        }


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Set up the calls, announce them, measure the window, tear down."""
    loop = asyncio.get_running_loop()
    runtime = MediaRuntime(HOST, ptime_s=PTIME_S, phases=args.phases)
    if args.group_calls:
        runtime.engine.group_calls = args.group_calls
    ports = bind_calls(runtime, args.calls, args.base_port, args.limit_port)
    peer_rtp = Address(HOST, args.peer_port)
    peer_rtcp = Address(HOST, args.peer_port + 1)
    handles: list[CallMedia] = []
    for call in range(args.calls):
        inband = args.inband_every and call % args.inband_every == 1
        config = SessionConfig(
            ssrc=SERVER_SSRC_BASE + call,
            initial_seq=server_initial_seq(call),
            initial_timestamp=server_initial_timestamp(call),
            cname=f"bench-{call}",
            telephone_event_pt=None if inband else 101,
            remote_rtp=peer_rtp,
            remote_rtcp=peer_rtcp,
        )
        session = MediaSession(config, loop.time())
        handles.append(runtime.attach(f"call-{call}", session, G711Law.PCMU))
    harness = Harness(runtime, handles, args.prompt_every)
    gc_watch = GcWatch()
    gc.callbacks.append(gc_watch)
    if args.gc_freeze:  # the calls' long-lived state leaves the collector's generations
        gc.collect()
        gc.freeze()
    origin = runtime.schedule_start
    slot_s = PTIME_S / runtime.phases
    offsets = [runtime.engine.phase_of(h.call_id) * slot_s for h in handles]
    ready_at = time.monotonic()
    measure_from = ready_at + args.lead + args.warmup
    measure_to = measure_from + args.measure
    print(
        json.dumps(
            {
                "ready": True,
                "ports": ports,
                "origin": origin,
                "offsets": offsets,
                "measure_from": measure_from,
                "measure_to": measure_to,
            }
        ),
        flush=True,
    )

    def drain_periodically() -> None:
        harness.drain(loop.time())
        if not done.done():
            loop.call_later(_DRAIN_PERIOD_S, drain_periodically)

    snapshots: dict[str, dict[str, Any]] = {}

    def start_window() -> None:
        runtime.stats.max_lateness_s = 0.0
        snapshots["start"] = harness.snapshot()
        harness.measuring = gc_watch.measuring = True

    def end_window() -> None:
        harness.measuring = gc_watch.measuring = False
        snapshots["end"] = harness.snapshot()
        snapshots["end"]["max_lateness_s"] = runtime.stats.max_lateness_s
        done.set_result(None)

    done: asyncio.Future[None] = loop.create_future()
    loop.call_later(_DRAIN_PERIOD_S, drain_periodically)
    loop.call_at(measure_from, start_window)  # loop.time() and time.monotonic() share a clock
    loop.call_at(measure_to, end_window)
    await asyncio.wait_for(done, timeout=measure_to - loop.time() + 30.0)
    groups = len(runtime.engine.occupied_phases())
    runtime.close()
    return {
        "calls": args.calls,
        "phases": args.phases,
        "groups": groups,
        "window": snapshots,
        "events": dict(harness.events),
        "audio_frames": harness.audio_frames,
        "concealed_frames": harness.concealed_frames,
        "prompts_started": harness.prompts_started,
        "prompt_calls": len(harness.prompt_calls),
        "harness_cpu_s": harness.harness_cpu_s,
        "gc": gc_watch.summary(),
    }


def main() -> int:
    """Entry point: ``capacity_server.py --calls N --peer-port P ...``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--base-port", type=int, default=40000)
    parser.add_argument("--limit-port", type=int, default=44995)
    parser.add_argument("--peer-port", type=int, required=True)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--lead", type=float, default=1.0, help="s for the load to start")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--measure", type=float, default=15.0)
    parser.add_argument("--prompt-every", type=int, default=3, help="prompts on every k-th call")
    parser.add_argument("--inband-every", type=int, default=10, help="in-band DTMF every k-th")
    parser.add_argument("--phases", type=int, default=10, help="MediaRuntime phase groups")
    parser.add_argument("--group-calls", type=int, default=0, help="calls per group (0: default)")
    parser.add_argument("--realtime", action="store_true", help="SCHED_FIFO priority 10")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once set up")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    pin_to_core(args.core)
    if args.realtime:  # as media servers run (FreeSWITCH -rp): ordinary processes wait
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    raise_nofile(2 * args.calls + 256)
    baseline_us = udp_round_cost_us()
    try:
        import uvloop
    except ImportError:  # not a declared dependency: measure on asyncio's loop, and say so
        uvloop = None
    if args.no_uvloop or uvloop is None:
        result = asyncio.run(serve(args))
        loop_name = "asyncio" if args.no_uvloop else "asyncio (uvloop not installed)"
    else:
        result = uvloop.run(serve(args))
        loop_name = f"uvloop {uvloop.__version__}"
    result["udp_round_us"] = baseline_us
    result["loop"] = loop_name
    result["compiled"] = is_compiled(rtp.engine)  # mypyc build in use (dsp.compiled)
    result["stale"] = stale_modules()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
