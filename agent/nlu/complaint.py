"""The chief complaint: symptoms, how long, how bad, what kind, and red flags.

Theory of operation
-------------------
Symptoms come from a `SymptomVocabulary` (default ``agent/data/symptoms.yaml``), matched as
whole phrases leftmost-longest after a plural fold, plus the body-part patterns "<part> pain",
"pain in my <part>", "my <part> hurts" and "<part> ache". A denied phrase ("no fever") is
dropped. The complaint's `Category` follows triage order: a cardiac, neurological or
respiratory symptom anywhere wins, otherwise the first symptom's category.

Duration is "<number> <unit>" ("three days", "a couple of weeks", "two and a half days",
"a day and a half"; units minute to year), or an anchor: "today"/"this morning" (0 days),
"since yesterday"/"last night" (1), "the day before yesterday" (2), "last week" (7), "last
month" (30), "since monday" (needs ``today``). The value is in days, as the record keeps it.

Severity is "<n> out of ten", "a <n>", "about <n>", a bare number as the whole answer, or a
word (mild 3, moderate 5, severe 8, unbearable 10). "Eleven out of ten" is clamped to 10 and
read back. Red flags are `redflags.detect_red_flag`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

import yaml

from agent.nlu.numbers import find_atoms
from agent.nlu.redflags import EmergencyAction, RedFlag, detect_red_flag, red_flags
from agent.nlu.result import Extraction, Failure, VocabularyError, failed, found
from agent.nlu.text import FILLERS, PhraseIndex, content, fold_plurals, negated, tokens

__all__ = [
    "Category",
    "ChiefComplaint",
    "EmergencyAction",
    "RedFlag",
    "Severity",
    "SeverityLevel",
    "Symptom",
    "SymptomVocabulary",
    "detect_red_flag",
    "extract_complaint",
    "extract_duration",
    "extract_severity",
    "extract_symptoms",
]


class Category(Enum):
    """What kind of problem the complaint is (for routing and scheduling)."""

    RESPIRATORY = "respiratory"
    CARDIAC = "cardiac"
    GASTROINTESTINAL = "gastrointestinal"
    MUSCULOSKELETAL = "musculoskeletal"
    NEUROLOGICAL = "neurological"
    DERMATOLOGICAL = "dermatological"
    MENTAL_HEALTH = "mental health"
    GENERAL = "general"


_TRIAGE_FIRST = (Category.CARDIAC, Category.NEUROLOGICAL, Category.RESPIRATORY)


@dataclass(frozen=True, slots=True)
class Symptom:
    """One symptom, by its canonical name."""

    name: str
    category: Category


@dataclass(frozen=True, slots=True)
class SymptomVocabulary:
    """Phrases for each symptom, and the categories of body parts."""

    phrases: tuple[tuple[str, Symptom], ...]
    body_parts: tuple[tuple[str, Category], ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SymptomVocabulary:
        """Build from parsed YAML (see ``agent/data/symptoms.yaml``).

        Raises:
            VocabularyError: Unknown category or malformed entries.
        """
        phrases: list[tuple[str, Symptom]] = []
        try:
            for cat_name, symptoms in dict(data.get("symptoms") or {}).items():
                category = Category(cat_name)
                for name, said in dict(symptoms).items():
                    symptom = Symptom(str(name), category)
                    phrases.extend((str(p), symptom) for p in said)
            body = dict(data.get("body_parts") or {})
            parts = tuple((str(k), Category(v)) for k, v in body.items())
        except (ValueError, TypeError) as err:
            raise VocabularyError(f"symptom vocabulary: {err}") from err
        return cls(tuple(phrases), parts)

    @classmethod
    def from_yaml(cls, text: str) -> SymptomVocabulary:
        """Build from YAML text."""
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise VocabularyError("symptom vocabulary must be a mapping")
        return cls.from_mapping(data)


@cache
def default_vocabulary() -> SymptomVocabulary:
    """The packaged vocabulary (read once; immutable)."""
    text = resources.files("agent.data").joinpath("symptoms.yaml").read_text(encoding="utf-8")
    return SymptomVocabulary.from_yaml(text)


@dataclass(frozen=True, slots=True)
class _Compiled:
    index: PhraseIndex[Symptom]
    parts: Mapping[str, Category]
    words: frozenset[str]


@cache
def _compile(vocab: SymptomVocabulary) -> _Compiled:
    parts = dict(vocab.body_parts)
    words = frozenset(w for p, _ in vocab.phrases for w in tokens(p)) | frozenset(parts)
    return _Compiled(PhraseIndex(vocab.phrases), parts, words)


_PAIN_WORDS = frozenset({"pain", "pains", "hurts", "hurting", "hurt", "ache", "aches", "aching"})
_PAIN_WORDS |= frozenset({"sore", "sprained", "swollen", "injured"})


def _body_part_pain(
    toks: Sequence[str], parts: Mapping[str, Category]
) -> list[tuple[int, Symptom]]:
    out: list[tuple[int, Symptom]] = []
    for i, tok in enumerate(toks):
        if tok not in parts:
            continue
        after = toks[i + 1 : i + 3]
        before = toks[max(0, i - 3) : i]
        is_pain = any(t in _PAIN_WORDS for t in after[:2]) or (
            "in" in before and any(t in _PAIN_WORDS for t in before)
        )
        if is_pain and not negated(toks, max(0, i - 1)):
            out.append((i, Symptom(f"{tok} pain", parts[tok])))
    return out


def extract_symptoms(
    text: str, vocab: SymptomVocabulary | None = None
) -> Extraction[tuple[Symptom, ...]]:
    """Every symptom the caller has (denied ones dropped), in the order said."""
    compiled = _compile(vocab or default_vocabulary())
    toks = fold_plurals(content(tokens(text)), compiled.words)
    hits = [(m.start, m.label) for m in compiled.index.scan(toks) if not negated(toks, m.start)]
    covered = {i for m in compiled.index.scan(toks) for i in range(m.start, m.end)}
    hits += [(i, s) for i, s in _body_part_pain(toks, compiled.parts) if i not in covered]
    hits.sort(key=lambda h: h[0])
    symptoms = tuple(dict.fromkeys(s for _, s in hits))
    if not symptoms:
        return failed(Failure.NOT_FOUND)
    return found(symptoms, 0.9)


def complaint_category(symptoms: Sequence[Symptom]) -> Category:
    """Triage order: cardiac, neurological, respiratory anywhere; else the first symptom's."""
    cats = [s.category for s in symptoms]
    for cat in _TRIAGE_FIRST:
        if cat in cats:
            return cat
    return cats[0] if cats else Category.GENERAL


