"""Street address, city, state and ZIP, checked against each other offline.

Theory of operation
-------------------
1. Numbers are rewritten as digits: "one twenty three" -> "123", "apartment four b" ->
   "apartment 4 b", "twenty third street" -> "23rd street" (`numbers.find_atoms`).
2. The ZIP is the last digit run of five or nine digits (a longer run ending the utterance is
   split: "apartment four oh two one three nine" is unit 4, ZIP 02139), with "zip code"
   dropped.
3. The state is the longest state name, spelled code ("m a") or bare code ("ma") right before
   the ZIP or at the end (a bare code elsewhere is too often a word: "in", "or", "me").
4. What is left, with the state code and ZIP re-appended, goes to `usaddress.tag` (a CRF
   trained on US addresses) for street, unit and city. usaddress raises on some inputs; that
   is caught and the street is then the text before the state.
5. The ZIP is looked up in the `zipcodes` package (offline data). A city that is missing, or
   fuzzily the ZIP's city ("cambrige"), is set from the ZIP; a different city, or a state that
   does not match the ZIP, is a MISMATCH: the value keeps what the caller said, and
   ``alternatives`` holds the ZIP's version for the agent to offer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, cast

import usaddress
import yaml
import zipcodes
from rapidfuzz import fuzz

from agent.nlu.numbers import digit_runs, find_atoms
from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.spelling import spelled_runs
from agent.nlu.text import PhraseIndex, content, title_name, tokens

CITY_MATCH = 80

# zipcodes ships type stubs without annotating `matching`; this is its documented shape.
_zip_rows = cast(Callable[[str], list[dict[str, Any]]], zipcodes.matching)

_LEAD_IN = frozenset(
    {"my", "address", "is", "it's", "its", "i", "live", "at", "we", "the", "home", "i'm"}
    | {"street", "mailing", "so", "okay", "yeah", "yes", "sure", "it"}
)
_ZIP_WORDS = frozenset({"zip", "code", "zipcode", "postal", "and", "the", "is", "my"})


@dataclass(frozen=True, slots=True)
class ZipInfo:
    """What the ZIP database says about a ZIP code."""

    zip_code: str
    city: str
    state: str
    acceptable_cities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; ``city_from_zip`` when the city was filled in from the ZIP."""

    street: str | None
    unit: str | None
    city: str | None
    state: str | None
    zip_code: str | None
    city_from_zip: bool = False


