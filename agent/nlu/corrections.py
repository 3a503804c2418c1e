"""Corrections during the summary, in the caller's own words.

Theory of operation
-------------------
At SUMMARY the agent reads everything back and the caller may fix any field: "actually my zip
is oh two one three nine", "my last name is spelled s m y t h", "the date of birth is wrong,
it's march fourth". `parse_correction`:

1. finds the field from a cue phrase (`FIELD_CUES`, leftmost-longest, so "phone number" is
   PHONE and "member id number" is MEMBER_ID);
2. takes the words after the cue, keeps what follows the last "it's"/"should be"/"is" and
   drops a trailing "not ..." ("it's oh two one three nine not oh two one three eight");
3. runs that field's own extractor on them, so a correction is read exactly as the original
   answer was. A date without a year takes the year of the birth date on file (from the
   `CorrectionContext`).

With no cue, the value's shape decides (five digits: ZIP; ten: phone; a date: birth date; a
payer name: insurance) at lower confidence, read back before it is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum

from agent.nlu.address import Address, ZipInfo, extract_address, extract_state, extract_zip
from agent.nlu.dates import MONTHS, PartialDate, extract_date_of_birth, extract_partial_date
from agent.nlu.demographics import NamePart, PersonName, extract_name
from agent.nlu.emergency_contact import EmergencyContact, extract_emergency_contact
from agent.nlu.insurance import Payer, extract_member_id, match_payer
from agent.nlu.numbers import find_atoms, spoken_digits
from agent.nlu.pharmacy import Pharmacy, extract_pharmacy
from agent.nlu.phone import PhoneNumber, extract_phone
from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import FILLERS, PhraseIndex, title_name, tokens


class Field(Enum):
    """An intake field the caller can correct."""

    NAME = "name"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    DATE_OF_BIRTH = "date_of_birth"
    PHONE = "phone"
    ADDRESS = "address"
    STREET = "street"
    CITY = "city"
    STATE = "state"
    ZIP = "zip"
    INSURANCE = "insurance"
    MEMBER_ID = "member_id"
    PHARMACY = "pharmacy"
    EMERGENCY_CONTACT = "emergency_contact"


CorrectionValue = (
    str | date | PersonName | PhoneNumber | Address | ZipInfo | Payer | Pharmacy | EmergencyContact
)

FIELD_CUES: dict[str, Field] = {
    **dict.fromkeys(("zip", "zip code", "zipcode", "postal code"), Field.ZIP),
    **dict.fromkeys(("last name", "surname", "family name", "last"), Field.LAST_NAME),
    **dict.fromkeys(("first name", "given name"), Field.FIRST_NAME),
    **dict.fromkeys(("name", "full name", "my name"), Field.NAME),
    **dict.fromkeys(
        ("date of birth", "birth date", "birthday", "dob", "d o b", "birthdate", "born"),
        Field.DATE_OF_BIRTH,
    ),
    **dict.fromkeys(
        ("phone", "phone number", "number", "cell", "cell number", "callback number"),
        Field.PHONE,
    ),
    **dict.fromkeys(
        ("member id", "member number", "id number", "insurance id", "policy number", "i d")
        + ("member id number", "id", "subscriber id", "medicare number"),
        Field.MEMBER_ID,
    ),
    **dict.fromkeys(
        ("insurance", "insurance company", "carrier", "health plan", "plan"), Field.INSURANCE
    ),
    **dict.fromkeys(("street", "street address", "house number"), Field.STREET),
    **dict.fromkeys(("address", "home address"), Field.ADDRESS),
    **dict.fromkeys(("city", "town"), Field.CITY),
    **dict.fromkeys(("state",), Field.STATE),
    **dict.fromkeys(("pharmacy", "drugstore"), Field.PHARMACY),
    **dict.fromkeys(("emergency contact", "contact"), Field.EMERGENCY_CONTACT),
}
_CUES: PhraseIndex[Field] = PhraseIndex(FIELD_CUES.items())
_MARKERS = (("it's",), ("should", "be"), ("is",), ("to",), ("its",), ("was",), ("it", "is"))
_GLUE = frozenset(
    {"actually", "my", "the", "is", "wrong", "it's", "its", "it", "should", "be", "spelled"}
    | {"incorrect", "not", "right", "sorry", "oh", "no", "yes", "yeah", "change", "that", "a"}
    | {"please", "and", "was", "so", "i", "said", "meant", "mean", "also", "to", "you", "have"}
) - {"oh"}


@dataclass(frozen=True, slots=True)
class Correction:
    """A field and its new value, as typed as the field's extractor makes it."""

    field: Field
    value: CorrectionValue


@dataclass(frozen=True, slots=True)
class CorrectionContext:
    """What the agent already has, for completing partial corrections."""

    today: date
    date_of_birth: date | None = None
    payer: Payer | None = None
    caller_id: str | None = None


def _value_words(toks: list[str]) -> list[str]:
    """The new value's words: after the last marker, before a trailing "not ..."."""
    start = 0
    for i in range(len(toks)):
        for marker in _MARKERS:
            if tuple(toks[i : i + len(marker)]) == marker and i + len(marker) < len(toks):
                start = i + len(marker)
    words = toks[start:]
    for i, tok in enumerate(words):
        if tok == "not" and any(w not in _GLUE for w in words[:i]):
            words = words[:i]
            break
    while words and words[0] in _GLUE:
        words = words[1:]
    return words