_UNIT_DAYS: Mapping[str, float] = {
    "minute": 1 / 1440,
    "minutes": 1 / 1440,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "day": 1.0,
    "days": 1.0,
    "night": 1.0,
    "nights": 1.0,
    "week": 7.0,
    "weeks": 7.0,
    "month": 30.0,
    "months": 30.0,
    "year": 365.0,
    "years": 365.0,
}
_VAGUE: Mapping[str, float] = {"a": 1, "an": 1, "one": 1, "couple": 2, "few": 3, "several": 4}
_ANCHORS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("day", "before", "yesterday"), 2.0),
    (("yesterday",), 1.0),
    (("last", "night"), 1.0),
    (("this", "morning"), 0.0),
    (("this", "afternoon"), 0.0),
    (("this", "evening"), 0.0),
    (("today",), 0.0),
    (("tonight",), 0.0),
    (("last", "week"), 7.0),
    (("last", "weekend"), 7.0),
    (("last", "month"), 30.0),
    (("last", "year"), 365.0),
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _quantity_before(toks: Sequence[str], unit_i: int) -> tuple[float, bool] | None:
    """The amount in front of a unit word at ``unit_i``: (amount, approximate)."""
    j = unit_i - 1
    while j >= 0 and toks[j] in ("of", "full", "whole", "more", "long", "straight"):
        j -= 1
    if j < 0:
        return None
    half = 0.0
    if j >= 2 and toks[j - 2 : j + 1] == ("and", "a", "half"):
        half, j = 0.5, j - 3
    if j >= 0 and toks[j] == "half" and j >= 1 and toks[j - 1] == "a":
        return 0.5, False
    if j < 0:
        return None
    for atom in find_atoms(toks[: j + 1]):
        if atom.end == j + 1 and not atom.ordinal:
            low = None
            if atom.start >= 2 and toks[atom.start - 1] in ("or", "to"):
                prev = [a for a in find_atoms(toks[: atom.start - 1]) if a.end == atom.start - 1]
                low = prev[0].value if prev else None
            return atom.value + half, low is not None
    if toks[j] in _VAGUE:
        return _VAGUE[toks[j]] + half, toks[j] in ("couple", "few", "several")
    return None


