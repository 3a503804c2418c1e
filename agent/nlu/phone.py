"""Phone numbers from speech, checked with `phonenumbers` (US default region).

Theory of operation
-------------------
Callers say phone numbers in groups ("six one seven, five five five, oh one two three"), in
pairs ("five fifty five"), with "double"/"triple", or as "eight hundred ..." for toll-free
numbers; DTMF gives a digit string. `numbers.digit_runs` turns every number in the utterance
into digits and the runs are joined, so words in between ("area code", "and then") do not
matter. Ten digits, or eleven starting with the country code 1, are parsed and validated by
`phonenumbers` for region US; seven digits is INCOMPLETE (no area code).

"Use the number I'm calling from" (and "this number", "same number", "the one I'm calling
on") is recognised by `wants_caller_id`; `extract_phone` then answers with the caller ID the
agent passes in, marked ``source=CALLER_ID`` and to be read back, or UNAVAILABLE if the call
had no usable caller ID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import phonenumbers

from agent.nlu.numbers import digit_runs
from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import content, tokens

DEFAULT_REGION = "US"


class PhoneSource(Enum):
    """Where a phone number came from."""

    SPOKEN = "spoken"
    CALLER_ID = "caller_id"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A validated phone number."""

    e164: str  # "+16175550123"
    national: str  # "(617) 555-0123"
    source: PhoneSource = PhoneSource.SPOKEN

    @property
    def digits(self) -> str:
        """The ten national digits ("6175550123")."""
        return self.e164[-10:]


_CALLER_ID = re.compile(
    r"\b(?:(?:the |this |same |my )?(?:number|phone|one|line) (?:i'm|i am|that i'm|i'm)"
    r" (?:calling|calling you|phoning) (?:from|on|with)"
    r"|(?:use|it's|its|just use|same as) (?:this|the same|my current|the current)"
    r" (?:number|phone|one)"
    r"|(?:the |this )?(?:same|current) number|this number|this phone"
    r"|(?:the )?caller id|the one i'm calling (?:from|on)|number you have"
    r"|the number (?:that )?(?:shows|showed|came) up)\b"
)


def wants_caller_id(text: str) -> bool:
    """True when the caller asks to use the number they are calling from."""
    joined = " ".join(content(tokens(text)))
    return _CALLER_ID.search(joined) is not None


def parse_phone(raw: str, source: PhoneSource = PhoneSource.SPOKEN) -> PhoneNumber | None:
    """Validate digits or a formatted number (SIP caller IDs included) as a US number."""
    user = raw.split("@", 1)[0] if "@" in raw else raw  # "sip:+16175550123@host"
    user = user.split(";", 1)[0]  # "tel:+1617...;phone-context=..."
    digits = "".join(ch for ch in user if ch.isascii() and ch.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return None
    try:
        parsed = phonenumbers.parse(digits, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return PhoneNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        national=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        source=source,
    )


def extract_phone(text: str, caller_id: str | None = None) -> Extraction[PhoneNumber]:
    """Read a US phone number from speech or DTMF.

    Args:
        text: "it's six one seven five five five oh one two three" and the like.
        caller_id: The calling number (any format), used when the caller asks for it.

    Returns:
        The number; INCOMPLETE for 7 digits, INVALID_FORMAT for other lengths or numbers
        `phonenumbers` rejects, UNAVAILABLE when the caller asked for a caller ID we lack.
    """
    runs = digit_runs(tokens(text))
    digits = "".join(r.digits for r in runs)
    if len(digits) < 7 and wants_caller_id(text):  # "the one i'm calling from" has a "one"
        number = parse_phone(caller_id, PhoneSource.CALLER_ID) if caller_id else None
        if number is None:
            return failed(Failure.UNAVAILABLE, detail="caller_id")
        return found(number, 0.9, confirm=True, detail="caller_id")
    if not digits:
        return failed(Failure.NOT_FOUND)
    if len(digits) == 7:
        return failed(Failure.INCOMPLETE, detail="no area code")
    number = parse_phone(digits)
    if number is None:
        return failed(Failure.INVALID_FORMAT, detail=f"{len(digits)} digits")
    return found(number, 0.95 if len(runs) <= 3 else 0.9, confirm=True)
