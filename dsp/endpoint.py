"""Endpointing: turning per-frame VAD states into the start and end of a caller's turn.

Theory of operation
-------------------
`Endpointer.update(vad_state, frame_index)` is called once per 20 ms frame with the state
`dsp.vad.Vad` reported for that frame. It emits `SpeechStarted` when a run of speech has
lasted ``min_speech_frames`` (so a cough, a click or a line pop of a few frames never opens a
turn) and `SpeechEnded` once ``trailing_silence_frames`` have passed after the last speech
frame (the end of the caller's turn: 35 frames = 700 ms, the pause after which a listener
takes the floor; pipecat's default ``stop_secs`` is 0.8 s). Both are **back-dated**: the
turn starts at the first speech frame of the run that opened it (pre-roll) and ends after
its last speech frame, so segment boundaries match the audio, not the moment of decision.

States and inputs::

    IDLE   --SPEECH-------> ONSET    a STARTING (or SPEAKING) frame opens a candidate
    ONSET  --SPEECH/SILENCE-> ONSET  still shorter than min_speech_frames
    ONSET  --LONG_ENOUGH--> IN_TURN  emit SpeechStarted(first speech frame)
    ONSET  --LOST---------> IDLE     the VAD went back to QUIET first: too short, forgotten
    IN_TURN --SPEECH/SILENCE-> IN_TURN
    IN_TURN --TURN_OVER---> IDLE     emit SpeechEnded(start, last speech frame + 1)

Which frames count ("speech" frames are STARTING or SPEAKING; "confirmed" ones SPEAKING):

* A candidate opens on a speech frame. Its ``min_speech_frames`` span runs from the first
  frame of its first confirmed run to its latest confirmed frame, pauses included (words have
  gaps); it is lost when the VAD returns to QUIET (after ``stop_frames`` of silence) before
  the span is long enough.
* Only confirmed frames move the end of speech, so a click in the trailing silence that the
  VAD's ``start_frames`` rejects does not prolong the turn; but while such a run is still
  STARTING the turn waits for the verdict rather than end under a resuming caller.
* Start (pre-roll): runs of speech frames separated by at most ``preroll_gap_frames`` form a
  chain, and the turn starts at the chain's first frame: webrtcvad at 8 kHz often catches an
  initial /s/ as a blip the /t/ closure of "stop" cuts off from the vowel.
* Boundary refinement: webrtcvad also misses weak unvoiced sounds altogether. When
  `dsp.vad.Vad.active` is passed in, either boundary extends over up to
  ``extension_frames`` contiguous active frames (sound above the noise floor) the VAD did
  not call speech, the refinement step of Rabiner and Sambur's endpoint detector (1975).
  A start never reaches back into the previous turn.

Frame indexes must increase; gaps in them (lost packets) count as the frames they skip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeAlias

from dsp.errors import DspConfigError, FrameError
from dsp.vad import VadState

__all__ = [
    "TRANSITIONS",
    "EndpointConfig",
    "EndpointEvent",
    "EndpointInput",
    "EndpointState",
    "Endpointer",
    "SpeechEnded",
    "SpeechStarted",
]


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Turn-taking settings, in 20 ms frames.

    Attributes:
        min_speech_frames: shortest speech span that opens a turn (10 = 200 ms; a cough is
            50-150 ms of noise that webrtcvad often calls speech, "yes" is about 250 ms).
        trailing_silence_frames: silence after the last speech frame that ends the turn
            (35 = 700 ms).
        preroll_gap_frames: pre-roll reach. The start is back-dated over earlier speech
            frames the VAD did not confirm if at most this many silent frames separate them
            from the run that opened the turn (5 = 100 ms: the /s/ of "stop" is a blip that
            the /t/ closure cuts off from the vowel).
        extension_frames: how far either boundary may extend over *active* frames (above
            the energy gate, see `dsp.vad.Vad.active`) that the VAD did not call speech,
            contiguous with the speech (5 = 100 ms). webrtcvad at 8 kHz misses weak unvoiced
            consonants; this recovers them (Rabiner and Sambur's endpoint refinement). On a
            line noisier than the gate every frame is active, and boundaries are late/early
            by at most this much.
    """

    min_speech_frames: int = 10
    trailing_silence_frames: int = 35
    preroll_gap_frames: int = 5
    extension_frames: int = 5

    def __post_init__(self) -> None:
        if self.min_speech_frames < 1 or self.trailing_silence_frames < 1:
            raise DspConfigError(
                f"min_speech_frames and trailing_silence_frames must be >= 1, got "
                f"{self.min_speech_frames} and {self.trailing_silence_frames}"
            )
        if self.extension_frames < 0:
            raise DspConfigError(f"extension_frames must be >= 0, got {self.extension_frames}")
        if not 0 <= self.preroll_gap_frames < self.trailing_silence_frames:
            raise DspConfigError(
                f"preroll_gap_frames must be in [0, trailing_silence_frames), got "
                f"{self.preroll_gap_frames}"
            )


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller has started a turn.

    Attributes:
        start_frame: index of the first speech frame (back-dated, not the decision frame).
    """

    start_frame: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The caller's turn is over.

    Attributes:
        start_frame: index of the first speech frame, as in the `SpeechStarted`.
        end_frame: index one past the last speech frame, so the turn spans
            ``end_frame - start_frame`` frames.
    """

    start_frame: int
    end_frame: int