def extract_duration(text: str, today: date | None = None) -> Extraction[float]:
    """How long the problem has lasted, in days ("two weeks" -> 14.0).

    Args:
        text: The caller's words.
        today: Needed only for weekday anchors ("since monday").
    """
    toks = tuple(t for t in tokens(text) if t not in FILLERS)
    for i, tok in enumerate(toks):
        if tok in _UNIT_DAYS and not (i > 0 and toks[i - 1] in ("this", "every", "per")):
            qty = _quantity_before(toks, i)
            trailing_half = toks[i + 1 : i + 4] == ("and", "a", "half")
            if qty is not None:
                days = (qty[0] + (0.5 if trailing_half else 0.0)) * _UNIT_DAYS[tok]
                return found(days, 0.8 if qty[1] else 0.9, confirm=qty[1])
            if tok.endswith("s") and tok in ("days", "weeks", "months", "years", "hours"):
                continue  # "for days": no number
    for phrase, days in _ANCHORS:
        for i in range(len(toks) - len(phrase) + 1):
            if toks[i : i + len(phrase)] == phrase:
                return found(days, 0.85)
    for i, tok in enumerate(toks):
        if tok in _WEEKDAYS and (i == 0 or toks[i - 1] in ("since", "on", "last", "started")):
            if today is None:
                return failed(Failure.INCOMPLETE, detail="weekday needs today")
            back = (today.weekday() - _WEEKDAYS.index(tok)) % 7 or 7
            return found(float(back), 0.85)
    return failed(Failure.NOT_FOUND)


class SeverityLevel(Enum):
    """Coarse severity."""

    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


@dataclass(frozen=True, slots=True)
class Severity:
    """Severity on the 0-10 scale, and its level."""

    score: int
    level: SeverityLevel

    @classmethod
    def of(cls, score: int) -> Severity:
        """Severity for a 0-10 score (0-3 mild, 4-6 moderate, 7-10 severe)."""
        level = (
            SeverityLevel.MILD
            if score <= 3
            else SeverityLevel.MODERATE
            if score <= 6
            else SeverityLevel.SEVERE
        )
        return cls(score, level)


_SEVERITY_WORDS = PhraseIndex(
    [(p, 2) for p in ("a little", "slight", "slightly", "barely", "minor", "a bit")]
    + [
        (p, 3)
        for p in ("mild", "not too bad", "not that bad", "not bad", "manageable", "tolerable")
    ]
    + [(p, 5) for p in ("moderate", "medium", "uncomfortable", "pretty bad", "bad", "so so")]
    + [(p, 7) for p in ("really bad", "very bad", "quite bad", "a lot", "really hurts", "intense")]
    + [(p, 8) for p in ("severe", "terrible", "awful", "horrible", "extreme", "killing me")]
    + [(p, 10) for p in ("unbearable", "excruciating", "worst pain", "agony", "can't stand it")]
    + [(p, 10) for p in ("worst ever", "the worst", "ten out of ten", "off the charts")]
)
_SCALE_TAIL = (("out", "of", "ten"), ("out", "of", "10"), ("over", "ten"), ("on", "a", "scale"))
_LEADS = frozenset({"a", "about", "around", "like", "maybe", "probably", "is", "it's", "at"})


