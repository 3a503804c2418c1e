"""Pharmacy (chain, independent, location, cross streets) and emergency contacts."""

from __future__ import annotations

import pytest

from agent.nlu.demographics import PersonName
from agent.nlu.emergency_contact import (
    Relationship,
    extract_emergency_contact,
    extract_relationship,
)
from agent.nlu.pharmacy import Pharmacy, extract_pharmacy
from agent.nlu.result import Failure


@pytest.mark.parametrize(
    ("said", "pharmacy"),
    [
        ("the cvs on main street", Pharmacy("CVS", "CVS", "Main Street")),
        ("c v s", Pharmacy("CVS", "CVS", None)),
        (
            "walgreens on elm and fifth",
            Pharmacy("Walgreens", "Walgreens", "Elm and Fifth", ("Elm", "Fifth")),
        ),
        (
            "um the walgrens at the corner of oak and maple",
            Pharmacy("Walgreens", "Walgreens", "Oak and Maple", ("Oak", "Maple")),
        ),
        ("rite aid", Pharmacy("Rite Aid", "Rite Aid", None)),
        ("right aid in cambridge", Pharmacy("Rite Aid", "Rite Aid", "Cambridge")),
        ("i use the walmart pharmacy on route nine", Pharmacy("Walmart", "Walmart", "Route Nine")),
        ("costco", Pharmacy("Costco", "Costco", None)),
        ("kroger near the mall", Pharmacy("Kroger", "Kroger", "the Mall")),
        ("h e b", Pharmacy("H-E-B", "H-E-B", None)),
        ("the target pharmacy", Pharmacy("CVS", "CVS", None)),  # CVS runs Target pharmacies
        ("mail order", Pharmacy("Express Scripts", "Express Scripts", None)),
        (
            "smith family pharmacy on central avenue",
            Pharmacy("Smith Family Pharmacy", None, "Central Avenue"),
        ),
    ],
)
def test_pharmacy(said: str, pharmacy: Pharmacy) -> None:
    assert extract_pharmacy(said).value == pharmacy


def test_fuzzy_chain_is_read_back() -> None:
    result = extract_pharmacy("walgrens")
    assert result.value is not None and result.value.chain == "Walgreens"


@pytest.mark.parametrize("said", ["i don't know", "", "the one by my house"])
def test_no_pharmacy(said: str) -> None:
    assert extract_pharmacy(said).failure is Failure.NOT_FOUND


@pytest.mark.parametrize(
    ("said", "relationship"),
    [
        ("my wife", Relationship.SPOUSE),
        ("husband", Relationship.SPOUSE),
        ("my mom", Relationship.PARENT),
        ("she's my daughter", Relationship.CHILD),
        ("my brother", Relationship.SIBLING),
        ("my mother in law", Relationship.RELATIVE),
        ("my boyfriend", Relationship.PARTNER),
        ("my best friend", Relationship.FRIEND),
        ("my grandson", Relationship.GRANDCHILD),
        ("my neighbor", Relationship.NEIGHBOR),
        ("her legal guardian", Relationship.GUARDIAN),
    ],
)
def test_relationship(said: str, relationship: Relationship) -> None:
    assert extract_relationship(said).value is relationship


def test_full_contact_in_one_breath() -> None:
    result = extract_emergency_contact(
        "my wife jane doe six one seven five five five oh one two three"
    )
    contact = result.value
    assert contact is not None and result.failure is None
    assert contact.name == PersonName("Jane", "Doe")
    assert contact.relationship is Relationship.SPOUSE
    assert contact.relationship_word == "wife"
    assert contact.phone is not None and contact.phone.e164 == "+16175550123"


def test_contact_name_before_relationship() -> None:
    contact = extract_emergency_contact(
        "jane doe she's my sister her number is two one two five five five oh one nine nine"
    ).value
    assert contact is not None
    assert contact.name == PersonName("Jane", "Doe")
    assert contact.relationship is Relationship.SIBLING
    assert contact.phone is not None and contact.phone.digits == "2125550199"


@pytest.mark.parametrize(
    ("said", "has_name", "has_relation", "has_phone"),
    [
        ("my husband", False, True, False),
        ("my best friend sam taylor", True, True, False),
        ("call my son alex at six one seven five five five oh one four four", True, True, True),
    ],
)
def test_partial_contact_is_incomplete(
    said: str, has_name: bool, has_relation: bool, has_phone: bool
) -> None:
    result = extract_emergency_contact(said)
    contact = result.value
    assert contact is not None
    assert (contact.name is not None, contact.relationship is not None) == (has_name, has_relation)
    assert (contact.phone is not None) == has_phone
    complete = has_name and has_relation and has_phone
    assert (result.failure is Failure.INCOMPLETE) == (not complete)


def test_no_contact() -> None:
    assert extract_emergency_contact("").failure is Failure.NOT_FOUND
