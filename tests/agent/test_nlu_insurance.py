"""Payer matching (exact, fuzzy, spelled, BCBS/Anthem rules) and member IDs."""

from __future__ import annotations

import pytest

from agent.nlu.insurance import (
    PayerCatalog,
    default_catalog,
    extract_member_id,
    match_payer,
    read_back_digits,
)
from agent.nlu.result import Failure


@pytest.mark.parametrize(
    ("said", "payer_id"),
    [
        ("united healthcare", "unitedhealthcare"),
        ("um i have uhc", "unitedhealthcare"),
        ("you h c", "unitedhealthcare"),
        ("aarp medicare", "unitedhealthcare"),
        ("blue cross", "bcbs"),
        ("i have blue cross through my job", "bcbs"),
        ("bcbs", "bcbs"),
        ("bee see bee ess", "bcbs"),
        ("b c b s", "bcbs"),
        ("blue shield", "bcbs"),
        ("anthem blue cross", "anthem"),
        ("anthem blue cross blue shield", "anthem"),
        ("it's anthem", "anthem"),
        ("elevance", "anthem"),
        ("empire blue cross", "anthem"),
        ("highmark blue cross blue shield", "highmark"),
        ("carefirst bcbs", "carefirst"),
        ("aetna", "aetna"),
        ("etna", "aetna"),
        ("cigna", "cigna"),
        ("signa", "cigna"),
        ("humana", "humana"),
        ("humana medicare advantage", "humana"),
        ("kaiser permanente", "kaiser"),
        ("kaiser", "kaiser"),
        ("ambetter", "centene"),
        ("molina", "molina"),
        ("molina medicaid", "molina"),
        ("health net", "healthnet"),
        ("oscar health", "oscar"),
        ("wellcare", "wellcare"),
        ("well care", "wellcare"),
        ("medicare", "medicare"),
        ("original medicare", "medicare"),
        ("medicaid", "medicaid"),
        ("medi cal", "medicaid"),
        ("tricare", "tricare"),
        ("tri care", "tricare"),
        ("i don't have insurance", "self_pay"),
        ("no insurance i'm paying cash", "self_pay"),
        ("self pay", "self_pay"),
        ("uninsured", "self_pay"),
        ("it's not aetna it's cigna", "cigna"),
        ("i used to have aetna but now i have cigna", "cigna"),
        ("i switched to humana from aetna", "humana"),
    ],
)
def test_payer_exact_and_spelled(said: str, payer_id: str) -> None:
    result = match_payer(said)
    assert result.value is not None, result
    assert result.value.id == payer_id
    assert not result.needs_confirmation


@pytest.mark.parametrize(
    ("said", "payer_id"),
    [
        ("humanna", "humana"),
        ("welcare", "wellcare"),
        ("centine", "centene"),
        ("molena", "molina"),
        ("unitid healthcare", "unitedhealthcare"),
        ("tricaire", "tricare"),
    ],
)
def test_payer_fuzzy_is_read_back(said: str, payer_id: str) -> None:
    result = match_payer(said)
    assert result.value is not None, result
    assert result.value.id == payer_id
    assert result.detail == "fuzzy"
    assert result.needs_confirmation


@pytest.mark.parametrize(
    ("said", "failure"),
    [
        ("my medical insurance is through work", Failure.NOT_FOUND),
        ("i'm not sure what it's called", Failure.NOT_FOUND),
        ("not aetna", Failure.NOT_FOUND),
        ("aetna and cigna", Failure.AMBIGUOUS),
        ("", Failure.NOT_FOUND),
    ],
)
def test_payer_failures(said: str, failure: Failure) -> None:
    assert match_payer(said).failure is failure


def test_anthem_is_a_bcbs_licensee_but_its_own_payer() -> None:
    anthem = match_payer("anthem blue cross").value
    generic = match_payer("blue cross").value
    assert anthem is not None and generic is not None
    assert anthem.id != generic.id
    assert anthem.bcbs_licensee and generic.bcbs_licensee


def test_catalog_is_configurable() -> None:
    catalog = PayerCatalog.from_yaml(
        "payers:\n  - id: acme\n    name: Acme Health\n    aliases: [acme health, acme]\n"
    )
    assert (match_payer("acme", catalog).value or catalog.payers[0]).id == "acme"
    assert match_payer("aetna", catalog).failure is Failure.NOT_FOUND


def test_catalog_rejects_malformed_data() -> None:
    with pytest.raises(ValueError, match="payers"):
        PayerCatalog.from_yaml("payers: []")


CATALOG = default_catalog()


@pytest.mark.parametrize(
    ("said", "payer_id", "member_id"),
    [
        ("a b c one two three four five six", "bcbs", "ABC123456"),
        ("alpha bravo charlie one two three four five six", "anthem", "ABC123456"),
        ("x y z double oh one two three four", "bcbs", "XYZ001234"),
        ("my member id is w one two three four five six seven eight nine", "aetna", "W123456789"),
        ("one e g four t e five m k seven three", "medicare", "1EG4TE5MK73"),
        ("one e g four dash t e five dash m k seven three", "medicare", "1EG4TE5MK73"),
        ("1EG4-TE5-MK73", "medicare", "1EG4TE5MK73"),
        ("it's one oh one two three four five six seven eight nine", "tricare", "10123456789"),
        ("u nine eight seven six five four three two one", "cigna", "U987654321"),
        ("h one two three four five six seven eight", "humana", "H12345678"),
        ("my i d is nine eight seven six five four three two one", "unitedhealthcare", "987654321"),
        ("abc123456", "bcbs", "ABC123456"),
    ],
)
def test_member_id(said: str, payer_id: str, member_id: str) -> None:
    result = extract_member_id(said, CATALOG.get(payer_id))
    assert result.value == member_id
    assert result.needs_confirmation  # IDs are always read back


def test_oh_becomes_a_letter_when_the_format_needs_one() -> None:
    # BCBS IDs open with three letters, so the "oh"s at the front are the letter O.
    result = extract_member_id("oh oh x one two three four five", CATALOG.get("bcbs"))
    assert result.value == "OOX12345"


def test_medicare_mbi_letter_rules() -> None:
    medicare = CATALOG.get("medicare")
    assert medicare.accepts("1EG4TE5MK73")
    assert not medicare.accepts("1SG4TE5MK73")  # S never appears in an MBI
    assert not medicare.accepts("0EG4TE5MK73")  # position 1 is 1-9
    assert not medicare.accepts("1EG4TE5MK7")  # 10 characters


@pytest.mark.parametrize(
    ("said", "payer_id", "failure"),
    [
        ("one two three", "aetna", Failure.INVALID_FORMAT),
        ("one two three four five six seven eight nine", "medicare", Failure.INVALID_FORMAT),
        ("my member id is", "aetna", Failure.NOT_FOUND),
    ],
)
def test_member_id_failures(said: str, payer_id: str, failure: Failure) -> None:
    result = extract_member_id(said, CATALOG.get(payer_id))
    assert result.value is None
    assert result.failure is failure


def test_invalid_member_id_offers_what_was_heard() -> None:
    result = extract_member_id("one two three", CATALOG.get("aetna"))
    assert result.alternatives == ("123",)


@pytest.mark.parametrize(
    ("member_id", "spoken"),
    [("ABC123", "A, B, C, 1, 2, 3"), ("1EG4-TE5-MK73", "1, E, G, 4, T, E, 5, M, K, 7, 3")],
)
def test_read_back_digits(member_id: str, spoken: str) -> None:
    assert read_back_digits(member_id) == spoken
