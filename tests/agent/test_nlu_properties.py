"""Hypothesis: no extractor raises, on any text, and every result keeps its invariants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.nlu.address import extract_address, extract_state, extract_zip
from agent.nlu.complaint import (
    detect_red_flag,
    extract_complaint,
    extract_duration,
    extract_severity,
    extract_symptoms,
)
from agent.nlu.corrections import CorrectionContext, parse_correction
from agent.nlu.dates import extract_date_of_birth, extract_partial_date
from agent.nlu.demographics import NamePart, extract_name, extract_spelling
from agent.nlu.emergency_contact import extract_emergency_contact, extract_relationship
from agent.nlu.insurance import default_catalog, extract_member_id, match_payer, read_back_digits
from agent.nlu.intents import detect_intent
from agent.nlu.numbers import spoken_digits, spoken_int
from agent.nlu.pharmacy import extract_pharmacy
from agent.nlu.phone import extract_phone
from agent.nlu.result import Extraction
from agent.nlu.scheduling import choose_slot, extract_slot_preference
from agent.nlu.yesno import classify_confirmation

TODAY = date(2026, 3, 12)
NOW = datetime(2026, 3, 12, 9, 30)
SLOTS = [datetime(2026, 3, 13, 9, 0), datetime(2026, 3, 16, 14, 0)]
CTX = CorrectionContext(today=TODAY, date_of_birth=date(1984, 3, 3), caller_id="+16175550188")
MEDICARE = default_catalog().get("medicare")

EXTRACTORS: dict[str, Callable[[str], Extraction[object]]] = {
    "spoken_digits": spoken_digits,
    "spoken_int": spoken_int,
    "confirmation": classify_confirmation,
    "intent": detect_intent,
    "payer": match_payer,
    "member_id": lambda t: extract_member_id(t, MEDICARE),
    "member_id_any": extract_member_id,
    "symptoms": extract_symptoms,
    "duration": lambda t: extract_duration(t, TODAY),
    "severity": extract_severity,
    "red_flag": detect_red_flag,
    "complaint": lambda t: extract_complaint(t, TODAY),
    "name": extract_name,
    "last_name": lambda t: extract_name(t, NamePart.LAST),
    "spelling": extract_spelling,
    "dob": lambda t: extract_date_of_birth(t, TODAY),
    "partial_date": extract_partial_date,
    "phone": lambda t: extract_phone(t, caller_id="sip:+16175550188@127.0.0.1"),
    "address": extract_address,
    "zip": extract_zip,
    "state": extract_state,
    "pharmacy": extract_pharmacy,
    "relationship": extract_relationship,
    "contact": extract_emergency_contact,
    "slot_preference": lambda t: extract_slot_preference(t, NOW),
    "choose_slot": lambda t: choose_slot(t, SLOTS, NOW),
    "correction": lambda t: parse_correction(t, CTX),
}

# Words the extractors care about, so generated "speech" reaches their deeper branches.
SPEECH_WORDS = (
    "oh o zero one two three four five six seven eight nine ten eleven twelve nineteen twenty"
    " thirty eighty ninety hundred thousand double triple first second third twenty-first"
    " a b c s m y t h i x as in sam alpha bravo bee see ess dash apostrophe not no yes actually"
    " march may june of the my is it's zip code street apartment unit massachusetts ma new york"
    " blue cross anthem aetna medicare chest pain shortness of breath can't breathe kill myself"
    " fever cough days weeks out since yesterday monday next tuesday at pm am morning option"
    " last one wife son number calling from cvs walgreens on and corner pharmacy name spelled"
    " birthday phone insurance member id 02139 1984 617 5550123 3rd , - / # *"
).split()

speech = st.lists(st.sampled_from(SPEECH_WORDS), max_size=25).map(" ".join)


def _check(result: Extraction[object]) -> None:
    assert isinstance(result, Extraction)
    assert 0.0 <= result.confidence <= 1.0
    assert isinstance(result.needs_confirmation, bool)
    if result.value is None:
        assert result.failure is not None
        assert result.confidence == 0.0


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=120))
def test_never_raises_on_arbitrary_text(name: str, text: str) -> None:
    _check(EXTRACTORS[name](text))


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=speech)
def test_never_raises_on_speechlike_text(name: str, text: str) -> None:
    _check(EXTRACTORS[name](text))


@given(text=st.text(max_size=60))
def test_read_back_never_raises(text: str) -> None:
    spoken = read_back_digits(text)
    assert all(part.isalnum() for part in spoken.split(", ") if part)


@settings(max_examples=300, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_dtmf_digits_round_trip(digits: str) -> None:
    assert spoken_digits(digits).value == digits
    # "oh" is zero among other digits; a lone "oh" is an interjection, so say "zero" then.
    zero = "oh" if len(digits) > 1 else "zero"
    spelled = " ".join(zero if d == "0" else SPOKEN[int(d)] for d in digits)
    assert spoken_digits(spelled).value == digits


SPOKEN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@settings(max_examples=300, deadline=None)
@given(day=st.dates(min_value=date(1910, 1, 1), max_value=TODAY))
def test_every_spoken_birth_date_reads_back(day: date) -> None:
    months = (
        "january february march april may june july august september october november december"
    ).split()
    said = f"{months[day.month - 1]} {day.day} {day.year}"
    assert extract_date_of_birth(said, TODAY).value == day
    assert extract_date_of_birth(day.isoformat(), TODAY).value == day