EndpointEvent: TypeAlias = SpeechStarted | SpeechEnded


class EndpointState(Enum):
    """Where the endpointer is in a turn."""

    IDLE = "idle"
    ONSET = "onset"
    IN_TURN = "in turn"


class EndpointInput(Enum):
    """What one frame means, given the counters (derived in `Endpointer._input`)."""

    SPEECH = "speech frame"
    SILENCE = "silent frame"
    LONG_ENOUGH = "speech span reached min_speech_frames"
    LOST = "VAD back to QUIET before min_speech_frames"
    TURN_OVER = "trailing_silence_frames since the last speech frame"


TRANSITIONS: Final[Mapping[tuple[EndpointState, EndpointInput], EndpointState]] = {
    (EndpointState.IDLE, EndpointInput.SILENCE): EndpointState.IDLE,
    (EndpointState.IDLE, EndpointInput.SPEECH): EndpointState.ONSET,
    (EndpointState.IDLE, EndpointInput.LONG_ENOUGH): EndpointState.IN_TURN,  # min of 1
    (EndpointState.ONSET, EndpointInput.SPEECH): EndpointState.ONSET,
    (EndpointState.ONSET, EndpointInput.SILENCE): EndpointState.ONSET,
    (EndpointState.ONSET, EndpointInput.LONG_ENOUGH): EndpointState.IN_TURN,
    (EndpointState.ONSET, EndpointInput.LOST): EndpointState.IDLE,
    (EndpointState.IN_TURN, EndpointInput.SPEECH): EndpointState.IN_TURN,
    (EndpointState.IN_TURN, EndpointInput.SILENCE): EndpointState.IN_TURN,
    (EndpointState.IN_TURN, EndpointInput.TURN_OVER): EndpointState.IDLE,
}
"""(state, input) -> next state; every pair the input derivation can produce has a row."""


