"""Voice activity detection: a per-frame speech scorer plus a four-state hysteresis machine.

Theory of operation
-------------------
Audio arrives as 20 ms frames of 160 ``int16`` samples at 8 kHz (one G.711 RTP packet with
the usual ``ptime`` of 20 ms, RFC 3551 §4.5.14). Detection has two layers:

1. A `SpeechScorer` says, for one frame, "speech" or "not speech". `WebRtcScorer` is the
   production scorer: an **energy gate** first (a frame whose RMS level is below
   ``gate_dbfs``, -50 dBFS by default, is not speech and never reaches the model), then the
   WebRTC GMM voice detector (``webrtcvad``, aggressiveness 0-3) on the frames that pass.
   webrtcvad adapts to steady hiss but is nearly level-blind: it calls line crackle (clicks
   on a -70 dBFS line: 40 % of frames in the tests) and faint crosstalk speech, which the
   gate removes, and the gate cuts its overhang short where a word decays into a quiet line.
   For the media engine, `WebRtcBatchScorer.score_batch` scores one frame from each of many
   calls at once: the energies are one vectorised numpy expression and only frames above the
   gate cost a model call. Each call keeps its own ``webrtcvad.Vad`` because the model adapts
   its noise and speech statistics to the stream it hears.

2. `Vad` smooths the per-frame decisions with hysteresis counted in frames, not seconds
   (pipecat ``VADAnalyzer``): speech must last ``start_frames`` frames in a row to count as
   speaking, and silence ``stop_frames`` frames in a row to end it::

        QUIET --speech--> STARTING --start_frames speech in a row--> SPEAKING
          ^                  |                                        |    ^
          +-----silence------+                                 silence|    |speech
          +------------stop_frames silence in a row------------ STOPPING --+

   Every state also says what the *current* frame was: STARTING and SPEAKING only follow a
   speech frame, QUIET and STOPPING only a silent one (`VadState.is_speech_frame`). The
   endpointer and the barge-in detector downstream rely on that to back-date onsets to the
   first speech frame of a run without seeing the raw decisions.

3. `Vad.active` says whether the frame stood out of the line noise (``active_margin_db``
   above a minimum-statistics noise floor), speech or not. webrtcvad at 8 kHz misses weak
   unvoiced consonants (a word-final /s/ 25-30 dB below the vowels); `dsp.endpoint` extends
   turn boundaries over such active frames.

`Vad.update(frame)` scores and advances; `Vad.advance(is_speech, level_dbfs)` advances on a
decision already made by a batch scorer (`WebRtcBatchScorer.levels_dbfs` gives the level).
The machine is the ``TRANSITIONS`` table; the inputs that carry counts
(`VadInput.START_CONFIRMED`, `VadInput.STOP_CONFIRMED`) are derived next to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Protocol, TypeAlias

import numpy as np
import webrtcvad
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError
from dsp.level import FULL_SCALE

__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE_HZ",
    "TRANSITIONS",
    "ScorerConfig",
    "SpeechScorer",
    "Vad",
    "VadConfig",
    "VadInput",
    "VadState",
    "WebRtcBatchScorer",
    "WebRtcScorer",
    "frame_dbfs",
]

SAMPLE_RATE_HZ: Final = 8000
FRAME_SAMPLES: Final = 160
"""20 ms at 8 kHz: one of the frame lengths webrtcvad accepts (10, 20 or 30 ms)."""

_FULL_SCALE: Final = FULL_SCALE  # dBFS as in dsp.level: RMS re int16 full scale
# Floor for the level of an all-zero frame, so the log never sees 0.
_FLOOR_DBFS: Final = -120.0


def frame_dbfs(frames: NDArray[np.int16]) -> NDArray[np.float64]:
    """Return the RMS level of each frame in dBFS (a full-scale square wave is 0 dBFS).

    Args:
        frames: ``int16`` samples, shape ``(samples,)`` or ``(frames, samples)``.

    Returns:
        One level per frame (a 0-d array for a single frame), never below -120 dBFS.
    """
    x = frames.astype(np.float64)
    return _to_dbfs(np.mean(x * x, axis=-1))


def _check_frames(frames: NDArray[np.int16], ndim: int) -> None:
    if frames.dtype != np.int16:
        raise SampleFormatError(f"frames must be int16 PCM, got {frames.dtype}")
    if frames.ndim != ndim or frames.shape[-1] != FRAME_SAMPLES:
        want = "(160,)" if ndim == 1 else "(calls, 160)"
        raise FrameError(f"frames must have shape {want}, got {frames.shape}")


class SpeechScorer(Protocol):
    """Anything that says whether one 20 ms frame of one stream is speech."""

    def is_speech(self, frame: NDArray[np.int16]) -> bool:
        """Return True if ``frame`` (160 ``int16`` samples at 8 kHz) contains speech."""
        ...


@dataclass(frozen=True, slots=True)
class ScorerConfig:
    """Settings of `WebRtcScorer` and `WebRtcBatchScorer`.

    Attributes:
        aggressiveness: webrtcvad mode, 0 (most speech kept) to 3 (most noise rejected). 2 is
            the usual telephony choice: mode 3 clips weak word onsets on 8 kHz G.711.
        gate_dbfs: frames quieter than this are not speech and skip the model. -50 dBFS sits
            well above a quiet PSTN line (-60 to -70 dBFS) and well below soft speech
            (-35 dBFS and up).
    """

    aggressiveness: int = 2
    gate_dbfs: float = -50.0

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise DspConfigError(f"aggressiveness must be 0-3, got {self.aggressiveness}")


class WebRtcScorer:
    """The energy gate plus webrtcvad, for one stream (implements `SpeechScorer`)."""

    __slots__ = ("_gate_mean_square", "_model")

    def __init__(self, config: ScorerConfig | None = None) -> None:
        """Create a scorer with its own webrtcvad model state.

        Args:
            config: aggressiveness and energy gate; the defaults when None.
        """
        config = config or ScorerConfig()
        self._model = webrtcvad.Vad(config.aggressiveness)
        self._gate_mean_square = _gate_mean_square(config.gate_dbfs)

    def is_speech(self, frame: NDArray[np.int16]) -> bool:
        """Return True if the frame is above the gate and webrtcvad calls it speech.

        Raises:
            SampleFormatError: the frame is not ``int16``.
            FrameError: the frame is not 160 samples.
        """
        _check_frames(frame, ndim=1)
        x = frame.astype(np.float32)
        if float(np.dot(x, x)) < self._gate_mean_square * FRAME_SAMPLES:
            return False
        return bool(self._model.is_speech(frame.tobytes(), SAMPLE_RATE_HZ))

    def model_is_speech(self, frame: NDArray[np.int16]) -> bool:
        """Return the webrtcvad model's verdict alone, for a frame already found above the gate.

        The media engine measures the energy of every call's frame in one batch; checking
        it again here, per call, would double the cost of the common loud frame. The frame
        must be 160 ``int16`` samples (not checked: this is the hot path).
        """
        return bool(self._model.is_speech(frame.tobytes(), SAMPLE_RATE_HZ))


class WebRtcBatchScorer:
    """The energy gate plus webrtcvad for many streams at once: row ``i`` is call slot ``i``.

    The media engine stacks the current frame of every call into one ``(calls, 160)`` array.
    Energies are computed for all rows in one vectorised step; webrtcvad runs only on the rows
    above the gate, each with the model of its own slot.
    """

    __slots__ = ("_config", "_gate_mean_square", "_levels_dbfs", "_models")

    def __init__(self, calls: int, config: ScorerConfig | None = None) -> None:
        """Create ``calls`` independent model slots.

        Args:
            calls: the number of rows every batch will have.
            config: aggressiveness and energy gate; the defaults when None.
        """
        if calls < 1:
            raise DspConfigError(f"calls must be at least 1, got {calls}")
        self._config = config or ScorerConfig()
        self._models = [webrtcvad.Vad(self._config.aggressiveness) for _ in range(calls)]
        self._gate_mean_square = _gate_mean_square(self._config.gate_dbfs)
        self._levels_dbfs = np.full(calls, _FLOOR_DBFS)

    @property
    def levels_dbfs(self) -> NDArray[np.float64]:
        """RMS level of each row of the last batch, for `Vad.advance`; a copy."""
        return self._levels_dbfs.copy()

    def reset(self, slot: int) -> None:
        """Give ``slot`` a fresh model, for a new call taking over the row."""
        self._models[slot] = webrtcvad.Vad(self._config.aggressiveness)

    def score_batch(self, frames: NDArray[np.int16]) -> NDArray[np.bool_]:
        """Return one speech decision per row of ``frames``.

        Args:
            frames: shape ``(calls, 160)``, ``int16``; row ``i`` belongs to slot ``i``.

        Raises:
            SampleFormatError: the frames are not ``int16``.
            FrameError: the shape is not ``(calls, 160)`` for this scorer's ``calls``.
        """
        _check_frames(frames, ndim=2)
        if frames.shape[0] != len(self._models):
            raise FrameError(f"expected {len(self._models)} rows, got {frames.shape[0]}")
        x = frames.astype(np.float32)
        energy = np.einsum("ij,ij->i", x, x)
        mean_square = energy.astype(np.float64) / FRAME_SAMPLES
        self._levels_dbfs = _to_dbfs(mean_square)
        decisions = np.zeros(frames.shape[0], dtype=np.bool_)
        for row in np.flatnonzero(mean_square >= self._gate_mean_square):
            decisions[row] = self._models[row].is_speech(frames[row].tobytes(), SAMPLE_RATE_HZ)
        return decisions


def _gate_mean_square(gate_dbfs: float) -> float:
    return _FULL_SCALE**2 * math.pow(10.0, gate_dbfs / 10.0)


def _to_dbfs(mean_square: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.maximum(10.0 * np.log10(mean_square / _FULL_SCALE**2 + 1e-30), _FLOOR_DBFS)


class VadState(Enum):
    """Hysteresis state after a frame; also tells whether that frame was speech."""

    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"

    @property
    def is_speech_frame(self) -> bool:
        """True if the frame that led to this state was scored as speech."""
        return self in (VadState.STARTING, VadState.SPEAKING)


class VadInput(Enum):
    """What one frame means to the machine, once the run counters are taken into account."""

    SPEECH = "speech frame"
    SILENCE = "silent frame"
    START_CONFIRMED = "speech frame completing start_frames in a row"
    STOP_CONFIRMED = "silent frame completing stop_frames in a row"


Transitions: TypeAlias = Mapping[tuple[VadState, VadInput], VadState]

TRANSITIONS: Final[Transitions] = {
    (VadState.QUIET, VadInput.SILENCE): VadState.QUIET,
    (VadState.QUIET, VadInput.SPEECH): VadState.STARTING,
    (VadState.QUIET, VadInput.START_CONFIRMED): VadState.SPEAKING,  # start_frames == 1
    (VadState.STARTING, VadInput.SPEECH): VadState.STARTING,
    (VadState.STARTING, VadInput.START_CONFIRMED): VadState.SPEAKING,
    (VadState.STARTING, VadInput.SILENCE): VadState.QUIET,  # a blip: the run starts over
    (VadState.SPEAKING, VadInput.SPEECH): VadState.SPEAKING,
    (VadState.SPEAKING, VadInput.SILENCE): VadState.STOPPING,
    (VadState.SPEAKING, VadInput.STOP_CONFIRMED): VadState.QUIET,  # stop_frames == 1
    (VadState.STOPPING, VadInput.SILENCE): VadState.STOPPING,
    (VadState.STOPPING, VadInput.STOP_CONFIRMED): VadState.QUIET,
    (VadState.STOPPING, VadInput.SPEECH): VadState.SPEAKING,  # a pause inside speech
}
"""(state, input) -> next state; every pair the input derivation can produce has a row."""


@dataclass(frozen=True, slots=True)
class VadConfig:
    """Hysteresis and scorer settings of `Vad`.

    Attributes:
        start_frames: speech frames in a row before SPEAKING (3 = 60 ms; pipecat's default
            ``start_secs`` of 0.2 s is tuned for a VAD whose onsets are not back-dated; ours
            are, downstream, so a shorter run only has to reject clicks).
        stop_frames: silent frames in a row before QUIET (8 = 160 ms: longer than the gaps
            webrtcvad leaves inside words, shorter than a pause between sentences). The end
            of a caller's *turn* is the endpointer's business, not this hangover's.
        scorer: settings for the default `WebRtcScorer`.
        noise_window_frames: the noise floor is the quietest frame of this many (100 = 2 s,
            longer than the pauses-free stretch of any utterance, so the window always holds
            a frame of line noise; minimum statistics after Martin, 2001).
        active_margin_db: a frame is *active* (`Vad.active`) this far above the noise floor.
        active_min_dbfs: and never below this level, so a digitally silent line (-120 dBFS)
            does not make every faint sound active.
    """

    start_frames: int = 3
    stop_frames: int = 8
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    noise_window_frames: int = 100
    active_margin_db: float = 6.0
    active_min_dbfs: float = -70.0

    def __post_init__(self) -> None:
        if self.start_frames < 1 or self.stop_frames < 1:
            raise DspConfigError(
                f"start_frames and stop_frames must be >= 1, got "
                f"{self.start_frames} and {self.stop_frames}"
            )
        if self.noise_window_frames < 1:
            raise DspConfigError(
                f"noise_window_frames must be >= 1, got {self.noise_window_frames}"
            )


class Vad:
    """Per-call voice activity detector: a `SpeechScorer` smoothed by the state table."""

    __slots__ = (
        "_active",
        "_config",
        "_floor",
        "_levels",
        "_levels_next",
        "_run",
        "_scorer",
        "_state",
    )

    def __init__(self, config: VadConfig | None = None, scorer: SpeechScorer | None = None):
        """Create a detector in QUIET.

        Args:
            config: hysteresis (and default scorer) settings; the defaults when None.
            scorer: the per-frame model; a `WebRtcScorer` built from ``config.scorer`` when
                None.
        """
        self._config = config or VadConfig()
        self._scorer: SpeechScorer = scorer or WebRtcScorer(self._config.scorer)
        self._state = VadState.QUIET
        self._run = 0  # frames in the current run of equal decisions
        # A ring of the last levels (dBFS) and its minimum, kept as the ring turns: the
        # minimum is searched again only when the frame that held it leaves the window.
        self._levels = [math.inf] * self._config.noise_window_frames
        self._levels_next = 0
        self._floor = math.inf
        self._active = False

    @property
    def state(self) -> VadState:
        """The state after the last frame."""
        return self._state

    @property
    def active(self) -> bool:
        """Whether the last frame stood out of the noise floor: sound, though maybe not speech.

        webrtcvad at 8 kHz rejects weak unvoiced consonants (the /s/ of "stop" or "six",
        25-30 dB below the vowels, often under the energy gate too);
        `dsp.endpoint.Endpointer` uses this to extend boundaries over them (the refinement
        step of Rabiner and Sambur's endpoint detector).
        """
        return self._active

    def update(self, frame: NDArray[np.int16]) -> VadState:
        """Score one 20 ms frame and advance the machine.

        Raises:
            SampleFormatError: the frame is not ``int16``.
            FrameError: the frame is not 160 samples.
        """
        is_speech = self._scorer.is_speech(frame)
        x = frame.astype(np.float32)
        mean_square = float(np.dot(x, x)) / FRAME_SAMPLES
        level_dbfs = max(10.0 * math.log10(mean_square / _FULL_SCALE**2 + 1e-30), _FLOOR_DBFS)
        return self.advance(is_speech, level_dbfs)

    def advance(self, is_speech: bool, level_dbfs: float | None = None) -> VadState:
        """Advance on decisions made elsewhere (a row of `WebRtcBatchScorer.score_batch`).

        Args:
            is_speech: the scorer's decision for the frame.
            level_dbfs: the frame's level (`WebRtcBatchScorer.levels_dbfs`), for the noise
                floor and `active`; without it `active` is just ``is_speech``.
        """
        self._active = is_speech
        if level_dbfs is not None:
            levels, at = self._levels, self._levels_next
            leaving = levels[at]
            levels[at] = level_dbfs
            self._levels_next = at + 1 if at + 1 < len(levels) else 0
            if level_dbfs <= self._floor:
                self._floor = level_dbfs
            elif leaving == self._floor:
                self._floor = min(levels)
            floor = self._floor
            threshold = max(floor + self._config.active_margin_db, self._config.active_min_dbfs)
            self._active = is_speech or level_dbfs >= threshold
        self._run = self._run + 1 if is_speech == self._state.is_speech_frame else 1
        self._state = TRANSITIONS[(self._state, self._input(is_speech))]
        return self._state

    def _input(self, is_speech: bool) -> VadInput:
        # The counts the table cannot hold: a run completes only where it can change state.
        if is_speech:
            starting = self._state in (VadState.QUIET, VadState.STARTING)
            if starting and self._run >= self._config.start_frames:
                return VadInput.START_CONFIRMED
            return VadInput.SPEECH
        stopping = self._state in (VadState.SPEAKING, VadState.STOPPING)
        if stopping and self._run >= self._config.stop_frames:
            return VadInput.STOP_CONFIRMED
        return VadInput.SILENCE
