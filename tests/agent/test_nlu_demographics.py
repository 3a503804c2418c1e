"""Names (spoken, spelled, NATO), dates of birth (every way people say them), phones."""

from __future__ import annotations

from datetime import date

import pytest

from agent.nlu.demographics import (
    NamePart,
    PersonName,
    extract_date_of_birth,
    extract_name,
    extract_phone,
    extract_spelling,
    wants_caller_id,
)
from agent.nlu.phone import PhoneSource, parse_phone
from agent.nlu.result import Failure

TODAY = date(2026, 3, 12)


@pytest.mark.parametrize(
    ("said", "part", "name"),
    [
        ("my name is jane doe", NamePart.FULL, PersonName("Jane", "Doe")),
        ("jane doe", NamePart.FULL, PersonName("Jane", "Doe")),
        ("um this is alex rivera", NamePart.FULL, PersonName("Alex", "Rivera")),
        ("it's smith s m y t h", NamePart.LAST, PersonName(None, "Smyth")),
        ("s as in sam m i t h", NamePart.LAST, PersonName(None, "Smith")),
        ("j o h n", NamePart.FIRST, PersonName("John", None)),
        ("sierra mike india tango hotel", NamePart.LAST, PersonName(None, "Smith")),
        ("kowalski k o w a l s k i", NamePart.LAST, PersonName(None, "Kowalski")),
        ("o apostrophe b r i e n", NamePart.LAST, PersonName(None, "O'Brien")),
        ("last name is o'brien", NamePart.LAST, PersonName(None, "O'Brien")),
        ("maria de la cruz", NamePart.FULL, PersonName("Maria", "de la Cruz")),
        ("mary ann johnson", NamePart.FULL, PersonName("Mary", "Johnson", "Ann")),
        ("my name is pat mcdonald", NamePart.FULL, PersonName("Pat", "McDonald")),
        (
            "my first name is john and my last name is smyth s m y t h",
            NamePart.FULL,
            PersonName("John", "Smyth"),
        ),
        ("hi this is jon j o n smith", NamePart.FULL, PersonName("Jon", "Smith")),
        ("last name lee first name dana", NamePart.FULL, PersonName("Dana", "Lee")),
        ("f as in frank r a n k", NamePart.FIRST, PersonName("Frank", None)),
        ("p like peter a t", NamePart.FIRST, PersonName("Pat", None)),
        (
            "john smith spelled j o h n s m i t h",
            NamePart.FULL,
            PersonName("John", "Smith"),
        ),
        # The recogniser heard "john"; the caller spells "jon": the spelling wins.
        ("john smith j o n s m i t h", NamePart.FULL, PersonName("Jon", "Smith")),
        ("jane doe d o e", NamePart.FULL, PersonName("Jane", "Doe")),
        ("lee hyphen ann", NamePart.FIRST, PersonName("Lee-Ann", None)),
        ("mary smith hyphen jones", NamePart.FULL, PersonName("Mary", "Smith-Jones")),
        ("l e e hyphen a n n", NamePart.FIRST, PersonName("Lee-Ann", None)),
    ],
)
def test_names(said: str, part: NamePart, name: PersonName) -> None:
    assert extract_name(said, part).value == name


def test_spelled_names_are_trusted_and_spoken_ones_read_back() -> None:
    assert not extract_name("d o e", NamePart.LAST).needs_confirmation
    assert extract_name("jane doe").needs_confirmation


def test_single_word_for_full_name_is_incomplete() -> None:
    result = extract_name("this is ana")
    assert result.value == PersonName("Ana", None)
    assert result.failure is Failure.INCOMPLETE


@pytest.mark.parametrize("said", ["", "um", "i am a patient", "one two three"])
def test_no_name(said: str) -> None:
    assert extract_name(said).failure is Failure.NOT_FOUND


def test_extract_spelling() -> None:
    assert extract_spelling("s as in sam m y t h").value == "Smyth"
    assert extract_spelling("nothing spelled here").failure is Failure.NOT_FOUND


