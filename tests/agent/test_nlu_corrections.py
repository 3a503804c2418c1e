"""Corrections at SUMMARY, in the caller's own words, through the field extractors."""

from __future__ import annotations

from datetime import date

import pytest

from agent.nlu.address import Address, ZipInfo
from agent.nlu.corrections import CorrectionContext, Field, parse_correction
from agent.nlu.demographics import PersonName
from agent.nlu.insurance import default_catalog
from agent.nlu.phone import PhoneNumber
from agent.nlu.result import Failure
from agent.nlu.yesno import Answer, classify_confirmation

CTX = CorrectionContext(
    today=date(2026, 3, 12),
    date_of_birth=date(1984, 3, 3),
    payer=default_catalog().get("aetna"),
    caller_id="sip:+16175550188@127.0.0.1",
)


def _zip(code: str, city: str, state: str) -> ZipInfo:
    return ZipInfo(code, city, state)


@pytest.mark.parametrize(
    ("said", "field", "value"),
    [
        ("actually my zip is oh two one three nine", Field.ZIP, _zip("02139", "Cambridge", "MA")),
        (
            "the zip code should be nine oh two one oh",
            Field.ZIP,
            _zip("90210", "Beverly Hills", "CA"),
        ),
        (
            "it's oh two one three nine not oh two one three eight",
            Field.ZIP,
            _zip("02139", "Cambridge", "MA"),
        ),
        ("my last name is spelled s m y t h", Field.LAST_NAME, "Smyth"),
        ("my first name is jon j o n", Field.FIRST_NAME, "Jon"),
        ("the last name is o apostrophe b r i e n", Field.LAST_NAME, "O'Brien"),
        ("my name is dana lee", Field.NAME, PersonName("Dana", "Lee")),
        ("the date of birth is wrong it's march fourth", Field.DATE_OF_BIRTH, date(1984, 3, 4)),
        (
            "my birthday is march fourth nineteen eighty five",
            Field.DATE_OF_BIRTH,
            date(1985, 3, 4),
        ),
        ("i was born in eighty five", Field.DATE_OF_BIRTH, date(1985, 3, 3)),
        ("the insurance is aetna not cigna", Field.INSURANCE, default_catalog().get("aetna")),
        ("my insurance is blue cross", Field.INSURANCE, default_catalog().get("bcbs")),
        (
            "my member id is w one two three four five six seven eight nine",
            Field.MEMBER_ID,
            "W123456789",
        ),
        ("the city should be somerville", Field.CITY, "Somerville"),
        ("the state is new hampshire", Field.STATE, "NH"),
        (
            "my address is twelve elm street cambridge oh two one three nine",
            Field.ADDRESS,
            Address("12 Elm Street", None, "Cambridge", "MA", "02139"),
        ),
    ],
)
def test_correction(said: str, field: Field, value: object) -> None:
    result = parse_correction(said, CTX)
    assert result.value is not None, result
    assert result.value.field is field
    assert result.value.value == value


def test_phone_correction() -> None:
    result = parse_correction(
        "my phone number is six one seven five five five oh one two three", CTX
    )
    assert result.value is not None and result.value.field is Field.PHONE
    assert isinstance(result.value.value, PhoneNumber)
    assert result.value.value.e164 == "+16175550123"


def test_phone_correction_to_caller_id() -> None:
    result = parse_correction("the phone should be the number i'm calling from", CTX)
    assert result.value is not None and isinstance(result.value.value, PhoneNumber)
    assert result.value.value.e164 == "+16175550188"


@pytest.mark.parametrize(
    ("said", "field"),
    [
        ("actually it's oh two one three nine", Field.ZIP),
        ("six one seven five five five oh one two three", Field.PHONE),
        ("it should be march fourth nineteen eighty four", Field.DATE_OF_BIRTH),
        ("blue cross", Field.INSURANCE),
    ],
)
def test_field_guessed_from_the_value_is_read_back(said: str, field: Field) -> None:
    result = parse_correction(said, CTX)
    assert result.value is not None and result.value.field is field
    assert result.needs_confirmation and result.detail == "shape"


@pytest.mark.parametrize(
    ("said", "failure"),
    [
        ("the zip code is wrong", Failure.INCOMPLETE),
        ("my zip is oh two one", Failure.INVALID_FORMAT),
        ("my birthday is june fifth twenty thirty", Failure.OUT_OF_RANGE),
        ("something is off", Failure.NOT_FOUND),
    ],
)
def test_correction_failures(said: str, failure: Failure) -> None:
    result = parse_correction(said, CTX)
    assert result.value is None
    assert result.failure is failure


def test_no_then_correction_flows_into_parse_correction() -> None:
    answer = classify_confirmation("no actually my zip is oh two one three nine")
    assert answer.value is not None and answer.value.answer is Answer.CORRECTION
    fixed = parse_correction(answer.value.remainder, CTX)
    assert fixed.value is not None and fixed.value.field is Field.ZIP
