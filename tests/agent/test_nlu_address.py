"""Spoken addresses: numbers, units, states, ZIPs, and ZIP/state/city cross-checks."""

from __future__ import annotations

import pytest

from agent.nlu.address import Address, extract_address, extract_state, extract_zip, lookup_zip
from agent.nlu.result import Failure


@pytest.mark.parametrize(
    ("said", "address"),
    [
        (
            "one twenty three main street apartment four b cambridge massachusetts"
            " oh two one three nine",
            Address("123 Main Street", "Apt 4B", "Cambridge", "MA", "02139"),
        ),
        (
            "my address is forty two oak street springfield illinois six two seven oh one",
            Address("42 Oak Street", None, "Springfield", "IL", "62701"),
        ),
        (
            "fifteen oh five north elm avenue austin tx seven eight seven oh one",
            Address("1505 North Elm Avenue", None, "Austin", "TX", "78701"),
        ),
        (
            "i live at eight eight route nine suite two hundred new paltz new york"
            " one two five six one",
            Address("88 Route 9", "Suite 200", "New Paltz", "NY", "12561"),
        ),
        (
            "forty five maple drive unit three springfield i l six two seven oh one",
            Address("45 Maple Drive", "Unit 3", "Springfield", "IL", "62701"),
        ),
        (
            "nine elm st salem oregon nine seven three oh one",
            Address("9 Elm St", None, "Salem", "OR", "97301"),
        ),
        (
            "five hundred twenty third street beverly hills california nine oh two one oh",
            Address("500 23rd Street", None, "Beverly Hills", "CA", "90210"),
        ),
    ],
)
def test_full_addresses(said: str, address: Address) -> None:
    result = extract_address(said)
    assert result.value == address
    assert result.failure is None


def test_city_is_filled_in_from_the_zip() -> None:
    result = extract_address("twelve elm street apartment four oh two one three nine")
    assert result.value == Address("12 Elm Street", "Apt 4", "Cambridge", "MA", "02139", True)
    assert result.needs_confirmation


def test_misheard_city_is_corrected_from_the_zip() -> None:
    result = extract_address("seventy seven mass ave cambrige m a oh two one three nine")
    assert result.value is not None
    assert result.value.city == "Cambridge" and result.value.city_from_zip
    assert result.needs_confirmation


def test_state_that_contradicts_the_zip_is_a_mismatch() -> None:
    result = extract_address("12 main st springfield ca 62701")
    assert result.failure is Failure.MISMATCH
    assert result.value is not None and result.value.state == "CA"  # what the caller said
    assert result.alternatives[0].state == "IL"  # what the ZIP says


def test_city_that_contradicts_the_zip_is_a_mismatch() -> None:
    result = extract_address("ten downing lane boston oh two one three nine")
    assert result.failure is Failure.MISMATCH
    assert result.alternatives[0].city == "Cambridge"


@pytest.mark.parametrize(
    ("said", "failure"),
    [
        ("one two three main street", Failure.INCOMPLETE),
        ("", Failure.NOT_FOUND),
        ("five main street nine nine nine nine nine", Failure.INVALID_FORMAT),
    ],
)
def test_address_failures(said: str, failure: Failure) -> None:
    assert extract_address(said).failure is failure


@pytest.mark.parametrize(
    ("said", "zip_code", "city", "state"),
    [
        ("zip code oh two one three nine", "02139", "Cambridge", "MA"),
        ("it's nine oh two one oh", "90210", "Beverly Hills", "CA"),
        ("1 0 0 0 1", "10001", "New York", "NY"),
        ("six two seven oh one dash one two three four", "62701", "Springfield", "IL"),
    ],
)
def test_zip(said: str, zip_code: str, city: str, state: str) -> None:
    info = extract_zip(said).value
    assert info is not None
    assert (info.zip_code, info.city, info.state) == (zip_code, city, state)


@pytest.mark.parametrize(
    ("said", "failure"),
    [
        ("oh two one three", Failure.INVALID_FORMAT),
        ("zero zero zero zero zero", Failure.INVALID_FORMAT),
        ("i don't know my zip", Failure.NOT_FOUND),
    ],
)
def test_zip_failures(said: str, failure: Failure) -> None:
    assert extract_zip(said).failure is failure


@pytest.mark.parametrize(
    ("said", "code"),
    [
        ("massachusetts", "MA"),
        ("m a", "MA"),
        ("ma", "MA"),
        ("new hampshire", "NH"),
        ("i live in north carolina", "NC"),
        ("washington dc", "DC"),
        ("puerto rico", "PR"),
    ],
)
def test_state(said: str, code: str) -> None:
    assert extract_state(said).value == code


def test_bare_state_codes_are_not_read_inside_sentences() -> None:
    assert extract_state("i live in a house on the corner").failure is Failure.NOT_FOUND


def test_lookup_zip_rejects_garbage() -> None:
    assert lookup_zip("abcde") is None
    assert lookup_zip("0213") is None
