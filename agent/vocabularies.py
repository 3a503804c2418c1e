"""What the recogniser is told to listen for, per question: phrase lists from the data files.

An embedded recogniser hears only what its grammar allows (`agent.providers.grammars`), so
each open-ended question is given the words its answers are made of: symptom phrases for the
chief complaint, street names for the address, pharmacy chains and streets for the pharmacy,
relationship words for the emergency contact. A cloud recogniser takes the same lists as
keyword boosts. The extractors (`agent.nlu.*`) read the same data files, so what the grammar
can return is what the extractor understands.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from agent.nlu.complaint import default_vocabulary
from agent.nlu.emergency_contact import RELATIONSHIPS
from agent.nlu.pharmacy import chains
from agent.nlu.redflags import default_rules

__all__ = ["pharmacy_phrases", "relationship_phrases", "street_names", "symptom_phrases"]


@cache
def symptom_phrases() -> tuple[str, ...]:
    """Every symptom and red-flag phrase, plus "<body part> pain" for each body part."""
    vocab = default_vocabulary()
    phrases = [phrase for phrase, _ in vocab.phrases]
    phrases += [f"{part} pain" for part, _ in vocab.body_parts]
    # Red flags are screened on every answer: the grammar must be able to hear them.
    phrases += [
        phrase
        for _, rules in default_rules().rules
        for rule in rules
        for group in rule
        for phrase in group
    ]
    return tuple(dict.fromkeys(phrases))


@cache
def street_names() -> tuple[str, ...]:
    """Street names from ``agent/data/streets.yaml``."""
    text = resources.files("agent.data").joinpath("streets.yaml").read_text(encoding="utf-8")
    return tuple(dict.fromkeys(str(name) for name in yaml.safe_load(text)["names"]))


@cache
def pharmacy_phrases() -> tuple[str, ...]:
    """Every alias of every pharmacy chain."""
    return tuple(dict.fromkeys(alias for aliases in chains().values() for alias in aliases))


#: The relationship words a grammar listens for: the common ones only, because each word more
#: is one more the recogniser can mistake the answer for (with all 75 the extractor knows,
#: "my son" came back "my guardian").
COMMON_RELATIONSHIPS = (
    "wife", "husband", "partner", "mother", "father", "mom", "dad", "son", "daughter",
    "brother", "sister", "friend", "neighbor", "grandmother", "grandfather", "aunt", "uncle",
    "cousin", "boyfriend", "girlfriend", "caregiver", "roommate",
)  # fmt: skip


@cache
def relationship_phrases() -> tuple[str, ...]:
    """Common relationship words (each one the emergency-contact extractor knows)."""
    return tuple(w for w in COMMON_RELATIONSHIPS if w in RELATIONSHIPS)
