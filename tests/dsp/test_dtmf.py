"""In-band DTMF: what a caller pressing keys (or talking) would see reported."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from dsp.dtmf import (
    COLUMN_FREQUENCIES_HZ,
    DIGITS,
    ROW_FREQUENCIES_HZ,
    DtmfConfig,
    DtmfToneDetector,
    GoertzelBank,
    dtmf_tone,
)
from dsp.errors import DspConfigError, FrameError, SampleFormatError
from dsp.g711 import ulaw_decode, ulaw_encode
from dsp.level import dbfs_to_rms, rms_dbfs
from dsp.resample import Resampler

RATE = 8000
FRAME = 160


def silence(seconds: float) -> NDArray[np.int16]:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def channel(
    pcm: NDArray[np.int16], *, snr_db: float | None, ulaw: bool, tone_dbfs: float, seed: int = 0
) -> NDArray[np.int16]:
    """Add white noise ``snr_db`` below the dual tone's power, then a G.711 μ-law round trip."""
    x = pcm.astype(np.float64)
    if snr_db is not None:
        signal_rms = dbfs_to_rms(tone_dbfs) * np.sqrt(2)  # two tones at tone_dbfs each
        x += np.random.default_rng(seed).normal(0, signal_rms * 10 ** (-snr_db / 20), len(x))
    out = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(out)) if ulaw else out


def detect(pcm: NDArray[np.int16], frame: int = FRAME, config: DtmfConfig | None = None) -> str:
    detector = DtmfToneDetector(config)
    found = [detector.push(pcm[i : i + frame]) for i in range(0, len(pcm), frame)]
    return "".join(d for d in found if d)


def keyed(digits: Iterable[str], on_s: float, off_s: float, dbfs: float) -> NDArray[np.int16]:
    parts = [silence(0.1)]
    for d in digits:
        parts += [dtmf_tone(d, on_s, dbfs), silence(off_s)]
    return np.concatenate([*parts, silence(0.1)])


# name -> (white noise SNR in dB or None, μ-law round trip)
CHANNELS: dict[str, tuple[float | None, bool]] = {
    "clean": (None, False),
    "ulaw": (None, True),
    "noise15": (15.0, False),
    "noise15+ulaw": (15.0, True),
}


def through(name: str, pcm: NDArray[np.int16], dbfs: float, seed: int = 0) -> NDArray[np.int16]:
    snr_db, ulaw = CHANNELS[name]
    return channel(pcm, snr_db=snr_db, ulaw=ulaw, tone_dbfs=dbfs, seed=seed)


# --- Key presses are reported once each ------------------------------------------------------


@pytest.mark.parametrize("dbfs", [-10.0, -15.0, -20.0, -25.0])
@pytest.mark.parametrize("name", list(CHANNELS))
def test_all_16_keys_are_reported_once_each(dbfs: float, name: str) -> None:
    assert detect(through(name, keyed(DIGITS, 0.07, 0.06, dbfs), dbfs)) == DIGITS


@pytest.mark.parametrize("dbfs", [-10.0, -25.0])
@pytest.mark.parametrize("name", ["clean", "noise15+ulaw"])
def test_a_40ms_press_counts_wherever_it_falls_in_the_frame(dbfs: float, name: str) -> None:
    for digit in DIGITS:
        for offset in range(0, FRAME, 23):
            pcm = np.concatenate([silence(offset / RATE), keyed(digit, 0.040, 0.05, dbfs)])
            assert detect(through(name, pcm, dbfs, seed=offset)) == digit, (digit, offset)


@pytest.mark.parametrize("dbfs", [-10.0, -25.0])
@pytest.mark.parametrize("name", ["clean", "noise15+ulaw"])
def test_a_30ms_blip_never_counts(dbfs: float, name: str) -> None:
    for digit in DIGITS:
        for offset in range(0, FRAME, 23):
            pcm = np.concatenate([silence(offset / RATE), keyed(digit, 0.030, 0.05, dbfs)])
            assert detect(through(name, pcm, dbfs, seed=offset)) == "", (digit, offset)


@pytest.mark.parametrize("pause_s", [0.05, 0.04])  # Q.24 asks for 40 ms pauses to count
@pytest.mark.parametrize("name", list(CHANNELS))
def test_same_key_twice_with_a_short_pause_gives_two_digits(name: str, pause_s: float) -> None:
    for digit in "5#D":
        pcm = keyed(digit * 2, 0.06, pause_s, -20.0)
        assert detect(through(name, pcm, -20.0)) == digit * 2


