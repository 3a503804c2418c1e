"""Levels in dBFS and prompt normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.errors import DspConfigError, SampleFormatError
from dsp.level import dbfs_to_rms, normalize, rms, rms_dbfs


def sine(amplitude: float, n: int = 8000, freq_hz: float = 1000.0) -> np.ndarray:
    t = np.arange(n) / 8000
    return np.rint(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def test_reference_levels_follow_the_sox_convention() -> None:
    square = np.where(np.arange(160) % 2 == 0, 32767, -32768).astype(np.int16)
    assert rms_dbfs(square) == pytest.approx(0.0, abs=0.001)
    assert rms_dbfs(sine(32767)) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(sine(32767 / 10)) == pytest.approx(-23.01, abs=0.01)
    assert dbfs_to_rms(-20.0) == pytest.approx(3276.8)


def test_silence_and_empty_frames_have_no_level() -> None:
    assert rms_dbfs(np.zeros(160, dtype=np.int16)) == -math.inf
    assert rms_dbfs(np.zeros(0, dtype=np.int16)) == -math.inf
    assert rms(np.zeros(0, dtype=np.int16)) == 0.0


def test_level_of_a_batch_covers_every_sample() -> None:
    frames = np.stack([sine(1000), sine(4000)])
    expected = 20 * math.log10(math.sqrt((1000**2 + 4000**2) / 4) / 32768)
    assert rms_dbfs(frames) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("target", [-30.0, -20.0, -16.0])
def test_normalize_hits_the_target_level(target: float) -> None:
    noise = np.random.default_rng(1).normal(0, 300, 16000)
    prompt = np.clip(np.rint(noise), -32768, 32767).astype(np.int16)
    out = normalize(prompt, target)
    assert out.dtype == np.int16 and out.shape == prompt.shape
    assert rms_dbfs(out) == pytest.approx(target, abs=0.05)
    assert rms_dbfs(prompt) == pytest.approx(rms_dbfs(prompt))  # input untouched
    assert np.corrcoef(out.astype(float), prompt.astype(float))[0, 1] > 0.999


def test_normalize_brings_a_tone_up_to_minus_6_dbfs() -> None:
    out = normalize(sine(500), -6.0)
    assert rms_dbfs(out) == pytest.approx(-6.0, abs=0.01)
    assert int(np.max(out)) < 32767  # a sine at -6 dBFS peaks at -3 dBFS


def test_normalize_never_clips_a_peaky_prompt() -> None:
    prompt = np.zeros(8000, dtype=np.int16)
    prompt[::1000] = 1000  # clicks: a high crest factor
    out = normalize(prompt, -10.0)
    assert int(np.max(np.abs(out.astype(np.int32)))) == 32767
    assert rms_dbfs(out) < -10.0  # quieter than asked rather than distorted
    np.testing.assert_array_equal(np.nonzero(out)[0], np.nonzero(prompt)[0])


def test_normalize_leaves_silence_alone() -> None:
    quiet = np.zeros(320, dtype=np.int16)
    out = normalize(quiet, -20.0)
    assert not out.any() and out is not quiet


@pytest.mark.parametrize("target", [1.0, math.inf, -math.inf, math.nan])
def test_normalize_refuses_impossible_targets(target: float) -> None:
    with pytest.raises(DspConfigError, match="target_dbfs"):
        normalize(sine(1000), target)


def test_level_functions_refuse_non_int16() -> None:
    with pytest.raises(SampleFormatError):
        rms_dbfs(np.zeros(10, dtype=np.float32))  # type: ignore[arg-type]  # the wrong type is the test
    with pytest.raises(SampleFormatError):
        normalize(np.zeros(10, dtype=np.int32), -20.0)  # type: ignore[arg-type]  # the wrong type is the test
