"""VAD: the hysteresis table on scripted decisions, the scorer on real espeak speech."""

from __future__ import annotations

import timeit
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import webrtcvad
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError
from dsp.vad import (
    FRAME_SAMPLES,
    TRANSITIONS,
    ScorerConfig,
    Vad,
    VadConfig,
    VadState,
    WebRtcBatchScorer,
    WebRtcScorer,
    frame_dbfs,
)
from tests.dsp.speech import (
    espeak,
    frames_of,
    inner_silences_ms,
    ms_to_samples,
    scale_to_dbfs,
    speech_span,
    to_int16,
    ulaw_round_trip,
    white_noise,
)

Q, ST, SP, STOP = VadState.QUIET, VadState.STARTING, VadState.SPEAKING, VadState.STOPPING
SILENT_FRAME = np.zeros(FRAME_SAMPLES, dtype=np.int16)


class ScriptedScorer:
    """A `SpeechScorer` that replays decisions: drives the table without audio."""

    def __init__(self, decisions: str) -> None:
        self._decisions: Iterator[str] = iter(decisions)

    def is_speech(self, frame: NDArray[np.int16]) -> bool:
        return next(self._decisions) == "x"


def run_script(decisions: str, start_frames: int = 3, stop_frames: int = 8) -> list[VadState]:
    vad = Vad(VadConfig(start_frames, stop_frames), ScriptedScorer(decisions))
    return [vad.update(SILENT_FRAME) for _ in decisions]


# -- the hysteresis table ---------------------------------------------------------------------


def test_speech_confirmed_after_start_frames_in_a_row() -> None:
    assert run_script("..xxxx") == [Q, Q, ST, ST, SP, SP]


def test_a_blip_shorter_than_start_frames_falls_back_to_quiet() -> None:
    assert run_script("xx.xxx") == [ST, ST, Q, ST, ST, SP]


def test_speech_ends_after_stop_frames_of_silence() -> None:
    states = run_script("xxx" + "." * 8, stop_frames=8)
    assert states[2] is SP
    assert states[3:10] == [STOP] * 7
    assert states[10] is Q


def test_a_pause_shorter_than_stop_frames_resumes_speaking_at_once() -> None:
    assert run_script("xxx...x", stop_frames=4) == [ST, ST, SP, STOP, STOP, STOP, SP]


def test_one_frame_hysteresis_goes_straight_between_quiet_and_speaking() -> None:
    assert run_script("x.x", start_frames=1, stop_frames=1) == [SP, Q, SP]


@given(st.text(alphabet="x.", max_size=200), st.integers(1, 5), st.integers(1, 10))
def test_every_decision_sequence_stays_in_the_table_and_each_state_tells_the_frame(
    decisions: str, start_frames: int, stop_frames: int
) -> None:
    states = run_script(decisions, start_frames, stop_frames)
    assert [s.is_speech_frame for s in states] == [d == "x" for d in decisions]
    for prior, state in zip([Q, *states], states, strict=False):
        assert state in {target for (source, _), target in TRANSITIONS.items() if source is prior}
    # SPEAKING is first reached exactly when start_frames speech frames have come in a row.
    run = "x" * start_frames
    first_speaking = next((i for i, s in enumerate(states) if s is SP), None)
    expected = decisions.find(run)
    assert first_speaking == (expected + start_frames - 1 if expected >= 0 else None)