@pytest.mark.parametrize(
    ("said", "born"),
    [
        ("march third nineteen eighty four", date(1984, 3, 3)),
        ("3 3 1984", date(1984, 3, 3)),
        ("the third of march eighty four", date(1984, 3, 3)),
        ("oh three oh three eighty four", date(1984, 3, 3)),
        ("1984-03-03", date(1984, 3, 3)),
        ("03/03/1984", date(1984, 3, 3)),
        ("03031984", date(1984, 3, 3)),
        ("march 3rd 1984", date(1984, 3, 3)),
        ("nineteen eighty four march third", date(1984, 3, 3)),
        ("i was born on march third nineteen eighty four", date(1984, 3, 3)),
        ("march twenty third nineteen ninety", date(1990, 3, 23)),
        ("twelve twenty five nineteen ninety", date(1990, 12, 25)),
        ("december thirty first nineteen ninety nine", date(1999, 12, 31)),
        ("july fourth two thousand five", date(2005, 7, 4)),
        ("january first two thousand", date(2000, 1, 1)),
        ("it's may twelfth oh five", date(2005, 5, 12)),
        ("august ten twenty twenty", date(2020, 8, 10)),
        ("eleven twenty two sixty three", date(1963, 11, 22)),
        ("fifteen three nineteen eighty", date(1980, 3, 15)),
        ("feb 29 2000", date(2000, 2, 29)),
        ("sept fifth seventy", date(1970, 9, 5)),
        ("the twenty first of june nineteen fifty", date(1950, 6, 21)),
        ("um my birthday is april first two thousand and two", date(2002, 4, 1)),
        ("6 15 1978", date(1978, 6, 15)),
        ("oh three slash oh three slash eighty four", date(1984, 3, 3)),
        ("march the third nineteen eighty four", date(1984, 3, 3)),
        ("the 3rd of march 1984", date(1984, 3, 3)),
        ("3-3-84", date(1984, 3, 3)),
        ("born nineteen eighty four on march third", date(1984, 3, 3)),
        ("my date of birth is one two two five one nine eight nine", date(1989, 12, 25)),
        ("um it's uh january uh fifteenth nineteen seventy two", date(1972, 1, 15)),
        ("nineteen hundred eighty four march third", date(1984, 3, 3)),
    ],
)
def test_date_of_birth(said: str, born: date) -> None:
    assert extract_date_of_birth(said, TODAY).value == born


@pytest.mark.parametrize(
    ("said", "failure"),
    [
        ("march third", Failure.INCOMPLETE),
        ("june fifth twenty thirty", Failure.OUT_OF_RANGE),  # in the future
        ("september 9 1899", Failure.OUT_OF_RANGE),  # over 120 years old
        ("february thirtieth nineteen ninety", Failure.INVALID_FORMAT),
        ("one one one nine eight four", Failure.AMBIGUOUS),  # 1/1/1984 or 11/19/84
        ("i don't remember", Failure.NOT_FOUND),
        ("march april third", Failure.NOT_FOUND),
    ],
)
def test_date_of_birth_failures(said: str, failure: Failure) -> None:
    result = extract_date_of_birth(said, TODAY)
    assert result.value is None
    assert result.failure is failure


def test_dob_range_follows_today_not_the_clock() -> None:
    assert extract_date_of_birth("june fifth twenty thirty", date(2031, 1, 1)).value == date(
        2030, 6, 5
    )


def test_numeric_dob_is_read_back() -> None:
    assert extract_date_of_birth("3 3 1984", TODAY).needs_confirmation
    assert not extract_date_of_birth("march third nineteen eighty four", TODAY).needs_confirmation


@pytest.mark.parametrize(
    ("said", "e164"),
    [
        ("six one seven five five five oh one two three", "+16175550123"),
        ("617 555 0123", "+16175550123"),
        ("two one two five fifty five oh one nine nine", "+12125550199"),
        ("area code four one five then five five five double oh one two", "+14155550012"),
        ("one eight hundred five five five oh one hundred", "+18005550100"),
        ("um my cell is three one two five five five zero one four four", "+13125550144"),
        ("+1 (617) 555-0123", "+16175550123"),
        ("2125550123", "+12125550123"),
    ],
)
def test_phone(said: str, e164: str) -> None:
    result = extract_phone(said)
    assert result.value is not None and result.value.e164 == e164
    assert result.value.source is PhoneSource.SPOKEN


@pytest.mark.parametrize(
    ("said", "failure"),
    [
        ("five five five one two one two", Failure.INCOMPLETE),
        ("one two three four five six seven eight nine oh", Failure.INVALID_FORMAT),
        ("six one seven five five five", Failure.INVALID_FORMAT),
        ("i'd rather not say", Failure.NOT_FOUND),
    ],
)
def test_phone_failures(said: str, failure: Failure) -> None:
    assert extract_phone(said).failure is failure


@pytest.mark.parametrize(
    "said",
    [
        "use the number i'm calling from",
        "you can use this number",
        "the same number",
        "just use the one i'm calling from",
        "the number that shows up",
    ],
)
def test_caller_id_intent(said: str) -> None:
    assert wants_caller_id(said)
    result = extract_phone(said, caller_id="sip:+16175550188@127.0.0.1")
    assert result.value is not None
    assert result.value.e164 == "+16175550188"
    assert result.value.source is PhoneSource.CALLER_ID
    assert result.needs_confirmation


def test_caller_id_requested_but_unknown() -> None:
    assert extract_phone("use this number", caller_id=None).failure is Failure.UNAVAILABLE
    assert extract_phone("use this number", caller_id="anonymous").failure is Failure.UNAVAILABLE


def test_parse_phone_formats() -> None:
    number = parse_phone("tel:+1-617-555-0123;phone-context=example")
    assert number is not None and number.national == "(617) 555-0123"
    assert number.digits == "6175550123"
    assert not wants_caller_id("my number is six one seven")
