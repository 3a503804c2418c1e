"""Test audio for the cloud provider tests: speech-like bursts and silence at 8 kHz."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from agent.providers.base import RecognitionStream

RATE = 8000
FRAME = 160


def burst(seconds: float, hz: float = 310.0, amplitude: int = 4000) -> NDArray[np.int16]:
    """A voiced stand-in: a tone well above the loopback server's speech threshold."""
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def quiet(seconds: float) -> NDArray[np.int16]:
    """Digital silence."""
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def turn(*parts: NDArray[np.int16]) -> NDArray[np.int16]:
    """Parts joined into one turn's audio."""
    return np.concatenate(parts)


def frames(pcm: NDArray[np.int16]) -> list[NDArray[np.int16]]:
    """20 ms frames, as the media engine hands them over."""
    return [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]


async def feed_paced(
    stream: RecognitionStream, blocks: Sequence[NDArray[np.int16]], per: int = 5
) -> None:
    """Feed frames, yielding to the loop every ``per`` frames (results can come back)."""
    for i, block in enumerate(blocks):
        await stream.feed(block)
        if i % per == per - 1:
            await asyncio.sleep(0.005)
