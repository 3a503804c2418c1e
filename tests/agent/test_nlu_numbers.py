"""Spoken numbers: digit by digit, in pairs, cardinals, "oh", "double", DTMF."""

from __future__ import annotations

import pytest

from agent.nlu.numbers import find_atoms, ordinal_at, spoken_digits, spoken_int, words_to_int
from agent.nlu.result import Failure
from agent.nlu.text import tokens


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("five five five one two one two", "5551212"),
        ("six one seven five five five oh one two three", "6175550123"),
        ("double five oh one", "5501"),
        ("triple seven", "777"),
        ("double oh seven", "007"),
        ("nineteen eighty four", "1984"),
        ("twenty twenty six", "2026"),
        ("two thousand five", "2005"),
        ("two thousand and five", "2005"),
        ("nineteen oh five", "1905"),
        ("5 5 5 one two", "55512"),
        ("six one seven five fifty five oh one two three", "6175550123"),
        ("eight hundred five five five one two one two", "8005551212"),
        ("one hundred five", "105"),
        ("one hundred and twenty", "120"),
        ("twelve hundred", "1200"),
        ("nineteen hundred eighty four", "1984"),
        ("a hundred", "100"),
        ("oh three oh three eighty four", "030384"),
        ("um six one uh seven", "617"),
        ("6175550123", "6175550123"),
        ("zero zero one", "001"),
        ("my number is two one two then five five five", "212555"),
        ("one twenty three", "123"),
        ("forty two", "42"),
    ],
)
def test_spoken_digits(said: str, digits: str) -> None:
    assert spoken_digits(said).value == digits


@pytest.mark.parametrize("said", ["oh yes", "hello there", "", "o", "the first"])
def test_no_digits(said: str) -> None:
    result = spoken_digits(said)
    assert result.value is None
    assert result.failure is Failure.NOT_FOUND


@pytest.mark.parametrize(
    ("said", "value"),
    [
        ("seven", 7),
        ("about twenty five", 25),
        ("one hundred twenty", 120),
        ("it's 42", 42),
        ("a thousand", 1000),
        ("two thousand twenty six", 2026),
    ],
)
def test_spoken_int(said: str, value: int) -> None:
    assert spoken_int(said).value == value


def test_spoken_int_with_two_numbers_is_ambiguous() -> None:
    result = spoken_int("three or four")
    assert result.failure is Failure.AMBIGUOUS
    assert result.alternatives == (3, 4)


@pytest.mark.parametrize(
    ("said", "value"),
    [("third", 3), ("twenty third", 23), ("thirty first", 31), ("3rd", 3), ("twelfth", 12)],
)
def test_ordinals(said: str, value: int) -> None:
    atom = ordinal_at(tokens(said), 0)
    assert atom is not None and atom.value == value


def test_words_to_int_needs_exactly_one_number() -> None:
    assert words_to_int(tokens("one hundred twenty three")) == 123
    assert words_to_int(tokens("one two")) is None
    assert words_to_int(tokens("hello")) is None


def test_atoms_keep_spoken_boundaries() -> None:
    atoms = find_atoms(tokens("twelve twenty five nineteen ninety"))
    assert [a.digits for a in atoms] == ["12", "25", "19", "90"]
