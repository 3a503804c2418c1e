"""The emergency contact: who, how they are related, and their phone.

Theory of operation
-------------------
One answer often carries all three ("my wife jane doe five five five ..." or "jane doe, she's
my sister, her number is ..."). The relationship word is looked up in `RELATIONSHIPS`
(leftmost-longest, so "mother in law" beats "mother"); the phone is `phone.extract_phone` on
the whole utterance; the name is `demographics.extract_name` on the words left once the
relationship, the phone digits and the glue ("her number is", "she's my") are removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from agent.nlu.demographics import NamePart, PersonName, extract_name
from agent.nlu.numbers import NUMBER_WORDS
from agent.nlu.phone import PhoneNumber, extract_phone
from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import PhraseIndex, content, tokens


class Relationship(Enum):
    """How the contact is related to the patient."""

    SPOUSE = "spouse"
    PARTNER = "partner"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    GRANDPARENT = "grandparent"
    GRANDCHILD = "grandchild"
    RELATIVE = "relative"
    GUARDIAN = "guardian"
    CAREGIVER = "caregiver"
    FRIEND = "friend"
    NEIGHBOR = "neighbor"
    OTHER = "other"


RELATIONSHIPS: Mapping[str, Relationship] = {
    **dict.fromkeys(("spouse", "wife", "husband"), Relationship.SPOUSE),
    **dict.fromkeys(
        ("partner", "boyfriend", "girlfriend", "fiance", "fiancee", "significant other"),
        Relationship.PARTNER,
    ),
    **dict.fromkeys(
        ("mother", "father", "mom", "dad", "mum", "parent", "mommy", "daddy", "stepmother")
        + ("stepfather", "stepmom", "stepdad", "ma", "pa"),
        Relationship.PARENT,
    ),
    **dict.fromkeys(
        ("son", "daughter", "child", "kid", "stepson", "stepdaughter"), Relationship.CHILD
    ),
    **dict.fromkeys(
        ("brother", "sister", "sibling", "twin", "half brother", "half sister")
        + ("stepbrother", "stepsister"),
        Relationship.SIBLING,
    ),
    **dict.fromkeys(
        ("grandmother", "grandfather", "grandma", "grandpa", "grandparent", "granny", "nana"),
        Relationship.GRANDPARENT,
    ),
    **dict.fromkeys(
        ("grandson", "granddaughter", "grandchild", "grandkid"), Relationship.GRANDCHILD
    ),
    **dict.fromkeys(
        ("aunt", "uncle", "cousin", "niece", "nephew", "relative", "mother in law")
        + ("father in law", "sister in law", "brother in law", "son in law", "daughter in law"),
        Relationship.RELATIVE,
    ),
    **dict.fromkeys(("guardian", "legal guardian", "foster parent"), Relationship.GUARDIAN),
    **dict.fromkeys(
        ("caregiver", "care giver", "caretaker", "home health aide", "aide", "nurse"),
        Relationship.CAREGIVER,
    ),
    **dict.fromkeys(("friend", "best friend", "roommate", "coworker"), Relationship.FRIEND),
    **dict.fromkeys(("neighbor", "neighbour"), Relationship.NEIGHBOR),
}

_INDEX: PhraseIndex[Relationship] = PhraseIndex(RELATIONSHIPS.items())
_GLUE = frozenset(
    {"my", "his", "her", "their", "she's", "he's", "she", "he", "they", "is", "number", "phone"}
    | {"cell", "at", "can", "be", "reached", "reach", "call", "it's", "and", "the", "name"}
    | {"contact", "emergency", "would", "be", "that's", "who", "whose", "you", "'s", "they're"}
    | NUMBER_WORDS
)


@dataclass(frozen=True, slots=True)
class EmergencyContact:
    """An emergency contact; any part may be missing from one utterance."""

    name: PersonName | None
    relationship: Relationship | None
    relationship_word: str | None  # as said: "wife", "mother in law"
    phone: PhoneNumber | None


def extract_relationship(text: str) -> Extraction[Relationship]:
    """The relationship word in an utterance ("she's my sister" -> SIBLING)."""
    hits = _INDEX.scan(content(tokens(text)))
    if not hits:
        return failed(Failure.NOT_FOUND)
    return found(hits[0].label, 0.95)


def extract_emergency_contact(text: str) -> Extraction[EmergencyContact]:
    """Read as much of an emergency contact as one utterance gives.

    Returns:
        The contact; INCOMPLETE when the name, relationship or phone is missing (the agent
        asks for the rest), NOT_FOUND when none of them is there.
    """
    toks = list(content(tokens(text)))
    hits = _INDEX.scan(toks)
    relation = hits[0].label if hits else None
    word = " ".join(toks[hits[0].start : hits[0].end]) if hits else None
    phone = extract_phone(text).value
    covered = {i for m in hits for i in range(m.start, m.end)}
    rest = [
        t for i, t in enumerate(toks) if i not in covered and t not in _GLUE and not t.isdigit()
    ]
    name = extract_name(" ".join(rest), NamePart.FULL).value if rest else None
    if name is None and relation is None and phone is None:
        return failed(Failure.NOT_FOUND)
    contact = EmergencyContact(name, relation, word, phone)
    complete = name is not None and relation is not None and phone is not None
    return found(
        contact, 0.85 if complete else 0.6, failure=None if complete else Failure.INCOMPLETE
    )
