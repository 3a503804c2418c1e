"""G.711 against four independent references.

1. A scalar re-derivation written here from the G.711 segment tables (Table 1a for A-law,
   Table 2a for μ-law): decision levels and reconstruction levels built segment by segment,
   encoding by binary search. It produced the golden files in tests/vectors/g711/ (regenerate
   with ``python -m tests.dsp.test_g711``); the test checks that they still agree.
2. The ITU-T G.191 STL sweep files and the tables derived from them, read in place from the
   conformance corpus.
3. CPython's ``audioop`` (deprecated in 3.11, removed in 3.13).
4. Properties: round trips, quantisation error, monotonicity, batching.
"""

from __future__ import annotations

import bisect
import csv
import functools
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from dsp.errors import SampleFormatError
from dsp.g711 import (
    ALAW_SILENCE,
    ULAW_SILENCE,
    G711Law,
    alaw_decode,
    alaw_encode,
    decode,
    encode,
    ulaw_decode,
    ulaw_encode,
)
from tests.conformance import conformance_path

VECTORS = Path(__file__).parents[1] / "vectors" / "g711"
ALL_CODES = bytes(range(256))
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ENCODERS = {G711Law.PCMU: ulaw_encode, G711Law.PCMA: alaw_encode}
DECODERS = {G711Law.PCMU: ulaw_decode, G711Law.PCMA: alaw_decode}
FULL_SCALE = {G711Law.PCMU: 32124, G711Law.PCMA: 32256}


# --- 1. Reference derived from the G.711 tables -----------------------------------------------


def _segments(law: G711Law) -> list[tuple[int, int]]:
    """(lowest magnitude, step) of each of the 8 segments, in the law's own magnitude units.

    μ-law works on a 14-bit magnitude: segment 0 is one interval [0, 1) then steps of 2 up to
    31; segment s >= 1 starts at 2**(s+5) - 33 with steps of 2**(s+1) (Table 2a, 8159 scale).
    A-law works on a 12-bit magnitude: segments 0 and 1 both have unit steps from 0 and 16;
    segment s >= 2 starts at 2**(s+3) with steps of 2**(s-1) (Table 1a).
    """
    if law is G711Law.PCMU:
        return [(-1, 2)] + [(2 ** (s + 5) - 33, 2 ** (s + 1)) for s in range(1, 8)]
    return [(0, 1), (16, 1)] + [(2 ** (s + 3), 2 ** (s - 1)) for s in range(2, 8)]


@functools.cache
def _levels(law: G711Law) -> tuple[list[int], list[float]]:
    """Lower decision level and reconstruction level of magnitude index 0..127."""
    lower: list[int] = []
    recon: list[float] = []
    for start, step in _segments(law):
        for q in range(16):
            lower.append(start + q * step)
            recon.append(start + q * step + step / 2)
    if law is G711Law.PCMU:  # the first μ-law interval is [0, 1) and reconstructs to 0
        lower[0], recon[0] = 0, 0.0
    return lower, recon


def _reference_decode(law: G711Law, code: int) -> int:
    _, recon = _levels(law)
    if law is G711Law.PCMU:
        positive = bool(code & 0x80)
        index = 0x7F - (code & 0x7F)  # μ-law sends the magnitude inverted
        value = recon[index] * 4  # 14-bit -> 16-bit
    else:
        plain = code ^ 0x55  # A-law inverts the even bits
        positive = bool(plain & 0x80)
        index = plain & 0x7F
        value = recon[index] * 16  # 12-bit magnitude -> 16-bit
    return int(value) if positive else -int(value)


def _reference_encode(law: G711Law, sample: int) -> int:
    lower, _ = _levels(law)
    folded = ~sample if sample < 0 else sample  # G.191: one's complement for negatives
    magnitude = folded >> (2 if law is G711Law.PCMU else 4)
    index = bisect.bisect_right(lower, magnitude) - 1  # saturates at 127
    sign = 0x80 if sample >= 0 else 0
    if law is G711Law.PCMU:
        return sign | (0x7F - index)
    return (sign | index) ^ 0x55


def reference_tables(law: G711Law) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """(decoded value of codes 0..255, code of inputs -32768..32767) from the scalar reference."""
    decoded = np.array([_reference_decode(law, c) for c in range(256)], dtype=np.int16)
    codes = np.array([_reference_encode(law, x) for x in range(-32768, 32768)], dtype=np.uint8)
    return decoded, codes


