"""Barge-in: the caller starts talking over the agent's prompt, and the prompt must stop.

Theory of operation
-------------------
`BargeInDetector.update(vad_state, bot_speaking, frame_index, near_end)` runs once per 20 ms
frame, after `dsp.vad.Vad` (and, while a prompt plays, `dsp.echo.EchoGuard.measure`). A frame
counts as the caller's speech when the VAD scored it speech (`VadState.is_speech_frame`) *and*
the echo guard found sound our own prompt does not explain (``near_end``); without the guard
the prompt's echo, which webrtcvad calls speech, would make the agent interrupt itself.

States and inputs::

    IDLE       the agent is silent: caller speech is an ordinary turn (dsp.endpoint)
    LISTENING  a prompt plays; no caller speech run
    ONSET      a run of caller speech frames, fewer than min_speech_frames so far
    TRIGGERED  BargeIn reported; nothing more until the prompt stops (BOT_SILENT -> IDLE)

    any --BOT_SILENT--> IDLE
    IDLE/LISTENING --QUIET--> LISTENING      --SPEECH--> ONSET
    ONSET --SPEECH/PAUSE--> ONSET    --QUIET--> LISTENING    --RUN_COMPLETE--> TRIGGERED

A run needs ``min_speech_frames`` caller speech frames (4 = 80 ms: longer than a click or a
cough's first burst, short enough that the caller hears the prompt stop within a syllable); up
to ``max_gap_frames`` frames without caller speech inside the run (PAUSE) are tolerated, since
the echo guard rightly gives the echo a frame now and then when the caller is quieter than the
prompt. The `BargeIn` is back-dated to the run's first frame, so the runtime can cut the
caller's audio from there. The machine is the ``TRANSITIONS`` table; the counts that decide
between PAUSE and QUIET, SPEECH and RUN_COMPLETE are derived beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from dsp.errors import DspConfigError, FrameError
from dsp.vad import VadState

__all__ = [
    "TRANSITIONS",
    "BargeIn",
    "BargeInConfig",
    "BargeInDetector",
    "BargeInInput",
    "BargeInState",
]


@dataclass(frozen=True, slots=True)
class BargeInConfig:
    """Settings of `BargeInDetector`, in 20 ms frames.

    Attributes:
        min_speech_frames: caller speech frames a run needs before it is a barge-in (4 = 80 ms).
        max_gap_frames: frames without caller speech a run survives (1 = 20 ms).
    """

    min_speech_frames: int = 4
    max_gap_frames: int = 1

    def __post_init__(self) -> None:
        if self.min_speech_frames < 1 or self.max_gap_frames < 0:
            raise DspConfigError(
                f"need min_speech_frames >= 1 and max_gap_frames >= 0, got "
                f"{self.min_speech_frames} and {self.max_gap_frames}"
            )


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The caller talked over the prompt: stop playout.

    Attributes:
        onset_frame: index of the first caller speech frame of the run (back-dated).
        detected_frame: index of the frame that completed the run (when it was decided).
    """

    onset_frame: int
    detected_frame: int


class BargeInState(Enum):
    """Where the detector is (see the module docstring)."""

    IDLE = "idle"
    LISTENING = "listening"
    ONSET = "onset"
    TRIGGERED = "triggered"


class BargeInInput(Enum):
    """What one frame means, given the run counters."""

    BOT_SILENT = "agent not speaking"
    QUIET = "no caller speech"
    PAUSE = "no caller speech, within max_gap_frames of the run"
    SPEECH = "caller speech frame"
    RUN_COMPLETE = "caller speech frame completing min_speech_frames"


_S = BargeInState
_I = BargeInInput

