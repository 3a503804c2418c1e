"""The one root of every error the `dsp` package raises."""

from __future__ import annotations


class DspError(Exception):
    """Root of all errors raised by the `dsp` package."""


class SampleFormatError(DspError, TypeError):
    """Samples or a payload arrived with the wrong dtype or container type.

    PCM is always ``NDArray[np.int16]``; G.711 payloads are ``bytes`` or ``NDArray[np.uint8]``.
    A float or int32 array is refused rather than silently cast, because a silent cast hides
    scaling bugs (float audio in [-1, 1] would become all zeros).
    """


class FrameError(DspError, ValueError):
    """A frame has the wrong shape or length, or arrived after the stream was finished."""


class DspConfigError(DspError, ValueError):
    """A constructor argument (sample rate, threshold, window) is out of range."""
