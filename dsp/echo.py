"""Echo guard: how much of what the caller's side sends back is the echo of our own prompt.

Theory of operation
-------------------
While the agent plays a prompt, the caller's stream carries the prompt back as echo: the
2-to-4-wire hybrid of an analogue line, acoustic coupling in a handset or speakerphone. The
echo is the sent signal, delayed (up to ~200 ms on a PSTN path with a jitter buffer; ITU-T
G.168 tests tails of 64-128 ms), attenuated by the echo return loss (ERL; G.168 assumes at
least 6 dB, a typical hybrid gives 10-20 dB), slightly smeared by the path, and requantised by
G.711. webrtcvad calls that echo speech, so without a guard the agent would interrupt itself.

`EchoGuard` keeps the last ``max_delay_ms`` + 20 ms of what we sent (`observe_sent`, once per
frame period, zeros when nothing is playing) and, for each received frame (`measure`):

1. **Delay tracking.** The cross-correlation of the received frame with the sent history at
   every lag from 0 to ``max_delay_ms`` is one ``np.correlate`` call. Per-lag sums of correlation
   and energy are smoothed over frames (forgetting factor ``smoothing``) and the lag with the
   highest normalised squared correlation is the echo path delay. The sums are signed, so
   echo, always at the same lag, accumulates while speech correlating with the prompt by
   chance cancels out (a generalised cross-correlation, the approach of the WebRTC delay
   estimator, not a per-frame peak pick).
2. **Echo fit.** At the tracked delay a short least-squares filter (``taps`` coefficients
   around it, 7 = +-3 samples: fractional delay and hybrid dispersion) is fitted to the frame
   and subtracted. The residual is what the echo cannot explain: the near-end signal.
3. **Decision.** The frame is *near-end* (the caller, not our echo) when its residual is
   audible (at least ``residual_floor_dbfs``) and the fit removed less than ``min_erle_db``
   of its energy (echo return loss enhancement, ERLE). Pure echo is removed by 10-30 dB; the
   caller's own speech, fitted against the prompt, by 0-5 dB.

This is a *detector*, not an echo canceller: nothing is subtracted from the audio passed on.
Cost per audible received frame: one correlation over all ~1600 lags and a 7x7 solve, about 60 us
(measured by ``tests/dsp/test_bargein.py``); frames below ``residual_floor_dbfs`` skip all of
it, and `observe_sent` slides the per-lag reference energies along instead of re-summing them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError
from dsp.level import FULL_SCALE
from dsp.vad import FRAME_SAMPLES, SAMPLE_RATE_HZ

__all__ = ["EchoConfig", "EchoEstimate", "EchoGuard"]

_FULL_SCALE_ENERGY: Final = FULL_SCALE**2 * FRAME_SAMPLES  # a full-scale square frame: 0 dBFS
_FLOOR_DBFS: Final = -120.0


@dataclass(frozen=True, slots=True)
class EchoConfig:
    """Settings of `EchoGuard`.

    Attributes:
        max_delay_ms: longest echo path delay searched (200 ms).
        taps: coefficients of the fitted echo filter, centred on the tracked delay (odd).
        smoothing: per-frame forgetting factor of the delay statistics (0.95: a time
            constant of 20 frames, 400 ms).
        min_erle_db: a frame whose residual is this much below it is echo only. Sits in the
            gap between what the fit removes from echo (>= 10 dB at the 1st percentile in the
            tests) and from the caller's speech (<= 5.5 dB at the worst frame).
        residual_floor_dbfs: a residual below this is inaudible, never near-end speech; the
            same role as the VAD's energy gate, a little under it.
    """

    max_delay_ms: int = 200
    taps: int = 7
    smoothing: float = 0.95
    min_erle_db: float = 8.0
    residual_floor_dbfs: float = -55.0

    def __post_init__(self) -> None:
        if not 0 < self.max_delay_ms <= 1000:
            raise DspConfigError(f"max_delay_ms must be in (0, 1000], got {self.max_delay_ms}")
        if self.taps < 1 or self.taps % 2 == 0:
            raise DspConfigError(f"taps must be a positive odd number, got {self.taps}")
        if not 0.0 <= self.smoothing < 1.0:
            raise DspConfigError(f"smoothing must be in [0, 1), got {self.smoothing}")


@dataclass(frozen=True, slots=True)
class EchoEstimate:
    """What `EchoGuard.measure` found in one received frame.

    Attributes:
        delay_samples: tracked echo path delay at 8 kHz (8 samples = 1 ms).
        received_dbfs: level of the received frame.
        residual_dbfs: level left after subtracting the fitted echo.
        near_end: True if the frame holds sound the echo does not explain (the caller).
    """

    delay_samples: int
    received_dbfs: float
    residual_dbfs: float
    near_end: bool

    @property
    def erle_db(self) -> float:
        """Echo return loss enhancement: how far the fit lowered the frame's level."""
        return self.received_dbfs - self.residual_dbfs