TRANSITIONS: Final[Mapping[tuple[BargeInState, BargeInInput], BargeInState]] = {
    **{(state, _I.BOT_SILENT): _S.IDLE for state in BargeInState},
    (_S.IDLE, _I.QUIET): _S.LISTENING,
    (_S.IDLE, _I.SPEECH): _S.ONSET,
    (_S.IDLE, _I.RUN_COMPLETE): _S.TRIGGERED,  # min_speech_frames == 1
    (_S.LISTENING, _I.QUIET): _S.LISTENING,
    (_S.LISTENING, _I.SPEECH): _S.ONSET,
    (_S.LISTENING, _I.RUN_COMPLETE): _S.TRIGGERED,
    (_S.ONSET, _I.SPEECH): _S.ONSET,
    (_S.ONSET, _I.PAUSE): _S.ONSET,
    (_S.ONSET, _I.QUIET): _S.LISTENING,
    (_S.ONSET, _I.RUN_COMPLETE): _S.TRIGGERED,
    (_S.TRIGGERED, _I.QUIET): _S.TRIGGERED,
    (_S.TRIGGERED, _I.SPEECH): _S.TRIGGERED,
}
"""(state, input) -> next state; every pair the input derivation can produce has a row."""


class BargeInDetector:
    """Per-call barge-in detector (see the module docstring). Pure: no audio, no clock."""

    __slots__ = ("_config", "_gap", "_last_index", "_onset", "_speech", "_state")

    def __init__(self, config: BargeInConfig | None = None) -> None:
        """Create a detector in IDLE.

        Args:
            config: run length and gap tolerance; the defaults when None.
        """
        self._config = config or BargeInConfig()
        self._state = BargeInState.IDLE
        self._last_index: int | None = None
        self._onset = 0  # first frame of the current run
        self._speech = 0  # caller speech frames in the run
        self._gap = 0  # frames without caller speech since the run's last speech frame

    @property
    def state(self) -> BargeInState:
        """The state after the last frame."""
        return self._state

    def update(
        self,
        vad_state: VadState,
        bot_speaking: bool,
        frame_index: int,
        near_end: bool = True,
    ) -> BargeIn | None:
        """Consume one frame's VAD state and echo verdict.

        Args:
            vad_state: what `dsp.vad.Vad.update` returned for the received frame.
            bot_speaking: whether our prompt was playing in this frame period.
            frame_index: the frame's index in the call; must increase.
            near_end: `dsp.echo.EchoEstimate.near_end` for the frame: False when the echo of
                the prompt explains the frame. True (no guard) when there is no echo path to
                worry about.

        Returns:
            A `BargeIn` on the frame a run completes, else None (at most one per prompt).

        Raises:
            FrameError: ``frame_index`` did not increase.
        """
        if self._last_index is not None and frame_index <= self._last_index:
            raise FrameError(f"frame index {frame_index} after {self._last_index}")
        self._last_index = frame_index
        caller_speech = vad_state.is_speech_frame and near_end
        inp = self._input(bot_speaking, caller_speech)
        prior = self._state
        self._state = TRANSITIONS[(prior, inp)]
        if inp in (_I.SPEECH, _I.RUN_COMPLETE) and prior is not _S.TRIGGERED:
            if prior is not _S.ONSET:
                self._onset, self._speech = frame_index, 0
            self._speech += 1
            self._gap = 0
        elif inp is _I.PAUSE:
            self._gap += 1
        if inp is _I.RUN_COMPLETE:
            return BargeIn(self._onset, frame_index)
        return None

    def _input(self, bot_speaking: bool, caller_speech: bool) -> BargeInInput:
        if not bot_speaking:
            return _I.BOT_SILENT
        if self._state is _S.TRIGGERED:
            return _I.SPEECH if caller_speech else _I.QUIET
        in_run = self._state is _S.ONSET
        if caller_speech:
            done = (self._speech if in_run else 0) + 1 >= self._config.min_speech_frames
            return _I.RUN_COMPLETE if done else _I.SPEECH
        if in_run and self._gap < self._config.max_gap_frames:
            return _I.PAUSE
        return _I.QUIET
