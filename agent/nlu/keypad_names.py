"""Names spelled on a telephone keypad, resolved against a directory of common names.

Theory of operation
-------------------
The embedded recogniser cannot take a name by voice: in a grammar of the thousand most common
first names it got two of eight espeak-ng names right on 8 kHz audio, and spelled letters
(the "e-set": b, d, e, g, p, t, v) fare no better. Dial-by-name directories solved this long
ago: the caller presses one key per letter (ITU E.161 letter groups: 2 = ABC … 9 = WXYZ) and
the system looks the key sequence up in its directory. "SMITH" is 7-6-4-8-4.

A key sequence names few people: among the 2,500 most common US first names 96 % are the most
frequent name for their sequence, among the 10,000 most common last names 92 %. The agent
takes the most frequent candidate and always reads it back letter by letter, so a wrong one is
caught by the caller. A sequence the directory lacks fails with NOT_FOUND, and the agent asks
again (a name outside the directory has to be spoken, and its audio is kept for staff).

For a full name (an emergency contact) the caller presses 0 between the first and last name:
0 carries no letters, and it is the space key of most phones' text entry.

The directory is ``agent/data/names/first.txt`` and ``last.txt``: the 1990 US Census name
files, most frequent first. It is loaded once, on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Final

from agent.nlu.demographics import NamePart, PersonName
from agent.nlu.result import Extraction, Failure, failed, found

__all__ = ["KEYPAD_LETTERS", "NAME_SEPARATOR_KEY", "extract_keypad_name", "keypad_digits"]

#: ITU-T E.161 letter groups on the telephone keypad.
KEYPAD_LETTERS: Final[Mapping[str, str]] = {
    "2": "abc", "3": "def", "4": "ghi", "5": "jkl",
    "6": "mno", "7": "pqrs", "8": "tuv", "9": "wxyz",
}  # fmt: skip
#: The key pressed between a first and a last name.
NAME_SEPARATOR_KEY: Final = "0"
#: A keyed name is only ever a guess from a directory: it is always read back.
KEYED_NAME_CONFIDENCE: Final = 0.7

_KEY_OF: Final = {letter: key for key, letters in KEYPAD_LETTERS.items() for letter in letters}


def keypad_digits(name: str) -> str:
    """The keys that spell ``name`` ("Smith" -> "76484"); other characters are skipped."""
    return "".join(_KEY_OF.get(c, "") for c in name.lower())


@cache
def _directory(part: NamePart) -> Mapping[str, tuple[str, ...]]:
    """Key sequence -> names that it spells, most frequent first."""
    filename = "first.txt" if part is NamePart.FIRST else "last.txt"
    text = resources.files("agent.data").joinpath("names", filename).read_text("utf-8")
    by_keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            by_keys.setdefault(keypad_digits(name), []).append(name)
    return {keys: tuple(names) for keys, names in by_keys.items()}


def _candidates(keys: str, part: NamePart) -> tuple[str, ...]:
    return tuple(n.title() for n in _directory(part).get(keys, ()))


def extract_keypad_name(keys: str, part: NamePart) -> Extraction[PersonName]:
    """The name a caller spelled on the keypad.

    Args:
        keys: the digits pressed (``#`` already stripped). For `NamePart.FULL`, 0 separates
            the first name from the last.
        part: which name was asked for.

    Returns:
        The most frequent directory name for the keys, with the other candidates as
        ``alternatives``; NOT_FOUND when the directory has none; INVALID_FORMAT for keys
        that cannot spell a name (1, *, or a lone letter).
    """
    if part is NamePart.FULL:
        pieces = [p for p in keys.split(NAME_SEPARATOR_KEY) if p]
        if len(pieces) != 2:
            return failed(Failure.INCOMPLETE, detail="keypad_full_name_needs_two_parts")
        first = _resolve(pieces[0], NamePart.FIRST)
        last = _resolve(pieces[1], NamePart.LAST)
        if first is None or last is None:
            return failed(Failure.NOT_FOUND, detail="keypad_name_not_in_directory")
        return found(PersonName(first[0], last[0]), KEYED_NAME_CONFIDENCE, confirm=True)
    names = _resolve(keys, part)
    if names is None:
        return failed(Failure.NOT_FOUND, detail="keypad_name_not_in_directory")
    people = tuple(_person(n, part) for n in names)
    return found(people[0], KEYED_NAME_CONFIDENCE, confirm=True, alternatives=people[1:])


def _resolve(keys: str, part: NamePart) -> Sequence[str] | None:
    if len(keys) < 2 or not all(k in KEYPAD_LETTERS for k in keys):
        return None
    return _candidates(keys, part) or None


def _person(name: str, part: NamePart) -> PersonName:
    return PersonName(name, None) if part is NamePart.FIRST else PersonName(None, name)