def extract_severity(text: str) -> Extraction[Severity]:
    """How bad it is, 0-10 ("seven out of ten", "it's like a six", "mild", "severe")."""
    toks = tuple(t for t in tokens(text) if t not in FILLERS)
    atoms = [a for a in find_atoms(toks) if not a.ordinal]
    for atom in atoms:
        tail = toks[atom.end : atom.end + 3]
        scaled = any(tail[: len(s)] == s for s in _SCALE_TAIL)
        led = atom.start > 0 and toks[atom.start - 1] in _LEADS
        nxt = toks[atom.end : atom.end + 3]
        is_duration = bool(nxt) and (
            nxt[0] in _UNIT_DAYS or (nxt[0] in ("or", "to") and any(t in _UNIT_DAYS for t in nxt))
        )
        alone = len(atoms) == 1 and len(content(toks)) <= 3 and not is_duration
        if scaled or ((led or alone) and not is_duration):
            score = atom.value
            if score > 10:
                return found(Severity.of(10), 0.7, failure=Failure.OUT_OF_RANGE)
            return found(Severity.of(score), 0.95 if scaled else 0.85)
    words = [m for m in _SEVERITY_WORDS.scan(toks)]
    for m in reversed(words):
        if negated(toks, m.start) and m.label >= 7:
            return found(Severity.of(5), 0.6, confirm=True)
        if not negated(toks, m.start) or m.label <= 3:
            return found(Severity.of(m.label), 0.8, confirm=True)
    return failed(Failure.NOT_FOUND)


@dataclass(frozen=True, slots=True)
class ChiefComplaint:
    """Everything one complaint utterance said."""

    description: str
    symptoms: tuple[Symptom, ...]
    category: Category
    duration_days: float | None
    severity: Severity | None
    red_flags: tuple[RedFlag, ...]


def extract_complaint(text: str, today: date | None = None) -> Extraction[ChiefComplaint]:
    """Read a whole chief-complaint answer.

    NOT_FOUND only when there is neither a symptom nor a red flag; a red flag is listed even
    without a vocabulary symptom ("i want to hurt myself").
    """
    symptoms = extract_symptoms(text).value or ()
    flags = tuple(f for f, denied in red_flags(text) if not denied)
    doubted = tuple(f for f, denied in red_flags(text) if denied)
    if not symptoms and not flags and not doubted:
        return failed(Failure.NOT_FOUND)
    duration = extract_duration(text, today).value
    severity = extract_severity(text).value
    complaint = ChiefComplaint(
        description=" ".join(content(tokens(text))),
        symptoms=symptoms,
        category=_flag_category(flags or doubted)
        if flags or not symptoms
        else complaint_category(symptoms),
        duration_days=duration,
        severity=severity,
        red_flags=flags + doubted,
    )
    return found(complaint, 0.85 if symptoms else 0.7, confirm=bool(doubted))


def _flag_category(flags: Sequence[RedFlag]) -> Category:
    if not flags:
        return Category.GENERAL
    mapping = {
        RedFlag.CARDIAC_EMERGENCY: Category.CARDIAC,
        RedFlag.STROKE: Category.NEUROLOGICAL,
        RedFlag.UNCONSCIOUS_SEIZURE: Category.NEUROLOGICAL,
        RedFlag.ANAPHYLAXIS: Category.RESPIRATORY,
        RedFlag.BREATHING_EMERGENCY: Category.RESPIRATORY,
        RedFlag.SELF_HARM: Category.MENTAL_HEALTH,
    }
    return mapping.get(flags[0], Category.GENERAL)
