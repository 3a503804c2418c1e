"""ITU-T G.711 μ-law (PCMU) and A-law (PCMA), table driven and vectorised.

Theory of operation
-------------------
G.711 maps 8-bit codes to linear samples through eight segments per sign, each with a 4-bit
mantissa; the step size doubles from one segment to the next. Decoding is a lookup in a
256-entry table (``ULAW_TO_PCM[codes]``). Encoding is a lookup in a 65536-entry table indexed
by the int16 sample's bit pattern, so encoding a block is one gather, whatever its shape: a
``(calls, 160)`` array of 20 ms frames is encoded or decoded in a single call per tick.

Both tables are computed once at import by a vectorised form of the ITU-T G.191 Software Tool
Library reference coder (``g711.c``: ``ulaw_compress``/``ulaw_expand``/``alaw_compress``/
``alaw_expand``), and are read-only afterwards. The tests check every code and every int16
input against the G.191 sweep files, against a scalar re-derivation from the G.711 tables and
against CPython's ``audioop``.

Conventions that differ between implementations:

* Input is 16-bit linear. μ-law uses its top 14 bits, A-law its top 13 bits (G.711 §2, §3).
* Negative inputs are folded with the one's complement (``~x``, i.e. ``-x - 1``), as G.191
  does for both laws, so ``x`` and ``-x - 1`` get mirror-image codes and -32768 needs no
  special case. ``audioop.lin2ulaw`` folds with ``-x`` instead, so for negative samples it
  returns the G.191 code of ``x - 4``: 508 of the 65536 inputs (those within 4 of a negative
  decision level) get a code one step larger in magnitude. ``audioop.lin2alaw`` folds with
  ``~x`` and agrees with G.191 everywhere.
* μ-law has two codes for zero: 0xFF (+0) and 0x7F (-0). Both decode to 0; the encoder emits
  0xFF for 0..3 and 0x7F for -1..-4. Digital silence is therefore 0xFF for μ-law and 0xD5
  (+8) for A-law, which has no zero level.
* The μ-law encoder saturates at ±8158 in 14-bit units (decoded ±32124); A-law saturates at
  ±4032 in 13-bit units (decoded ±32256). Nothing overflows at -32768.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

import numpy as np
from numpy.typing import NDArray

from dsp.errors import SampleFormatError

__all__ = [
    "ALAW_SILENCE",
    "ALAW_TO_PCM",
    "PCM_TO_ALAW",
    "PCM_TO_ULAW",
    "ULAW_SILENCE",
    "ULAW_TO_PCM",
    "G711Law",
    "Payload",
    "alaw_decode",
    "alaw_encode",
    "decode",
    "encode",
    "ulaw_decode",
    "ulaw_encode",
]

Payload = bytes | bytearray | memoryview | NDArray[np.uint8]
"""A G.711 payload: raw bytes, or a uint8 array of any shape (one code per element)."""

ULAW_SILENCE: Final = 0xFF
"""The μ-law code for digital silence (+0)."""

ALAW_SILENCE: Final = 0xD5
"""The A-law code for the smallest positive level (+8), used as silence."""

# G.191 ulaw_compress: 33 is the bias that turns the 14-bit magnitude into a value whose
# highest set bit names the segment (decision levels 0, 1, 31, 95, ... in G.711 Table 2a).
_ULAW_BIAS: Final = 33
_ULAW_MAX_BIASED: Final = 0x1FFF


def _bit_length(values: NDArray[np.int32]) -> NDArray[np.int32]:
    """Return ``int.bit_length`` element-wise for non-negative int32 values."""
    # frexp writes v = f * 2**e with 0.5 <= f < 1, so e is the bit length; exact for ints
    # below 2**53, and frexp(0) gives e = 0 like (0).bit_length().
    _, exponent = np.frexp(values.astype(np.float64))
    return exponent.astype(np.int32)


def _all_int16() -> NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (0..32767, then -32768..-1)."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encoder() -> NDArray[np.uint8]:
    x = _all_int16()
    magnitude = np.where(x < 0, ~x, x) >> 2  # 14-bit magnitude, one's complement fold
    biased = np.minimum(magnitude + _ULAW_BIAS, _ULAW_MAX_BIASED)  # 33 .. 8191
    segment = _bit_length(biased) - 6  # 0 .. 7
    mantissa = (biased >> (segment + 1)) & 0x0F
    code = 0x7F - ((segment << 4) | mantissa)  # μ-law transmits the magnitude inverted
    signed: NDArray[np.int32] = np.where(x >= 0, code | 0x80, code)
    return signed.astype(np.uint8)


def _build_ulaw_decoder() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32)
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    # Reconstruct at the middle of the step, then remove the bias (G.191 ulaw_expand).
    step = 8 << segment
    magnitude = (0x80 << segment) + step * mantissa + step // 2 - 4 * _ULAW_BIAS
    signed: NDArray[np.int32] = np.where(code < 0x80, -magnitude, magnitude)
    return signed.astype(np.int16)


def _build_alaw_encoder() -> NDArray[np.uint8]:
    x = _all_int16()
    magnitude = np.where(x < 0, ~x, x) >> 4  # 12-bit magnitude (13 bits with the sign)
    segment = np.maximum(_bit_length(magnitude) - 4, 0)  # 0 .. 7; segments 0 and 1 share a step
    mantissa = (magnitude >> np.maximum(segment - 1, 0)) & 0x0F
    code = (segment << 4) | mantissa
    signed: NDArray[np.int32] = np.where(x >= 0, code | 0x80, code)
    return (signed ^ 0x55).astype(np.uint8)  # G.711 §3: even bits are inverted on the line


def _build_alaw_decoder() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32)
    plain = (code ^ 0x55) & 0x7F
    segment = plain >> 4
    mantissa = plain & 0x0F
    mantissa = np.where(segment > 0, mantissa + 16, mantissa)  # restore the implicit leading 1
    magnitude = ((mantissa << 4) + 8) << np.maximum(segment - 1, 0)
    signed: NDArray[np.int32] = np.where(code > 0x7F, magnitude, -magnitude)
    return signed.astype(np.int16)


def _frozen(table: NDArray[np.generic]) -> None:
    table.flags.writeable = False


ULAW_TO_PCM: Final[NDArray[np.int16]] = _build_ulaw_decoder()
"""μ-law code -> int16 sample (256 entries, read-only)."""

ALAW_TO_PCM: Final[NDArray[np.int16]] = _build_alaw_decoder()
"""A-law code -> int16 sample (256 entries, read-only)."""

PCM_TO_ULAW: Final[NDArray[np.uint8]] = _build_ulaw_encoder()
"""int16 sample, indexed by its uint16 bit pattern -> μ-law code (65536 entries, read-only)."""

PCM_TO_ALAW: Final[NDArray[np.uint8]] = _build_alaw_encoder()
"""int16 sample, indexed by its uint16 bit pattern -> A-law code (65536 entries, read-only)."""

for _table in (ULAW_TO_PCM, ALAW_TO_PCM, PCM_TO_ULAW, PCM_TO_ALAW):
    _frozen(_table)


def _codes(payload: Payload) -> NDArray[np.uint8]:
    if isinstance(payload, np.ndarray):
        if payload.dtype != np.uint8:
            raise SampleFormatError(f"G.711 payload array must be uint8, got {payload.dtype}")
        return payload
    if isinstance(payload, bytes | bytearray | memoryview):
        return np.frombuffer(payload, dtype=np.uint8)
    raise SampleFormatError(
        f"G.711 payload must be bytes or a uint8 array, got {type(payload).__name__}"
    )


def _pattern(pcm: NDArray[np.int16]) -> NDArray[np.uint16]:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16:
        found = pcm.dtype if isinstance(pcm, np.ndarray) else type(pcm).__name__
        raise SampleFormatError(f"PCM must be an int16 array, got {found}")
    return pcm.view(np.uint16)


def ulaw_decode(payload: Payload) -> NDArray[np.int16]:
    """Decode μ-law codes to linear PCM.

    Args:
        payload: Codes as bytes (gives a 1-D result) or a uint8 array of any shape.

    Returns:
        An int16 array of the same shape as the codes.

    Raises:
        SampleFormatError: If ``payload`` is neither bytes nor a uint8 array.
    """
    return ULAW_TO_PCM[_codes(payload)]


def alaw_decode(payload: Payload) -> NDArray[np.int16]:
    """Decode A-law codes to linear PCM.

    Args:
        payload: Codes as bytes (gives a 1-D result) or a uint8 array of any shape.

    Returns:
        An int16 array of the same shape as the codes.

    Raises:
        SampleFormatError: If ``payload`` is neither bytes nor a uint8 array.
    """
    return ALAW_TO_PCM[_codes(payload)]


def ulaw_encode(pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """Encode linear PCM to μ-law codes (call ``.tobytes()`` for an RTP payload).

    Args:
        pcm: int16 samples of any shape.

    Returns:
        A uint8 array of the same shape.

    Raises:
        SampleFormatError: If ``pcm`` is not an int16 array.
    """
    return PCM_TO_ULAW[_pattern(pcm)]


def alaw_encode(pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """Encode linear PCM to A-law codes (call ``.tobytes()`` for an RTP payload).

    Args:
        pcm: int16 samples of any shape.

    Returns:
        A uint8 array of the same shape.

    Raises:
        SampleFormatError: If ``pcm`` is not an int16 array.
    """
    return PCM_TO_ALAW[_pattern(pcm)]


class G711Law(Enum):
    """The two G.711 companding laws, valued by their SDP encoding names (RFC 3551 §4.5.14)."""

    PCMU = "PCMU"
    PCMA = "PCMA"

    @property
    def silence(self) -> int:
        """The code that decodes to (near) zero: 0xFF for μ-law, 0xD5 for A-law."""
        return ULAW_SILENCE if self is G711Law.PCMU else ALAW_SILENCE


def decode(law: G711Law, payload: Payload) -> NDArray[np.int16]:
    """Decode a payload with the given law; see `ulaw_decode` and `alaw_decode`."""
    return ulaw_decode(payload) if law is G711Law.PCMU else alaw_decode(payload)


def encode(law: G711Law, pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """Encode PCM with the given law; see `ulaw_encode` and `alaw_encode`."""
    return ulaw_encode(pcm) if law is G711Law.PCMU else alaw_encode(pcm)
