"""Chief complaint: symptoms, negation, duration, severity, category, red flags."""

from __future__ import annotations

from datetime import date

import pytest

from agent.nlu.complaint import (
    Category,
    EmergencyAction,
    RedFlag,
    SeverityLevel,
    SymptomVocabulary,
    detect_red_flag,
    extract_complaint,
    extract_duration,
    extract_severity,
    extract_symptoms,
)
from agent.nlu.redflags import RedFlagRules
from agent.nlu.result import Failure, VocabularyError

TODAY = date(2026, 3, 12)  # a Thursday


@pytest.mark.parametrize(
    ("said", "symptoms"),
    [
        ("i have a bad cough and a fever", ["cough", "fever"]),
        ("my back hurts", ["back pain"]),
        ("pain in my knee", ["knee pain"]),
        ("my stomach hurts and i threw up", ["abdominal pain", "vomiting"]),
        ("no fever but i have a headache", ["headache"]),
        ("i don't have a cough just a sore throat", ["sore throat"]),
        ("headaches", ["headache"]),
        ("i've had diarrhea", ["diarrhea"]),
        ("i have a rash on my arm and it's itchy", ["rash", "itching"]),
        ("i've been really anxious and i can't sleep", ["anxiety", "insomnia"]),
        ("i feel dizzy and nauseous", ["dizziness", "nausea"]),
        ("my ear hurts", ["ear pain"]),
        ("i need a prescription refill", ["checkup"]),
        ("burning when i pee", ["urinary symptoms"]),
        ("i twisted my ankle", ["sprain"]),
        ("rashes all over", ["rash"]),
    ],
)
def test_symptoms(said: str, symptoms: list[str]) -> None:
    got = extract_symptoms(said).value or ()
    assert [s.name for s in got] == symptoms


@pytest.mark.parametrize("said", ["no fever no cough", "i'm fine", "", "without any pain"])
def test_no_symptoms(said: str) -> None:
    assert extract_symptoms(said).failure is Failure.NOT_FOUND


@pytest.mark.parametrize(
    ("said", "days"),
    [
        ("for three days", 3.0),
        ("three days ago", 3.0),
        ("two weeks", 14.0),
        ("about a week", 7.0),
        ("a couple of days", 2.0),
        ("a few days", 3.0),
        ("since yesterday", 1.0),
        ("since last night", 1.0),
        ("it started this morning", 0.0),
        ("the day before yesterday", 2.0),
        ("since last week", 7.0),
        ("a month", 30.0),
        ("two and a half days", 2.5),
        ("a day and a half", 1.5),
        ("for like two or three days", 3.0),
        ("for an hour", 1 / 24),
        ("since monday", 3.0),
        ("since thursday", 7.0),
        ("for five years", 5 * 365.0),
    ],
)
def test_duration(said: str, days: float) -> None:
    assert extract_duration(said, TODAY).value == pytest.approx(days)


def test_weekday_duration_needs_today() -> None:
    assert extract_duration("since monday").failure is Failure.INCOMPLETE


@pytest.mark.parametrize("said", ["for a while", "every day", "i don't know", "for days"])
def test_no_duration(said: str) -> None:
    assert extract_duration(said, TODAY).value is None


@pytest.mark.parametrize(
    ("said", "score", "level"),
    [
        ("seven out of ten", 7, SeverityLevel.SEVERE),
        ("it's about a seven", 7, SeverityLevel.SEVERE),
        ("like a six", 6, SeverityLevel.MODERATE),
        ("4", 4, SeverityLevel.MODERATE),
        ("eight", 8, SeverityLevel.SEVERE),
        ("2 out of 10", 2, SeverityLevel.MILD),
        ("mild", 3, SeverityLevel.MILD),
        ("not too bad", 3, SeverityLevel.MILD),
        ("moderate", 5, SeverityLevel.MODERATE),
        ("it's really bad", 7, SeverityLevel.SEVERE),
        ("severe", 8, SeverityLevel.SEVERE),
        ("unbearable", 10, SeverityLevel.SEVERE),
        ("the worst pain of my life", 10, SeverityLevel.SEVERE),
        ("a seven for three days", 7, SeverityLevel.SEVERE),
    ],
)
def test_severity(said: str, score: int, level: SeverityLevel) -> None:
    got = extract_severity(said).value
    assert got is not None and (got.score, got.level) == (score, level)


def test_eleven_out_of_ten_is_clamped_and_read_back() -> None:
    result = extract_severity("eleven out of ten")
    assert result.value is not None and result.value.score == 10
    assert result.failure is Failure.OUT_OF_RANGE and result.needs_confirmation


@pytest.mark.parametrize("said", ["three days", "for like two or three days", "hello"])
def test_durations_are_not_severities(said: str) -> None:
    assert extract_severity(said).value is None


