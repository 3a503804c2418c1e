"""A streamed prompt is queued in whole 20 ms frames as it comes, from the first chunk on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
from numpy.typing import NDArray

from agent.streamed_playout import StreamedPlayout
from rtp.transport import CallMedia


class Line:
    """What the media engine is given, and whether it would still be playing."""

    def __init__(self) -> None:
        self.queued: list[NDArray[np.int16]] = []
        self.playing = False

    def play(self, pcm: NDArray[np.int16]) -> None:
        self.queued.append(pcm)
        self.playing = True


async def chunks(
    sizes: list[int], line: Line, dry_before: int | None = None
) -> AsyncIterator[NDArray[np.int16]]:
    start = 0
    for i, size in enumerate(sizes):
        if i == dry_before:
            line.playing = False  # the engine played everything queued so far
        yield np.arange(start, start + size, dtype=np.int16)
        start += size


def playout(line: Line) -> StreamedPlayout:
    return StreamedPlayout(line)  # type: ignore[arg-type]  # duck-typed CallMedia


async def test_chunks_are_queued_in_whole_frames_from_the_first_one() -> None:
    line, firsts = Line(), []
    player = playout(line)
    await player.play(chunks([100, 100, 500, 37], line), lambda: firsts.append(len(line.queued)))
    assert [len(q) for q in line.queued] == [160, 480, 97]  # the last one the engine pads
    assert np.array_equal(np.concatenate(line.queued), np.arange(737, dtype=np.int16))
    assert firsts == [0]  # called once, just before the first frame was queued
    assert not player.absorb_done()


async def test_a_late_chunk_marks_the_engines_early_playout_done_as_not_the_end() -> None:
    line = Line()
    player = playout(line)
    await player.play(chunks([320, 320, 320], line, dry_before=2), lambda: None)
    assert player.absorb_done()  # the engine's report between the chunks
    assert not player.absorb_done()  # the real end of the prompt counts


def test_the_line_double_matches_the_media_interface() -> None:
    assert callable(CallMedia.play)
    assert isinstance(CallMedia.playing, property)
