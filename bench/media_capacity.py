"""Media capacity benchmark: how many calls' whole media path one core carries.

For each N (default 100, 500, 1,000, 2,000) this starts two processes on two cores:

* ``capacity_server.py`` on core 0: ``MediaRuntime`` under uvloop with N calls (jitter buffer,
  G.711 decode, packet-loss concealment, VAD, endpointing, barge-in detection with the echo
  guard while prompts play, in-band DTMF on every tenth call, encode, paced send, RTCP), a
  prompt replayed on every third call, and every call's events and audio drained as the agent
  would;
* ``capacity_loadgen.py`` on core 1: 50 packets a second of looped espeak-ng speech with
  pauses per call, and the server's packets read back with kernel timestamps.

Each run has a warm-up and then a measurement window (both sides measure the same window of
CLOCK_MONOTONIC time), and stops by itself; a run that overstays its bound is killed.

Figures per N: server CPU per call (µs per 20 ms tick and % of a core), the share of the
server's packets that left more than 5 ms after their deadline (from the load generator's
kernel timestamps, and the server's own count), loss both ways, and ratios against baselines
measured in the same run: the CPU of one bare UDP send+receive on loopback measured in the
server process before the calls start, and the first (smallest) N's per-call CPU.

Usage::

    python bench/media_capacity.py                       # 100, 500, 1000, 2000 calls
    python bench/media_capacity.py --calls 1000 --measure 10 --json /tmp/cap.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from capacity_common import LATE_S, PTIME_S

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line:
                return line
            break
        if proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate()
    raise RuntimeError(f"the capacity server did not become ready in time:\n{err[-3000:]}")


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise RuntimeError("no JSON result line")


def run_one(calls: int, args: argparse.Namespace) -> dict[str, Any]:
    """One N: server and load generator, bounded in time; returns both sides' raw figures."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{BENCH}"}
    server_cmd = [
        sys.executable,
        str(BENCH / "capacity_server.py"),
        f"--calls={calls}",
        f"--base-port={args.base_port}",
        f"--limit-port={args.peer_port - 1}",
        f"--peer-port={args.peer_port}",
        f"--warmup={args.warmup}",
        f"--measure={args.measure}",
        f"--prompt-every={args.prompt_every}",
        f"--inband-every={args.inband_every}",
        f"--phases={args.phases}",
        f"--group-calls={args.group_calls}",
    ]
    if args.no_uvloop:
        server_cmd.append("--no-uvloop")
    if args.realtime:
        server_cmd.append("--realtime")
    if args.gc_freeze:
        server_cmd.append("--gc-freeze")

    bound_s = 60.0 + args.warmup + args.measure + 30.0
    started = time.monotonic()
    server = subprocess.Popen(
        server_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        ready = json.loads(_read_line(server, started + 60.0))
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as plan:
            json.dump(ready, plan)
        loadgen = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "capacity_loadgen.py"),
                f"--calls={calls}",
                f"--plan={plan.name}",
                f"--rtp-port={args.peer_port}",
                f"--audio={args.caller_audio}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        profiler = None
        if args.profile:
            time.sleep(max(0.0, ready["measure_from"] - time.monotonic()))
            profiler = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    f"--pid={server.pid}",
                    "--rate=200",
                    "--nonblocking",
                    "--format=raw",
                    f"--duration={int(args.measure)}",
                    f"--output={args.profile}/server-{calls}.txt",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=lambda: os.sched_setaffinity(0, {1}),
            )
        try:
            load_out, load_err = loadgen.communicate(timeout=bound_s)
        finally:
            if loadgen.poll() is None:
                loadgen.kill()
                loadgen.communicate()
        os.unlink(plan.name)
        if profiler is not None:
            profiler.wait(timeout=30)
        if loadgen.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{load_err[-3000:]}")
        out, err = server.communicate(timeout=max(1.0, started + bound_s - time.monotonic()))
        if server.returncode != 0:
            raise RuntimeError(f"capacity server failed:\n{err[-3000:]}")
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    return {
        "calls": calls,
        "server": _last_json(out),
        "loadgen": _last_json(load_out),
        "wall_s": time.monotonic() - started,
    }


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    """The table's numbers from one run's raw figures."""
    calls = raw["calls"]
    server, load = raw["server"], raw["loadgen"]
    start, end = server["window"]["start"], server["window"]["end"]
    stats0, stats1 = start["stats"], end["stats"]
    cpu = end["cpu_s"] - start["cpu_s"]
    wall = end["wall_s"] - start["wall_s"]
    ticks = stats1["ticks"] - stats0["ticks"]
    sent = stats1["packets_sent"] - stats0["packets_sent"]
    late_packets = stats1.get("late_packets", 0) - stats0.get("late_packets", 0)
    in_expected = end["in_expected"] - start["in_expected"]
    in_lost = end["in_lost"] - start["in_lost"]
    periods = wall / PTIME_S  # every call has one tick per period
    # Work done, not time passed: each call tick that ran sent one RTP packet (RTCP, 0.4 %
    # of packets, counts too). An overloaded server skips ticks; dividing by the ticks due
    # would make it look cheaper the more it fails.
    call_ticks = max(1, sent)
    per_tick_us = cpu / call_ticks * 1e6
    return {
        "calls": calls,
        "cpu_us_per_call_tick": per_tick_us,
        "core_pct_per_call": per_tick_us / (PTIME_S * 1e6) * 100,
        "calls_per_core": PTIME_S * 1e6 / per_tick_us,
        "server_core_pct": cpu / wall * 100,
        "harness_core_pct": server["harness_cpu_s"] / wall * 100,
        "sys_share_pct": (end["sys_s"] - start["sys_s"]) / max(cpu, 1e-9) * 100,
        "preempted_per_s": (end["involuntary_switches"] - start["involuntary_switches"]) / wall,
        "udp_round_us": server["udp_round_us"],
        "cpu_vs_udp_round": per_tick_us / server["udp_round_us"],
        "ticks": ticks,
        "expected_ticks": round(periods * server["groups"]),
        "late_ticks": stats1["late_ticks"] - stats0["late_ticks"],
        "skipped_frames": stats1["skipped_frames"] - stats0["skipped_frames"],
        "max_tick_lateness_ms": end["max_lateness_s"] * 1e3,
        "server_packets_sent": sent,
        "server_late_pct": late_packets / max(1, sent) * 100,
        "send_errors": stats1["send_errors"] - stats0["send_errors"],
        "late_pct": load["late"] / max(1, load["received"]) * 100,
        "out_loss_pct": load["lost"] / max(1, load["expected"]) * 100,
        "in_loss_pct": in_lost / max(1, in_expected) * 100,
        "jb_lost": end["jb_lost"] - start["jb_lost"],
        "lateness_ms": load["lateness_ms"],
        "streams_with_late": load["streams_with_late"],
        "loadgen_core_pct": load["cpu_share"] * 100,
        "loadgen_send_late": load["send_late_in_window"],
        "loadgen_socket_drops": load["socket_overflow_drops"],
        "events": server["events"],
        "prompts_started": server["prompts_started"],
        "loop": server["loop"],
        "compiled": server.get("compiled", False),
        "gc": server["gc"],
    }


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base > 0 else "—"


