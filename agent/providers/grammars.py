"""Recognition hints compiled to JSGF grammars, with pronunciations for unknown words.

Theory of operation
-------------------
A small-vocabulary recogniser is only as good as the grammar it is given: with the answer's
shape written down (a month, a day, a year; ten digits; one of eleven payers) pocketsphinx
picks the closest sentence of the grammar, where its open-vocabulary model would scatter
words (on 8 kHz espeak-ng speech the bundled language model gets most words wrong; see
PEERS.md). `compile_hints` turns `RecognitionHints` into one of two searches:

* `GrammarSearch`: a JSGF grammar (W3C/Sun JSGF 1.0) for every closed kind. Counted repeats
  ("ten digits") are spelled out, because JSGF only has ``*`` and ``+``.
* `LanguageModelSearch`: the bundled trigram model, for free speech.

Grammars are kept as tight as the answer allows, because every alternative is one more thing
the recogniser can mistake the caller for: years run from 1900 to 2039 ("twenty ninety four"
is not a birth year, and allowing it turned "nineteen eighty four" into it), and a payer
answer may start with a short carrier phrase ("it's", "i have") and end with "insurance".

Every word of a grammar must have a pronunciation, or pocketsphinx refuses the grammar. Words
are looked up in the recogniser's dictionary (CMUdict); a word it lacks is resolved, in order,
from `PRONUNCIATIONS` (hand-written ARPABET for payer names), as a compound of two dictionary
words ("highmark" = "high" + "mark"), or, for a token of at most four letters, as spelled
letters (an acronym: "hmo", "umr"). A phrase with a word that none of these resolves is
dropped and reported, never silently kept: the recogniser could not produce it anyway.

This module is pure: the dictionary comes in as a `Lexicon` (pocketsphinx's ``Decoder`` is
one), so grammars are tested without loading a model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from agent.providers.base import PHRASE_KINDS, HintKind, RecognitionHints

__all__ = [
    "PRONUNCIATIONS",
    "GrammarSearch",
    "LanguageModelSearch",
    "Lexicon",
    "Search",
    "compile_hints",
    "normalize_phrase",
]


class Lexicon(Protocol):
    """A pronouncing dictionary (``pocketsphinx.Decoder`` satisfies it)."""

    def lookup_word(self, word: str) -> str | None:
        """Space-separated ARPABET phones of ``word``, or None if it is not in the dictionary."""
        ...


#: ARPABET (CMUdict phone set) for names callers say that CMUdict lacks, written by hand from
#: the names' usual American pronunciations.
PRONUNCIATIONS: Final[Mapping[str, str]] = {
    "tricare": "T R AY K EH R",
    "centene": "S EH N T IY N",
    "optum": "AA P T AH M",
    "ambetter": "AE M B EH T ER",
    "amerigroup": "AH M EH R IY G R UW P",
    "caresource": "K EH R S AO R S",
}

# CMUdict's entries for the letter names ("a" also has the article's AH, which helps).
LETTERS: Final = tuple("abcdefghijklmnopqrstuvwxyz")
DIGIT_WORDS: Final = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine")  # fmt: skip
UNITS: Final = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS: Final = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                "seventeen", "eighteen", "nineteen")  # fmt: skip
TENS: Final = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
MONTHS: Final = ("january", "february", "march", "april", "may", "june", "july", "august",
                 "september", "october", "november", "december")  # fmt: skip
ORDINAL_UNITS: Final = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh",
                        "eighth", "ninth")  # fmt: skip
ORDINAL_TEENS: Final = ("tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
                        "sixteenth", "seventeenth", "eighteenth", "nineteenth")  # fmt: skip

YES: Final = ("yes", "yeah", "yep", "yes please", "yes it is", "correct", "that's correct",
              "right", "that's right", "sure", "okay")  # fmt: skip
NO: Final = ("no", "nope", "no it's not", "no it isn't", "not really", "incorrect", "wrong",
             "that's wrong", "no thanks")  # fmt: skip
PAYER_CARRIERS: Final = ("i have", "it's", "it is", "i've got", "my insurance is", "i'm on")
#: Said at any question: "repeat", "go back", "representative" (the greeting offers them).
#: Not "repeat": short answers fell into it ("aetna" and "correct" came back as "repeat",
#: espeak-ng through G.711); the greeting offers the star key for that instead.
COMMANDS: Final = ("go back", "representative", "operator")
YES_NO_COMMANDS: Final = COMMANDS
CHOICE_COMMANDS: Final = ("representative", "operator")
SYMPTOM_CARRIERS: Final = ("i have", "i've got", "i've been having", "i have been having",
                           "i'm having", "i feel", "i'm", "it's", "my", "just")  # fmt: skip
ARTICLES: Final = ("a", "an", "some", "my", "a bad", "a lot of")
DURATION_UNITS: Final = ("day", "days", "week", "weeks", "month", "months", "year", "years",
                         "hour", "hours")  # fmt: skip
DURATION_WORDS: Final = ("yesterday", "today", "last night", "this morning", "last week",
                         "last month", "a while", "a long time")  # fmt: skip
#: The common suffixes only: with "highway" and "parkway" too, "park street" came back
#: "park highway".
STREET_SUFFIXES: Final = ("street", "avenue", "road", "drive", "lane", "boulevard", "way",
                          "court", "place")  # fmt: skip

_ACRONYM_MAX_LETTERS: Final = 4
_NON_WORD: Final = re.compile(r"[^a-z0-9' ]+")


@dataclass(frozen=True, slots=True)
class GrammarSearch:
    """A JSGF grammar search.

    Attributes:
        name: a name derived from the grammar text, so equal grammars share one search.
        jsgf: the grammar source.
        words: pronunciations to add to the dictionary first, as (word, phones).
        dropped: phrases left out because a word could not be pronounced.
    """

    name: str
    jsgf: str
    words: tuple[tuple[str, str], ...] = ()
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LanguageModelSearch:
    """Open vocabulary with the recogniser's own language model."""

    name: str = "_lm"


