"""The synchronous pocketsphinx recogniser that runs inside a decoder worker process.

Theory of operation
-------------------
One `Recognizer` decodes one caller turn at a time: `begin(hints)`, then `feed(pcm8k)` for
each block as it arrives, then `finish()` (or `abort()`). It is plain blocking code; the
asyncio shell (`agent.providers.pocketsphinx_stt`) runs each `Recognizer` in a process of its
own, because pocketsphinx's Python binding keeps the GIL while it decodes (measured here: an
end of utterance with the language model holds it for 270-310 ms, which would stall every
call's 20 ms media tick if it ran in a thread).

Front end. The bundled acoustic model (CMU en-us, continuous PTM) is trained on 16 kHz speech,
and there is no 8 kHz model, so G.711 audio is upsampled with `dsp.resample.Resampler`. Above
4 kHz the result holds only the resampler's residue, which the model's top mel filters turn
into erratic log energies; a fixed, seeded noise floor (``high_band_floor_dbfs``) in that
band gives them a steady level instead (measured on the date grammar: 59 % -> 37 % word
errors; no other kind got worse by more than one utterance). The telephone band gets a floor
too (``line_floor_dbfs``): a caller's endpoint may send digital silence (μ-law 0xFF) between
words, and the model, trained on recordings that always hold some noise, then misreads the
speech around it (measured on a live turn: "i have a cough and a fever" came back "a cold"
with 100 ms or more of digital silence around it, and right with a -60 dBFS floor).

Cepstral mean. pocketsphinx normalises features with a running cepstral mean that starts from
an initial estimate and adapts during the utterance. The model's default (``40,3,-1``) is far
from telephone speech, and a short answer ("aetna") is over before the mean has moved: with
it, the first answers of a call all came back empty. `CEPSTRAL_MEAN` was measured on 8 kHz
G.711 speech through this front end (espeak-ng voices other than the ones the tests use), and
every turn starts from it again, so a turn never depends on an earlier caller's audio.

Confidence. A grammar never rejects: it returns the grammar sentence closest to whatever was
said. Each turn is therefore also decoded by a free phone loop (pocketsphinx ``allphone``
search: any sequence of phones), and the confidence is a logistic function of the
log-likelihood ratio per frame between the recognised path and the phone loop's
(`CONFIDENCE_SLOPE`, `CONFIDENCE_OFFSET`): speech the grammar explains about as well as
unconstrained phones scores high, speech it must force into a sentence scores low. A turn in
which no grammar path reached the final state returns "" with confidence 0. The two constants
are a logistic regression of "the answer was right" on the ratio, over 130 grammar turns
(answers and out-of-grammar phrases) in espeak-ng's en-us and en-us+f3 voices through G.711.
Free speech (the bundled trigram model) gets the same measure; it ranks turns but was not
calibrated on them. pocketsphinx's own alternatives are no help here: its n-best list for a
grammar repeats one sentence, and its lattice posteriors were 1.0 for words forced onto
out-of-grammar speech, so `Result` carries none.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import numpy as np
import pocketsphinx  # type: ignore[import-untyped]  # the wheel ships no type information
from numpy.typing import NDArray

from agent.providers.base import RecognitionHints
from agent.providers.grammars import GrammarSearch, LanguageModelSearch, compile_hints
from dsp.resample import Resampler

__all__ = [
    "CEPSTRAL_MEAN",
    "CONFIDENCE_OFFSET",
    "CONFIDENCE_SLOPE",
    "DecoderKind",
    "Recognizer",
    "RecognizerConfig",
    "Result",
]

TELEPHONE_RATE_HZ: Final = 8000
MODEL_RATE_HZ: Final = 16000

#: Initial cepstral mean for 8 kHz G.711 speech upsampled by this front end (13 MFCCs).
CEPSTRAL_MEAN: Final = "53.12,3.87,-8.75,17.05,-13.29,-8.73,4.44,-15.87,2.20,-1.29,-6.58,7.35,-5.51"
#: Logistic map from the per-frame log-likelihood ratio (grammar path minus phone loop, in
#: pocketsphinx log units of base 1.0001) to a confidence.
CONFIDENCE_SLOPE: Final = 0.2
CONFIDENCE_OFFSET: Final = 2.7

_MAX_CACHED_SEARCHES: Final = 32
_NOISE_PERIOD_SAMPLES: Final = MODEL_RATE_HZ  # one second, looped


class DecoderKind(Enum):
    """What a worker's decoder is loaded with."""

    GRAMMAR = "grammar"  # no language model: JSGF searches
    LANGUAGE_MODEL = "language_model"  # the bundled trigram model, for free speech


