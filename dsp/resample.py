"""Streaming sample-rate conversion for int16 mono PCM, built on libsoxr.

Theory of operation
-------------------
A call moves audio between the 8 kHz of G.711 and the rates of speech engines (16 kHz for
recognisers, 22.05 kHz or 24 kHz for synthesisers). One `Resampler` serves one direction of one
stream: it holds the filter history, so block edges leave no seam, and a stream resampled
20 ms at a time is sample-for-sample identical to the same audio resampled in one go.

The converter is libsoxr through the ``soxr`` package, in its variable-rate engine
(``vr=True``) run at a fixed ratio. Measured here with 20 ms blocks, soxr's fixed-rate "HQ"
engine works in FFT blocks and returns audio in bursts (0, 0, 0, 0, 0, then 1660 samples for
8 -> 16 kHz: about 100 ms of added latency and jitter), which a 20 ms real-time pipeline cannot
use. The variable-rate engine returns a steady block per input block once primed, holding back
a fixed 15-30 ms (8 -> 16 kHz: 480 output samples; 16 -> 8 kHz: 120; 22.05 -> 8 kHz: 218), and
its stopband is as deep as HQ's (more than 80 dB below a full-scale tone for 16 -> 8 kHz and
22.05 -> 8 kHz), with the passband flat to 3.4 kHz.

Samples cross into soxr as float32 in [-1, 1) and come back rounded and saturated to int16
here, so no dither is added and repeated runs are deterministic.

soxr trims its own filter delay: output sample 0 is aligned with input sample 0, and the
samples it holds back come out when the stream is finished with ``flush()`` (or
``process(..., last=True)``). Over a finished stream the output holds exactly
``n_in * dst_hz / src_hz`` samples, rounded half up (see `Resampler._drain`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import soxr
from numpy.typing import NDArray

from dsp.errors import DspConfigError, FrameError, SampleFormatError

__all__ = ["Resampler"]

_INT16_SCALE: Final = 32768.0
_PAD_FRACTION_OF_SECOND: Final = 50  # flush pads 20 ms, far more than soxr's shortfall


class Resampler:
    """Convert one mono int16 stream from ``src_hz`` to ``dst_hz``, block by block.

    Example:
        >>> up = Resampler(8000, 16000)
        >>> blocks = [up.process(frame) for frame in frames_8k]  # doctest: +SKIP
        >>> tail = up.flush()  # doctest: +SKIP
    """

    __slots__ = ("_finished", "_stream", "_total_in", "_total_out", "dst_hz", "src_hz")

    def __init__(self, src_hz: int, dst_hz: int) -> None:
        """Create a converter.

        Args:
            src_hz: Input sample rate in Hz (positive integer).
            dst_hz: Output sample rate in Hz (positive integer).

        Raises:
            DspConfigError: If a rate is not a positive integer.
        """
        for name, rate in (("src_hz", src_hz), ("dst_hz", dst_hz)):
            if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
                raise DspConfigError(f"{name} must be a positive integer, got {rate!r}")
        self.src_hz: Final = src_hz
        self.dst_hz: Final = dst_hz
        self._stream = self._new_stream()
        self._finished = False
        self._total_in = 0
        self._total_out = 0

    def _new_stream(self) -> soxr.ResampleStream:
        return soxr.ResampleStream(
            float(self.src_hz), float(self.dst_hz), 1, dtype="float32", vr=True
        )

    @property
    def samples_in(self) -> int:
        """Number of input samples accepted so far."""
        return self._total_in

    @property
    def samples_out(self) -> int:
        """Number of output samples returned so far."""
        return self._total_out

    def process(self, block: NDArray[np.int16], *, last: bool = False) -> NDArray[np.int16]:
        """Resample the next block of the stream.

        Args:
            block: 1-D int16 samples at ``src_hz``; any length, including 0.
            last: True for the final block: the samples held in the filter are returned too
                and the stream is finished.

        Returns:
            1-D int16 samples at ``dst_hz``. Their number varies from block to block while the
            filter fills; the running total trails the ideal count by the converter's fixed
            hold-back until the stream is finished.

        Raises:
            SampleFormatError: If ``block`` is not an int16 array.
            FrameError: If ``block`` is not 1-D, or the stream is already finished.
        """
        if not isinstance(block, np.ndarray) or block.dtype != np.int16:
            found = block.dtype if isinstance(block, np.ndarray) else type(block).__name__
            raise SampleFormatError(f"resampler input must be an int16 array, got {found}")
        if block.ndim != 1:
            raise FrameError(f"resampler input must be 1-D mono, got shape {block.shape}")
        if self._finished:
            raise FrameError("resampler stream is finished: call reset() to start a new one")
        out = self._convert(block.astype(np.float32) / np.float32(_INT16_SCALE), last=False)
        self._total_in += int(block.shape[0])
        self._total_out += int(out.shape[0])
        if last:
            tail = self._drain()
            self._total_out += int(tail.shape[0])
            self._finished = True
            out = np.concatenate([out, tail])
        return out

    def _convert(self, samples: NDArray[np.float32], *, last: bool) -> NDArray[np.int16]:
        out: NDArray[np.float32] = self._stream.resample_chunk(samples, last=last)
        rounded = np.rint(out * np.float32(_INT16_SCALE))
        pcm: NDArray[np.int16] = np.clip(rounded, -32768, 32767).astype(np.int16)
        return pcm

    def _drain(self) -> NDArray[np.int16]:
        """Return the held-back samples, cut so the stream's total is exact.

        soxr's own count for a finished stream can fall a sample short of the ideal (its
        variable-rate engine gives 2 samples for 9 at 24 -> 8 kHz), so 20 ms of silence is fed
        behind the stream first and the output is cut to ``n_in * dst_hz / src_hz`` rounded
        half up. The zeros are what the filter's tail assumes beyond the end anyway.
        """
        pad = np.zeros(self.src_hz // _PAD_FRACTION_OF_SECOND + 1, dtype=np.float32)
        tail = np.concatenate([self._convert(pad, last=False), self._convert(pad[:0], last=True)])
        expected = (2 * self._total_in * self.dst_hz + self.src_hz) // (2 * self.src_hz)
        wanted = max(expected - self._total_out, 0)
        return np.pad(tail[:wanted], (0, wanted - min(wanted, tail.shape[0])))

    def flush(self) -> NDArray[np.int16]:
        """Finish the stream and return the samples still held in the filter."""
        return self.process(np.zeros(0, dtype=np.int16), last=True)

    def reset(self) -> None:
        """Forget all history and start a new stream at the same rates."""
        self._stream = self._new_stream()
        self._finished = False
        self._total_in = 0
        self._total_out = 0
