"""Sequence-number and timestamp arithmetic (RFC 1982 serial numbers over 16 and 32 bits)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rtp.seq import (
    SequenceUnwrapper,
    seq_add,
    seq_diff,
    seq_gt,
    seq_lt,
    ts_add,
    ts_diff,
    ts_gt,
    ts_lt,
)

seqs = st.integers(0, 0xFFFF)
stamps = st.integers(0, 0xFFFFFFFF)


def test_wrap_around_65535() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_gt(0, 65535) and seq_lt(65535, 0)
    assert seq_gt(10, 65530) and not seq_gt(65530, 10)


def test_half_way_is_neither_before_nor_after() -> None:
    assert not seq_lt(0, 0x8000) and not seq_gt(0, 0x8000)
    assert not seq_lt(0x8000, 0) and not seq_gt(0x8000, 0)
    assert seq_diff(0x8000, 0) == seq_diff(0, 0x8000) == -0x8000
    assert seq_gt(0x7FFF, 0) and seq_lt(0x8001, 0)


def test_aiortc_uint16_gt_examples() -> None:
    # The cases aiortc's tests check for uint16_gt.
    assert not seq_gt(0, 1)
    assert not seq_gt(1, 1)
    assert seq_gt(2, 1)
    assert seq_gt(32768, 1)
    assert not seq_gt(32769, 1)
    assert not seq_gt(65535, 1)


def test_timestamps_wrap_at_2_to_the_32() -> None:
    assert ts_add(0xFFFFFFFF, 160) == 159
    assert ts_diff(159, 0xFFFFFFFF) == 160
    assert ts_gt(159, 0xFFFFFFFF) and ts_lt(0xFFFFFFFF, 159)
    assert not ts_gt(0x80000000, 0) and not ts_lt(0x80000000, 0)


@given(seqs, seqs)
def test_seq_lt_and_gt_are_antisymmetric_and_exclusive(a: int, b: int) -> None:
    assert seq_lt(a, b) == seq_gt(b, a)
    assert not (seq_lt(a, b) and seq_lt(b, a))
    assert not (seq_lt(a, b) and seq_gt(a, b))
    # Exactly one of <, =, > holds except for the diametrically opposite pair.
    outcomes = (seq_lt(a, b), a == b, seq_gt(a, b))
    assert sum(outcomes) == (0 if (a - b) & 0xFFFF == 0x8000 else 1)


@given(seqs, seqs)
def test_seq_add_undoes_seq_diff(a: int, b: int) -> None:
    assert seq_add(b, seq_diff(a, b)) == a
    assert -0x8000 <= seq_diff(a, b) <= 0x7FFF
    assert seq_gt(a, b) == (seq_diff(a, b) > 0)


@given(seqs, st.integers(-0x8000, 0x7FFF))
def test_seq_diff_undoes_seq_add(a: int, delta: int) -> None:
    assert seq_diff(seq_add(a, delta), a) == delta
    assert seq_gt(seq_add(a, delta), a) == (delta > 0)


@given(seqs, st.integers(1, 0x7FFF))
def test_a_forward_step_is_later_even_across_the_wrap(a: int, step: int) -> None:
    later = seq_add(a, step)
    assert seq_gt(later, a) and seq_lt(a, later)


@given(stamps, stamps)
def test_ts_lt_and_gt_are_antisymmetric(a: int, b: int) -> None:
    assert ts_lt(a, b) == ts_gt(b, a)
    assert not (ts_lt(a, b) and ts_lt(b, a))
    assert ts_add(b, ts_diff(a, b)) == a
    assert ts_gt(a, b) == (ts_diff(a, b) > 0)


@given(stamps, st.integers(-(1 << 31), (1 << 31) - 1))
def test_ts_diff_undoes_ts_add(a: int, delta: int) -> None:
    assert ts_diff(ts_add(a, delta), a) == delta


def test_unwrapper_counts_cycles_and_places_late_packets_before_the_wrap() -> None:
    unwrapper = SequenceUnwrapper()
    arrivals = [65533, 65534, 0, 65535, 1, 2]
    assert [unwrapper.unwrap(s) for s in arrivals] == [65533, 65534, 65536, 65535, 65537, 65538]


@given(seqs, st.lists(st.integers(-100, 3000), max_size=80))
def test_unwrapper_recovers_any_path_of_steps_below_half_the_space(
    start: int, steps: list[int]
) -> None:
    unwrapper = SequenceUnwrapper()
    extended = start
    assert unwrapper.unwrap(start) == start
    for step in steps:
        extended += step
        assert unwrapper.unwrap(extended & 0xFFFF) == extended
