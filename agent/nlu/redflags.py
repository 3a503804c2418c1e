"""Red flags: emergencies that end the intake and send the caller to 911 or 988.

Theory of operation
-------------------
Rules come from ``agent/data/red_flags.yaml``: a flag fires when any of its rules fires, and a
rule fires when every one of its phrase groups has a phrase in the utterance that is not
denied. So "chest pain and i can't breathe" is a cardiac emergency, "chest pain" alone is not
(it is a cardiac symptom, handled by triage questions), and "no chest pain but short of breath"
is neither. Negation uses `text.negated` (cue within five words, stopped by "but"/"and").

Self-harm is the exception: a denied mention ("i'm not suicidal, just stressed") is still
returned, at low confidence and with ``needs_confirmation``, so the agent asks the caller
directly instead of moving on; its action is the 988 Suicide & Crisis Lifeline, not 911.

When several flags fire, `RedFlag` order is the order of urgency and the first is returned
(the rest are in ``alternatives``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

import yaml

from agent.nlu.result import Extraction, Failure, VocabularyError, failed, found
from agent.nlu.text import PhraseIndex, fold_plurals, negated, tokens


class EmergencyAction(Enum):
    """Where the agent sends a caller with a red flag."""

    CALL_911 = "call_911"
    CALL_988 = "call_988"  # Suicide & Crisis Lifeline


class RedFlag(Enum):
    """An emergency heard in the chief complaint, most urgent first."""

    CARDIAC_EMERGENCY = "cardiac_emergency"
    STROKE = "stroke"
    ANAPHYLAXIS = "anaphylaxis"
    BREATHING_EMERGENCY = "breathing_emergency"
    UNCONSCIOUS_SEIZURE = "unconscious_seizure"
    SEVERE_BLEEDING = "severe_bleeding"
    SELF_HARM = "self_harm"

    @property
    def action(self) -> EmergencyAction:
        """What the agent tells the caller to do."""
        return EmergencyAction.CALL_988 if self is RedFlag.SELF_HARM else EmergencyAction.CALL_911


Rule = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class RedFlagRules:
    """Every flag's rules: each rule is a tuple of phrase groups that must all be present."""

    rules: tuple[tuple[RedFlag, tuple[Rule, ...]], ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RedFlagRules:
        """Build from parsed YAML (see ``agent/data/red_flags.yaml``).

        Raises:
            VocabularyError: Unknown flag name or a malformed rule.
        """
        flags = data.get("red_flags")
        if not isinstance(flags, dict):
            raise VocabularyError("red flag rules need a 'red_flags' mapping")
        out: list[tuple[RedFlag, tuple[Rule, ...]]] = []
        for name, rules in flags.items():
            try:
                flag = RedFlag(name)
            except ValueError as err:
                raise VocabularyError(f"unknown red flag {name!r}") from err
            if not isinstance(rules, list):
                raise VocabularyError(f"rules for {name} must be a list")
            parsed = tuple(tuple(tuple(str(p) for p in group) for group in rule) for rule in rules)
            out.append((flag, parsed))
        return cls(tuple(out))

    @classmethod
    def from_yaml(cls, text: str) -> RedFlagRules:
        """Build from YAML text."""
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise VocabularyError("red flag rules must be a mapping")
        return cls.from_mapping(data)


@cache
def default_rules() -> RedFlagRules:
    """The packaged rules (read once; immutable)."""
    text = resources.files("agent.data").joinpath("red_flags.yaml").read_text(encoding="utf-8")
    return RedFlagRules.from_yaml(text)


class _MultiIndex(PhraseIndex[tuple[int, int]]):
    """A PhraseIndex that reports every (rule, group) a matched phrase belongs to."""

    __slots__ = ("_labels",)

    def __init__(self, phrases: list[tuple[str, tuple[int, int]]]) -> None:
        self._labels: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        for phrase, label in phrases:
            self._labels.setdefault(tokens(phrase), []).append(label)
        super().__init__((" ".join(k), v[0]) for k, v in self._labels.items())

    def labels_for(self, phrase: tuple[str, ...]) -> list[tuple[int, int]]:
        return self._labels.get(phrase, [])


@dataclass(frozen=True, slots=True)
class _Compiled:
    index: _MultiIndex  # phrase -> (rule number, group number)
    rules: tuple[tuple[RedFlag, int], ...]  # rule number -> (flag, how many groups)
    vocabulary: frozenset[str]


@cache
def _compile(rules: RedFlagRules) -> _Compiled:
    phrases: list[tuple[str, tuple[int, int]]] = []
    table: list[tuple[RedFlag, int]] = []
    for flag, flag_rules in rules.rules:
        for rule in flag_rules:
            rule_no = len(table)
            table.append((flag, len(rule)))
            for group_no, group in enumerate(rule):
                phrases.extend((p, (rule_no, group_no)) for p in group)
    vocab = frozenset(w for p, _ in phrases for w in tokens(p))
    # The same phrase may sit in several groups: index each occurrence under its own label.
    return _Compiled(_MultiIndex(phrases), tuple(table), vocab)


def red_flags(text: str, rules: RedFlagRules | None = None) -> tuple[tuple[RedFlag, bool], ...]:
    """Every red flag in an utterance, most urgent first, each with whether it was denied."""
    compiled = _compile(rules or default_rules())
    index = compiled.index
    toks = fold_plurals(tokens(text), compiled.vocabulary)
    present: dict[int, set[int]] = {}
    denied: dict[int, set[int]] = {}
    for m in index.scan(toks):
        target = denied if negated(toks, m.start) else present
        for rule_no, group_no in index.labels_for(tuple(toks[m.start : m.end])):
            target.setdefault(rule_no, set()).add(group_no)
    fired: dict[RedFlag, bool] = {}
    for rule_no, (flag, n_groups) in enumerate(compiled.rules):
        if len(present.get(rule_no, ())) == n_groups:
            fired[flag] = False
        elif flag is RedFlag.SELF_HARM and denied.get(rule_no) and flag not in fired:
            fired[flag] = True
    order = list(RedFlag)
    return tuple(sorted(fired.items(), key=lambda kv: order.index(kv[0])))


def detect_red_flag(text: str, rules: RedFlagRules | None = None) -> Extraction[RedFlag]:
    """The most urgent red flag in an utterance; NOT_FOUND when there is none."""
    hits = red_flags(text, rules)
    if not hits:
        return failed(Failure.NOT_FOUND)
    flag, was_denied = hits[0]
    others = tuple(f for f, _ in hits[1:])
    if was_denied:
        return found(flag, 0.5, confirm=True, alternatives=others, detail="denied")
    return found(flag, 0.95, alternatives=others)
