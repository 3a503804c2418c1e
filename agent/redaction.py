"""PHI redaction for log lines: patterns for identifiers, plus the values each call collected.

Theory of operation
-------------------
A log line may carry text that came from a caller: what the recogniser heard, a prompt that
reads a value back ("I have March 3, 1984"), an exception message built from input. Before a
line is written, `Redactor.redact` rewrites every string in it in two passes:

1. *Patterns* for PHI no conversation has collected yet: e-mail addresses, SSNs, dates (ISO,
   numeric, month names with day numbers or ordinals), phone numbers, street addresses
   (digits or number words, up to three words, a street suffix), a city with its state
   abbreviation ("Cambridge, MA"), alphanumeric identifiers
   with five digits or more, and any run of five digits or more, written or spoken.
2. *This call's values.* `CallValues` keeps, per Call-ID, every value the conversation has
   collected or is confirming (names, member ID, address, phone, symptoms...). Each value is
   matched case-insensitively as a whole, word by word (a name's parts, an address's words of
   three letters or more that are not common words), and, when it holds four digits or more,
   as its digits with any separators between them ("617-555-0142", "6 1 7 5 5 5 0 1 4 2",
   "4, 4, 1, 2"), and a word value spelled letter by letter ("A N N A"). A line bound to no
   call is checked against every call in progress.

Levels (the seed design's "full" and "partial"; its "minimal" level is not offered, since it
left identifiers in the logs):

* ``full`` replaces each match with its kind: ``[PHONE]``, ``[DATE]``, ``[VALUE]``...
* ``partial`` keeps a hint for whoever debugs a call: the last two digits of a number
  (``[PHONE ..42]``) or the first letter of a word value (``[VALUE A.]``). The seed's example
  kept a phone number's last four digits; two are kept here because four, with the call's
  time and the clinic's area code, come close to the whole number.

Everything is pure: no clock, no I/O. The structlog processor lives in `agent.logs`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from enum import StrEnum
from typing import Final


class RedactionLevel(StrEnum):
    """How much of a redacted value a log line keeps."""

    FULL = "full"
    PARTIAL = "partial"


_DIGIT_WORDS: Final = "zero|oh|one|two|three|four|five|six|seven|eight|nine"
_MONTHS: Final = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_ORDINALS: Final = (
    r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth"
    r"|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth"
    r"|twentieth|thirtieth|twenty[\s-]?\w+|thirty[\s-]?first"
)
_STREET_SUFFIXES: Final = (
    r"street|st|road|rd|avenue|ave|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl"
    r"|terrace|circle|parkway|pkwy|highway|hwy|square|sq"
)
_STATES: Final = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV"
    "|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR"
)
_SEP: Final = r"[\s,.()/+-]{0,3}"  # between the digits of a number someone wrote or read out
_RUN_SEP: Final = r"[\s,()/+-]{0,3}"  # the same without dots, so that IPv4 addresses stay

# (kind, pattern), applied in this order: the specific kinds before the generic number.
_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    (
        "DATE",
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
            r"|\b\d{1,2}[/-]\d{1,2}[/-](?:\d{4}|\d{2})\b"
            rf"|\b(?:{_MONTHS})\.?\s+(?:\d{{1,2}}(?:st|nd|rd|th)?\b|(?:{_ORDINALS})\b)"
            r"(?:,?\s+\d{4}\b)?"
            rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b(?:,?\s+\d{{4}}\b)?",
            re.IGNORECASE,
        ),
    ),
    (
        "PHONE",
        re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}\b"),
    ),
    (
        "ADDRESS",
        re.compile(
            rf"\b(?:\d{{1,6}}|(?:{_DIGIT_WORDS}|ten|eleven|twelve|\w+teen|\w+ty|hundred)"
            rf"(?:[\s-]+(?:{_DIGIT_WORDS}|\w+ty|hundred))*)"
            rf"\s+(?:[a-z]+\s+){{1,3}}(?:{_STREET_SUFFIXES})\b\.?",
            re.IGNORECASE,
        ),
    ),
    (
        "ADDRESS",  # "Cambridge, MA": a city read back with its state
        re.compile(rf"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+){{0,2}},? (?:{_STATES})\b"),
    ),
    ("ID", re.compile(r"\b[A-Za-z]{1,4}\d{5,}[A-Za-z0-9]*\b")),
    ("NUMBER", re.compile(rf"(?<![\w.])\d(?:{_RUN_SEP}\d){{4,}}(?![\w])")),
    (
        "NUMBER",
        re.compile(rf"\b(?:{_DIGIT_WORDS})(?:[\s,-]+(?:{_DIGIT_WORDS})){{3,}}\b", re.IGNORECASE),
    ),
)

# Words too common to redact everywhere in a call's lines when they are part of a value
# (a street name's "road" is redacted, "the" and "and" are not).
_COMMON: Final = frozenset(
    "the and for with not but you your yes are was has have had his her him she they them "
    "that this from into about over under near off one two six ten".split()
)


def _hint(kind: str, text: str, level: RedactionLevel) -> str:
    if level is RedactionLevel.FULL:
        return f"[{kind}]"
    digits = [c for c in text if c.isdigit()]
    if len(digits) >= 4:
        return f"[{kind} ..{''.join(digits[-2:])}]"
    letters = [c for c in text if c.isalpha()]
    if letters and kind == "VALUE":
        return f"[{kind} {letters[0].upper()}.]"
    return f"[{kind}]"


def _replacer(kind: str, level: RedactionLevel) -> Callable[[re.Match[str]], str]:
    return lambda match: _hint(kind, match.group(0), level)


def value_forms(value: str) -> set[str]:
    """The regex alternatives that find ``value`` in a log line (see the module docstring)."""
    forms: set[str] = set()
    text = value.strip()
    if len(text) < 2:
        return forms
    forms.add(re.escape(text))
    for word in re.findall(r"[A-Za-z][A-Za-z']+", text):
        if len(word) >= 3 and word.lower() not in _COMMON:
            forms.add(re.escape(word))
            if word.isalpha():  # spelled out: "A N N A", "s-m-i-t-h"
                forms.add(r"[\s,.-]{1,3}".join(word))
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) >= 4:
        forms.add(_SEP.join(digits))
        if len(digits) == 11 and digits.startswith("1"):  # +1 NANP: also the ten digits
            forms.add(_SEP.join(digits[1:]))
    return forms


def date_values(value: date) -> list[str]:
    """A date as the strings a log line may hold it in (ISO, US numeric, digits only)."""
    return [
        value.isoformat(),
        f"{value:%m/%d/%Y}",
        f"{value:%m%d%Y}",
        f"{value:%m%d%y}",
    ]


class CallValues:
    """Per Call-ID, the values a conversation collected: what its log lines must not show."""

    def __init__(self) -> None:
        self._forms: dict[str, set[str]] = {}
        self._compiled: dict[str, re.Pattern[str] | None] = {}

    def add(self, call_id: str, values: Iterable[str]) -> None:
        """Remember ``values`` (strings as the caller gave them or as normalised) for a call."""
        forms = self._forms.setdefault(call_id, set())
        before = len(forms)
        for value in values:
            forms |= value_forms(value)
        if len(forms) != before:
            self._compiled.pop(call_id, None)
            self._compiled.pop("*", None)

    def forget(self, call_id: str) -> None:
        """Drop a call's values once its last line has been written."""
        self._forms.pop(call_id, None)
        self._compiled.pop(call_id, None)
        self._compiled.pop("*", None)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._forms

    def __len__(self) -> int:
        return len(self._forms)

    def pattern(self, call_id: str | None) -> re.Pattern[str] | None:
        """One regex for the values of ``call_id`` (of every call when None), or None."""
        key = call_id if call_id is not None and call_id in self._forms else "*"
        if key in self._compiled:
            return self._compiled[key]
        if key == "*":
            forms = set().union(*self._forms.values()) if self._forms else set()
        else:
            forms = self._forms[key]
        compiled = None
        if forms:
            # Longest first, so that a whole value wins over one of its words.
            alternatives = "|".join(sorted(forms, key=len, reverse=True))
            compiled = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.I)
        self._compiled[key] = compiled
        return compiled


