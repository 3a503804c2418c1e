"""EchoGuard.restart: started over in one step, a guard decides as a new one fed frames does.

The media engine restarts a call's guard whenever the jitter buffer slips a frame under a
playing prompt (the echo moves by a frame); the one-step refill must not change a decision.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.echo import EchoGuard
from dsp.errors import FrameError

FRAME = 160


def prompt_frames(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-6000, 6000, FRAME).astype(np.int16) for _ in range(count)]


@pytest.mark.parametrize("count", [0, 3, 12])
def test_a_restarted_guard_judges_echo_and_speech_like_a_fresh_one(count: int) -> None:
    sent = prompt_frames(count, seed=count)
    fresh = EchoGuard()
    for frame in sent:
        fresh.observe_sent(frame)
    reused = EchoGuard()
    for frame in prompt_frames(5, seed=99):  # a past that the restart must forget
        reused.observe_sent(frame)
        reused.measure(frame // 3)
    reused.restart(sent)
    line = np.concatenate([np.zeros(FRAME * 12, np.int16), *sent])
    echo = (line[-FRAME - 400 : -400] // 4).astype(np.int16)  # -12 dB, 50 ms back
    caller = prompt_frames(1, seed=7)[0] // 2
    verdicts = []
    for received in (echo, caller, echo):
        estimate = reused.measure(received)
        assert estimate == fresh.measure(received)
        verdicts.append(estimate.near_end)
    if count:  # both kinds of decision were taken, not just compared
        assert verdicts == [False, True, False]


def test_restart_refuses_frames_of_the_wrong_size() -> None:
    with pytest.raises(FrameError):
        EchoGuard().restart([np.zeros(80, np.int16)])
