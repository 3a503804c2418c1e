"""Per-call failover from a cloud provider to the embedded one, for speech in and out.

Theory of operation
-------------------
A call starts on the configured (cloud) provider. The first time it fails during the call (a
`ProviderError`: a dropped socket that will not reopen, a 429 or 5xx answer, a timeout; or any
other exception from the vendor's client), the call switches to the embedded provider for the
rest of the call, and the switch is logged once (``provider_failover`` with the call's id,
the role, from, to and the reason class: never what was said) and counted in
`agent.metrics.PROVIDER_FAILOVERS`. Other calls keep their own state: one wrapper per call.

Nothing is lost at the switch. The recogniser wrapper keeps the turn's audio as it is fed; when
the cloud stream fails (opening, while fed, or while finishing), an embedded stream is opened
and given the whole turn so far, so the same turn is recognised by pocketsphinx instead of
being dropped. The synthesiser wrapper falls back by speaking the sentence with espeak-ng.
Before the first cloud chunk the caller has heard nothing, so this is seamless; after some
cloud audio has gone out it cannot know where in the text that audio stopped, so it speaks the
whole sentence again, which the caller hears as the agent repeating itself: the least odd of
the choices.

Both wrappers bound each cloud step by a timeout of their own, so a provider that hangs
without failing still hands over within the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np
import structlog
from numpy.typing import NDArray

from agent.metrics import PROVIDER_FAILOVERS
from agent.providers.base import (
    RecognitionHints,
    RecognitionStream,
    SpeechToText,
    TextToSpeech,
    Transcript,
)
from agent.providers.failure import FailureReason, ProviderError

__all__ = ["FailoverStt", "FailoverTts", "PromptTts", "Switch"]

log = structlog.get_logger("voiceagent.providers")


def _reason(exc: BaseException) -> FailureReason:
    if isinstance(exc, ProviderError):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return FailureReason.TIMEOUT
    return FailureReason.ERROR


@dataclass(slots=True)
class Switch:
    """One role's state in one call: which provider it is on, and why it left the cloud."""

    call_id: str
    role: str  # "stt" or "tts"
    primary: str  # provider names for the log line
    fallback: str = "embedded"
    reason: FailureReason | None = None

    @property
    def failed_over(self) -> bool:
        """Whether this call has switched to the fallback."""
        return self.reason is not None

    def fail(self, exc: BaseException) -> None:
        """Switch for the rest of the call; log and count it the first time."""
        if self.reason is not None:
            return
        self.reason = _reason(exc)
        log.warning(
            "provider_failover",
            call_id=self.call_id,
            role=self.role,
            **{"from": self.primary, "to": self.fallback},
            reason=self.reason.value,
            error=type(exc).__name__,
        )
        PROVIDER_FAILOVERS.labels(role=self.role, reason=self.reason.value).inc()


class FailoverStt:
    """A call's recogniser: the cloud one until it fails, then the embedded one."""

    def __init__(
        self,
        primary: SpeechToText,
        fallback: SpeechToText,
        switch: Switch,
        *,
        step_timeout_s: float,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self.switch = switch
        self._step_timeout_s = step_timeout_s

    @contextlib.asynccontextmanager
    async def start(self, hints: RecognitionHints) -> AsyncIterator[RecognitionStream]:
        """A stream that moves the turn to the fallback if the primary fails."""
        async with contextlib.AsyncExitStack() as stack:
            stream = _FailoverStream(self, hints, stack)
            if not self.switch.failed_over:
                try:
                    async with asyncio.timeout(self._step_timeout_s):
                        stream.primary = await stack.enter_async_context(self._primary.start(hints))
                except Exception as exc:
                    self.switch.fail(exc)
            if stream.primary is None:
                await stream.use_fallback()
            yield stream

    async def aclose(self) -> None:
        """The providers are shared by every call; the server closes them."""


class _FailoverStream:
    def __init__(
        self, owner: FailoverStt, hints: RecognitionHints, stack: contextlib.AsyncExitStack
    ) -> None:
        self._owner = owner
        self._hints = hints
        self._stack = stack
        self._frames: list[NDArray[np.int16]] = []
        self.primary: RecognitionStream | None = None
        self.fallback: RecognitionStream | None = None

    async def use_fallback(self) -> None:
        self.primary = None
        self.fallback = await self._stack.enter_async_context(
            self._owner._fallback.start(self._hints)
        )
        for frame in self._frames:  # the turn so far: nothing the caller said is lost
            await self.fallback.feed(frame)

    async def _fail(self, exc: BaseException) -> None:
        self._owner.switch.fail(exc)
        await self.use_fallback()

    async def feed(self, pcm8k: NDArray[np.int16]) -> None:
        self._frames.append(pcm8k)
        if self.primary is not None:
            try:
                async with asyncio.timeout(self._owner._step_timeout_s):
                    await self.primary.feed(pcm8k)
                return
            except Exception as exc:
                await self._fail(exc)  # feeds every frame, this one included
                return
        assert self.fallback is not None
        await self.fallback.feed(pcm8k)

    async def interim(self) -> AsyncIterator[Transcript]:
        stream = self.primary or self.fallback
        assert stream is not None
        try:
            async for update in stream.interim():
                yield update
        except Exception:  # interim results are advisory; finish() decides
            return

    async def wait_endpoint(self) -> None:
        """The primary's end-of-utterance signal, if it has one; else never."""
        wait = getattr(self.primary, "wait_endpoint", None)
        if wait is not None:
            with contextlib.suppress(Exception):  # a failing primary is finish()'s business
                await wait()
                return
        await asyncio.Event().wait()

    async def finish(self) -> Transcript:
        if self.primary is not None:
            try:
                async with asyncio.timeout(self._owner._step_timeout_s):
                    return await self.primary.finish()
            except Exception as exc:
                await self._fail(exc)
        assert self.fallback is not None
        return await self.fallback.finish()


class FailoverTts:
    """A call's synthesiser: the cloud one until it fails, then the embedded one."""

    def __init__(self, primary: TextToSpeech, fallback: TextToSpeech, switch: Switch) -> None:
        self._primary = primary
        self._fallback = fallback
        self.switch = switch

    async def synthesize(self, text: str) -> AsyncIterator[NDArray[np.int16]]:
        """Chunks from the primary; from the fallback once the primary has failed."""
        if not self.switch.failed_over:
            try:
                async for chunk in self._primary.synthesize(text):
                    yield chunk
                return
            except Exception as exc:
                self.switch.fail(exc)
        async for chunk in self._fallback.synthesize(text):
            yield chunk

    async def aclose(self) -> None:
        """The providers are shared by every call; the server closes them."""


class PromptTts:
    """The embedded synthesiser as a `TextToSpeech`: a prompt cache's text -> 8 kHz PCM."""

    def __init__(self, render: Callable[[str], NDArray[np.int16]]) -> None:
        self._render = render

    async def synthesize(self, text: str) -> AsyncIterator[NDArray[np.int16]]:
        """The whole prompt as one chunk (espeak-ng is faster than real time here)."""
        yield await asyncio.to_thread(self._render, text)

    async def aclose(self) -> None:
        """Nothing to release."""
