"""Endpointing: scripted VAD states for the rules, real espeak utterances for the timing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.signal import butter, lfilter

from dsp.endpoint import EndpointConfig, Endpointer, EndpointEvent, SpeechEnded, SpeechStarted
from dsp.errors import DspConfigError, FrameError
from dsp.vad import Vad, VadState
from tests.dsp.speech import (
    Span,
    espeak,
    frames_of,
    ms_to_samples,
    scale_to_dbfs,
    speech_span,
    to_int16,
    ulaw_round_trip,
    white_noise,
)

Q, ST, SP, STOP = VadState.QUIET, VadState.STARTING, VadState.SPEAKING, VadState.STOPPING
TOLERANCE_MS = 60.0


def feed(states: list[VadState], config: EndpointConfig | None = None) -> list[tuple[int, object]]:
    endpointer = Endpointer(config)
    out: list[tuple[int, object]] = []
    for i, state in enumerate(states):
        event = endpointer.update(state, i)
        if event is not None:
            out.append((i, event))
    return out


def speech(frames: int) -> list[VadState]:
    """What the VAD reports for a run of speech (start_frames = 3)."""
    return ([ST, ST, SP] + [SP] * frames)[:frames]


def pause(frames: int, stop_frames: int = 8) -> list[VadState]:
    return ([STOP] * (stop_frames - 1) + [Q] * frames)[:frames]


# -- the rules, on scripted VAD states -----------------------------------------------------------


def test_a_turn_is_back_dated_to_its_first_speech_frame_and_ends_after_trailing_silence() -> None:
    states = [Q] * 10 + speech(30) + pause(40)
    events = feed(states, EndpointConfig(min_speech_frames=10, trailing_silence_frames=35))
    # decided on frame 19 (10 frames of speech), reported as starting at frame 10
    assert events == [(19, SpeechStarted(10)), (39 + 35, SpeechEnded(10, 40))]


def test_clicks_and_coughs_shorter_than_min_speech_never_open_a_turn() -> None:
    click = [ST]
    cough = speech(5)  # reaches SPEAKING: only min_speech_frames stops it
    states = [Q] * 5 + click + pause(20) + cough + pause(30) + speech(9) + pause(40)
    assert feed(states) == []


def test_pauses_inside_a_turn_do_not_end_it_and_the_span_includes_them() -> None:
    # a gap in a word the VAD bridges (STOPPING), then a pause it does not (QUIET)
    words = speech(6) + [STOP] * 5 + [SP] * 6 + pause(34) + speech(6)  # 680 ms < 700 ms
    events = feed([Q] * 3 + words + pause(40))
    end = 3 + len(words)
    assert events == [(3 + 6 + 5, SpeechStarted(3)), (end - 1 + 35, SpeechEnded(3, end))]


def test_a_candidate_is_forgotten_once_the_vad_goes_quiet() -> None:
    # two 120 ms words 300 ms apart: neither is long enough, and they do not add up
    assert feed([Q] * 3 + speech(6) + pause(15) + speech(6) + pause(40)) == []


def test_a_click_in_the_trailing_silence_does_not_prolong_the_turn() -> None:
    states = speech(20) + pause(20) + [ST] + pause(40)  # VAD already QUIET, blip unconfirmed
    assert feed(states)[-1] == (19 + 35, SpeechEnded(0, 20))


def test_unconfirmed_speech_just_before_the_run_is_pre_roll() -> None:
    # the /s/ of "stop": a speech frame the VAD never confirmed, 80 ms before the vowel
    states = [Q] * 5 + [ST] + [Q] * 4 + speech(20) + pause(40)
    assert feed(states)[0] == (19, SpeechStarted(5))
    far = [Q] * 5 + [ST] + [Q] * 6 + speech(20) + pause(40)  # 120 ms: a separate blip
    assert feed(far)[0] == (21, SpeechStarted(12))


def test_sound_the_vad_missed_extends_boundaries_up_to_extension_frames() -> None:
    endpointer = Endpointer(EndpointConfig(extension_frames=5))
    active = [False] * 10 + [True] * 8 + [True] * 20 + [True] * 3 + [False] * 40
    states = [Q] * 18 + speech(20) + pause(43)
    events = [
        endpointer.update(s, i, a) for i, (s, a) in enumerate(zip(states, active, strict=True))
    ]
    found = [e for e in events if e is not None]
    # 8 active frames before the speech: only 5 count; 3 after it: all count
    assert found == [SpeechStarted(13), SpeechEnded(13, 41)]


def test_a_new_turn_right_after_a_turn_ends_is_not_back_dated_into_it() -> None:
    config = EndpointConfig(trailing_silence_frames=10, preroll_gap_frames=5)
    blips = [ST, Q, Q, Q, Q, ST, Q, Q, Q, Q]  # unconfirmed speech every 5 frames
    states = speech(15) + [STOP] * 7 + [Q] * 2 + blips + speech(15) + pause(20)
    events = feed(states, config)
    assert events[1] == (14 + 10 + 1, SpeechEnded(0, 15))  # waited out the blip at 24
    first_new = next(e for _, e in events[2:] if isinstance(e, SpeechStarted))
    assert first_new.start_frame >= 15


def test_a_caller_resuming_at_the_last_moment_keeps_the_turn() -> None:
    # speech resumes 34 frames after the last one, but is only confirmed 2 frames later
    states = speech(20) + pause(33) + speech(10) + pause(40)
    events = feed(states)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    assert events[1][1] == SpeechEnded(0, 63)


def test_hang_up_mid_turn_closes_it() -> None:
    endpointer = Endpointer()
    for i, state in enumerate(speech(20)):
        endpointer.update(state, i)
    assert endpointer.close() == SpeechEnded(0, 20)
    assert endpointer.close() is None


def test_frame_indexes_must_increase_and_configs_must_make_sense() -> None:
    endpointer = Endpointer()
    endpointer.update(Q, 7)
    with pytest.raises(FrameError, match="frame index 7 after 7"):
        endpointer.update(Q, 7)
    with pytest.raises(DspConfigError, match="min_speech_frames"):
        EndpointConfig(min_speech_frames=0)
    with pytest.raises(DspConfigError, match="preroll_gap_frames"):
        EndpointConfig(preroll_gap_frames=35, trailing_silence_frames=35)


# -- real speech ---------------------------------------------------------------------------------

UTTERANCES = [
    "Hello, I would like to book an appointment for next Tuesday.",
    "My date of birth is March third, nineteen eighty.",
    "Yes.",
    "Blue Cross Blue Shield, member number four five six.",
    "Stop, I need to talk to a person.",
    "sixty five",
    "Fine thanks.",
    "I have had a headache since Monday morning.",
]


@dataclass(frozen=True)
class Recording:
    pcm: NDArray[np.int16]
    spans: list[Span]


def record(voice: str, level_dbfs: float, gap_ms: float, seed: int) -> Recording:
    """Each utterance after ``gap_ms`` of -60 dBFS noise; ends with the same gap."""
    clips = [scale_to_dbfs(espeak(text, voice), level_dbfs) for text in UTTERANCES]
    gap = ms_to_samples(gap_ms)
    total = gap + sum(len(c) + gap for c in clips)
    mix = white_noise(total, -60.0, seed)
    spans, at = [], gap
    for clip in clips:
        mix[at : at + len(clip)] += clip
        spans.append(speech_span(clip, at))
        at += len(clip) + gap
    return Recording(ulaw_round_trip(to_int16(mix)), spans)


def endpoint(pcm: NDArray[np.int16]) -> list[tuple[int, EndpointEvent]]:
    vad, endpointer = Vad(), Endpointer()
    events = []
    for i, frame in enumerate(frames_of(pcm)):
        event = endpointer.update(vad.update(frame), i, vad.active)
        if event is not None:
            events.append((i, event))
    return events


@pytest.mark.parametrize(
    ("voice", "level_dbfs"),
    [("en-us", -26.0), ("en-us", -20.0), ("en-gb+m3", -26.0), ("en-gb+m3", -20.0)],
)
def test_turn_boundaries_match_the_real_speech_within_60_ms(voice: str, level_dbfs: float) -> None:
    """-26 dBFS is ITU-T P.56's nominal active speech level; -20 is a loud caller."""
    recording = record(voice, level_dbfs, gap_ms=1500.0, seed=11)
    events = endpoint(recording.pcm)
    starts = [(i, e) for i, e in events if isinstance(e, SpeechStarted)]
    ends = [(i, e) for i, e in events if isinstance(e, SpeechEnded)]
    assert len(starts) == len(ends) == len(UTTERANCES)
    for (start_at, started), (end_at, ended), span in zip(
        starts, ends, recording.spans, strict=True
    ):
        assert started.start_frame == ended.start_frame < start_at < end_at
        assert abs(ended.start_frame * 20 - span.start_ms) <= TOLERANCE_MS
        assert abs(ended.end_frame * 20 - span.end_ms) <= TOLERANCE_MS
        # decided 200 ms of speech after the start (min_speech_frames, plus a frame of pre-roll
        # reach), and 700 ms after the last speech frame
        assert start_at - started.start_frame <= 10 + 5
        assert end_at - (ended.end_frame - 1) <= 35 + 5