@dataclass(frozen=True, slots=True)
class RecognizerConfig:
    """How a worker's recogniser is built.

    Attributes:
        cepstral_mean: initial cepstral mean for every turn (comma-separated, 13 values).
        high_band_floor_dbfs: level of the noise floor added above 4 kHz; None for none.
        line_floor_dbfs: level of the noise floor added below 4 kHz; None for none.
        second_pass: for free speech, add pocketsphinx's flat-lexicon second pass and lattice
            best path (measured here: 75 % instead of 81 % word errors, but ``finish`` takes
            270 ms instead of 20 ms, with the GIL held in the worker throughout).
        interim_interval_s: audio between two interim results.
        pronunciations: extra (word, ARPABET phones) entries for the dictionary.
        model_dir: an acoustic model directory; None for the one bundled with pocketsphinx.
    """

    cepstral_mean: str = CEPSTRAL_MEAN
    high_band_floor_dbfs: float | None = -60.0
    line_floor_dbfs: float | None = -60.0
    second_pass: bool = False
    interim_interval_s: float = 0.5
    pronunciations: tuple[tuple[str, str], ...] = ()
    model_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """One recognised turn (or a partial one)."""

    text: str
    confidence: float
    audio_s: float
    dropped_phrases: tuple[str, ...] = ()


def high_band_noise(level_dbfs: float, seed: int = 0) -> NDArray[np.float64]:
    """One second of white noise band-limited to 4-8 kHz, periodic so it can be looped."""
    return _band_noise(level_dbfs, seed, high=True)


def line_noise(level_dbfs: float, seed: int = 1) -> NDArray[np.float64]:
    """One second of white noise band-limited to 0-4 kHz, periodic so it can be looped."""
    return _band_noise(level_dbfs, seed, high=False)


def _band_noise(level_dbfs: float, seed: int, *, high: bool) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(_NOISE_PERIOD_SAMPLES))
    freqs = np.fft.rfftfreq(_NOISE_PERIOD_SAMPLES, d=1.0 / MODEL_RATE_HZ)
    low = freqs < TELEPHONE_RATE_HZ / 2
    spectrum[low if high else ~low] = 0
    noise = np.fft.irfft(spectrum, n=_NOISE_PERIOD_SAMPLES)
    scale = 32768.0 * 10 ** (level_dbfs / 20) / float(np.sqrt(np.mean(noise**2)))
    return noise * scale


class _FrontEnd:
    """8 kHz int16 in, 16 kHz int16 bytes out, with the noise floors mixed in."""

    def __init__(self, floor_dbfs: float | None, line_floor_dbfs: float | None = None) -> None:
        self._resampler = Resampler(TELEPHONE_RATE_HZ, MODEL_RATE_HZ)
        noise = np.zeros(_NOISE_PERIOD_SAMPLES)
        if floor_dbfs is not None:
            noise += high_band_noise(floor_dbfs)
        if line_floor_dbfs is not None:
            noise += line_noise(line_floor_dbfs)
        self._noise = noise if floor_dbfs is not None or line_floor_dbfs is not None else None
        self._position = 0

    def reset(self) -> None:
        self._resampler.reset()
        self._position = 0

    def process(self, pcm8k: NDArray[np.int16], *, last: bool = False) -> bytes:
        pcm16k = self._resampler.process(pcm8k, last=last)
        if self._noise is None or pcm16k.size == 0:
            return pcm16k.tobytes()
        index = (self._position + np.arange(pcm16k.size)) % _NOISE_PERIOD_SAMPLES
        self._position = int((self._position + pcm16k.size) % _NOISE_PERIOD_SAMPLES)
        mixed = np.clip(np.rint(pcm16k + self._noise[index]), -32768, 32767)
        return mixed.astype(np.int16).tobytes()


def _model_paths(model_dir: str | None) -> tuple[str, str, str, str]:
    root = os.path.join(pocketsphinx.get_model_path(), "en-us")
    return (
        model_dir or os.path.join(root, "en-us"),
        os.path.join(root, "cmudict-en-us.dict"),
        os.path.join(root, "en-us.lm.bin"),
        os.path.join(root, "en-us-phone.lm.bin"),
    )


def _plain(word: str) -> str:
    """Drop the number of an alternate pronunciation: "really(2)" -> "really"."""
    return word.split("(", 1)[0]


