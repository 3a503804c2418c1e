"""``voiceagent serve`` with timing probes, for ``turn_latency.py --profile``.

The same `agent.runtime.Server` as ``voiceagent serve`` (same settings, environment and
uvloop), with three probes composed around its providers that log CLOCK_MONOTONIC instants
as JSON lines (``event: bench_probe``), on the clock the benchmark's caller reads, so each
turn's latency can be cut into parts:

* ``stt_finish``: the recogniser's ``finish()`` called and returned (the end-of-turn decode),
  with the turn's hint kind (grammar or free speech);
* ``heard``: the transcript callback, just after recognition (``CallSession._close_turn``);
* ``speak``: the transcript callback for a ``Speak`` command, before its prompt is fetched;
* ``prompt``: `PromptCache.get` started and ended, and whether it had to synthesize.

No text is logged (lengths only): the probes sit where a caller's words pass.

Usage (by the benchmark)::

    python bench/turn_latency_server.py --sip-port P --rtp-ports LOW-HIGH [--log-level L]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import numpy as np
import structlog
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agent.runtime  # noqa: E402
from agent.config import load_settings  # noqa: E402
from agent.logs import configure_logging  # noqa: E402
from agent.prompts import PromptCache  # noqa: E402
from agent.providers.base import (  # noqa: E402
    RecognitionHints,
    RecognitionStream,
    SpeechToText,
    Transcript,
)
from agent.providers.embedded import make_embedded_stt  # noqa: E402

log = structlog.get_logger("voiceagent.bench")


class TimedStream:
    """A recognition stream whose ``finish`` is timed."""

    def __init__(self, inner: RecognitionStream, kind: str) -> None:
        self._inner = inner
        self._kind = kind

    async def feed(self, pcm8k: NDArray[np.int16]) -> None:
        await self._inner.feed(pcm8k)

    def interim(self) -> AsyncIterator[Transcript]:
        return self._inner.interim()

    async def finish(self) -> Transcript:
        started = time.monotonic()
        result = await self._inner.finish()
        log.info(
            "bench_probe",
            probe="stt_finish",
            t0=started,
            t1=time.monotonic(),
            chars=len(result.text),
            audio_s=result.audio_s,
            kind=self._kind,
        )
        return result


class TimedStt:
    """The embedded recogniser with each turn's ``finish`` timed."""

    def __init__(self, inner: SpeechToText) -> None:
        self._inner = inner

    def start(self, hints: RecognitionHints) -> AbstractAsyncContextManager[TimedStream]:
        return self._turn(hints)

    @asynccontextmanager
    async def _turn(self, hints: RecognitionHints) -> AsyncIterator[TimedStream]:
        async with self._inner.start(hints) as stream:
            yield TimedStream(stream, hints.kind.value)

    async def warm_up(self) -> float:
        warm_up = getattr(self._inner, "warm_up", None)
        return 0.0 if warm_up is None else float(await warm_up())

    async def aclose(self) -> None:
        await self._inner.aclose()


class TimedPromptCache(PromptCache):
    """`PromptCache` that logs how long each ``get`` took and whether it synthesized."""

    def get(self, text: str) -> NDArray[np.int16]:
        with self._lock:
            cached = text in self._cache
        started = time.monotonic()
        pcm = super().get(text)
        log.info(
            "bench_probe",
            probe="prompt",
            t0=started,
            t1=time.monotonic(),
            cached=cached,
            chars=len(text),
            audio_s=len(pcm) / 8000,
        )
        return pcm


def _line(speaker: str, text: str) -> None:
    kind = "speak" if speaker == "agent" else "heard"
    log.info("bench_probe", probe=kind, t0=time.monotonic(), chars=len(text))


def main() -> int:
    parser = argparse.ArgumentParser(description="voiceagent serve with timing probes")
    parser.add_argument("--sip-host", default="127.0.0.1")
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--rtp-ports", required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    settings = load_settings(
        {
            "sip_host": args.sip_host,
            "sip_port": args.sip_port,
            "rtp_ports": args.rtp_ports,
            "log_level": args.log_level,
        }
    )
    configure_logging(settings.log_level)
    # The runtime builds its recogniser through this factory; the probe wraps what it builds.
    # (agent.runtime imported the factory by name, so its binding is the one to wrap.)
    setattr(agent.runtime, "make_embedded_stt", lambda: TimedStt(make_embedded_stt()))  # noqa: B010

    async def run() -> int:
        server = agent.runtime.Server(settings, transcript=_line)
        server.prompts = TimedPromptCache()
        await server.start()
        await server.run_until_stopped()
        return 0

    try:
        import uvloop

        return uvloop.run(run())
    except ImportError:
        return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