def test_a_10ms_dropout_inside_one_press_is_not_a_second_digit() -> None:
    pcm = keyed("7" * 2, 0.06, 0.010, -20.0)
    assert detect(pcm) == "7"


def test_a_long_press_is_one_digit() -> None:
    assert detect(keyed("9", 2.0, 0.1, -15.0)) == "9"


def test_digit_is_reported_while_the_key_is_still_held() -> None:
    """The report comes about 40 ms into the tone, not when the key is released."""
    detector = DtmfToneDetector()
    pcm = np.concatenate([silence(0.02), dtmf_tone("3", 1.0, -20.0)])
    reported_at = next(
        i for i in range(0, len(pcm), FRAME) if detector.push(pcm[i : i + FRAME]) == "3"
    )
    assert 0.02 + 0.030 <= (reported_at + FRAME) / RATE <= 0.02 + 0.065


@pytest.mark.parametrize("frame", [1, 80, 160, 240, 272])
def test_frame_size_does_not_change_the_result(frame: int) -> None:
    pcm = channel(keyed("147*0#", 0.05, 0.05, -18.0), snr_db=20.0, ulaw=True, tone_dbfs=-18.0)
    assert detect(pcm, frame=frame) == "147*0#"


# --- Speech does not produce digits ---------------------------------------------------------

PHRASES = [
    ("en-us", "My date of birth is March third, nineteen eighty five, and my zip is 90210."),
    ("en-us+f3", "Member number one two three four five six seven eight nine, star, pound."),
    ("en-us+m3", "Hmmm. Ahhh. Eeee. Oooh. La la la la la. Mmmmmm. Beep beep boop."),
    ("en-gb", "The pharmacy on Main Street; the phone is five five five, one two one two."),
]


@functools.cache
def espeak_8k(voice: str, text: str) -> NDArray[np.int16]:
    binary = shutil.which("espeak-ng")
    if binary is None:  # a missing tool fails the test: scripts/setup.sh installs it
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run([binary, "-v", voice, "-w", str(path), text], check=True, timeout=60)
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
    return Resampler(rate, RATE).process(raw, last=True)


@pytest.mark.parametrize(("voice", "text"), PHRASES, ids=[v for v, _ in PHRASES])
def test_speech_produces_no_digits(voice: str, text: str) -> None:
    speech = espeak_8k(voice, text)
    assert len(speech) > 2 * RATE  # real speech, not an empty file
    assert rms_dbfs(speech) > -35.0
    for gain in (0.5, 1.0, 3.0):
        loud = np.clip(speech * gain, -32768, 32767).astype(np.int16)
        assert detect(loud) == ""
        assert detect(ulaw_decode(ulaw_encode(loud))) == ""


def test_a_key_pressed_right_after_speech_is_still_heard() -> None:
    speech = espeak_8k(*PHRASES[0])
    pcm = np.concatenate([speech, silence(0.05), dtmf_tone("8", 0.06, -20.0), silence(0.1)])
    assert detect(ulaw_decode(ulaw_encode(pcm))) == "8"


# --- The individual reception checks ---------------------------------------------------------


def press(digit: str, **tone: float) -> NDArray[np.int16]:
    dbfs = tone.pop("dbfs", -18.0)
    return np.concatenate([silence(0.05), dtmf_tone(digit, 0.08, dbfs, **tone), silence(0.1)])


def test_twist_within_the_usual_limits_is_accepted() -> None:
    for digit in DIGITS:
        assert detect(press(digit, high_over_low_db=-8.0)) == digit  # low tone 8 dB louder
        assert detect(press(digit, high_over_low_db=4.0)) == digit  # high tone 4 dB louder


def test_excessive_twist_is_rejected() -> None:
    for digit in DIGITS:
        assert detect(press(digit, high_over_low_db=-12.0)) == ""
        assert detect(press(digit, high_over_low_db=8.0)) == ""


def test_frequency_error_within_q24_tolerance_is_accepted_and_beyond_is_not() -> None:
    for digit in DIGITS:
        for error in (-0.015, 0.015):
            assert detect(press(digit, frequency_error=error)) == digit
        for error in (-0.035, 0.035):
            assert detect(press(digit, frequency_error=error)) == ""


def test_quiet_tones_down_to_minus_30_dbfs_count_and_below_minus_32_do_not() -> None:
    for digit in DIGITS:
        assert detect(press(digit, dbfs=-30.0)) == digit
        assert detect(press(digit, dbfs=-34.0)) == ""