@pytest.mark.parametrize(
    ("said", "flag"),
    [
        ("i have chest pain and shortness of breath", RedFlag.CARDIAC_EMERGENCY),
        ("chest pressure and i'm sweating", RedFlag.CARDIAC_EMERGENCY),
        ("chest pains and pain in my left arm", RedFlag.CARDIAC_EMERGENCY),
        ("my husband is having a heart attack", RedFlag.CARDIAC_EMERGENCY),
        ("my face is drooping", RedFlag.STROKE),
        ("her speech is slurred", RedFlag.STROKE),
        ("he can't lift his arm", RedFlag.STROKE),
        ("sudden numbness on one side", RedFlag.STROKE),
        ("worst headache of my life", RedFlag.STROKE),
        ("sudden confusion", RedFlag.STROKE),
        ("i cut my hand and it won't stop bleeding", RedFlag.SEVERE_BLEEDING),
        ("i'm bleeding heavily", RedFlag.SEVERE_BLEEDING),
        ("coughing up blood", RedFlag.SEVERE_BLEEDING),
        ("i want to kill myself", RedFlag.SELF_HARM),
        ("i've been having thoughts of suicide", RedFlag.SELF_HARM),
        ("i don't want to live anymore", RedFlag.SELF_HARM),
        ("my throat is closing", RedFlag.ANAPHYLAXIS),
        ("i got stung by a bee and i can't breathe", RedFlag.ANAPHYLAXIS),
        ("allergic reaction and my throat feels tight", RedFlag.ANAPHYLAXIS),
        ("i can't breathe", RedFlag.BREATHING_EMERGENCY),
        ("he's choking", RedFlag.BREATHING_EMERGENCY),
        ("she passed out", RedFlag.UNCONSCIOUS_SEIZURE),
        ("my son is having a seizure", RedFlag.UNCONSCIOUS_SEIZURE),
        ("he's unresponsive", RedFlag.UNCONSCIOUS_SEIZURE),
    ],
)
def test_red_flags(said: str, flag: RedFlag) -> None:
    result = detect_red_flag(said)
    assert result.value is flag
    assert not result.needs_confirmation


@pytest.mark.parametrize(
    "said",
    [
        "chest pain",
        "no chest pain but i am short of breath",
        "i don't have chest pain or shortness of breath",
        "i have a headache",
        "a small cut on my finger",
        "my nose is bleeding a little",
        "i'm not choking",
        "cough and a fever for three days",
    ],
)
def test_not_red_flags(said: str) -> None:
    assert detect_red_flag(said).failure is Failure.NOT_FOUND


def test_self_harm_goes_to_988_and_cardiac_to_911() -> None:
    assert RedFlag.SELF_HARM.action is EmergencyAction.CALL_988
    assert RedFlag.CARDIAC_EMERGENCY.action is EmergencyAction.CALL_911


def test_denied_self_harm_is_still_asked_about() -> None:
    result = detect_red_flag("i'm not suicidal just stressed")
    assert result.value is RedFlag.SELF_HARM
    assert result.needs_confirmation and result.confidence < 0.9


def test_most_urgent_flag_first() -> None:
    result = detect_red_flag("chest pain and short of breath and i want to kill myself")
    assert result.value is RedFlag.CARDIAC_EMERGENCY
    assert RedFlag.SELF_HARM in result.alternatives


@pytest.mark.parametrize(
    ("said", "category"),
    [
        ("cough and fever", Category.RESPIRATORY),
        ("my stomach hurts", Category.GASTROINTESTINAL),
        ("diarrhea and a headache", Category.NEUROLOGICAL),
        ("back pain", Category.MUSCULOSKELETAL),
        ("an itchy rash", Category.DERMATOLOGICAL),
        ("i've been feeling depressed", Category.MENTAL_HEALTH),
        ("i feel tired all the time", Category.GENERAL),
        ("palpitations", Category.CARDIAC),
        ("i want to hurt myself", Category.MENTAL_HEALTH),
    ],
)
def test_category(said: str, category: Category) -> None:
    result = extract_complaint(said, TODAY)
    assert result.value is not None and result.value.category is category


def test_whole_complaint() -> None:
    result = extract_complaint(
        "um i've had a bad cough and a fever for three days it's about a six", TODAY
    )
    c = result.value
    assert c is not None
    assert [s.name for s in c.symptoms] == ["cough", "fever"]
    assert c.duration_days == 3.0
    assert c.severity is not None and c.severity.score == 6
    assert c.category is Category.RESPIRATORY
    assert c.red_flags == ()


def test_vocabularies_are_replaceable_and_checked() -> None:
    vocab = SymptomVocabulary.from_yaml("symptoms:\n  general:\n    hiccups: [hiccups]\n")
    got = extract_symptoms("i have the hiccups and a cough", vocab).value
    assert got is not None and [s.name for s in got] == ["hiccups"]
    rules = RedFlagRules.from_yaml("red_flags:\n  stroke:\n    - - [purple elephant]\n")
    assert detect_red_flag("i see a purple elephant", rules).value is RedFlag.STROKE
    assert detect_red_flag("my face is drooping", rules).failure is Failure.NOT_FOUND
    with pytest.raises(VocabularyError, match="unknown red flag"):
        RedFlagRules.from_yaml("red_flags:\n  zombies:\n    - - [brains]\n")
    with pytest.raises(VocabularyError, match="symptom vocabulary"):
        SymptomVocabulary.from_yaml("symptoms:\n  astrology:\n    x: [y]\n")
