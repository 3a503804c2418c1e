"""Packet loss concealment: waveform continuation, fade to silence, and no clicks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError
from dsp.plc import Concealer
from tests.dsp.speech import espeak, ulaw_round_trip

F = 160  # 20 ms at 8 kHz
Pcm = NDArray[np.int16]


def tone(freq_hz: float, seconds: float = 1.0, amplitude: float = 10_000.0) -> Pcm:
    t = np.arange(round(8000 * seconds)) / 8000
    return np.rint(amplitude * np.sin(2 * np.pi * freq_hz * t + 0.3)).astype(np.int16)


def vowel(f0_hz: float, seconds: float = 1.0) -> Pcm:
    """A voiced-speech stand-in: six harmonics with falling amplitude."""
    t = np.arange(round(8000 * seconds)) / 8000
    x = sum(0.8**k * np.sin(2 * np.pi * f0_hz * (k + 1) * t + k) for k in range(6))
    return np.rint(6000 * x).astype(np.int16)


def play(signal: Pcm, lost: set[int], concealer: Concealer | None = None) -> Pcm:
    """What the listener hears: real frames through `receive`, lost ones concealed."""
    plc = concealer or Concealer()
    out: list[Pcm] = []
    history = np.zeros(0, np.int16)
    for k in range(len(signal) // F):
        frame = signal[k * F : (k + 1) * F]
        heard = plc.conceal(history) if k in lost else plc.receive(frame)
        out.append(heard)
        history = np.concatenate([history, heard])[-plc.history_samples :]
    return np.concatenate(out)


def rms(x: Pcm) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def worst_step_ratio(heard: Pcm, original: Pcm, first: int, count: int) -> float:
    """Largest sample step around a loss (from just before it to the end of the frame after
    it), relative to the largest step the original signal has within 100 ms of it."""
    lo, hi = first * F - 5, (first + count + 1) * F
    step = np.abs(np.diff(heard[lo:hi].astype(np.float64))).max()
    own = np.abs(np.diff(original[max(0, lo - 800) : hi + 800].astype(np.float64))).max()
    if own == 0:  # digital silence all around: anything but silence is a click
        return 0.0 if step == 0 else float("inf")
    return float(step / own)


def test_a_lost_frame_of_a_vowel_continues_its_waveform() -> None:
    signal = vowel(120.0)
    heard = play(signal, {10})
    concealed, truth = heard[10 * F : 11 * F], signal[10 * F : 11 * F]
    first_10ms = slice(0, 80)
    error = truth[first_10ms].astype(np.float64) - concealed[first_10ms]
    snr_db = 10 * np.log10(np.sum(truth[first_10ms].astype(np.float64) ** 2) / np.sum(error**2))
    assert snr_db > 12.0  # the pitch period was found: the repetition lines up
    assert rms(concealed) > 0.8 * rms(truth)


def test_energy_decays_over_consecutive_losses_to_silence_after_60_ms() -> None:
    signal = tone(440.0)
    heard = play(signal, {10, 11, 12, 13})
    levels = [
        rms(heard[k * F : (k + 1) * F]) / rms(signal[k * F : (k + 1) * F]) for k in range(10, 14)
    ]
    assert levels[0] > 0.9  # full level for 10 ms, then -20 % per 10 ms
    assert levels[0] > levels[1] > levels[2] > levels[3]
    assert not heard[13 * F : 14 * F].any()  # silent from 60 ms into the loss
    assert np.abs(heard[13 * F - 8 : 13 * F]).max() < 0.02 * np.abs(signal).max()  # a ramp


def test_a_second_loss_run_starts_again_at_full_level() -> None:
    signal = tone(300.0)
    heard = play(signal, {10, 11, 12, 13, 20})
    assert rms(heard[20 * F : 21 * F]) > 0.9 * rms(signal[20 * F : 21 * F])


SIGNALS: dict[str, Callable[[], Pcm]] = {
    "tone-100Hz": lambda: tone(100.0),
    "tone-440Hz": lambda: tone(440.0),
    "tone-1800Hz": lambda: tone(1800.0),
    "vowel-90Hz": lambda: vowel(90.0),
    "vowel-120Hz": lambda: vowel(120.0),
    "vowel-230Hz": lambda: vowel(230.0),
    "speech": lambda: ulaw_round_trip(
        espeak("Hello, this is the patient intake line. Please state your date of birth.")
    ),
}


@pytest.mark.parametrize("name", SIGNALS)
def test_no_click_where_concealment_starts_loops_or_hands_back(name: str) -> None:
    signal = SIGNALS[name]()
    # The repetition loop has an integer length and the pitch rarely is one, so the seam
    # may steepen the waveform by a few percent; a click is a step several times larger.
    for first in range(5, len(signal) // F - 6, 3):
        for count in (1, 2, 4):
            heard = play(signal, set(range(first, first + count)))
            assert worst_step_ratio(heard, signal, first, count) <= 1.05, (first, count)


def conceal_with_silence(signal: Pcm, lost: set[int]) -> Pcm:
    heard = signal.copy()
    for k in lost:
        heard[k * F : (k + 1) * F] = 0
    return heard


def conceal_by_repeating_the_last_frame(signal: Pcm, lost: set[int]) -> Pcm:
    heard = signal.copy()
    for k in sorted(lost):
        heard[k * F : (k + 1) * F] = heard[(k - 1) * F : k * F]
    return heard


@pytest.mark.parametrize("naive", [conceal_with_silence, conceal_by_repeating_the_last_frame])
def test_the_click_measure_catches_naive_concealment(
    naive: Callable[[Pcm, set[int]], Pcm],
) -> None:
    # 130 Hz: a frame is 2.6 periods, so the naive seams land mid-cycle.
    signal = tone(130.0)
    for first in (10, 17, 23):
        assert worst_step_ratio(naive(signal, {first}), signal, first, 1) > 1.5
        assert worst_step_ratio(play(signal, {first}), signal, first, 1) <= 1.05


def test_the_cross_fade_into_the_real_frame_lengthens_with_the_loss() -> None:
    signal = vowel(120.0)
    for lost, blend in (({10}, 64), ({10, 11, 12}, 80)):  # 8 ms after 20 ms, 10 ms at most
        after = max(lost) + 1
        heard = play(signal, lost)[after * F : (after + 1) * F]
        truth = signal[after * F : (after + 1) * F]
        assert np.array_equal(heard[blend:], truth[blend:])
        assert not np.array_equal(heard[blend - 8 : blend], truth[blend - 8 : blend])


def test_frames_pass_through_untouched_when_nothing_was_lost() -> None:
    signal = vowel(150.0)
    assert np.array_equal(play(signal, set()), signal[: len(signal) // F * F])
    plc = Concealer()
    frame = signal[:F]
    assert plc.receive(frame) is frame and not plc.concealing


def test_short_or_empty_history_at_the_start_of_a_call() -> None:
    plc = Concealer()
    silence = plc.conceal(np.zeros(0, np.int16))
    assert silence.dtype == np.int16 and silence.shape == (F,) and not silence.any()
    plc = Concealer()
    out = plc.conceal(tone(300.0)[:100])
    assert out.dtype == np.int16 and out.shape == (F,) and plc.concealing


def test_wrong_sample_formats_are_refused() -> None:
    plc = Concealer()
    with pytest.raises(SampleFormatError):
        plc.conceal(np.zeros(400, np.float32))
    with pytest.raises(FrameError):
        plc.receive(np.zeros(80, np.int16))
    with pytest.raises(DspConfigError):
        Concealer(sample_rate_hz=44_100)
