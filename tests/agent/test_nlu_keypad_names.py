"""Names spelled on the telephone keypad (one key per letter), resolved from the directory."""

from __future__ import annotations

import pytest

from agent.nlu.demographics import NamePart, PersonName
from agent.nlu.keypad_names import extract_keypad_name, keypad_digits
from agent.nlu.result import Failure


@pytest.mark.parametrize(
    ("name", "keys"),
    [("Smith", "76484"), ("Anna", "2662"), ("O'Brien", "627436"), ("Zoe", "963"), ("", "")],
)
def test_keys_follow_the_e161_letter_groups(name: str, keys: str) -> None:
    assert keypad_digits(name) == keys


@pytest.mark.parametrize(
    ("keys", "part", "first", "last"),
    [
        ("2662", NamePart.FIRST, "Anna", None),
        ("62742", NamePart.FIRST, "Maria", None),
        ("52637", NamePart.FIRST, "James", None),
        ("76484", NamePart.LAST, "Smith", None),
        ("427242", NamePart.LAST, "Garcia", None),
        ("748372", NamePart.LAST, "Rivera", None),
        ("62742056739", NamePart.FULL, "Maria", "Lopez"),
        ("8660022537", NamePart.FULL, "Tom", "Baker"),
    ],
)
def test_a_common_name_is_the_first_candidate_and_is_read_back(
    keys: str, part: NamePart, first: str | None, last: str | None
) -> None:
    result = extract_keypad_name(keys, part)
    assert result.value is not None
    value = result.value
    if part is NamePart.FIRST:
        assert value == PersonName(first, None)
    elif part is NamePart.LAST:
        assert value == PersonName(None, first)
    else:
        assert value == PersonName(first, last)
    assert result.needs_confirmation  # a directory guess is always read back


def test_other_names_with_the_same_keys_are_alternatives_most_frequent_first() -> None:
    result = extract_keypad_name("56739", NamePart.LAST)  # LOPEZ and JOSEY share the keys
    assert result.value == PersonName(None, "Lopez")
    assert PersonName(None, "Josey") in result.alternatives


@pytest.mark.parametrize(
    ("keys", "part", "failure"),
    [
        ("99999999", NamePart.LAST, Failure.NOT_FOUND),  # no name spells that
        ("2", NamePart.FIRST, Failure.NOT_FOUND),  # one key is no name
        ("2612", NamePart.FIRST, Failure.NOT_FOUND),  # 1 carries no letters
        ("26620", NamePart.FULL, Failure.INCOMPLETE),  # a first name only
        ("2662076484099", NamePart.FULL, Failure.INCOMPLETE),  # three parts
        ("99999099999", NamePart.FULL, Failure.NOT_FOUND),
    ],
)
def test_keys_that_name_nobody_fail_cleanly(keys: str, part: NamePart, failure: Failure) -> None:
    result = extract_keypad_name(keys, part)
    assert result.value is None
    assert result.failure is failure