def burst(duration_ms: float, level_dbfs: float, seed: int) -> NDArray[np.float64]:
    """A cough or a line click: band-limited noise with a fast decay."""
    n = ms_to_samples(duration_ms)
    b, a = butter(2, [300 / 4000, 2500 / 4000], "band")
    noise = lfilter(b, a, np.random.default_rng(seed).normal(0.0, 1.0, n + 200))[200:]
    shaped = noise * np.exp(-np.arange(n) / (n / 3))
    return shaped / np.sqrt(np.mean(shaped**2)) * 32768 * 10 ** (level_dbfs / 20)


@pytest.mark.parametrize("duration_ms", [10.0, 40.0, 80.0])
def test_a_cough_or_click_alone_is_not_a_turn(duration_ms: float) -> None:
    mix = white_noise(ms_to_samples(3000), -60.0, seed=12)
    at = ms_to_samples(1000)
    mix[at : at + ms_to_samples(duration_ms)] += burst(duration_ms, -20.0, seed=13)
    pcm = ulaw_round_trip(to_int16(mix))
    vad = Vad()
    heard = [vad.update(f) for f in frames_of(pcm)]
    assert any(s.is_speech_frame for s in heard)  # webrtcvad does take it for speech
    assert endpoint(pcm) == []


def test_a_cough_before_speaking_does_not_move_the_turn_start() -> None:
    speech_clip = scale_to_dbfs(espeak("I need a refill of my prescription.", "en-us"), -26.0)
    mix = white_noise(ms_to_samples(6000), -60.0, seed=14)
    mix[ms_to_samples(500) : ms_to_samples(580)] += burst(80.0, -20.0, seed=15)
    at = ms_to_samples(1500)
    mix[at : at + len(speech_clip)] += speech_clip
    span = speech_span(speech_clip, at)
    events = endpoint(ulaw_round_trip(to_int16(mix)))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    ended = events[1][1]
    assert isinstance(ended, SpeechEnded)
    assert abs(ended.start_frame * 20 - span.start_ms) <= TOLERANCE_MS