@cache
def state_names() -> Mapping[str, str]:
    """Spoken state name -> USPS code (from ``agent/data/us_states.yaml``)."""
    text = resources.files("agent.data").joinpath("us_states.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {str(n): str(code) for code, names in data["states"].items() for n in names}


@cache
def _state_index() -> PhraseIndex[str]:
    return PhraseIndex(state_names().items())


def _codes() -> frozenset[str]:
    return frozenset(state_names().values())


def lookup_zip(zip_code: str) -> ZipInfo | None:
    """Look a 5-digit ZIP up in the offline database."""
    if len(zip_code) != 5 or not zip_code.isascii() or not zip_code.isdigit():
        return None
    try:
        rows = _zip_rows(zip_code)
    except (ValueError, TypeError):
        return None
    if not rows:
        return None
    row = rows[0]
    accepted = tuple(str(c) for c in row.get("acceptable_cities") or ())
    return ZipInfo(zip_code, str(row["city"]), str(row["state"]), accepted)


def extract_zip(text: str) -> Extraction[ZipInfo]:
    """A ZIP code alone ("zip code oh two one three nine")."""
    digits = "".join(r.digits for r in digit_runs(tokens(text)))
    if not digits:
        return failed(Failure.NOT_FOUND)
    if len(digits) not in (5, 9):
        return failed(Failure.INVALID_FORMAT, detail=f"{len(digits)} digits")
    info = lookup_zip(digits[:5])
    if info is None:
        return failed(Failure.INVALID_FORMAT, detail="unknown zip")
    return found(info, 0.95, confirm=True)


def _state_at(toks: Sequence[str], bare_ok: bool) -> tuple[int, int, str] | None:
    """The last state mention in ``toks``: (start, end, USPS code)."""
    best: tuple[int, int, str] | None = None
    for m in _state_index().scan(toks):
        best = (m.start, m.end, m.label)
    for run in spelled_runs(toks):
        if len(run.letters) == 2 and run.letters.upper() in _codes():
            if best is None or run.start > best[0]:
                best = (run.start, run.end, run.letters.upper())
    if bare_ok and toks and toks[-1].upper() in _codes() and len(toks[-1]) == 2:
        if best is None or best[1] < len(toks):
            best = (len(toks) - 1, len(toks), toks[-1].upper())
    return best


def extract_state(text: str) -> Extraction[str]:
    """A state as its USPS code ("massachusetts" / "m a" / "ma" -> "MA")."""
    toks = content(tokens(text))
    hit = _state_at(toks, bare_ok=len(toks) <= 3)
    if hit is None:
        return failed(Failure.NOT_FOUND)
    return found(hit[2], 0.95)


def _suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def _numerals(toks: Sequence[str]) -> list[str]:
    """Rewrite number words as digits (cardinals) and "23rd" (ordinals)."""
    out: list[str] = []
    runs = {r.start: r for r in digit_runs(toks, skip=frozenset())}
    ordinals = {a.start: a for a in find_atoms(toks) if a.ordinal}
    i = 0
    while i < len(toks):
        if i in runs:
            out.append(runs[i].digits)
            i = runs[i].end
        elif i in ordinals:
            out.append(_suffix(ordinals[i].value))
            i = ordinals[i].end
        else:
            out.append(toks[i])
            i += 1
    return out


def _split_zip(words: list[str]) -> tuple[list[str], str | None]:
    for k in range(len(words) - 1, -1, -1):
        word = words[k]
        if not word.isdigit():
            if word in _ZIP_WORDS or word in ("thank", "you", "thanks"):
                continue
            return words, None
        rest = words[:k]
        while rest and rest[-1] in ("zip", "code", "zipcode", "postal"):
            rest.pop()
        if len(word) in (5, 9):
            return rest, word[:5]
        if 5 < len(word) < 9:
            return [*rest, word[:-5]], word[-5:]
        return words, None
    return words, None


def _fmt(word: str) -> str:
    return title_name(word) if word[:1].isalpha() else word.lower()


def _unit(tag: Mapping[str, str]) -> str | None:
    kind = tag.get("OccupancyType") or tag.get("SubaddressType")
    ident = tag.get("OccupancyIdentifier") or tag.get("SubaddressIdentifier")
    if not ident:
        return None
    label = {"apartment": "Apt", "apt": "Apt", "number": "#", "suite": "Suite", "unit": "Unit"}
    return (
        f"{label.get((kind or '').lower(), _fmt(kind or 'Unit'))} {ident.replace(' ', '').upper()}"
    )


_STREET_KEYS = (
    "AddressNumber",
    "AddressNumberSuffix",
    "StreetNamePreDirectional",
    "StreetNamePreModifier",
    "StreetNamePreType",
    "StreetName",
    "StreetNamePostType",
    "StreetNamePostDirectional",
)


def extract_address(text: str) -> Extraction[Address]:
    """Read a whole spoken address and check its parts against the ZIP database."""
    toks = list(content(tokens(text)))
    while toks and toks[0] in _LEAD_IN and not (toks[0] == "street" and len(toks) < 3):
        toks.pop(0)
    words, zip_code = _split_zip(_numerals(toks))
    hit = _state_at(words, bare_ok=True)
    state = None
    if hit is not None and (hit[1] == len(words) or zip_code is None and hit[1] >= len(words) - 1):
        state = hit[2]
        words = words[: hit[0]]
    if not words and zip_code is None:
        return failed(Failure.NOT_FOUND)
    tail = " ".join(p for p in (state, zip_code) if p)
    body = " ".join(words)
    # usaddress's CRF is sensitive to the comma before the state: parse both ways, keep the
    # reading that looks most like an address.
    tag = max((_tag(f"{body}, {tail}"), _tag(f"{body} {tail}")), key=_plausibility)
    street = " ".join(_fmt(tag[k]) for k in _STREET_KEYS if tag.get(k)) or None
    city_said = tag.get("PlaceName")
    address = Address(
        street=street,
        unit=_unit(tag),
        city=title_name(city_said) if city_said else None,
        state=state,
        zip_code=zip_code,
    )
    return _check(address)


_STREET_WORDS = frozenset(
    {"st", "street", "ave", "avenue", "rd", "road", "dr", "drive", "ln", "lane", "blvd", "way"}
    | {"apartment", "apt", "unit", "suite", "number", "court", "ct", "place", "pl"}
)


def _plausibility(tag: Mapping[str, str]) -> int:
    score = 2 * ("AddressNumber" in tag) + ("StreetName" in tag) + ("StreetNamePostType" in tag)
    place = tag.get("PlaceName", "")
    words = place.split()
    if place and not any(w.isdigit() or w in _STREET_WORDS for w in words):
        score += 1
    elif place:
        score -= 2
    state = tag.get("StateName", "")
    if state and not state.isalpha():
        score -= 3
    return score


def _tag(line: str) -> dict[str, str]:
    try:
        tagged, _ = usaddress.tag(line)
        return {str(k): str(v) for k, v in tagged.items()}
    except usaddress.RepeatedLabelError as err:
        out: dict[str, str] = {}
        for value, label in err.parsed_string:
            out.setdefault(str(label), str(value))
        return out
    except Exception:  # usaddress's CRF raises assorted errors on odd input; never propagate
        return {}


def _check(address: Address) -> Extraction[Address]:
    missing = address.street is None
    if address.zip_code is None:
        return found(address, 0.6, failure=Failure.INCOMPLETE)
    info = lookup_zip(address.zip_code)
    if info is None:
        return found(address, 0.5, failure=Failure.INVALID_FORMAT, detail="unknown zip")
    from_zip = replace(address, city=info.city, state=info.state, city_from_zip=True)
    names = (info.city, *info.acceptable_cities)
    city = address.city
    if city is None or max(fuzz.ratio(city.lower(), n.lower()) for n in names) >= CITY_MATCH:
        fixed = city is not None and city.lower() in (n.lower() for n in names)
        best = replace(
            address,
            city=city if fixed else info.city,
            state=address.state or info.state,
            city_from_zip=not fixed,
        )
        if address.state not in (None, info.state):
            return found(
                best, 0.5, failure=Failure.MISMATCH, alternatives=(from_zip,), detail="state"
            )
        failure = Failure.INCOMPLETE if missing else None
        return found(best, 0.9 if fixed else 0.8, confirm=not fixed, failure=failure)
    detail = "city" if address.state in (None, info.state) else "city,state"
    return found(address, 0.5, failure=Failure.MISMATCH, alternatives=(from_zip,), detail=detail)
