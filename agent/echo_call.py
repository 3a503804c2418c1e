"""The echo app: greet, then play back each caller utterance after endpointing.

A media-path check a person can hear (``voiceagent serve --app echo``), and what the media
acceptance tests drive. Part of the runtime shell (asyncio), one call per coroutine.
"""

from __future__ import annotations

import asyncio
import collections

import numpy as np
import structlog
from numpy.typing import NDArray

from dsp.endpoint import SpeechEnded
from rtp.engine import CallerFrame, DtmfDigit
from rtp.seq import ts_diff
from rtp.transport import CallMedia

log = structlog.get_logger("voiceagent")


async def run_echo(call_id: str, media: CallMedia, greeting: NDArray[np.int16]) -> None:
    """Greet, then play each caller utterance back after endpointing."""
    media.play(greeting)
    frames: collections.deque[CallerFrame] = collections.deque(maxlen=1500)  # 30 s
    first: list[CallerFrame] = []  # the call's first frame: media time 0
    digits = 0

    async def record() -> None:
        while (frame := await media.audio.get()) is not None:
            if not first:
                first.append(frame)
            frames.append(frame)

    def media_ms(frame_index: int, *, end: bool = False) -> float | None:
        """Media time of a frame (its end with ``end``) from the first RTP packet, in ms.

        Read from RTP timestamps (8 per ms for G.711), not tick counts, which drift from
        the caller's stream whenever the jitter buffer drops or holds a frame.
        """
        found = [f for f in frames if f.frame_index == frame_index]
        if not first or not found:
            return None
        samples = ts_diff(found[0].timestamp, first[0].timestamp)
        return (samples + (len(found[0].pcm) if end else 0)) / 8.0

    recorder = asyncio.create_task(record())
    try:
        async for event in media.iter_events():
            if isinstance(event, SpeechEnded):
                utterance = [
                    f.pcm for f in frames if event.start_frame <= f.frame_index < event.end_frame
                ]
                log.info(
                    "utterance",
                    call_id=call_id,
                    duration_ms=(event.end_frame - event.start_frame) * 20,
                    start_ms=media_ms(event.start_frame),
                    end_ms=media_ms(event.end_frame - 1, end=True),
                )
                if utterance:
                    media.play(np.concatenate(utterance))
            elif isinstance(event, DtmfDigit):
                # Keys a patient types can be PHI (a date of birth): the digit itself
                # only at debug level.
                digits += 1
                log.info("dtmf", call_id=call_id, source=event.source, count=digits)
                log.debug("dtmf_digit", call_id=call_id, source=event.source, digit=event.digit)
            else:
                log.debug("media_event", call_id=call_id, kind=type(event).__name__)
    finally:
        recorder.cancel()
