"""Streaming resampler: frequency, level, exact counts, seamless blocks, anti-aliasing."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError
from dsp.resample import Resampler

PAIRS = [(8000, 16000), (16000, 8000), (8000, 22050), (22050, 8000), (8000, 24000), (24000, 8000)]
PAIR_IDS = [f"{a}->{b}" for a, b in PAIRS]


def tone(
    freq_hz: float, rate_hz: int, seconds: float, amplitude: float = 10000.0
) -> NDArray[np.int16]:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    return np.rint(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def blocks_of(pcm: NDArray[np.int16], size: int) -> list[NDArray[np.int16]]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def stream(resampler: Resampler, pcm: NDArray[np.int16], block: int) -> NDArray[np.int16]:
    out = [resampler.process(b) for b in blocks_of(pcm, block)]
    out.append(resampler.flush())
    return np.concatenate(out)


def rms(pcm: NDArray[np.int16]) -> float:
    middle = pcm[len(pcm) // 8 : -len(pcm) // 8].astype(np.float64)  # skip the edges
    return float(np.sqrt(np.mean(middle**2)))


def peak_hz(pcm: NDArray[np.int16], rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate_hz)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_tone_keeps_its_frequency_and_level(src: int, dst: int) -> None:
    for freq in (440.0, 1000.0, 3000.0):
        pcm = tone(freq, src, 1.0)
        out = stream(Resampler(src, dst), pcm, src // 50)
        assert abs(peak_hz(out, dst) - freq) <= 1.0  # 1 s of audio: 1 Hz bins
        gain_db = 20 * np.log10(rms(out) / rms(pcm))
        assert abs(gain_db) < 0.1, (freq, gain_db)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_100_blocks_of_20ms_give_exactly_2_seconds(src: int, dst: int) -> None:
    rs = Resampler(src, dst)
    pcm = tone(1000.0, src, 2.0)
    per_block = [len(rs.process(b)) for b in blocks_of(pcm, src // 50)]
    assert len(per_block) == 100
    held_back = 2 * dst - sum(per_block)
    assert 0 <= held_back <= dst * 0.035  # the fixed hold-back is at most 35 ms
    assert len(rs.flush()) == held_back
    assert (rs.samples_in, rs.samples_out) == (2 * src, 2 * dst)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_output_is_steady_once_primed(src: int, dst: int) -> None:
    """After two blocks each 20 ms in gives 20 ms out, give or take one sample: no bursts."""
    rs = Resampler(src, dst)
    counts = [len(rs.process(b)) for b in blocks_of(tone(700.0, src, 1.0), src // 50)]
    nominal = dst / 50
    assert all(abs(n - nominal) <= 1 for n in counts[3:]), counts


def ideal_count(n_in: int, src: int, dst: int) -> int:
    return (2 * n_in * dst + src) // (2 * src)  # n_in * dst / src rounded half up


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("block", [1, 7, 161, 333, 1000])
def test_odd_block_sizes_give_the_rounded_ideal_count(src: int, dst: int, block: int) -> None:
    n_in = 4567
    rng = np.random.default_rng(block)
    pcm = rng.integers(-8000, 8000, n_in).astype(np.int16)
    assert len(stream(Resampler(src, dst), pcm, block)) == ideal_count(n_in, src, dst)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_every_stream_length_gives_the_rounded_ideal_count(src: int, dst: int) -> None:
    """soxr alone gives 2 samples for 9 at 24 -> 8 kHz; the flush makes every length exact."""
    for n_in in [*range(0, 40), 4002, 4007, 44100]:
        pcm = np.full(n_in, 1000, dtype=np.int16)
        rs = Resampler(src, dst)
        assert len(rs.process(pcm, last=True)) == ideal_count(n_in, src, dst), n_in


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_blockwise_output_equals_one_shot_output(src: int, dst: int) -> None:
    rng = np.random.default_rng(src + dst)
    pcm = np.convolve(rng.normal(0, 4000, src), np.ones(4) / 4, mode="same").astype(np.int16)
    one_shot = stream(Resampler(src, dst), pcm, len(pcm))
    block_wise = stream(Resampler(src, dst), pcm, src // 50)
    assert one_shot.shape == block_wise.shape
    assert np.max(np.abs(one_shot.astype(np.int32) - block_wise)) <= 1


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_no_step_at_block_edges(src: int, dst: int) -> None:
    out = stream(Resampler(src, dst), tone(1000.0, src, 1.0, amplitude=20000.0), src // 50)
    steady = out[dst // 10 : -dst // 10].astype(np.float64)
    # A 1 kHz tone's sample-to-sample step never exceeds 2*pi*f/fs of its amplitude.
    limit = 20000.0 * 2 * np.pi * 1000.0 / dst * 1.02 + 2
    assert np.max(np.abs(np.diff(steady))) <= limit


@pytest.mark.parametrize(
    ("src", "dst", "freq"),
    [(16000, 8000, 6000.0), (16000, 8000, 4500.0), (22050, 8000, 5000.0), (24000, 8000, 6000.0)],
)
def test_tones_above_the_new_nyquist_are_filtered_out(src: int, dst: int, freq: float) -> None:
    pcm = tone(freq, src, 1.0, amplitude=20000.0)
    out = stream(Resampler(src, dst), pcm, src // 50)
    attenuation_db = 20 * np.log10(rms(pcm) / max(rms(out), 1e-9))
    assert attenuation_db > 40, attenuation_db


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_telephone_band_passes_flat(src: int, dst: int) -> None:
    for freq in (300.0, 3400.0):
        pcm = tone(freq, src, 0.5)
        out = stream(Resampler(src, dst), pcm, src // 50)
        assert abs(20 * np.log10(rms(out) / rms(pcm))) < 0.5


def test_full_scale_square_wave_saturates_instead_of_wrapping() -> None:
    square = np.where(np.arange(1600) // 20 % 2 == 0, 32767, -32768).astype(np.int16)
    out = stream(Resampler(8000, 16000), square, 160)
    # Gibbs overshoot beyond the rails is clipped to them ...
    assert (out.max(), out.min()) == (32767, -32768)
    # ... and never wraps: the middle of every plateau keeps its sign and level.
    phase = np.arange(len(out)) % 80  # 40 input samples per period -> 80 output samples
    inner = np.arange(len(out)) >= 80
    assert np.all(out[inner & (phase >= 10) & (phase < 30)] > 28000)
    assert np.all(out[inner & (phase >= 50) & (phase < 70)] < -28000)


def test_silence_stays_silent() -> None:
    out = stream(Resampler(8000, 16000), np.zeros(1600, dtype=np.int16), 160)
    assert len(out) == 3200 and not out.any()


def test_reset_starts_a_new_identical_stream() -> None:
    rs = Resampler(8000, 16000)
    pcm = tone(500.0, 8000, 0.2)
    first = stream(rs, pcm, 160)
    with pytest.raises(FrameError, match="finished"):
        rs.process(pcm[:160])
    rs.reset()
    assert rs.samples_in == 0
    np.testing.assert_array_equal(stream(rs, pcm, 160), first)


@pytest.mark.parametrize(
    "bad", [np.zeros(160, dtype=np.float32), np.zeros(160, dtype=np.int32), [0] * 160]
)
def test_refuses_anything_but_int16(bad: object) -> None:
    with pytest.raises(SampleFormatError, match="int16"):
        Resampler(8000, 16000).process(bad)  # type: ignore[arg-type]  # the wrong type is the test


def test_refuses_multichannel_blocks() -> None:
    with pytest.raises(FrameError, match="1-D mono"):
        Resampler(8000, 16000).process(np.zeros((160, 2), dtype=np.int16))


@pytest.mark.parametrize("rate", [0, -8000, 8000.0, True])
def test_refuses_bad_rates(rate: object) -> None:
    with pytest.raises(DspConfigError, match="positive integer"):
        Resampler(rate, 16000)  # type: ignore[arg-type]  # the wrong type is the test
    with pytest.raises(DspConfigError, match="dst_hz"):
        Resampler(8000, rate)  # type: ignore[arg-type]  # the wrong type is the test