def test_bad_configs_and_frames_are_refused_with_dsp_errors() -> None:
    with pytest.raises(DspConfigError, match="aggressiveness must be 0-3, got 4"):
        ScorerConfig(aggressiveness=4)
    with pytest.raises(DspConfigError, match="start_frames and stop_frames must be >= 1"):
        VadConfig(start_frames=0)
    scorer = WebRtcScorer()
    with pytest.raises(SampleFormatError, match="int16"):
        scorer.is_speech(np.zeros(FRAME_SAMPLES, dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(FrameError, match=r"shape \(160,\), got \(240,\)"):
        scorer.is_speech(np.zeros(240, dtype=np.int16))
    with pytest.raises(FrameError, match="expected 2 rows, got 3"):
        WebRtcBatchScorer(2).score_batch(np.zeros((3, FRAME_SAMPLES), dtype=np.int16))


# -- the scorer on real audio ------------------------------------------------------------------

UTTERANCE = "Hello, I would like to book an appointment for next Tuesday."


@dataclass(frozen=True)
class Line:
    """A caller's line: the received PCM and the clean speech placed in it."""

    pcm: NDArray[np.int16]
    clean: NDArray[np.int16]  # the speech alone, same length and position
    start_ms: float
    end_ms: float


def caller_line(text: str, voice: str, level_dbfs: float, seed: int) -> Line:
    """Speech 1 s into -60 dBFS noise, 1 s of noise after, through G.711 μ-law."""
    speech = scale_to_dbfs(espeak(text, voice), level_dbfs)
    lead = ms_to_samples(1000)
    clean = np.zeros(lead + len(speech) + lead, dtype=np.int16)
    clean[lead : lead + len(speech)] = speech
    span = speech_span(speech, lead)
    pcm = ulaw_round_trip(to_int16(white_noise(len(clean), -60.0, seed) + clean))
    return Line(pcm, clean, span.start_ms, span.end_ms)


@pytest.mark.parametrize("voice", ["en-us", "en-us+f3"])
def test_speech_is_speech_and_the_quiet_line_around_it_is_not(voice: str) -> None:
    line = caller_line(UTTERANCE, voice, -26.0, seed=1)
    scorer = WebRtcScorer()
    decisions = np.array([scorer.is_speech(f) for f in frames_of(line.pcm)])
    clean_dbfs = frame_dbfs(frames_of(line.clean))
    times_ms = np.arange(len(decisions)) * 20
    voiced = clean_dbfs > -40.0  # within 14 dB of the speech level: vowels, not the gaps
    outside = (times_ms + 20 < line.start_ms - 100) | (times_ms > line.end_ms + 200)
    assert voiced.sum() > 100
    assert decisions[voiced].mean() > 0.95
    assert not decisions[outside].any()


def crackle(seconds: float, seed: int) -> NDArray[np.int16]:
    """A -70 dBFS line with sparse clicks: a bad connector or a dirty crosspoint."""
    rng = np.random.default_rng(seed)
    x = white_noise(ms_to_samples(seconds * 1000), -70.0, seed)
    clicks = rng.random(len(x)) < 0.002
    x[clicks] += rng.normal(0.0, 800.0, clicks.sum())
    return ulaw_round_trip(to_int16(x))


def test_the_energy_gate_removes_webrtcvads_false_positives_on_line_crackle() -> None:
    frames = frames_of(crackle(20.0, seed=3))
    assert np.median(frame_dbfs(frames)) < -60  # a quiet line, by any ear
    model = webrtcvad.Vad(2)
    raw = np.mean([model.is_speech(f.tobytes(), 8000) for f in frames])
    gated = WebRtcScorer(ScorerConfig(aggressiveness=2))
    assert raw > 0.2  # webrtcvad alone hears speech in a fifth of the frames or more
    assert np.mean([gated.is_speech(f) for f in frames]) < 0.01


def test_quieter_than_the_gate_is_never_speech_however_speechlike() -> None:
    whisper = caller_line(UTTERANCE, "en-us", -58.0, seed=2).pcm
    scorer = WebRtcScorer()
    assert not any(scorer.is_speech(f) for f in frames_of(whisper))
    ungated = WebRtcScorer(ScorerConfig(gate_dbfs=-90.0))
    assert sum(ungated.is_speech(f) for f in frames_of(whisper)) > 0  # the model alone would


def test_the_batch_scorer_decides_each_row_as_its_own_stream_would() -> None:
    lines = [
        caller_line(UTTERANCE, "en-us", -26.0, seed=4).pcm,
        caller_line("My date of birth is March third.", "en-us+f3", -20.0, seed=5).pcm,
        crackle(3.0, seed=6),
        np.zeros(ms_to_samples(3000), dtype=np.int16),
    ]
    n = min(len(x) for x in lines) // FRAME_SAMPLES
    stacked = np.stack([frames_of(x)[:n] for x in lines], axis=1)  # (frames, calls, 160)
    batch = WebRtcBatchScorer(len(lines))
    singles = [WebRtcScorer() for _ in lines]
    batch_decisions = np.array([batch.score_batch(frames) for frames in stacked])
    single_decisions = np.array(
        [[s.is_speech(f) for s, f in zip(singles, frames, strict=True)] for frames in stacked]
    )
    assert np.array_equal(batch_decisions, single_decisions)
    assert batch_decisions[:, 0].sum() > 50 and not batch_decisions[:, 3].any()


def test_a_vad_fed_from_the_batch_scorer_matches_one_that_scores_itself() -> None:
    line = caller_line("Blue Cross Blue Shield, member number four five six.", "en-us", -26.0, 9)
    own, fed, batch = Vad(), Vad(), WebRtcBatchScorer(1)
    own_states, fed_states, own_active, fed_active = [], [], [], []
    for frame in frames_of(line.pcm):
        own_states.append(own.update(frame))
        own_active.append(own.active)
        decision = batch.score_batch(frame[None, :])[0]
        fed_states.append(fed.advance(bool(decision), float(batch.levels_dbfs[0])))
        fed_active.append(fed.active)
    assert fed_states == own_states and fed_active == own_active
    # active reaches past the speech decisions: the weak /s/ of "six" webrtcvad drops
    assert sum(own_active) > sum(s.is_speech_frame for s in own_states)


def test_vad_on_real_speech_speaks_once_per_utterance_and_ends_quiet() -> None:
    line = caller_line("That is correct", "en-us", -26.0, seed=7)
    assert max(inner_silences_ms(line.clean)) < 160  # the word gaps are under stop_frames
    vad = Vad()
    states = [vad.update(f) for f in frames_of(line.pcm)]
    first_speaking_ms = states.index(SP) * 20
    # three frames to confirm, the first of which may start up to a frame before the speech
    assert line.start_ms + 20 <= first_speaking_ms <= line.start_ms + 3 * 20
    assert states[-1] is Q
    quiet_runs = "".join("q" if s is Q else "s" for s in states).strip("q").count("q")
    assert quiet_runs == 0  # the pauses inside the sentence never reach QUIET


# -- cost ----------------------------------------------------------------------------------------


def best_us(fn: object, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def test_gated_frames_cost_a_fraction_of_scored_ones(capsys: pytest.CaptureFixture[str]) -> None:
    line = caller_line(UTTERANCE, "en-us", -26.0, seed=8)
    speech_frame = frames_of(line.pcm)[int(line.start_ms // 20) + 10]
    calls = 100
    silent = np.zeros((calls, FRAME_SAMPLES), dtype=np.int16)
    speech = np.tile(speech_frame, (calls, 1))
    batch = WebRtcBatchScorer(calls)
    assert batch.score_batch(speech).all() and not batch.score_batch(silent).any()
    silent_us = best_us(lambda: batch.score_batch(silent), 200) / calls
    speech_us = best_us(lambda: batch.score_batch(speech), 200) / calls
    single, vad = WebRtcScorer(), Vad()
    single_silent_us = best_us(lambda: single.is_speech(silent[0]), 2000)
    single_speech_us = best_us(lambda: single.is_speech(speech_frame), 2000)
    vad_us = best_us(lambda: vad.update(speech_frame), 2000)
    with capsys.disabled():
        print(
            f"\nVAD cost per frame: batch of {calls} calls {silent_us:.2f} us silent, "
            f"{speech_us:.2f} us speech; single scorer {single_silent_us:.2f} us silent, "
            f"{single_speech_us:.2f} us speech; Vad.update {vad_us:.2f} us"
        )
    assert silent_us * 3 < speech_us