class Redactor:
    """Rewrites strings (and the strings inside containers) without PHI."""

    def __init__(self, level: RedactionLevel, values: CallValues) -> None:
        self.level = level
        self.values = values

    def redact_text(self, text: str, call_id: str | None = None) -> str:
        """``text`` with every PHI pattern, then this call's values, replaced."""
        level = self.level
        for kind, pattern in _PATTERNS:
            text = pattern.sub(_replacer(kind, level), text)
        values = self.values.pattern(call_id)
        if values is not None:
            text = values.sub(_replacer("VALUE", level), text)
        return text

    def redact(self, value: object, call_id: str | None = None) -> object:
        """Strings redacted, containers walked; numbers, booleans and None kept."""
        if isinstance(value, str):
            return self.redact_text(value, call_id)
        if isinstance(value, Mapping):
            return {k: self.redact(v, call_id) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact(v, call_id) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.redact_text(str(value), call_id)


# Record fields that are ours (identifiers, states, counts), not the caller's.
_NOT_CALLER_INPUT: Final = frozenset(
    {
        "call_id",
        "started_at",
        "ended_at",
        "status",
        "phase_reached",
        "transcript",
        "audio_clips",
        "appointment",
        "severity",
        "duration_days",
        "category",
        "self_pay",
        "relationship",
    }
)


def values_of(value: object) -> list[str]:
    """The strings to keep out of a call's log lines, from anything the conversation holds.

    Walks strings, dates, numbers, mappings, sequences, dataclasses (an extraction's
    value, such as a `PersonName`) and pydantic models (as dumped), skipping the record
    fields in ``_NOT_CALLER_INPUT``.
    """
    out: list[str] = []
    _walk(value, out)
    return out


def _walk(value: object, out: list[str]) -> None:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, date):
        out.extend(date_values(value))
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) >= 1000:
            out.append(str(value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in _NOT_CALLER_INPUT:
                _walk(item, out)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _walk(item, out)