class Endpointer:
    """Per-call endpointer over `dsp.vad.Vad` states (see the module docstring)."""

    __slots__ = (
        "_active_start",
        "_chain_reach",
        "_chain_start",
        "_config",
        "_floor",
        "_last_index",
        "_last_speech",
        "_last_speech_any",
        "_run_start",
        "_span_start",
        "_state",
        "_tail",
        "_turn_start",
    )

    def __init__(self, config: EndpointConfig | None = None) -> None:
        """Create an endpointer in IDLE.

        Args:
            config: turn-taking settings; the defaults when None.
        """
        self._config = config or EndpointConfig()
        self._state = EndpointState.IDLE
        self._last_index: int | None = None
        # Runs, tracked in every state. "Speech" frames are STARTING or SPEAKING.
        self._last_speech_any: int | None = None  # last speech frame
        self._run_start = 0  # first frame of the current unbroken run of speech frames
        self._chain_start = 0  # first speech frame of runs at most preroll_gap_frames apart
        self._active_start: int | None = None  # first frame of the current active run
        self._chain_reach = 0  # where the active run holding _chain_start began
        # The candidate or turn.
        self._span_start: int | None = None  # run start at its first SPEAKING frame
        self._turn_start = 0  # the reported start: back-dated and extended
        self._last_speech = 0  # last SPEAKING frame
        self._tail = 0  # last active frame contiguous with _last_speech
        self._floor = 0  # end of the previous turn: no start reaches back past it

    @property
    def state(self) -> EndpointState:
        """The state after the last frame."""
        return self._state

    def update(
        self, vad_state: VadState, frame_index: int, active: bool | None = None
    ) -> EndpointEvent | None:
        """Consume the VAD state of frame ``frame_index``.

        Args:
            vad_state: what `dsp.vad.Vad.update` returned for the frame.
            frame_index: the frame's index in the call; must increase.
            active: `dsp.vad.Vad.active` for the frame (it stood out of the noise). Lets
                the boundaries extend over weak consonants the VAD missed; taken to be
                ``vad_state.is_speech_frame`` when None.

        Returns:
            `SpeechStarted` on the frame the turn is confirmed, `SpeechEnded` on the frame its
            trailing silence completes, else None. One frame never yields both: a start needs
            a SPEAKING frame and an end a frame that is not.

        Raises:
            FrameError: ``frame_index`` did not increase.
        """
        if self._last_index is not None and frame_index <= self._last_index:
            raise FrameError(f"frame index {frame_index} after {self._last_index}")
        self._track_runs(vad_state, frame_index, active)
        inp = self._input(vad_state, frame_index)
        prior = self._state
        self._state = TRANSITIONS[(prior, inp)]
        event: EndpointEvent | None = None
        if inp is EndpointInput.TURN_OVER:
            event = SpeechEnded(self._turn_start, self._end_frame())
            self._floor = event.end_frame
        elif prior is EndpointState.IDLE and self._state is not EndpointState.IDLE:
            self._open()
        if vad_state is VadState.SPEAKING:
            self._last_speech = self._tail = frame_index
            if self._span_start is None:
                self._span_start = self._run_start
        if inp is EndpointInput.LONG_ENOUGH:
            event = SpeechStarted(self._turn_start)
        return event

    def close(self) -> SpeechEnded | None:
        """End the stream (hang-up): a turn in progress ends at once, at its last speech."""
        ended = None
        if self._state is EndpointState.IN_TURN:
            ended = SpeechEnded(self._turn_start, self._end_frame())
        self._state = EndpointState.IDLE
        return ended

    def _track_runs(self, vad_state: VadState, frame_index: int, active: bool | None) -> None:
        contiguous = self._last_index == frame_index - 1
        self._last_index = frame_index
        speech = vad_state.is_speech_frame
        if active is None or speech:
            active = speech
        if not active:
            self._active_start = None
        elif self._active_start is None or not contiguous:
            self._active_start = frame_index
        if speech:
            last = self._last_speech_any
            if last != frame_index - 1:
                self._run_start = frame_index
            if last is None or frame_index - last - 1 > self._config.preroll_gap_frames:
                self._chain_start = frame_index
                reach = self._active_start
                self._chain_reach = frame_index if reach is None else reach
            self._last_speech_any = frame_index
        elif active and self._active_start is not None:
            if self._active_start <= self._last_speech:  # still the sound of the last word
                self._tail = frame_index

    def _open(self) -> None:
        # Back-date to the chain's first speech frame, then over the sound just before it.
        self._span_start = None
        start = self._chain_start
        reach = max(self._chain_reach, start - self._config.extension_frames)
        self._turn_start = max(reach, self._floor)

    def _end_frame(self) -> int:
        return min(self._tail, self._last_speech + self._config.extension_frames) + 1

    def _input(self, vad_state: VadState, frame_index: int) -> EndpointInput:
        speaking = vad_state is VadState.SPEAKING
        if self._state is EndpointState.IN_TURN:
            if vad_state.is_speech_frame:  # a STARTING run may yet confirm: wait for it
                return EndpointInput.SPEECH
            silent_frames = frame_index - self._last_speech
            if silent_frames >= self._config.trailing_silence_frames:
                return EndpointInput.TURN_OVER
            return EndpointInput.SILENCE
        if self._state is EndpointState.ONSET and vad_state is VadState.QUIET:
            return EndpointInput.LOST
        if speaking:
            # min_speech_frames counts from the first confirmed run: pre-roll blips and
            # boundary extensions move the reported start but never help a cough qualify.
            span_start = self._run_start
            if self._state is EndpointState.ONSET and self._span_start is not None:
                span_start = self._span_start
            if frame_index - span_start + 1 >= self._config.min_speech_frames:
                return EndpointInput.LONG_ENOUGH
        return EndpointInput.SPEECH if vad_state.is_speech_frame else EndpointInput.SILENCE