Search = GrammarSearch | LanguageModelSearch


def normalize_phrase(phrase: str) -> str:
    """Lowercase, ``&`` to "and", other punctuation to spaces; apostrophes stay ("that's")."""
    text = phrase.lower().replace("&", " and ").replace("-", " ").replace("/", " ")
    return " ".join(_NON_WORD.sub(" ", text).split())


def pronounce(word: str, lexicon: Lexicon) -> str | None:
    """Phones for ``word`` from the dictionary, the table, a compound or spelled letters."""
    known = lexicon.lookup_word(word)
    if known is not None:
        return known
    if word in PRONUNCIATIONS:
        return PRONUNCIATIONS[word]
    for cut in range(2, len(word) - 1):  # compounds: "wellcare" = "well" + "care"
        head, tail = lexicon.lookup_word(word[:cut]), lexicon.lookup_word(word[cut:])
        if head is not None and tail is not None:
            return f"{head} {tail}"
    if len(word) <= _ACRONYM_MAX_LETTERS and word.isalpha():
        letters = [lexicon.lookup_word(letter) for letter in word]  # "hmo", "umr": letters
        if all(letters):
            return " ".join(p for p in letters if p)
    return None


class _Vocabulary:
    """Resolves the words of phrases, remembering what must be added and what was dropped."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._lexicon = lexicon
        self.added: dict[str, str] = {}
        self.dropped: list[str] = []

    def keep(self, phrases: Iterable[str]) -> list[str]:
        kept: list[str] = []
        for raw in phrases:
            phrase = normalize_phrase(raw)
            if phrase and self._resolve_all(phrase.split()):
                if phrase not in kept:
                    kept.append(phrase)
            else:
                self.dropped.append(raw)
        return kept

    def _resolve_all(self, words: Sequence[str]) -> bool:
        for word in words:
            if self._lexicon.lookup_word(word) is not None or word in self.added:
                continue
            phones = pronounce(word, self._lexicon)
            if phones is None:
                return False
            self.added[word] = phones
        return True


def _alternatives(options: Iterable[str]) -> str:
    return " | ".join(f"( {option} )" if " " in option else option for option in options)


def _repeat(rule: str, low: int, high: int) -> str:
    """``low`` to ``high`` copies of ``rule``: "<d> <d> [<d> [<d>]]" (JSGF has no {m,n})."""
    tail = ""
    for _ in range(high - low):
        tail = f"[ {rule} {tail} ]" if tail else f"[ {rule} ]"
    return " ".join([rule] * low + ([tail] if tail else []))


def _number_rules() -> list[str]:
    return [
        f"<unit> = {_alternatives(UNITS)};",
        f"<teen> = {_alternatives(TEENS)};",
        f"<tens> = {_alternatives(TENS)};",
        "<below100> = <unit> | <teen> | <tens> [ <unit> ];",
        "<below1000> = <unit> hundred [ [ and ] <below100> ] | <below100>;",
    ]


def _date_rules() -> list[str]:
    ordinals = [*ORDINAL_UNITS, *ORDINAL_TEENS, "twentieth", "thirtieth"]
    ordinals += [f"twenty {o}" for o in ORDINAL_UNITS] + ["thirty first"]
    cardinals = [*UNITS, *TEENS, "twenty", "thirty", "thirty one"]
    cardinals += [f"twenty {u}" for u in UNITS]
    return [
        f"<month> = {_alternatives(MONTHS)};",
        f"<ordinal> = {_alternatives(ordinals)};",
        f"<cardinal> = {_alternatives(cardinals)};",
        "<day> = [ the ] <ordinal> | <cardinal>;",
        # 1900-2039: "nineteen oh five", "two thousand and nine", "twenty twenty four"
        "<yy> = <teen> | <tens> [ <unit> ] | oh <unit>;",
        "<recent> = <unit> | <teen> | ( twenty | thirty ) [ <unit> ];",
        "<year> = nineteen ( <yy> | hundred ) | two thousand [ [ and ] <recent> ]"
        " | twenty ( <teen> | ( twenty | thirty ) [ <unit> ] );",
        *_number_rules(),
    ]


def _jsgf(top: str, rules: Sequence[str], commands_heard: Sequence[str] = COMMANDS) -> str:
    # Every closed grammar also hears the commands the greeting promises work at any time.
    commands = f"<command> = {_alternatives(commands_heard)};"
    body = "\n".join([f"public <answer> = ( {top} ) | <command>;", *rules, commands])
    return f"#JSGF V1.0;\ngrammar answer;\n{body}\n"


def _grammar(jsgf: str, vocabulary: _Vocabulary | None = None) -> GrammarSearch:
    digest = hashlib.sha1(jsgf.encode(), usedforsecurity=False).hexdigest()[:12]
    words = tuple(sorted(vocabulary.added.items())) if vocabulary else ()
    dropped = tuple(vocabulary.dropped) if vocabulary else ()
    return GrammarSearch(f"g{digest}", jsgf, words, dropped)


def _closed_grammar(hints: RecognitionHints) -> str:
    kind = hints.kind
    digit = f"<digit> = {_alternatives(DIGIT_WORDS)};"
    letter = f"<letter> = {_alternatives(LETTERS)};"
    if kind is HintKind.YES_NO:
        return _jsgf(
            "<yes> | <no>",
            [f"<yes> = {_alternatives(YES)};", f"<no> = {_alternatives(NO)};"],
            YES_NO_COMMANDS,
        )
    if kind is HintKind.DIGITS:
        return _jsgf(_repeat("<digit>", hints.min_length, hints.max_length), [digit])
    if kind is HintKind.ALPHANUMERIC:
        symbols = _repeat("<symbol>", hints.min_length, hints.max_length)
        return _jsgf(symbols, ["<symbol> = <digit> | <letter>;", digit, letter])
    if kind is HintKind.NAME_SPELLING:
        return _jsgf("<letter>+", [letter])
    if kind is HintKind.NUMBER:
        top = "zero | <below1000> | <below100> thousand [ [ and ] <below1000> ]"
        top += " | <teen> hundred [ [ and ] <below100> ]"
        return _jsgf(top, _number_rules())
    if kind is HintKind.DATE:
        top = "( <month> <day> | the <ordinal> of <month> ) [ <year> ]"
        return _jsgf(top, _date_rules())
    raise ValueError(f"no built-in grammar for {kind.name}")


def _duration_grammar() -> str:
    """Durations: "three days", "about a week", "a couple of months", "since yesterday"."""
    count = "<below100> | a | an | a few | a couple of | several"
    rules = [
        f"<count> = {count};",
        f"<unit_of_time> = {_alternatives(DURATION_UNITS)};",
        f"<word> = {_alternatives(DURATION_WORDS)};",
        *_number_rules(),
    ]
    top = "[ for | about | since ] ( <count> <unit_of_time> | <word> ) [ now ]"
    return _jsgf(top, rules)


def _phrase_rules(hints: RecognitionHints, phrases: list[str], places: list[str]) -> str:
    """The grammar of a kind whose vocabulary comes with the hints."""
    rules = [f"<phrase> = {_alternatives(phrases)};"]
    kind = hints.kind
    if kind is HintKind.PAYER_NAMES:
        top = "[ <carrier> ] <phrase> [ insurance ]"
        rules.append(f"<carrier> = {_alternatives(PAYER_CARRIERS)};")
    elif kind is HintKind.SYMPTOMS:
        # "i have a cough and a fever", "headache and nausea": up to three symptoms.
        item = "[ <article> ] <phrase>"
        top = f"[ <carrier> ] {item} [ and {item} [ and {item} ] ]"
        rules += [
            f"<carrier> = {_alternatives(SYMPTOM_CARRIERS)};",
            f"<article> = {_alternatives(ARTICLES)};",
        ]
    elif kind is HintKind.STREET:
        # "twelve elm street", "one twenty three main street apartment four"
        # An apartment number is left out: every optional tail was one more place for
        # the recogniser to append a stray word (measured: "twelve elm street a").
        top = "<house> <phrase> [ <suffix> ]"
        rules += [
            "<house> = <below1000> [ <below100> ] | <unit> thousand [ <below1000> ];",
            f"<suffix> = {_alternatives(STREET_SUFFIXES)};",
            *_number_rules(),
        ]
    elif kind is HintKind.PHARMACY:
        top = "[ the ] <phrase> [ pharmacy ]"
        if places:
            top += " [ ( on | at | in ) <place> [ <suffix> ] ]"
            rules += [
                f"<place> = {_alternatives(places)};",
                f"<suffix> = {_alternatives(STREET_SUFFIXES)};",
            ]
    elif kind is HintKind.RELATIONSHIP:
        top = "[ it's | that's | that would be ] [ my ] <phrase>"
    else:
        # A menu answer, maybe with a few words around it ("my zip code", "the second one
        # please"); "go back" is left out, it swallowed "my zip code" (measured).
        top = "[ the | my | it's | change the | change my ] <phrase> [ please ]"
        return _jsgf(top, rules, CHOICE_COMMANDS)
    return _jsgf(top, rules)


def compile_hints(hints: RecognitionHints, lexicon: Lexicon) -> Search:
    """The search that recognises answers of the hinted shape.

    Raises:
        ValueError: every phrase of a hint of `PHRASE_KINDS` was dropped.
    """
    if hints.kind is HintKind.FREE_SPEECH:
        return LanguageModelSearch()
    if hints.kind is HintKind.DURATION:
        return _grammar(_duration_grammar())
    if hints.kind not in PHRASE_KINDS:
        return _grammar(_closed_grammar(hints))
    vocabulary = _Vocabulary(lexicon)
    phrases = vocabulary.keep(hints.phrases)
    if not phrases:
        raise ValueError(f"no phrase of the {hints.kind.name} hints can be pronounced")
    places = vocabulary.keep(hints.places)
    return _grammar(_phrase_rules(hints, phrases, places), vocabulary)