def _golden_name(law: G711Law, kind: str) -> Path:
    return VECTORS / f"{'ulaw' if law is G711Law.PCMU else 'alaw'}_{kind}.bin"


def write_golden() -> None:
    """Regenerate tests/vectors/g711/*.bin from the scalar reference."""
    for law in G711Law:
        decoded, codes = reference_tables(law)
        _golden_name(law, "decode").write_bytes(decoded.astype("<i2").tobytes())
        _golden_name(law, "encode").write_bytes(codes.tobytes())


def golden_decode(law: G711Law) -> NDArray[np.int16]:
    return np.fromfile(_golden_name(law, "decode"), dtype="<i2").astype(np.int16)


def golden_encode(law: G711Law) -> NDArray[np.uint8]:
    return np.fromfile(_golden_name(law, "encode"), dtype=np.uint8)


@pytest.mark.parametrize("law", list(G711Law))
def test_golden_files_are_what_the_table_reference_produces(law: G711Law) -> None:
    decoded, codes = reference_tables(law)
    assert golden_decode(law).shape == (256,)
    assert golden_encode(law).shape == (65536,)
    np.testing.assert_array_equal(golden_decode(law), decoded)
    np.testing.assert_array_equal(golden_encode(law), codes)


@pytest.mark.parametrize("law", list(G711Law))
def test_all_256_codes_decode_to_the_golden_table(law: G711Law) -> None:
    np.testing.assert_array_equal(decode(law, ALL_CODES), golden_decode(law))


@pytest.mark.parametrize("law", list(G711Law))
def test_every_int16_input_encodes_to_the_golden_code(law: G711Law) -> None:
    np.testing.assert_array_equal(encode(law, ALL_INT16), golden_encode(law))


# --- 2. ITU-T G.191 reference data ------------------------------------------------------------

G191 = ("vectors", "g711-itu-g191")
SWEEP = {G711Law.PCMU: ("sweep-r.u", "sweep-r.u-u"), G711Law.PCMA: ("sweep-r.a", "sweep-r.a-a")}
CSV = {G711Law.PCMU: "g711_ulaw_table.csv", G711Law.PCMA: "g711_alaw_table.csv"}


def _g191_words(name: str) -> NDArray[np.int16]:
    # STL test files hold one little-endian 16-bit word per sample (codes in the low byte).
    return np.fromfile(conformance_path(*G191, name), dtype="<i2").astype(np.int16)


def test_g191_sweep_source_is_every_int16_value() -> None:
    np.testing.assert_array_equal(_g191_words("sweep.src"), ALL_INT16)


@pytest.mark.parametrize("law", list(G711Law))
def test_encoder_reproduces_the_g191_sweep(law: G711Law) -> None:
    encoded_name, _ = SWEEP[law]
    reference = _g191_words(encoded_name)
    assert reference.min() >= 0 and reference.max() <= 255
    np.testing.assert_array_equal(encode(law, _g191_words("sweep.src")), reference)


@pytest.mark.parametrize("law", list(G711Law))
def test_decoder_reproduces_the_g191_sweep(law: G711Law) -> None:
    encoded_name, roundtrip_name = SWEEP[law]
    codes = _g191_words(encoded_name).astype(np.uint8)
    np.testing.assert_array_equal(decode(law, codes), _g191_words(roundtrip_name))


@pytest.mark.parametrize("law", list(G711Law))
def test_matches_the_g191_table_for_every_code(law: G711Law) -> None:
    with conformance_path(*G191, CSV[law]).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["code"]) for r in rows] == list(range(256))
    decoded = decode(law, ALL_CODES)
    codes = encode(law, ALL_INT16).astype(np.int32)
    for row in rows:
        code = int(row["code"])
        assert decoded[code] == int(row["decoded_linear16"]), row
        # The encoder sends exactly this input interval to this code.
        inputs = ALL_INT16[codes == code]
        lo, hi = int(row["encoder_input_min"]), int(row["encoder_input_max"])
        np.testing.assert_array_equal(inputs, np.arange(lo, hi + 1, dtype=np.int16))


