"""Embedded streaming speech recognition: pocketsphinx decoders in worker processes.

Theory of operation
-------------------
`PocketsphinxStt` satisfies `agent.providers.base.SpeechToText`. It keeps two small pools of
decoder workers, loaded once and reused because loading the acoustic model takes time
(measured here: 0.2 s per decoder without the language model, 0.5 s with it; the default
three workers, process start-up included, are ready 1.6-1.9 s after `warm_up` starts on an
idle two-core machine). Each worker also runs a phone-loop decoder over the same audio for
the confidence (`agent.providers.sphinx_recognizer`):

* grammar workers (``grammar_workers``, default 2): no language model; a JSGF grammar per
  turn (every kind but free speech). 1.5 ms of CPU per 20 ms of audio.
* language-model workers (``language_model_workers``, default 1): the bundled trigram model,
  for free speech. 5-7 ms of CPU per 20 ms of audio.

Each worker is a process of its own, reached through a one-process
`concurrent.futures.ProcessPoolExecutor`, not a thread: pocketsphinx's binding keeps the GIL
while it decodes, and the end of a free-speech turn holds it for 270-310 ms, long enough to
make every call's 20 ms media tick late. A process also lets two turns decode on two cores.
One process runs its jobs in order, so a turn's ``begin``, ``feed``s and ``finish`` never
overtake each other, and a decoder (which is not thread-safe) only ever sees one caller.
Workers are started with the ``spawn`` method (forking a process that runs an event loop and
its threads is unsafe), so, as with any spawned multiprocessing, the program's main module
must be importable without side effects (the ``if __name__ == "__main__"`` idiom; console
scripts and pytest are). Audio crosses as 320-byte blocks, 50 a second per call.

A turn is ``async with stt.start(hints) as stream``. Entering takes an idle worker of the
right pool (waiting at most ``acquire_timeout_s``) and starts the turn there; ``feed`` sends
each block as it arrives without waiting for it to be decoded (at most
``max_pending_blocks`` blocks may be in flight; past that ``feed`` waits, which is the
backpressure); ``finish`` waits for the final result. Leaving the block without ``finish``
queues an abort behind whatever the worker is still doing and gives the worker back at once.
A worker whose process died is replaced by a fresh one (it loads the model on its first job).

Failures reach the caller as `SpeechRecognitionError`, the runtime's one boundary for them: no
idle worker in time, a worker that died, a result later than ``finish_timeout_s``. Nothing
here logs: transcripts are PHI.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from agent.errors import AgentError
from agent.providers.base import HintKind, RecognitionHints, Transcript
from agent.providers.sphinx_recognizer import DecoderKind, Recognizer, RecognizerConfig, Result

__all__ = ["PocketsphinxStt", "SpeechRecognitionError", "SphinxConfig", "SphinxStream"]

T = TypeVar("T")

_MAX_QUEUED_INTERIMS: Final = 8  # older interim results are superseded anyway


class SpeechRecognitionError(AgentError):
    """The recogniser could not produce a transcript for this turn."""


@dataclass(frozen=True, slots=True)
class SphinxConfig:
    """Sizes and limits of the embedded recogniser.

    Attributes:
        grammar_workers: decoder processes for grammar turns (all kinds but free speech).
        language_model_workers: decoder processes for free-speech turns.
        recognizer: how each decoder is built (front end, cepstral mean, second pass).
        acquire_timeout_s: longest wait for an idle worker when a turn starts.
        finish_timeout_s: longest wait for the final result once ``finish`` is called.
        max_pending_blocks: audio blocks sent but not yet decoded before ``feed`` waits.
    """

    grammar_workers: int = 2
    language_model_workers: int = 1
    recognizer: RecognizerConfig = field(default_factory=RecognizerConfig)
    acquire_timeout_s: float = 5.0
    finish_timeout_s: float = 10.0
    max_pending_blocks: int = 50

    def __post_init__(self) -> None:
        if self.grammar_workers < 1 or self.language_model_workers < 1:
            raise ValueError("each pool needs at least one worker")


# --- inside a worker process ------------------------------------------------------------------
# The process exists to hold exactly this one recogniser; the module-level slot is its only
# state and is set once, by the executor's initializer, in the child process alone.

_recognizer: Recognizer | None = None
_load_s: float = 0.0


def _init_worker(kind: DecoderKind, config: RecognizerConfig) -> None:
    global _recognizer, _load_s
    parent = multiprocessing.parent_process()
    if parent is not None:  # a killed server must not leave its decoders behind (measured)
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    started = time.perf_counter()
    _recognizer = Recognizer(kind, config)
    _load_s = time.perf_counter() - started
    atexit.register(_release)


def _release() -> None:
    # Free the decoders before interpreter teardown: soxr's nanobind extension otherwise
    # reports the live resampler as a leak on stderr when the worker exits.
    global _recognizer
    _recognizer = None


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])  # readable once the parent is gone
    os._exit(0)


def _here() -> Recognizer:
    if _recognizer is None:
        raise RuntimeError("worker process has no recogniser")
    return _recognizer


def _ready() -> float:
    _here()
    return _load_s


def _begin(hints: RecognitionHints) -> tuple[str, ...]:
    return _here().begin(hints)


def _feed(pcm8k: bytes) -> str | None:
    return _here().feed(np.frombuffer(pcm8k, dtype=np.int16))


def _finish() -> Result:
    return _here().finish()


def _abort() -> None:
    _here().abort()


# --- in the event loop ------------------------------------------------------------------------


class _Worker:
    """One decoder process."""

    def __init__(self, kind: DecoderKind, config: RecognizerConfig) -> None:
        self.kind = kind
        self._config = config
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),  # fork would copy the loop's threads
            initializer=_init_worker,
            initargs=(kind, config),
        )
        self.broken = False

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        try:
            return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (BrokenExecutor, RuntimeError) as exc:
            self.broken = True
            raise SpeechRecognitionError("recogniser worker is not running") from exc

    def respawned(self) -> _Worker:
        self._executor.shutdown(wait=False, cancel_futures=True)
        return _Worker(self.kind, self._config)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class _Pool:
    """Idle workers of one kind; a turn holds one from start to end."""

    def __init__(self, workers: list[_Worker]) -> None:
        self.workers = workers
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        for worker in workers:
            self._idle.put_nowait(worker)

    async def acquire(self, timeout_s: float) -> _Worker:
        try:
            return await asyncio.wait_for(self._idle.get(), timeout_s)
        except TimeoutError:
            raise SpeechRecognitionError(f"no idle recogniser within {timeout_s} s") from None

    def release(self, worker: _Worker) -> None:
        if worker.broken:
            replacement = worker.respawned()
            self.workers[self.workers.index(worker)] = replacement
            worker = replacement
        self._idle.put_nowait(worker)


class SphinxStream:
    """One caller turn on one worker (a `agent.providers.base.RecognitionStream`)."""

    def __init__(self, worker: _Worker, config: SphinxConfig, dropped: tuple[str, ...]) -> None:
        self._worker = worker
        self._config = config
        self.dropped_phrases = dropped
        """Phrases of the hints the recogniser could not pronounce and left out."""
        self._pending: collections.deque[asyncio.Future[str | None]] = collections.deque()
        self._interims: asyncio.Queue[Transcript | None] = asyncio.Queue()
        self._error: BaseException | None = None
        self._final: Transcript | None = None
        self._closed = False

    async def feed(self, pcm8k: NDArray[np.int16]) -> None:
        """Send the next block (8 kHz int16 mono) to the decoder without waiting for it.

        Raises:
            TypeError: ``pcm8k`` is not a 1-D int16 array.
            SpeechRecognitionError: the turn is over, or the worker failed.
        """
        if not isinstance(pcm8k, np.ndarray) or pcm8k.dtype != np.int16 or pcm8k.ndim != 1:
            raise TypeError("feed() takes a 1-D int16 array of 8 kHz samples")
        if self._closed:
            raise SpeechRecognitionError("feed() after the turn ended")
        self._raise_if_failed()
        future = self._worker.submit(_feed, pcm8k.tobytes())
        future.add_done_callback(self._on_decoded)
        self._pending.append(future)
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        if len(self._pending) > self._config.max_pending_blocks:
            await self._wait(self._pending.popleft())

    def _on_decoded(self, future: asyncio.Future[str | None]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._error = self._error or error
            return
        text = future.result()
        if text is not None and not self._closed:
            self._push(Transcript(text, 0.0, is_final=False))

    def _push(self, item: Transcript | None) -> None:
        if item is not None and self._interims.qsize() >= _MAX_QUEUED_INTERIMS:
            self._interims.get_nowait()
        self._interims.put_nowait(item)

    async def interim(self) -> AsyncIterator[Transcript]:
        """Partial transcripts (confidence 0.0) as they change, then the final one."""
        while (item := await self._interims.get()) is not None:
            yield item

    async def finish(self) -> Transcript:
        """End the turn and return the final transcript.

        Raises:
            SpeechRecognitionError: the worker failed or answered too late.
        """
        if self._final is not None:
            return self._final
        if self._closed:
            raise SpeechRecognitionError("finish() after the turn was aborted")
        self._raise_if_failed()
        result = await self._wait(self._worker.submit(_finish))
        self._raise_if_failed()
        self._final = Transcript(result.text, result.confidence, True, (), result.audio_s)
        self._closed = True
        self._push(self._final)
        self._push(None)
        return self._final

    async def _wait(self, future: asyncio.Future[T]) -> T:
        try:
            return await asyncio.wait_for(future, self._config.finish_timeout_s)
        except TimeoutError:
            self._worker.broken = True  # it may be wedged: replace it when the turn ends
            raise SpeechRecognitionError(
                f"recogniser gave no result within {self._config.finish_timeout_s} s"
            ) from None
        except BrokenExecutor as exc:
            self._worker.broken = True
            raise SpeechRecognitionError("recogniser worker died") from exc
        except Exception as exc:  # raised by the recogniser in the worker, pickled back
            raise SpeechRecognitionError(f"recogniser failed: {exc}") from exc

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            if isinstance(self._error, BrokenExecutor):
                self._worker.broken = True
            raise SpeechRecognitionError("recogniser failed on this turn") from self._error

    def close(self) -> None:
        """Abort the turn if it has not finished (queued behind the worker's current job)."""
        if not self._closed:
            self._closed = True
            if not self._worker.broken:
                try:
                    self._worker.submit(_abort).add_done_callback(_consume)
                except SpeechRecognitionError:
                    pass  # the worker is gone; release() replaces it
            self._push(None)


def _consume(future: asyncio.Future[None]) -> None:
    """Retrieve a fire-and-forget job's outcome so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()


class PocketsphinxStt:
    """Streaming pocketsphinx recognition (a `agent.providers.base.SpeechToText`).

    Constructing it starts nothing: each worker process starts, and loads its model, on its
    first job. `warm_up` (or the `open` shorthand) does that up front, so the caller's first
    answer is not the one that waits for it.
    """

    def __init__(self, config: SphinxConfig | None = None) -> None:
        """Plan the worker pools of ``config`` (no process starts yet)."""
        self.config = config or SphinxConfig()
        recognizer = self.config.recognizer
        self._pools = {
            DecoderKind.GRAMMAR: _Pool(
                [
                    _Worker(DecoderKind.GRAMMAR, recognizer)
                    for _ in range(self.config.grammar_workers)
                ]
            ),
            DecoderKind.LANGUAGE_MODEL: _Pool(
                [
                    _Worker(DecoderKind.LANGUAGE_MODEL, recognizer)
                    for _ in range(self.config.language_model_workers)
                ]
            ),
        }
        self.load_s: float | None = None
        """Seconds `warm_up` took to start every worker and load its model."""

    @classmethod
    async def open(cls, config: SphinxConfig | None = None) -> PocketsphinxStt:
        """Construct and `warm_up`."""
        stt = cls(config)
        await stt.warm_up()
        return stt

    async def warm_up(self) -> float:
        """Start every worker process and wait until each has loaded its model.

        Returns:
            The seconds it took (also kept as ``load_s``).

        Raises:
            SpeechRecognitionError: a worker could not start or load the model.
        """
        started = time.perf_counter()
        workers = [w for pool in self._pools.values() for w in pool.workers]
        try:
            await asyncio.gather(*(w.submit(_ready) for w in workers))
        except Exception as exc:
            raise SpeechRecognitionError("recogniser workers failed to start") from exc
        self.load_s = time.perf_counter() - started
        return self.load_s

    def start(self, hints: RecognitionHints) -> AbstractAsyncContextManager[SphinxStream]:
        """Open a stream for one turn; leaving the block without ``finish`` aborts it."""
        return self._turn(hints)

    @asynccontextmanager
    async def _turn(self, hints: RecognitionHints) -> AsyncIterator[SphinxStream]:
        kind = DecoderKind.LANGUAGE_MODEL
        if hints.kind is not HintKind.FREE_SPEECH:
            kind = DecoderKind.GRAMMAR
        pool = self._pools[kind]
        worker = await pool.acquire(self.config.acquire_timeout_s)
        stream: SphinxStream | None = None
        try:
            begin = worker.submit(_begin, hints)
            try:
                dropped = await asyncio.wait_for(begin, self.config.finish_timeout_s)
            except (BrokenExecutor, TimeoutError) as exc:
                worker.broken = True
                raise SpeechRecognitionError("recogniser could not start the turn") from exc
            except ValueError as exc:  # hints it cannot recognise (no phrase pronounceable)
                raise SpeechRecognitionError(f"recogniser refused the hints: {exc}") from exc
            stream = SphinxStream(worker, self.config, dropped)
            yield stream
        finally:
            if stream is not None:
                stream.close()
            pool.release(worker)

    async def aclose(self) -> None:
        """Stop every worker process (waits for jobs already running)."""
        workers = [w for pool in self._pools.values() for w in pool.workers]
        await asyncio.gather(*(asyncio.to_thread(w.shutdown) for w in workers))