class Recognizer:
    """A pocketsphinx decoder and its phone loop, for one turn at a time."""

    def __init__(self, kind: DecoderKind, config: RecognizerConfig | None = None) -> None:
        """Load the model for the decoder and again for its phone loop.

        Measured here: 0.4 s, or 0.7 s with the language model.

        Raises:
            RuntimeError: pocketsphinx could not load the model.
        """
        self.kind = kind
        self.config = config or RecognizerConfig()
        hmm, dictionary, lm, phone_lm = _model_paths(self.config.model_dir)
        common: dict[str, Any] = {
            "hmm": hmm,
            "dict": dictionary,
            "loglevel": "FATAL",
            "cmninit": self.config.cepstral_mean,
        }
        # No lattice best path for grammars: it can stop short of the grammar's final state
        # ("united" for "united healthcare", measured). For the language model it is part of
        # the optional second pass.
        language_model = lm if kind is DecoderKind.LANGUAGE_MODEL else None
        slow = self.config.second_pass and language_model is not None
        self._decoder = pocketsphinx.Decoder(
            lm=language_model, bestpath=slow, fwdflat=slow, **common
        )
        self._phones = pocketsphinx.Decoder(lm=None, allphone=phone_lm, bestpath=False, **common)
        for word, phones in self.config.pronunciations:
            self._decoder.add_word(word, phones, True)
        self._logmath = self._decoder.get_logmath()
        self._front = _FrontEnd(self.config.high_band_floor_dbfs, self.config.line_floor_dbfs)
        self._searches: OrderedDict[str, None] = OrderedDict()
        self._in_turn = False
        self._samples = 0
        self._next_interim = 0
        self._last_interim = ""
        self._dropped: tuple[str, ...] = ()

    def lookup_word(self, word: str) -> str | None:
        """The dictionary's phones for ``word`` (a `grammars.Lexicon`)."""
        phones = self._decoder.lookup_word(word)
        return None if phones is None else str(phones)

    def begin(self, hints: RecognitionHints) -> tuple[str, ...]:
        """Start a turn recognised with ``hints``; returns the phrases that had to be dropped.

        Raises:
            ValueError: the hints cannot be recognised by this decoder kind, or none of their
                phrases can be pronounced.
        """
        if self._in_turn:
            self.abort()
        search = compile_hints(hints, self)
        wants_lm = isinstance(search, LanguageModelSearch)
        if wants_lm != (self.kind is DecoderKind.LANGUAGE_MODEL):
            raise ValueError(f"a {self.kind.value} decoder cannot recognise {hints.kind.name}")
        if isinstance(search, GrammarSearch):
            self._activate(search)
            self._dropped = search.dropped
        else:
            self._dropped = ()
        for decoder in self._decoders():
            decoder.set_cmn(self.config.cepstral_mean)
            decoder.start_utt()
        self._front.reset()
        self._in_turn = True
        self._samples = 0
        self._next_interim = round(self.config.interim_interval_s * TELEPHONE_RATE_HZ)
        self._last_interim = ""
        return self._dropped

    def _activate(self, search: GrammarSearch) -> None:
        if search.name in self._searches:
            self._searches.move_to_end(search.name)
        else:
            for word, phones in search.words:
                if self._decoder.lookup_word(word) is None:
                    self._decoder.add_word(word, phones, True)
            self._decoder.add_jsgf_string(search.name, search.jsgf)
            self._searches[search.name] = None
            if len(self._searches) > _MAX_CACHED_SEARCHES:
                evicted, _ = self._searches.popitem(last=False)
                self._decoder.remove_search(evicted)
        self._decoder.activate_search(search.name)

    def _decoders(self) -> list[Any]:
        return [self._decoder, self._phones]

    def feed(self, pcm8k: NDArray[np.int16]) -> str | None:
        """Decode the next block; returns new partial text when an interim result is due.

        Raises:
            RuntimeError: no turn has begun.
        """
        if not self._in_turn:
            raise RuntimeError("feed() before begin()")
        self._process(self._front.process(pcm8k))
        self._samples += int(pcm8k.size)
        if self._samples < self._next_interim:
            return None
        self._next_interim += round(self.config.interim_interval_s * TELEPHONE_RATE_HZ)
        hypothesis = self._decoder.hyp()
        text = " ".join(_plain(w) for w in str(hypothesis.hypstr).split()) if hypothesis else ""
        if text == self._last_interim:
            return None
        self._last_interim = text
        return text

    def _process(self, pcm16k: bytes) -> None:
        if pcm16k:
            for decoder in self._decoders():
                decoder.process_raw(pcm16k, False, False)

    def finish(self) -> Result:
        """End the turn and return the final result.

        Raises:
            RuntimeError: no turn has begun.
        """
        if not self._in_turn:
            raise RuntimeError("finish() before begin()")
        self._process(self._front.process(np.zeros(0, dtype=np.int16), last=True))
        for decoder in self._decoders():
            decoder.end_utt()
        self._in_turn = False
        audio_s = self._samples / TELEPHONE_RATE_HZ
        hypothesis = self._decoder.hyp()
        if hypothesis is None or not str(hypothesis.hypstr).strip():
            return Result("", 0.0, audio_s, self._dropped)
        text = " ".join(_plain(w) for w in str(hypothesis.hypstr).split())
        confidence = confidence_from_ratio(self.log_likelihood_ratio())
        return Result(text, confidence, audio_s, self._dropped)

    def abort(self) -> None:
        """Abandon the turn in progress, if any."""
        if self._in_turn:
            for decoder in self._decoders():
                decoder.end_utt()
            self._in_turn = False

    def log_likelihood_ratio(self) -> float:
        """Per-frame acoustic score of the grammar path minus the phone loop's, last turn."""
        frames = max(int(self._decoder.n_frames()), 1)
        grammar = sum(self._log(s.ascore) for s in self._decoder.seg())
        phones = sum(self._log(s.ascore) for s in self._phones.seg())
        return (grammar - phones) / frames

    def _log(self, value: float) -> float:
        # The binding hands scores back as logmath_exp(); take them back to log units.
        return float(self._logmath.log(value)) if value > 0 else -1e9


def confidence_from_ratio(llr_per_frame: float) -> float:
    """The logistic confidence for a per-frame log-likelihood ratio."""
    z = CONFIDENCE_SLOPE * llr_per_frame + CONFIDENCE_OFFSET
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