# --- 3. audioop ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    if sys.version_info >= (3, 13):
        pytest.fail("audioop was removed in Python 3.13: replace this reference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as module
    return module


def test_decoders_agree_with_audioop_on_all_codes(audioop: ModuleType) -> None:
    ulaw = np.frombuffer(audioop.ulaw2lin(ALL_CODES, 2), dtype=np.int16)
    alaw = np.frombuffer(audioop.alaw2lin(ALL_CODES, 2), dtype=np.int16)
    np.testing.assert_array_equal(ulaw_decode(ALL_CODES), ulaw)
    np.testing.assert_array_equal(alaw_decode(ALL_CODES), alaw)


def test_alaw_encoder_agrees_with_audioop_on_every_input(audioop: ModuleType) -> None:
    theirs = np.frombuffer(audioop.lin2alaw(ALL_INT16.tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(alaw_encode(ALL_INT16), theirs)


def test_ulaw_encoder_differs_from_audioop_only_by_its_negative_fold(audioop: ModuleType) -> None:
    """audioop folds a negative sample with -x where G.191 uses ~x (= -x - 1).

    With the 2-bit truncation that follows, audioop's code for a negative x is G.191's code for
    x - 4: positive inputs agree exactly, negative ones are shifted by one 14-bit unit.
    """
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_INT16.tobytes(), 2), dtype=np.uint8)
    ours = ulaw_encode(ALL_INT16)
    positive = ALL_INT16 >= 0
    np.testing.assert_array_equal(ours[positive], theirs[positive])
    shifted = np.maximum(ALL_INT16[~positive].astype(np.int32) - 4, -32768).astype(np.int16)
    np.testing.assert_array_equal(ulaw_encode(shifted), theirs[~positive])
    # 4 inputs at each of the 127 negative decision levels
    assert int(np.count_nonzero(ours != theirs)) == 508


# --- 4. Properties ----------------------------------------------------------------------------


def test_ulaw_round_trip_of_every_code_keeps_the_code_except_minus_zero() -> None:
    codes = np.arange(256, dtype=np.uint8)
    again = ulaw_encode(ulaw_decode(codes))
    expected = codes.copy()
    expected[0x7F] = 0xFF  # -0 decodes to 0, which encodes as +0
    np.testing.assert_array_equal(again, expected)
    assert ulaw_decode(b"\x7f\xff").tolist() == [0, 0]


def test_alaw_round_trip_of_every_code_keeps_the_code() -> None:
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(alaw_encode(alaw_decode(codes)), codes)


def test_silence_encodes_to_the_idle_codes() -> None:
    silence = np.zeros(160, dtype=np.int16)
    assert ulaw_encode(silence).tobytes() == bytes([0xFF]) * 160
    assert alaw_encode(silence).tobytes() == bytes([0xD5]) * 160
    assert (ULAW_SILENCE, ALAW_SILENCE) == (G711Law.PCMU.silence, G711Law.PCMA.silence)
    assert ulaw_decode(bytes([ULAW_SILENCE])).tolist() == [0]
    assert alaw_decode(bytes([ALAW_SILENCE])).tolist() == [8]


def test_int16_extremes_saturate_without_wrapping() -> None:
    edges = np.array([-32768, -32767, 32767], dtype=np.int16)
    assert ulaw_encode(edges).tolist() == [0x00, 0x00, 0x80]
    assert alaw_encode(edges).tolist() == [0x2A, 0x2A, 0xAA]
    assert ulaw_decode(ulaw_encode(edges)).tolist() == [-32124, -32124, 32124]
    assert alaw_decode(alaw_encode(edges)).tolist() == [-32256, -32256, 32256]


def test_batch_of_calls_is_coded_in_one_call() -> None:
    rng = np.random.default_rng(7)
    pcm = rng.integers(-32768, 32768, size=(50, 160)).astype(np.int16)
    for law in G711Law:
        codes = encode(law, pcm)
        assert codes.shape == (50, 160) and codes.dtype == np.uint8
        for row in range(50):
            assert codes[row].tobytes() == encode(law, pcm[row]).tobytes()
        decoded = decode(law, codes)
        assert decoded.shape == (50, 160) and decoded.dtype == np.int16
        np.testing.assert_array_equal(decoded[3], decode(law, codes[3].tobytes()))
        # Strided views are coded element by element too.
        np.testing.assert_array_equal(encode(law, pcm[:, ::3]), codes[:, ::3])


def test_payload_views_decode_like_bytes() -> None:
    payload = bytes(range(0, 256, 3))
    expected = ulaw_decode(payload)
    np.testing.assert_array_equal(ulaw_decode(bytearray(payload)), expected)
    np.testing.assert_array_equal(ulaw_decode(memoryview(payload)), expected)
    assert ulaw_decode(b"").shape == (0,)


@pytest.mark.parametrize(
    "bad_pcm",
    [
        np.zeros(4, dtype=np.float32),
        np.zeros(4, dtype=np.int32),
        np.zeros(4, dtype=np.uint16),
        [0, 0, 0],
    ],
    ids=["float32", "int32", "uint16", "list"],
)
def test_encoders_refuse_anything_but_int16(bad_pcm: object) -> None:
    for law in G711Law:
        with pytest.raises(SampleFormatError, match="PCM must be an int16 array"):
            encode(law, bad_pcm)  # type: ignore[arg-type]  # the wrong type is the test
    assert issubclass(SampleFormatError, TypeError)


@pytest.mark.parametrize(
    "bad_payload", [np.zeros(4, dtype=np.int8), np.zeros(4, dtype=np.int16), "abc", [1, 2]]
)
def test_decoders_refuse_anything_but_bytes_or_uint8(bad_payload: object) -> None:
    for law in G711Law:
        with pytest.raises(SampleFormatError, match="G.711 payload"):
            decode(law, bad_payload)  # type: ignore[arg-type]  # the wrong type is the test


def test_decoded_tables_are_read_only() -> None:
    from dsp.g711 import PCM_TO_ULAW, ULAW_TO_PCM

    with pytest.raises(ValueError, match="read-only"):
        ULAW_TO_PCM[0] = 0
    with pytest.raises(ValueError, match="read-only"):
        PCM_TO_ULAW[0] = 0
    # Results are fresh arrays the caller may modify.
    out = ulaw_decode(b"\x00")
    out[0] = 1


def _half_step(law: G711Law, code: int) -> int:
    """Half the quantisation step of the segment that holds ``code``, in 16-bit units."""
    if law is G711Law.PCMU:
        segment = (~code >> 4) & 0x07
        return 4 << segment
    segment = ((code ^ 0x55) >> 4) & 0x07
    return 8 << max(segment - 1, 0)


@pytest.mark.parametrize("law", list(G711Law))
@given(sample=st.integers(-32768, 32767))
def test_round_trip_error_is_within_half_a_step(law: G711Law, sample: int) -> None:
    pcm = np.array([sample], dtype=np.int16)
    code = int(encode(law, pcm)[0])
    back = int(decode(law, bytes([code]))[0])
    if abs(sample) <= FULL_SCALE[law]:
        assert abs(back - sample) <= _half_step(law, code)
    else:  # beyond the last decision level the coder saturates
        assert back == (FULL_SCALE[law] if sample > 0 else -FULL_SCALE[law])
    assert back == 0 or (back > 0) == (sample >= 0)


@pytest.mark.parametrize("law", list(G711Law))
def test_round_trip_is_monotonic_and_error_bounded_for_every_input(law: G711Law) -> None:
    back = decode(law, encode(law, ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(back) >= 0)
    inside = np.abs(ALL_INT16.astype(np.int32)) <= FULL_SCALE[law]
    half = np.array([_half_step(law, c) for c in range(256)])[encode(law, ALL_INT16)]
    assert np.all(np.abs(back - ALL_INT16)[inside] <= half[inside])


@pytest.mark.parametrize("law", list(G711Law))
@given(
    pcm=hnp.arrays(
        np.int16,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=12),
        elements=st.integers(-32768, 32767),
    )
)
def test_batched_coding_is_elementwise(law: G711Law, pcm: NDArray[np.int16]) -> None:
    codes = encode(law, pcm)
    assert codes.shape == pcm.shape
    flat = [int(encode(law, np.array([x], dtype=np.int16))[0]) for x in pcm.ravel()]
    assert codes.ravel().tolist() == flat
    np.testing.assert_array_equal(
        decode(law, codes), decode(law, codes.tobytes()).reshape(pcm.shape)
    )


if __name__ == "__main__":
    write_golden()
    print(f"wrote {sorted(p.name for p in VECTORS.glob('*.bin'))}")