def _dbfs(energy: float) -> float:
    if energy <= 0.0:
        return _FLOOR_DBFS
    return max(10.0 * math.log10(energy / _FULL_SCALE_ENERGY), _FLOOR_DBFS)


class EchoGuard:
    """Per-call echo detector fed with what we send and what we receive (module docstring)."""

    __slots__ = (
        "_config",
        "_history",
        "_max_lag",
        "_peak",
        "_ref_energy",
        "_scratch",
        "_sum_corr",
        "_sum_ref",
        "_sum_rx",
        "_windows",
    )

    def __init__(self, config: EchoConfig | None = None) -> None:
        """Create a guard with an all-silent history.

        Args:
            config: delay range, filter and thresholds; the defaults when None.
        """
        self._config = config or EchoConfig()
        # The fit window is centred on the delay, so the search reaches `taps` samples past
        # max_delay_ms: a dispersive path at the longest delay still fits whole.
        self._max_lag = self._config.max_delay_ms * SAMPLE_RATE_HZ // 1000 + self._config.taps
        # history[-160:] is the frame sent last; the lag-d segment is history[L-d : L-d+160]
        # with L = max_lag, i.e. correlation index k = L - d.
        # float32: halves the cost of the correlation; energies are summed in float64.
        self._history = np.zeros(self._max_lag + FRAME_SAMPLES, dtype=np.float32)
        self._windows = sliding_window_view(self._history, FRAME_SAMPLES)  # [k]: lag L - k
        lags = self._max_lag + 1
        self._ref_energy = np.zeros(lags)  # [k]: energy of the lag-(L - k) reference segment
        self._scratch = np.zeros(lags)
        self._sum_corr = np.zeros(lags)
        self._sum_ref = np.zeros(lags)
        self._sum_rx = 0.0
        self._peak = self._max_lag  # correlation index of the tracked delay (0 = no delay)

    @property
    def delay_samples(self) -> int:
        """The tracked echo path delay in samples at 8 kHz."""
        return self._max_lag - self._peak

    def observe_sent(self, frame: NDArray[np.int16]) -> None:
        """Record the frame we sent in this frame period (zeros when nothing is playing).

        Call it exactly once per received frame, before `measure` for that period.

        Raises:
            SampleFormatError: the frame is not ``int16``.
            FrameError: the frame is not 160 samples.
        """
        _check_frame(frame)
        n = FRAME_SAMPLES
        self._history[:-n] = self._history[n:]
        self._history[-n:] = frame
        # Segment energies slide with the history; only the n newest segments (those that
        # include part of this frame) are summed afresh, in float64 and without drift.
        self._ref_energy[:-n] = self._ref_energy[n:]
        newest = self._history[-(2 * n - 1) :].astype(np.float64)
        cumulative = np.concatenate(([0.0], np.cumsum(newest * newest)))
        self._ref_energy[-n:] = cumulative[n:] - cumulative[:n]

    def restart(self, sent: Sequence[NDArray[np.int16]] = ()) -> None:
        """Start over as a new guard that has been fed ``sent`` (oldest first) would.

        The delay statistics are forgotten and the history refilled in one step: the media
        engine does this whenever the jitter buffer slips a frame under a playing prompt,
        and feeding the frames one by one to a fresh guard costs ten times as much.

        Raises:
            SampleFormatError: a frame is not ``int16``.
            FrameError: a frame is not 160 samples.
        """
        for frame in sent:
            _check_frame(frame)
        history = self._history
        history[:] = 0.0
        if sent:
            tail = np.concatenate(list(sent))[-len(history) :]
            history[-len(tail) :] = tail
        n = FRAME_SAMPLES
        samples = history.astype(np.float64)
        cumulative = np.concatenate(([0.0], np.cumsum(samples * samples)))
        self._ref_energy[:] = cumulative[n:] - cumulative[:-n]
        self._sum_corr[:] = 0.0
        self._sum_ref[:] = 0.0
        self._sum_rx = 0.0
        self._peak = self._max_lag

    def is_echo(self, received: NDArray[np.int16]) -> bool:
        """Return True if ``received`` holds nothing the echo does not explain (see `measure`)."""
        return not self.measure(received).near_end

    def measure(self, received: NDArray[np.int16]) -> EchoEstimate:
        """Update the delay estimate with one received frame and fit the echo to it.

        Raises:
            SampleFormatError: the frame is not ``int16``.
            FrameError: the frame is not 160 samples.
        """
        _check_frame(received)
        config = self._config
        rx = received.astype(np.float32)
        rx_energy = float(np.dot(rx, rx))
        rx_dbfs = _dbfs(rx_energy)
        if rx_dbfs < config.residual_floor_dbfs:  # nothing audible: no search needed
            return EchoEstimate(self.delay_samples, rx_dbfs, rx_dbfs, near_end=False)
        history = self._history
        corr = np.correlate(history, rx, "valid")  # corr[k]: lag max_lag - k
        ref_energy = self._ref_energy
        if float(ref_energy.max()) <= 0.0:  # we sent silence: anything audible is the caller
            return EchoEstimate(self.delay_samples, rx_dbfs, rx_dbfs, near_end=True)
        self._track(corr, ref_energy, rx_energy)
        residual_energy = self._fit(rx, rx_energy, corr)
        residual_dbfs = _dbfs(residual_energy)
        near_end = (
            residual_dbfs >= config.residual_floor_dbfs
            and rx_dbfs - residual_dbfs < config.min_erle_db
        )
        return EchoEstimate(self.delay_samples, rx_dbfs, residual_dbfs, near_end)

    def _track(
        self, corr: NDArray[np.float32], ref_energy: NDArray[np.float64], rx_energy: float
    ) -> None:
        a = self._config.smoothing
        self._sum_corr *= a
        self._sum_corr += corr
        self._sum_ref *= a
        self._sum_ref += ref_energy
        self._sum_rx = a * self._sum_rx + rx_energy
        # normalised squared correlation per lag, computed in place (no temporaries)
        coherence = np.multiply(self._sum_ref, self._sum_rx, out=self._scratch)
        coherence += 1e-9
        np.divide(np.square(self._sum_corr), coherence, out=coherence)
        self._peak = int(np.argmax(coherence))

    def _fit(self, rx: NDArray[np.float32], rx_energy: float, corr: NDArray[np.float32]) -> float:
        taps = self._config.taps
        lo = min(max(self._peak - taps // 2, 0), self._max_lag + 1 - taps)
        segments = self._windows[lo : lo + taps].astype(np.float64)  # one row per lag
        gram = segments @ segments.T
        # A whisper of ridge keeps the solve defined when the reference is nearly silent.
        gram.flat[:: taps + 1] += 1e-9 * float(np.trace(gram)) + 1e-9
        weights = np.linalg.solve(gram, corr[lo : lo + taps].astype(np.float64))
        residual = rx - weights @ segments
        return min(float(residual @ residual), rx_energy)


def _check_frame(frame: NDArray[np.int16]) -> None:
    if frame.dtype != np.int16:
        raise SampleFormatError(f"frames must be int16 PCM, got {frame.dtype}")
    if frame.shape != (FRAME_SAMPLES,):
        raise FrameError(f"frames must have shape (160,), got {frame.shape}")