def markdown(rows: list[dict[str, Any]], command: str, caller_audio: str) -> str:
    """The RESULTS.md tables for these rows (the first row is the same-run baseline)."""
    base = rows[0]
    b = f"× N={base['calls']}"
    lines = [
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {os.cpu_count()} CPUs, "
        f"{_cpu_model()}; Python {platform.python_version()}, {base['loop']}; "
        f"media path {'compiled (mypyc)' if base['compiled'] else 'pure Python'}; "
        f"caller audio: {caller_audio}.",
        "",
        "| N calls | CPU µs per call per tick | % of a core per call | server core % "
        f"| × bare UDP round | {b} | late % (> {LATE_S * 1e3:.0f} ms) | {b} "
        f"| server-counted late % | lateness p99 / max ms | loss out % | {b} | loss in % |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lat = row["lateness_ms"]
        p99 = "—" if lat["p99"] is None else f"{lat['p99']:.1f} / {lat['max']:.1f}"
        lines.append(
            f"| {row['calls']:,} | {row['cpu_us_per_call_tick']:.1f} "
            f"| {row['core_pct_per_call']:.3f} | {row['server_core_pct']:.0f} "
            f"| {row['cpu_vs_udp_round']:.1f} "
            f"| {_ratio(row['cpu_us_per_call_tick'], base['cpu_us_per_call_tick'])} "
            f"| {row['late_pct']:.3f} | {_ratio(row['late_pct'], base['late_pct'])} "
            f"| {row['server_late_pct']:.3f} | {p99} "
            f"| {row['out_loss_pct']:.3f} | {_ratio(row['out_loss_pct'], base['out_loss_pct'])} "
            f"| {row['in_loss_pct']:.3f} |"
        )
    lines += [
        "",
        "| N calls | bare UDP round µs | ticks run / due | late ticks | skipped ticks "
        "| max tick lateness ms | longest GC pause ms | streams with a late packet "
        "| preempted /s | sys % "
        "| load gen core % | load gen late sends "
        "| events (turns started / ended / barge-ins / prompts) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ev = row["events"]
        lines.append(
            f"| {row['calls']:,} | {row['udp_round_us']:.2f} "
            f"| {row['ticks']:,} / {row['expected_ticks']:,} | {row['late_ticks']:,} "
            f"| {row['skipped_frames']:,} | {row['max_tick_lateness_ms']:.1f} "
            f"| {row['gc']['max_pause_ms']:.1f} "
            f"| {row['streams_with_late']:,} | {row['preempted_per_s']:.0f} "
            f"| {row['sys_share_pct']:.0f} | {row['loadgen_core_pct']:.0f} "
            f"| {row['loadgen_send_late']:,} "
            f"| {ev.get('SpeechStarted', 0):,} / {ev.get('SpeechEnded', 0):,} / "
            f"{ev.get('BargeIn', 0):,} / {row['prompts_started']:,} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run every N in turn and print the tables (and the raw figures with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="100,500,1000,2000", help="comma-separated N")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--measure", type=float, default=15.0)
    parser.add_argument("--base-port", type=int, default=40000)
    parser.add_argument("--peer-port", type=int, default=44996)
    parser.add_argument("--prompt-every", type=int, default=3)
    parser.add_argument("--inband-every", type=int, default=10)
    parser.add_argument("--phases", type=int, default=10, help="MediaRuntime phase groups")
    parser.add_argument("--group-calls", type=int, default=0, help="calls per phase group")
    parser.add_argument("--caller-audio", choices=("speech", "silence"), default="speech")
    parser.add_argument(
        "--realtime", action="store_true", help="server SCHED_FIFO (root), as media servers run"
    )
    parser.add_argument("--gc-freeze", action="store_true", help="server: gc.freeze() once set up")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--json", help="write raw and derived figures here")
    parser.add_argument("--profile", help="py-spy the server over the window into this dir")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: the server and the load generator are pinned apart")
    counts = [int(n) for n in args.calls.split(",")]
    if max(counts) * 2 > args.peer_port - args.base_port:
        raise SystemExit("not enough ports between --base-port and --peer-port")
    raws: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for calls in counts:
        print(f"N={calls}: running ...", file=sys.stderr, flush=True)
        raw = run_one(calls, args)
        raws.append(raw)
        rows.append(figures(raw))
        row = rows[-1]
        print(
            f"N={calls}: {row['cpu_us_per_call_tick']:.1f} µs/call/tick, "
            f"server {row['server_core_pct']:.0f} % core, late {row['late_pct']:.3f} %, "
            f"loss out {row['out_loss_pct']:.3f} % in {row['in_loss_pct']:.3f} %",
            file=sys.stderr,
            flush=True,
        )
    command = "python bench/media_capacity.py " + " ".join(sys.argv[1:])
    print(markdown(rows, command.strip(), args.caller_audio))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "raw": raws}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