def _sines(
    freqs_hz: Iterable[float], seconds: float = 0.1, dbfs: float = -18.0
) -> NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    amplitude = dbfs_to_rms(dbfs) * np.sqrt(2)
    x = sum(amplitude * np.sin(2 * np.pi * f * t) for f in freqs_hz)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def test_a_single_tone_is_not_a_key() -> None:
    for freq in ROW_FREQUENCIES_HZ + COLUMN_FREQUENCIES_HZ:
        assert detect(_sines([freq])) == ""


def test_two_tones_of_one_group_plus_a_third_are_not_a_key() -> None:
    """Relative peak: a chord with two row tones is ambiguous, so nothing is reported."""
    assert detect(_sines([697.0, 770.0, 1209.0])) == ""
    assert detect(_sines([852.0, 1336.0, 1477.0])) == ""


def test_a_key_drowned_in_another_tone_is_not_reported() -> None:
    """Purity: the two tones must carry most of the energy (here a 2 kHz tone carries half)."""
    low, high = ROW_FREQUENCIES_HZ[0], COLUMN_FREQUENCIES_HZ[0]
    pcm = _sines([low, high]) + _sines([2000.0], dbfs=-15.0)
    assert detect(pcm) == ""
    assert detect(_sines([low, high]) + _sines([2000.0], dbfs=-30.0)) == "1"


def test_dial_tone_and_ringback_are_not_keys() -> None:
    assert detect(_sines([350.0, 440.0], seconds=2.0)) == ""  # North American dial tone
    assert detect(_sines([440.0, 480.0], seconds=2.0)) == ""  # ringback
    assert detect(_sines([480.0, 620.0], seconds=2.0)) == ""  # busy


# --- Building blocks and API edges -------------------------------------------------------------


def _goertzel_recursion(x: NDArray[np.float64], freq_hz: float) -> float:
    coeff = 2 * np.cos(2 * np.pi * freq_hz / RATE)
    s_prev = s_prev2 = 0.0
    for sample in x:
        s_prev, s_prev2 = float(sample) + coeff * s_prev - s_prev2, s_prev
    return s_prev**2 + s_prev2**2 - coeff * s_prev * s_prev2


def test_goertzel_bank_equals_the_recursion_and_the_dtft() -> None:
    freqs = ROW_FREQUENCIES_HZ + COLUMN_FREQUENCIES_HZ
    bank = GoertzelBank(freqs, 102, RATE)
    windows = np.random.default_rng(3).normal(0, 1000, (5, 102))
    power = bank.power(windows)
    assert power.shape == (5, 8)
    n = np.arange(102)
    for i, window in enumerate(windows):
        for j, freq in enumerate(freqs):
            dtft = abs(np.sum(window * np.exp(-2j * np.pi * freq * n / RATE))) ** 2
            assert power[i, j] == pytest.approx(_goertzel_recursion(window, freq), rel=1e-9)
            assert power[i, j] == pytest.approx(dtft, rel=1e-9)


def test_dtmf_tone_has_the_keypad_frequencies_and_level() -> None:
    pcm = dtmf_tone("6", 1.0, -20.0)
    assert len(pcm) == RATE and pcm.dtype == np.int16
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    peaks = sorted(np.argsort(spectrum)[-2:].tolist())  # 1 s of audio: 1 Hz bins
    assert peaks == [770, 1477]
    assert rms_dbfs(pcm) == pytest.approx(-20.0 + 10 * np.log10(2), abs=0.05)
    assert len(dtmf_tone("#", 0.05, -10.0, sample_rate_hz=16000)) == 800
    with pytest.raises(DspConfigError, match="not a DTMF digit"):
        dtmf_tone("E", 0.05, -10.0)


def test_push_refuses_bad_frames() -> None:
    detector = DtmfToneDetector()
    with pytest.raises(SampleFormatError, match="int16"):
        detector.push(np.zeros(160, dtype=np.float64))  # type: ignore[arg-type]  # the test
    with pytest.raises(FrameError, match="1-D"):
        detector.push(np.zeros((2, 80), dtype=np.int16))
    limit = detector.config.max_frame_samples
    assert limit >= 160
    with pytest.raises(FrameError, match="longer than"):
        detector.push(np.zeros(limit + 1, dtype=np.int16))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_samples": 16},
        {"hop_samples": 0},
        {"hop_samples": 200},
        {"min_tone_fraction": 0.0},
        {"min_on_windows": 0},
        {"min_off_windows": 0},
    ],
)
def test_config_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(DspConfigError):
        DtmfConfig(**kwargs)  # type: ignore[arg-type]  # the bad values are the test
