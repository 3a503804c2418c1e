"""The mypyc-compiled media path behaves exactly as its source, and stale builds never run."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsp.compiled import COMPILED_MODULES, PURE_PYTHON_ENV, stale_modules

REPO = Path(__file__).resolve().parents[2]


def _scenario(pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_ENV}
    env["PYTHONPATH"] = str(REPO)
    if pure:
        env[PURE_PYTHON_ENV] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "tests.rtp.compiled_scenario"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_compiled_engine_produces_the_same_packets_events_and_audio_as_the_source() -> None:
    stale = stale_modules()
    compiled = _scenario(pure=False)
    if not compiled["compiled"]:
        pytest.fail(
            "the media path is not compiled (or was edited since: "
            f"{', '.join(stale) or 'no extensions'}); rebuild with `pip install -e .`"
        )
    source = _scenario(pure=True)
    assert source["compiled"] is False
    assert compiled["sha256"] == source["sha256"]


def test_an_edited_source_is_stale(tmp_path: Path) -> None:
    name = COMPILED_MODULES[0]
    source = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
    source.parent.mkdir(parents=True)
    source.write_text("")
    extension = source.with_suffix(importlib.machinery.EXTENSION_SUFFIXES[0])
    extension.write_bytes(b"")
    os.utime(source, (1_000, 1_000))
    os.utime(extension, (2_000, 2_000))
    assert stale_modules(tmp_path) == []
    os.utime(source, (3_000, 3_000))  # edited after the build
    assert stale_modules(tmp_path) == [name]
