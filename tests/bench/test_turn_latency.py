"""The turn-latency benchmark measures real turns, end to end (one short call of each app).

It starts the real ``voiceagent serve`` (intake on the embedded providers, then echo as the
baseline) and calls it from the benchmark's own SIP/RTP caller, exactly as the full run does,
so a change that breaks the caller, the measurement or the table is caught here. Timing
targets are not asserted (performance is the benchmark's business); what is asserted is that
the figures are real: turns were spoken, the agent answered them over RTP, and every latency
is positive and plausible.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


@pytest.fixture(scope="module")
def bench_modules() -> None:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))


def test_utterance_ends_on_its_last_non_silent_sample(bench_modules: None) -> None:
    from turn_latency_caller import FRAME_SAMPLES, make_utterance

    from dsp.g711 import ULAW_TO_PCM

    utterance = make_utterance("three days")
    codes = np.frombuffer(b"".join(utterance.payloads), np.uint8)
    pcm = ULAW_TO_PCM[codes]
    last = int(np.flatnonzero(pcm)[-1])
    # t_end is stamped on the packet that carries this sample, and nothing audible follows.
    assert last // FRAME_SAMPLES == utterance.last_voiced_frame
    assert not pcm[last + 1 :].any()
    assert pcm[0] != 0  # leading silence trimmed: the utterance starts on sound
    assert 300 < utterance.voiced_ms < 2000


def test_percentile_is_nearest_rank(bench_modules: None) -> None:
    from turn_latency import percentile

    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile([5.0], 95) == 5.0


@pytest.mark.slow
def test_one_short_call_measures_real_turns(tmp_path: Path) -> None:
    out = tmp_path / "turns.json"
    run = subprocess.run(
        [
            sys.executable,
            str(BENCH / "turn_latency.py"),
            "--calls=1",
            "--turns=2",
            "--baseline-calls=1",
            "--baseline-turns=2",
            "--run-timeout=400",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=450,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "| intake, every answer | 1 |" in run.stdout  # the table row
    figures = json.loads(out.read_text())
    assert figures["endpointing_silence_ms"] == 700
    assert figures["target_ms"] == 1000

    calls = figures["raw"]["intake"]["calls"]
    assert len(calls) == 1 and calls[0]["answered"]
    turns = calls[0]["turns"]
    assert len(turns) >= 2, calls[0]["stopped_because"]
    # The caller kept the line alive (50 packets a second) and heard the agent's prompts.
    assert calls[0]["packets_out"] > 100 and calls[0]["packets_in"] > 100
    answered = [t for t in turns if t["latency_ms"] is not None]
    assert answered, turns
    for turn in answered:
        # Nothing subtracted: at least the endpointing silence minus the caller's quiet tail
        # (its last sounds are under the server's VAD gate), and under a loose bound unless
        # the conversation's 8 s silence timer answered (a turn it recognised nothing in).
        assert 300 < turn["latency_ms"] < 45_000, turn
        assert turn["t_first"] > turn["t_end"]
        # The marker bit opens the answer's talkspurt no later than its first loud packet.
        assert turn["marker_latency_ms"] is not None
        assert turn["marker_latency_ms"] <= turn["latency_ms"] + 0.5
    heard = figures["summary"]["intake_heard"]
    assert heard["count"] > 0 and 300 < heard["p50_ms"] < 10_000
    # The intake's own count of answered turns agrees that its pipeline ran.
    assert figures["raw"]["intake"]["server_turn_latency"], "the server logged no turn_latency"
    assert figures["raw"]["intake"]["server_intake_failed"] == 0

    echo = figures["summary"]["echo"]
    assert echo["count"] >= 1 and 300 < echo["p50_ms"] < 10_000


def test_the_cloud_recogniser_names_each_script_line_by_its_frames(bench_modules: None) -> None:
    from turn_latency_caller import make_utterance
    from turn_latency_cloud import INTAKE_SCRIPT, OPEN_ANSWERS, ScriptFrames

    from dsp.g711 import ulaw_decode

    script = [make_utterance(text) for text in dict.fromkeys(INTAKE_SCRIPT)]
    recogniser = ScriptFrames(script)
    assert OPEN_ANSWERS <= set(INTAKE_SCRIPT)
    for utterance in script:
        # As the loopback Deepgram gets it: the line's μ-law frames, some silence before.
        heard = ulaw_decode(b"\xff" * 800 + b"".join(utterance.payloads))
        assert recogniser.final(heard) == utterance.text
        words = utterance.text.split()
        assert recogniser.partial(heard).split() == words[: max(1, len(words) // 2)]
