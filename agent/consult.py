"""When a caller turn goes to the language model, and when the rules settle it alone.

Theory of operation
-------------------
The model proposes, the rules decide (`agent.proposals`). On a *closed* question (yes or
no, digits, a date, a spelled name, a payer from the catalog, one of the offered slots, a
duration) the rules either read the caller's words or they do not, and when they do, the
model's proposal cannot change the outcome, or changes it only to another reading of the same
words that the same rule must accept:

* in a read-back (``CONFIRM``) and at the summary, a yes or no the rules read is never
  overridden (`agent.dialogue.on_answer`);
* a red flag and the global intents ("representative", "go back") always go by the caller's
  own words;
* for a closed value the rules read ("aetna", "march third nineteen eighty four"), the model
  can only propose the same value in canonical words.

So with ``llm_consult = "open_or_unread"`` (the default) such a turn is not sent to the
model: the caller hears the next question about one model round trip sooner (measured by
``bench/turn_latency.py --cloud``), the clinic pays for fewer requests, and fewer PHI values
(member IDs, dates of birth, phone numbers) leave the server. The model still reads every
answer to an *open* question (symptoms, the street address, the pharmacy, the emergency
contact and their name, free speech), where its reading is richer than the rules', and every
answer the rules cannot read. ``"every_turn"`` sends every turn, as before.

Pure functions of the conversation and the caller's words: no I/O, no clock.
"""

from __future__ import annotations

from enum import Enum

from agent import understanding as nlu
from agent.commands import Expect
from agent.conversation import Conversation, Mode

__all__ = ["CLOSED_ANSWERS", "Consult", "rules_settle"]


class Consult(Enum):
    """Which caller turns are sent to the model (setting ``llm_consult``)."""

    OPEN_OR_UNREAD = "open_or_unread"
    EVERY_TURN = "every_turn"


#: Answer shapes the rule-based extractors read as well as a model when they read them at all.
CLOSED_ANSWERS = frozenset(
    {
        Expect.YES_NO,
        Expect.DIGITS,
        Expect.DATE,
        Expect.SPELLING,
        Expect.PAYER,
        Expect.CHOICE,
        Expect.DURATION,
    }
)


def rules_settle(conv: Conversation, text: str) -> bool:
    """True when the rules alone decide this turn: a model's proposal would change nothing.

    ``text`` is what the recogniser heard the caller say to the conversation's current
    question; ``conv`` is the conversation before the answer is handled.
    """
    if not text.strip():
        return True  # nothing to read: the conversation asks again
    if nlu.red_flag(text) is not None or nlu.intent(text) is not None:
        return True
    cursor = conv.cursor
    if cursor.mode is Mode.CONFIRM:
        return nlu.yes_no(text) is not None
    if cursor.mode is Mode.SPECIAL:
        if cursor.special == "slot":
            offered = cursor.scratch.get("offered", ())
            return nlu.choose_slot(text, offered, conv.context().now) is not None
        if cursor.special == "summary":
            return nlu.yes_no(text) is not None
        return True  # urgent advice, a callback message, which part to amend: rules only
    question = conv.question()
    if question is None:
        return True
    if question.expectation.kind not in CLOSED_ANSWERS:
        return False
    return question.extract(text, conv.context()).ok
