"""The capacity benchmark runs end to end and measures what it says (a small N, a few seconds).

It starts the real server and load generator processes pinned to two cores, exactly as the
full run does, so a change that breaks the media path, the load generator's measurement or
the table is caught here rather than when the benchmark is next needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CALLS = 20


@pytest.mark.slow
def test_twenty_calls_are_carried_measured_and_tabled(tmp_path: Path) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.fail("the benchmark pins server and load generator to two different cores")
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "media_capacity.py"),
            f"--calls={CALLS}",
            "--warmup=1",
            "--measure=3",
            "--base-port=45000",
            "--peer-port=45100",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"| {CALLS} |" in run.stdout  # the table row
    (row,) = json.loads(out.read_text())["rows"]
    # Every packet the server owed in the window came back (loopback, 20 calls: no excuse).
    assert row["out_loss_pct"] < 1.0 and row["in_loss_pct"] < 1.0
    assert 0 < row["cpu_us_per_call_tick"] < 5000
    assert row["ticks"] > 0 and row["skipped_frames"] == 0
    # The whole path ran: turns were detected and prompts played on the caller's speech.
    assert row["events"].get("SpeechStarted", 0) > 0 and row["prompts_started"] > 0
    # Both lateness measures looked at the same packets.
    assert abs(row["late_pct"] - row["server_late_pct"]) < 5.0
