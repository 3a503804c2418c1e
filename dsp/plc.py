"""Packet loss concealment for G.711 audio, after ITU-T G.711 Appendix I.

Theory of operation
-------------------
When the jitter buffer has no frame for a tick (`rtp.jitter.Gap`), `Concealer.conceal`
synthesises one from the audio played just before; when a real frame comes back,
`Concealer.receive` blends into it. The method is G.711 Appendix I's pitch repetition:

1. *Pitch.* On the first lost frame of a run, the pitch period (5-15 ms, 200-66 Hz) is the
   lag that maximises the normalised cross-correlation of the last 20 ms of history with
   the history one lag earlier.
2. *Repetition.* The lost audio is the last pitch period repeated. Its end is overlap-added
   with the samples one period earlier (a quarter period long), so the loop has no seam.
   After 10 ms of loss the repeated span grows to two periods, after 20 ms to three, each
   switch cross-faded over a quarter period: a single period repeated for long sounds
   buzzy, a longer span sounds more like the talker.
3. *Fade.* Full level for the first 10 ms, then the gain falls linearly by 0.2 per 10 ms, so
   60 ms into a loss the output is silence (Appendix I §I.2.4).
4. *No clicks.* The history was already played, so unlike Appendix I (which delays its
   output by 3.75 ms to rewrite it) the first samples are corrected instead: the offset
   between the last played sample and the repetition, measured one period back, fades out
   over a quarter period, so the first step matches the signal's step one period earlier.
   The first real frame after a loss is overlap-added with the continued synthetic signal
   over 4 ms, plus 4 ms per further 10 ms of loss, at most 10 ms (Appendix I §I.2.6).

The concealer is synchronous numpy code with a little state (the loop and where it is);
PCM is ``NDArray[np.int16]``. Pass every real frame through `Concealer.receive` so that it
knows when a loss run ends.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError

Pcm = NDArray[np.int16]
_Float = NDArray[np.float64]

_PITCH_MIN_S = 0.005  # 200 Hz
_PITCH_MAX_S = 0.015  # 66.7 Hz
_CORR_S = 0.020  # correlation window
_FULL_LEVEL_S = 0.010  # no attenuation for the first 10 ms
_PERIOD_STEP_S = 0.010  # one more period in the loop every 10 ms, up to three
_FADE_PER_S = 0.2 / 0.010  # then -0.2 of full level per 10 ms: silence at 60 ms
_MAX_PERIODS = 3
_RECOVER_BASE_S = 0.004
_RECOVER_MAX_S = 0.010


class Concealer:
    """Conceals lost frames of one audio stream; see the module docstring."""

    def __init__(self, sample_rate_hz: int = 8000, frame_samples: int = 160) -> None:
        if sample_rate_hz not in (8000, 16000) or frame_samples <= 0:
            raise DspConfigError("Concealer needs 8000 or 16000 Hz and a positive frame size")
        self.sample_rate_hz = sample_rate_hz
        self.frame_samples = frame_samples
        self._pitch_min = round(_PITCH_MIN_S * sample_rate_hz)
        self._pitch_max = round(_PITCH_MAX_S * sample_rate_hz)
        self._corr = round(_CORR_S * sample_rate_hz)
        self.history_samples = _MAX_PERIODS * self._pitch_max + self._pitch_max // 4
        self._history: _Float = np.zeros(self.history_samples)
        self._pitch = self._pitch_min
        self._overlap = 1
        self._periods = 1
        self._cycle: _Float = np.zeros(1)
        self._phase = 0
        self._erased = 0  # samples concealed in the current run
        self._offset = 0.0  # start correction, faded out over the first quarter period
        # While switching loops: the old loop, where it was, and the rest of the fade-in.
        self._crossfade: tuple[_Float, int, _Float] | None = None

    @property
    def concealing(self) -> bool:
        """True between a `conceal` and the next `receive`."""
        return self._erased > 0

    def conceal(self, history: Pcm) -> Pcm:
        """Return one synthetic frame for a lost one.

        Args:
            history: The most recent audio played, oldest first (real and concealed);
                ``history_samples`` (390 at 8 kHz) or more are used, fewer are padded with
                silence. It is read on the first loss of a run; later losses in the same
                run continue from the concealer's own state.
        """
        if not self.concealing:
            self._start(_as_float(history, None)[-self.history_samples :])
        return _to_pcm(self._synthesise(self.frame_samples))

    def receive(self, frame: Pcm) -> Pcm:
        """Pass a real frame through; after a loss, cross-fade the concealment into it."""
        real = _as_float(frame, self.frame_samples)
        if not self.concealing:
            return frame
        erased_s = self._erased / self.sample_rate_hz
        extra_steps = max(0.0, erased_s - _PERIOD_STEP_S) / _PERIOD_STEP_S
        blend_s = min(_RECOVER_BASE_S * (1 + int(extra_steps)), _RECOVER_MAX_S)
        n = min(round(blend_s * self.sample_rate_hz), self.frame_samples)
        tail = self._synthesise(n)
        ramp = np.arange(1, n + 1) / (n + 1)
        real[:n] = tail * (1 - ramp) + real[:n] * ramp
        self._erased = 0
        return _to_pcm(real)

    # ------------------------------------------------------------------ internals

    def _start(self, history: _Float) -> None:
        h = np.zeros(self.history_samples)
        h[len(h) - len(history) :] = history
        self._history = h
        self._pitch = self._find_pitch(h)
        self._overlap = max(1, self._pitch // 4)
        self._periods = 1
        self._cycle = self._loop(1)
        self._phase = 0
        self._crossfade = None
        # The loop's sample before phase 0 is h[-pitch - 1]; the signal's is h[-1]. Starting
        # with that offset makes the first step the one the signal took a period earlier.
        self._offset = h[-1] - h[-self._pitch - 1]

    def _find_pitch(self, h: _Float) -> int:
        """The lag in [pitch_min, pitch_max] best correlating the last 20 ms (App. I §I.2.2)."""
        windows = sliding_window_view(h, self._corr)
        recent = windows[-1]
        lags = np.arange(self._pitch_min, self._pitch_max + 1)
        earlier = windows[len(windows) - 1 - lags]
        energy = np.einsum("ij,ij->i", earlier, earlier)
        score = earlier @ recent / np.sqrt(np.maximum(energy, 1e-9))
        return int(lags[int(np.argmax(score))])

    def _loop(self, periods: int) -> _Float:
        """The last ``periods`` pitch periods, their end blended into the period before."""
        h, span, ov = self._history, periods * self._pitch, self._overlap
        cycle = h[len(h) - span :].copy()
        ramp = np.arange(1, ov + 1) / (ov + 1)
        before = h[len(h) - span - ov : len(h) - span]
        cycle[-ov:] = cycle[-ov:] * (1 - ramp) + before * ramp
        return cycle

    def _read(self, cycle: _Float, phase: int, n: int) -> _Float:
        return cycle[(phase + np.arange(n)) % len(cycle)]

    def _synthesise(self, n: int) -> _Float:
        """The next ``n`` concealment samples, continuing the loop, fades and switches."""
        rate = self.sample_rate_hz
        out = np.empty(n)
        done = 0
        while done < n:
            at = self._erased + done
            wanted = min(_MAX_PERIODS, 1 + int(at / (_PERIOD_STEP_S * rate)))
            if wanted != self._periods:
                old, old_phase = self._cycle, self._phase
                self._periods = wanted
                self._cycle = self._loop(wanted)
                self._phase = old_phase % self._pitch  # same point, an older period
                ov = self._overlap
                ramp = np.arange(1, ov + 1) / (ov + 1)
                self._crossfade = (old, old_phase, ramp)
            # Run to the next period switch or the end of the request.
            next_switch = round((self._periods * _PERIOD_STEP_S) * rate)
            count = n - done if self._periods == _MAX_PERIODS else min(n - done, next_switch - at)
            seg = self._read(self._cycle, self._phase, count)
            if self._crossfade is not None:
                old, old_phase, ramp = self._crossfade
                k = min(count, len(ramp))
                seg[:k] = self._read(old, old_phase, k) * (1 - ramp[:k]) + seg[:k] * ramp[:k]
                self._crossfade = None if k == len(ramp) else (old, old_phase + k, ramp[k:])
            out[done : done + count] = seg
            self._phase = (self._phase + count) % len(self._cycle)
            done += count
        positions = self._erased + np.arange(n)
        if self._offset:
            early = positions < self._overlap
            w = 0.5 + 0.5 * np.cos(np.pi * np.minimum(positions / self._overlap, 1.0))
            out += self._offset * np.where(early, w, 0.0)
        gain = 1 - _FADE_PER_S * np.maximum(0, positions / rate - _FULL_LEVEL_S)
        self._erased += n
        return out * np.clip(gain, 0.0, 1.0)


def _as_float(pcm: Pcm, length: int | None) -> _Float:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16:
        raise SampleFormatError("PCM must be an int16 numpy array")
    if pcm.ndim != 1 or (length is not None and len(pcm) != length):
        raise FrameError(f"PCM frame must be 1-D with {length} samples, got shape {pcm.shape}")
    return pcm.astype(np.float64)


def _to_pcm(samples: _Float) -> Pcm:
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