def parse_correction(text: str, context: CorrectionContext) -> Extraction[Correction]:
    """Read "actually my zip is oh two one three nine" as (ZIP, 02139's ZipInfo).

    Returns:
        The field and value; the field extractor's failure (INVALID_FORMAT, ...) when the new
        value does not parse; AMBIGUOUS when no cue names the field and the value's shape
        does not tell.
    """
    toks = [t for t in tokens(text) if t not in FILLERS]
    cues = _CUES.scan(toks)
    if not cues:
        return _by_shape(" ".join(_value_words(toks)), context)
    cue = cues[0]
    # "my phone number" -> the cue is "phone number"; "my last name" -> LAST_NAME.
    rest = toks[cue.end :]
    words = _value_words(rest) if rest else []
    if not words:
        return failed(Failure.INCOMPLETE, detail=cue.label.value)
    result = _extract(cue.label, " ".join(words), context)
    if result.value is None:
        return failed(result.failure or Failure.NOT_FOUND, detail=cue.label.value)
    conf = min(result.confidence, 0.95)
    return found(result.value, conf, confirm=result.needs_confirmation, failure=result.failure)


def _extract(field: Field, words: str, ctx: CorrectionContext) -> Extraction[Correction]:
    got: Extraction[CorrectionValue]
    if field in (Field.FIRST_NAME, Field.LAST_NAME):
        part = NamePart.FIRST if field is Field.FIRST_NAME else NamePart.LAST
        name = extract_name(words, part)
        if name.value is None:
            return failed(name.failure or Failure.NOT_FOUND)
        value = name.value.first if part is NamePart.FIRST else name.value.last
        return _wrap(field, value, name.confidence, name.needs_confirmation)
    if field is Field.CITY:  # free text, written as a place name
        return _wrap(field, " ".join(title_name(w) for w in words.split()), 0.8, True)
    if field is Field.ZIP:
        got = extract_zip(words)
    elif field is Field.NAME:
        got = extract_name(words)
    elif field is Field.DATE_OF_BIRTH:
        got = _dob(words, ctx)
    elif field is Field.PHONE:
        got = extract_phone(words, ctx.caller_id)
    elif field is Field.MEMBER_ID:
        got = extract_member_id(words, ctx.payer)
    elif field is Field.INSURANCE:
        got = match_payer(words)
    elif field in (Field.ADDRESS, Field.STREET):
        got = extract_address(words)
    elif field is Field.STATE:
        got = extract_state(words)
    elif field is Field.PHARMACY:
        got = extract_pharmacy(words)
    else:
        got = extract_emergency_contact(words)
    if got.value is None:
        return failed(got.failure or Failure.NOT_FOUND)
    return _wrap(field, got.value, got.confidence, got.needs_confirmation)


def _wrap(
    field: Field, value: CorrectionValue | None, conf: float, confirm: bool
) -> Extraction[Correction]:
    if value is None:
        return failed(Failure.NOT_FOUND)
    return found(Correction(field, value), conf, confirm=confirm)


def _dob(words: str, ctx: CorrectionContext) -> Extraction[date]:
    full = extract_date_of_birth(words, ctx.today)
    if full.value is not None or ctx.date_of_birth is None:
        return full
    partial = extract_partial_date(words).value or _year_only(words, ctx.today)
    if partial is None:
        return full
    old = ctx.date_of_birth
    try:
        merged = date(partial.year or old.year, partial.month or old.month, partial.day or old.day)
    except ValueError:
        return failed(Failure.OUT_OF_RANGE)
    if merged > ctx.today:
        return failed(Failure.OUT_OF_RANGE)
    return found(merged, 0.85, confirm=True, detail="merged")


def _year_only(words: str, today: date) -> PartialDate | None:
    """Read a lone year: "born in eighty five" -> 1985 (two digits: latest not in the future)."""
    atoms = [a for a in find_atoms(tokens(words)) if not a.ordinal]
    if len(atoms) != 1 or len(atoms[0].digits) not in (2, 4):
        return None
    year = atoms[0].value
    if len(atoms[0].digits) == 2:
        year += 2000 if 2000 + year <= today.year else 1900
    return PartialDate(None, None, year)


def _by_shape(words: str, ctx: CorrectionContext) -> Extraction[Correction]:
    """No field named: guess it from what the value looks like."""
    tries: list[Extraction[Correction]] = []
    digits = "".join(ch for ch in words if ch.isdigit()) or spoken_digits(words).value or ""
    dated = any(t in MONTHS for t in tokens(words)) or len(digits) in (6, 8)
    for field in (Field.ZIP, Field.PHONE, Field.DATE_OF_BIRTH):
        if field is Field.DATE_OF_BIRTH and not dated:
            continue
        got = _extract(field, words, ctx)
        if got.value is not None:
            tries.append(got)
    if not tries:
        payer = match_payer(words)
        if payer.value is not None and payer.confidence >= 0.9:
            tries.append(_wrap(Field.INSURANCE, payer.value, payer.confidence, True))
    if len(tries) != 1 or tries[0].value is None:
        if not tries:
            return failed(Failure.NOT_FOUND)
        return failed(Failure.AMBIGUOUS, alternatives=tuple(t.value for t in tries if t.value))
    return found(tries[0].value, min(tries[0].confidence, 0.7), confirm=True, detail="shape")
