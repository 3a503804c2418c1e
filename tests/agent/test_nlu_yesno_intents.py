"""Confirmations after read-backs, and the global intents."""

from __future__ import annotations

import pytest

from agent.nlu.intents import GlobalIntent, detect_intent
from agent.nlu.result import Failure
from agent.nlu.yesno import Answer, classify_confirmation


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("yes", Answer.YES),
        ("yeah", Answer.YES),
        ("yep that's right", Answer.YES),
        ("correct", Answer.YES),
        ("that's correct", Answer.YES),
        ("uh huh", Answer.YES),
        ("um yes", Answer.YES),
        ("sure", Answer.YES),
        ("yes ma'am", Answer.YES),
        ("you got it", Answer.YES),
        ("1", Answer.YES),
        ("no", Answer.NO),
        ("nope", Answer.NO),
        ("nah", Answer.NO),
        ("wrong", Answer.NO),
        ("that's not right", Answer.NO),
        ("that's wrong", Answer.NO),
        ("not quite", Answer.NO),
        ("no that's wrong", Answer.NO),
        ("incorrect", Answer.NO),
        ("2", Answer.NO),
        ("no it's march fourth", Answer.CORRECTION),
        ("actually my zip is oh two one three nine", Answer.CORRECTION),
        ("yes but my last name is smyth", Answer.CORRECTION),
        ("no i said smith", Answer.CORRECTION),
        ("it should be oh two one three nine", Answer.CORRECTION),
    ],
)
def test_confirmation(said: str, answer: Answer) -> None:
    result = classify_confirmation(said)
    assert result.value is not None, result
    assert result.value.answer is answer


def test_correction_carries_the_new_words() -> None:
    result = classify_confirmation("um no it's march fourth")
    assert result.value is not None
    assert result.value.remainder == "it's march fourth"


@pytest.mark.parametrize(
    ("said", "failure"),
    [("yes no", Failure.AMBIGUOUS), ("i don't know", Failure.NOT_FOUND), ("", Failure.NOT_FOUND)],
)
def test_confirmation_failures(said: str, failure: Failure) -> None:
    assert classify_confirmation(said).failure is failure


@pytest.mark.parametrize(
    ("said", "intent"),
    [
        ("can i talk to a person", GlobalIntent.OPERATOR),
        ("i want to speak with a real person", GlobalIntent.OPERATOR),
        ("representative", GlobalIntent.OPERATOR),
        ("agent please", GlobalIntent.OPERATOR),
        ("um operator", GlobalIntent.OPERATOR),
        ("human", GlobalIntent.OPERATOR),
        ("transfer me to the front desk", GlobalIntent.OPERATOR),
        ("say that again", GlobalIntent.REPEAT),
        ("sorry i didn't catch that", GlobalIntent.REPEAT),
        ("could you repeat the question", GlobalIntent.REPEAT),
        ("what", GlobalIntent.REPEAT),
        ("go back", GlobalIntent.GO_BACK),
        ("can we go back to the previous question", GlobalIntent.GO_BACK),
        ("help", GlobalIntent.HELP),
        ("i don't understand", GlobalIntent.HELP),
        ("what do you mean", GlobalIntent.HELP),
        ("goodbye", GlobalIntent.GOODBYE),
        ("okay bye", GlobalIntent.GOODBYE),
        ("i have to go now", GlobalIntent.GOODBYE),
    ],
)
def test_intents(said: str, intent: GlobalIntent) -> None:
    assert detect_intent(said).value is intent


@pytest.mark.parametrize(
    "said",
    [
        "my husband is a travel agent",
        "i don't want to talk to a human",
        "i need help with my chest pain",
        "what time is the appointment",
        "my back hurts",
        "blue cross blue shield",
        "six one seven five five five oh one two three",
    ],
)
def test_ordinary_answers_are_not_intents(said: str) -> None:
    assert detect_intent(said).failure is Failure.NOT_FOUND
