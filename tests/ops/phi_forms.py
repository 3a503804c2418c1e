"""A persona's PHI in every form a log line might hold it, and a search for those forms.

Used by the eight-persona call test (tests/agent/test_personas_audio.py), whose server logs
at debug level (issue 6 acceptance): digits with and without separators, dates written in
several ways, names and address words in any case or spelled letter by letter.
"""

from __future__ import annotations

import re
from datetime import date

from agent.persona import Persona

# Identifiers (every line) and symptoms (what the caller said: the agent's own prompts name
# "a cough and a fever" as an example, which is not the caller's PHI).
IDENTIFIERS = (
    "insurance.member_id",
    "demographics.first_name",
    "demographics.last_name",
    "demographics.date_of_birth",
    "demographics.phone",
    "address.street",
    "address.zip_code",
    "address.city",
    "emergency_contact.name",
    "emergency_contact.phone",
)


def digit_forms(digits: str) -> set[str]:
    """A number as a log line might hold it."""
    forms = {digits, " ".join(digits), ", ".join(digits), "-".join(digits)}
    national = digits[-10:]
    if len(national) == 10:
        a, b, c = national[:3], national[3:6], national[6:]
        forms |= {national, f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}"}
    return forms


def word_forms(text: str) -> set[str]:
    """A name or an address as words: whole, each word, spelled out, lower case."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text) if len(w) >= 3]
    forms = {text.lower(), *words}
    for word in words:
        forms |= {" ".join(word), ", ".join(word), "-".join(word)}
    return forms


def date_forms(value: date) -> set[str]:
    """A date of birth written the usual ways (lower case)."""
    month = f"{value:%B}".lower()
    return {
        value.isoformat(),
        f"{value:%m/%d/%Y}",
        f"{value.month}/{value.day}/{value.year}",
        f"{value:%m%d%Y}",
        f"{value:%m-%d-%Y}",
        f"{month} {value.day}, {value.year}",
        f"{month} {value.day} {value.year}",
    }


def phi_forms(persona: Persona, fields: tuple[str, ...]) -> set[str]:
    """Every form of the persona's expected values for ``fields``."""
    forms: set[str] = set()
    for field in fields:
        value = persona.expect[field]
        if field.endswith("date_of_birth"):
            forms |= date_forms(date.fromisoformat(str(value)))
            continue
        text = str(value)
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) >= 4:
            forms |= digit_forms(digits)
        if any(c.isalpha() for c in text):
            forms |= word_forms(text)
    assert persona.caller_id
    return forms | digit_forms(persona.caller_id)


def found(forms: set[str], text: str) -> list[str]:
    """The forms present in ``text`` as whole words (lower case)."""
    lowered = text.lower()
    return sorted(
        f for f in forms if re.search(rf"(?<![a-z0-9]){re.escape(f)}(?![a-z0-9])", lowered)
    )
