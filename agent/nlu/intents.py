"""Requests a caller can make at any point: repeat, help, go back, a person, goodbye.

Theory of operation
-------------------
These are checked before the phase's own extractor, so they must not fire on ordinary
answers: "my husband is a travel agent" is not a request for an agent. Two tiers:

* *Phrases* ("talk to a person", "say that again", "go back") count anywhere in the utterance.
* *Keywords* ("agent", "operator", "help", "repeat", "bye") count only in short utterances
  (at most `KEYWORD_MAX_WORDS` words once politeness is dropped: "agent please", "um help").

A phrase under negation ("i don't need a person") does not count. When several intents are
heard, the most consequential wins: OPERATOR, GOODBYE, GO_BACK, REPEAT, HELP.
"""

from __future__ import annotations

import re
from enum import Enum

from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import NEGATIONS, content, negated, tokens


class GlobalIntent(Enum):
    """A request that applies in every phase."""

    OPERATOR = "operator"
    GOODBYE = "goodbye"
    GO_BACK = "go_back"
    REPEAT = "repeat"
    HELP = "help"


KEYWORD_MAX_WORDS = 3

_PEOPLE = (
    r"(?:a |an |the |some |somebody |someone |real |live |actual )*"
    r"(?:person|human|human being|agent|operator|representative|rep|somebody|someone|"
    r"receptionist|staff|nurse|anybody|anyone|people)"
)
_PHRASES: dict[GlobalIntent, re.Pattern[str]] = {
    GlobalIntent.OPERATOR: re.compile(
        r"\b(?:talk|speak|chat|connect me|transfer me|put me through|get me|give me)"
        r" (?:to |with )?" + _PEOPLE + r"\b|\b(?:real|live|actual) (?:person|human)\b"
        r"|\bcustomer service\b|\bfront desk\b|\bhuman being\b|\brepresentative\b"
    ),
    GlobalIntent.GOODBYE: re.compile(
        r"\b(?:good ?bye|bye bye|hang up|have to go|gotta go|got to go|talk to you later"
        r"|that's all|that is all|i'm done|end the call|end this call)\b"
    ),
    GlobalIntent.GO_BACK: re.compile(
        r"\b(?:go back|going back|back up|previous question|last question"
        r"|change my last answer|undo that)\b"
    ),
    GlobalIntent.REPEAT: re.compile(
        r"\b(?:say (?:that|it|this) again|repeat (?:that|it|this|the question|yourself)"
        r"|can you repeat|could you repeat|please repeat|come again|one more time"
        r"|didn't (?:catch|hear|get) (?:that|it|you|what you said)|what did you say"
        r"|what was that|sorry what|pardon me|i beg your pardon)\b"
    ),
    GlobalIntent.HELP: re.compile(
        r"^(?:i need |i need some |can you |please )?help(?: me)?(?: please)?$"
        r"|\b(?:i don't understand|what do you mean|i'm confused"
        r"|what should i say|what am i supposed to say|how does this work"
        r"|what do you need|what are my options)\b"
    ),
}
_KEYWORDS: dict[str, GlobalIntent] = {
    "agent": GlobalIntent.OPERATOR,
    "operator": GlobalIntent.OPERATOR,
    "human": GlobalIntent.OPERATOR,
    "person": GlobalIntent.OPERATOR,
    "representative": GlobalIntent.OPERATOR,
    "receptionist": GlobalIntent.OPERATOR,
    "bye": GlobalIntent.GOODBYE,
    "goodbye": GlobalIntent.GOODBYE,
    "back": GlobalIntent.GO_BACK,
    "repeat": GlobalIntent.REPEAT,
    "pardon": GlobalIntent.REPEAT,
    "what": GlobalIntent.REPEAT,
    "huh": GlobalIntent.REPEAT,
    "help": GlobalIntent.HELP,
    "confused": GlobalIntent.HELP,
}
_POLITE = frozenset(
    {"please", "a", "an", "the", "i", "want", "need", "can", "could", "you", "me", "just"}
    | {"okay", "ok", "sorry", "um", "uh", "oh", "go", "talk", "speak", "to", "with", "let's"}
)


def detect_intent(text: str) -> Extraction[GlobalIntent]:
    """Find a global request in an utterance; NOT_FOUND when it is an ordinary answer."""
    toks = content(tokens(text))
    joined = " ".join(toks)
    heard: list[tuple[GlobalIntent, float]] = []
    for intent, pattern in _PHRASES.items():
        for m in pattern.finditer(joined):
            start = joined[: m.start()].count(" ")
            if not negated(toks, start):
                heard.append((intent, 0.95))
                break
    meaningful = [t for t in toks if t not in _POLITE]
    denied = any(t in NEGATIONS for t in toks)
    if not heard and not denied and 0 < len(meaningful) <= KEYWORD_MAX_WORDS:
        for i, tok in enumerate(toks):
            keyword = _KEYWORDS.get(tok)
            if keyword is None or negated(toks, i):
                continue
            if tok in ("what", "huh") and len(meaningful) > 1:
                continue  # "what" alone asks to repeat; "what time" is an answer
            if tok == "back" and "go" not in toks:
                continue
            heard.append((keyword, 0.85 if len(meaningful) > 1 else 0.9))
    if not heard:
        return failed(Failure.NOT_FOUND)
    order = list(GlobalIntent)
    heard.sort(key=lambda h: order.index(h[0]))
    best, conf = heard[0]
    distinct = {h[0] for h in heard}
    if len(distinct) > 1:
        conf -= 0.1
    return found(best, conf, confirm=best is GlobalIntent.OPERATOR and conf < 0.9)
