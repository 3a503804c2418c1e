"""Playing a streamed synthesis (Deepgram Aura) on a call from its first whole 20 ms frame.

Part of the per-call runtime shell (`agent.call_runtime`). Chunks arrive in any size; they
are queued on the call's media in whole frames as soon as they come, so the caller hears the
start of a sentence while the rest is still being synthesised. The media engine reports a
prompt done whenever its queue runs dry; if a chunk comes late and the queue has run dry in
between, that report is not the end of the sentence, and `StreamedPlayout` counts it so the
session can drop it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import numpy as np
from numpy.typing import NDArray

from rtp.transport import CallMedia

__all__ = ["FRAME_SAMPLES", "StreamedPlayout"]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz: the media engine's frame


class StreamedPlayout:
    """One call's streamed prompts, and the early "playout done" reports they cause."""

    def __init__(self, media: CallMedia) -> None:
        self._media = media
        self._spurious_done = 0

    async def play(
        self, chunks: AsyncIterator[NDArray[np.int16]], on_first: Callable[[], None]
    ) -> None:
        """Queue ``chunks`` as they come; ``on_first`` runs when the first frame is queued."""
        pending = np.zeros(0, dtype=np.int16)
        started = False
        async for chunk in chunks:
            pending = np.concatenate([pending, chunk])
            whole = len(pending) - len(pending) % FRAME_SAMPLES
            if whole:
                self._queue(pending[:whole], started, on_first)
                started, pending = True, pending[whole:]
        if len(pending):  # the engine pads the last frame with silence
            self._queue(pending, started, on_first)

    def absorb_done(self) -> bool:
        """True (and forgotten) if a "playout done" was caused by a late chunk."""
        if self._spurious_done:
            self._spurious_done -= 1
            return True
        return False

    def _queue(self, pcm: NDArray[np.int16], started: bool, on_first: Callable[[], None]) -> None:
        if not started:
            on_first()
        elif not self._media.playing:
            self._spurious_done += 1  # the engine has reported the prompt done: it is not
        self._media.play(pcm)
