"""What the model may say itself: its acknowledgement, read sentence by sentence from the stream.

Theory of operation
-------------------
Every response schema of `agent.proposals` starts with an ``acknowledgement`` string, so it
streams before the proposed value. `AcknowledgementReader` is a small incremental reader of
that one JSON string: content fragments in, complete sentences out (a sentence ends at ". ",
"! ", "? " or the closing quote), so the first can be synthesised and played while the rest of
the reply is still on its way. Escapes split across fragments wait for their second half.

`speakable` is the rule for what the model may say unchecked: a few plain words and no digits,
so it never reads back a member ID, a date or a phone number the phase rules have not accepted
(the conversation's own read-back does that, from the value the rules kept).
"""

from __future__ import annotations

import re

__all__ = ["MAX_ACK_WORDS", "AcknowledgementReader", "speakable"]

_SPEAKABLE = re.compile(r"[A-Za-z][A-Za-z ,.!?']*")
MAX_ACK_WORDS = 12


def speakable(sentence: str) -> bool:
    """Whether the model's sentence may be said as is: a few plain words, no digits."""
    words = sentence.split()
    return 0 < len(words) <= MAX_ACK_WORDS and _SPEAKABLE.fullmatch(sentence.strip()) is not None


class AcknowledgementReader:
    """Complete sentences of the ``acknowledgement`` string, read from streamed JSON.

    The schema puts ``acknowledgement`` first, so its sentences arrive before the value: each
    is returned by `feed` as soon as its end (". ", "! ", "? " or the closing quote) arrives.
    """

    _OPEN = re.compile(r'^\s*\{\s*"acknowledgement"\s*:\s*"')

    def __init__(self) -> None:
        self._raw = ""
        self._start: int | None = None
        self._pos = 0
        self._sentence = ""
        self._closed = False

    def feed(self, fragment: str) -> list[str]:
        """Add streamed content; the sentences it completes."""
        if self._closed:
            return []
        self._raw += fragment
        if self._start is None:
            opened = self._OPEN.match(self._raw)
            if opened is None:
                if len(self._raw) > 40 or (self._raw.strip() and self._raw.lstrip()[0] != "{"):
                    self._closed = True  # not our shape: say nothing
                return []
            self._start = self._pos = opened.end()
        out: list[str] = []
        while self._pos < len(self._raw):
            char = self._raw[self._pos]
            if char == "\\":
                if self._pos + 1 >= len(self._raw):
                    break  # the escaped character has not arrived yet
                escaped = self._raw[self._pos + 1]
                self._sentence += {"n": " ", "t": " "}.get(escaped, escaped)
                self._pos += 2
                continue
            self._pos += 1
            if char == '"':
                self._closed = True
                out.append(self._sentence)
                break
            if char == " " and self._sentence.endswith((".", "!", "?")):
                out.append(self._sentence)
                self._sentence = ""
            self._sentence += char
        return [s.strip() for s in out if s.strip()]
