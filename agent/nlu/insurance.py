"""Insurance: which payer, and the member ID on the card.

Theory of operation
-------------------
Payers come from a `PayerCatalog` (default: ``agent/data/payers.yaml``; pass another to
configure). `match_payer` first collapses spelled letters ("bee see bee ess" -> "bcbs"), then:

1. **Exact aliases**, leftmost-longest over the tokens, so "anthem blue cross" lands on Anthem
   and never on the generic Blue Cross Blue Shield entry inside it. A mention under negation
   ("not aetna") or after "used to have" is dropped. If a commercial plan and a government
   program are both named ("humana medicare advantage"), the commercial plan wins.
2. **Fuzzy**, only if nothing matched exactly: every 1-4 word n-gram (with generic insurance
   words removed) is scored with rapidfuzz ``fuzz.ratio`` against every alias longer than
   `MIN_FUZZY_CHARS`, spaces removed on both sides so "tri care" meets "tricare". We use
   ``ratio`` on n-grams rather than ``token_set_ratio`` or ``WRatio`` on the whole utterance
   because both of those score 100 whenever one side's words are a subset of the other's
   ("i have united" vs anything containing "united"), which over-matches in free speech; the
   n-gram window gives the same robustness to surrounding words without that failure.
   `FUZZY_ACCEPT` and above is a match; from `FUZZY_CONFIRM` to `FUZZY_ACCEPT` it is a match
   the agent reads back; below `FUZZY_CONFIRM` it is NOT_FOUND ("medical" scores 80 against
   "medicare", which is why the floor sits above 80). Two payers within `AMBIGUITY_MARGIN`
   points of each other are AMBIGUOUS.

`extract_member_id` reads the ID the way it is spoken (letters, NATO words, digit words,
"double five", "dash") into every possible reading ("oh" is 0 or O) and keeps the first one
the payer's regex accepts; `read_back_digits` spaces it out for the agent to say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from agent.nlu.result import Extraction, Failure, VocabularyError, failed, found
from agent.nlu.spelling import alphanumeric_candidates, spelled_runs
from agent.nlu.text import FILLERS, PhraseIndex, negated, tokens

FUZZY_ACCEPT = 90
FUZZY_CONFIRM = 82
AMBIGUITY_MARGIN = 3
MIN_FUZZY_CHARS = 4
_MAX_NGRAM = 4

#: Words that say "insurance" without naming a payer; never part of a fuzzy n-gram.
_GENERIC = frozenset(
    {"my", "is", "i", "have", "it's", "it", "insurance", "the", "through", "plan", "a", "an"}
    | {"medical", "dental", "vision", "coverage", "card", "work", "job", "employer", "with"}
    | {"and", "of", "got", "use", "its", "we", "our", "on", "from", "um", "uh", "yes", "yeah"}
)
_PAST = (("used", "to"), ("old",), ("previous",), ("previously",), ("was",), ("had",), ("from",))
_NOW = frozenset({"now", "new", "switched", "changed", "current", "currently"})


@dataclass(frozen=True, slots=True)
class Payer:
    """One health plan, as configured in the catalog."""

    id: str
    name: str
    aliases: tuple[str, ...]
    member_id_pattern: str
    government: bool = False
    self_pay: bool = False
    bcbs_licensee: bool = False

    def accepts(self, member_id: str) -> bool:
        """Tell whether a normalised member ID fits this payer's format."""
        return re.fullmatch(self.member_id_pattern, member_id) is not None


@dataclass(frozen=True, slots=True)
class PayerCatalog:
    """The payers an intake recognises (see ``agent/data/payers.yaml`` for the format)."""

    payers: tuple[Payer, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PayerCatalog:
        """Build a catalog from parsed YAML/JSON.

        Raises:
            VocabularyError: The data is not in the documented shape.
        """
        default = str(data.get("default_member_id", r"^[A-Z0-9]{6,15}$"))
        entries = data.get("payers")
        if not isinstance(entries, list) or not entries:
            raise VocabularyError("payer catalog needs a non-empty 'payers' list")
        payers = []
        for entry in entries:
            if not isinstance(entry, dict) or "id" not in entry or "aliases" not in entry:
                raise VocabularyError(f"payer entry needs 'id' and 'aliases': {entry!r}")
            pattern = str(entry.get("member_id", default))
            try:
                re.compile(pattern)
            except re.error as err:
                raise VocabularyError(f"bad member_id pattern for {entry['id']}: {err}") from err
            payers.append(
                Payer(
                    id=str(entry["id"]),
                    name=str(entry.get("name", entry["id"])),
                    aliases=tuple(str(a).lower() for a in entry["aliases"]),
                    member_id_pattern=pattern,
                    government=bool(entry.get("government", False)),
                    self_pay=bool(entry.get("self_pay", False)),
                    bcbs_licensee=bool(entry.get("bcbs_licensee", False)),
                )
            )
        return cls(tuple(payers))

    @classmethod
    def from_yaml(cls, text: str) -> PayerCatalog:
        """Build a catalog from YAML text (JSON is YAML too)."""
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise VocabularyError("payer catalog must be a mapping")
        return cls.from_mapping(data)

    def get(self, payer_id: str) -> Payer:
        """Look a payer up by id.

        Raises:
            KeyError: No such payer.
        """
        for payer in self.payers:
            if payer.id == payer_id:
                return payer
        raise KeyError(payer_id)


@cache
def default_catalog() -> PayerCatalog:
    """The packaged catalog (read once; the catalog is immutable)."""
    text = resources.files("agent.data").joinpath("payers.yaml").read_text(encoding="utf-8")
    return PayerCatalog.from_yaml(text)


@cache
def _index(catalog: PayerCatalog) -> PhraseIndex[Payer]:
    return PhraseIndex((alias, p) for p in catalog.payers for alias in p.aliases)


@cache
def _fuzzy_choices(catalog: PayerCatalog) -> tuple[list[str], list[Payer]]:
    keys: list[str] = []
    owners: list[Payer] = []
    for payer in catalog.payers:
        for alias in payer.aliases:
            key = alias.replace(" ", "").replace("'", "")
            if len(key) >= MIN_FUZZY_CHARS and not payer.self_pay:
                keys.append(key)
                owners.append(payer)
    return keys, owners


def _collapse_spelling(toks: Sequence[str]) -> list[str]:
    """Replace spelled letters by one token: "bee see bee ess" -> "bcbs"."""
    out = list(toks)
    for run in reversed(spelled_runs(toks)):
        out[run.start : run.end] = [run.letters]
    return out


def _in_past(toks: Sequence[str], start: int) -> bool:
    """True for a mention the caller no longer has ("used to have aetna", "from aetna")."""
    window = tuple(toks[max(0, start - 4) : start])
    return any(window[i : i + len(p)] == p for p in _PAST for i in range(len(window) - len(p) + 1))


def match_payer(text: str, catalog: PayerCatalog | None = None) -> Extraction[Payer]:
    """Name the payer a caller means ("um i have blue cross through work" -> BCBS).

    Args:
        text: The caller's utterance.
        catalog: Payers to match against; the packaged list when omitted.

    Returns:
        The payer; AMBIGUOUS (with alternatives) when two are named, NOT_FOUND otherwise.
    """
    cat = catalog or default_catalog()
    toks = [t for t in _collapse_spelling(tokens(text)) if t not in FILLERS]
    raw = _index(cat).scan(toks)
    # "not aetna, cigna": a denial reaches only the mention right after it.
    hits = [
        m
        for k, m in enumerate(raw)
        if m.label.self_pay
        or not negated(toks, m.start, window=min(2, m.start - (raw[k - 1].end if k else 0)))
    ]
    if raw and not hits:
        return failed(Failure.NOT_FOUND, detail="denied")
    current = [m for m in hits if not _in_past(toks, m.start)] or hits
    if current:
        payers = list(dict.fromkeys(m.label for m in current))
        commercial = [p for p in payers if not p.government and not p.self_pay]
        if commercial and len(payers) > len(commercial):
            payers = commercial
        if len(payers) == 1:
            return found(payers[0], 0.97)
        switched = [
            m for m in current if any(t in _NOW for t in toks[max(0, m.start - 4) : m.start])
        ]
        if len({m.label for m in switched}) == 1:
            return found(switched[0].label, 0.85)
        return failed(Failure.AMBIGUOUS, alternatives=tuple(payers))
    return _fuzzy(toks, cat)


def _fuzzy(toks: Sequence[str], cat: PayerCatalog) -> Extraction[Payer]:
    words = [t for t in toks if t not in _GENERIC]
    keys, owners = _fuzzy_choices(cat)
    best: dict[str, tuple[float, Payer]] = {}
    for n in range(1, _MAX_NGRAM + 1):
        for i in range(len(words) - n + 1):
            gram = "".join(words[i : i + n]).replace("'", "")
            if len(gram) < MIN_FUZZY_CHARS:
                continue
            hit = process.extractOne(gram, keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CONFIRM)
            if hit is None:
                continue
            score, payer = float(hit[1]), owners[hit[2]]
            if score > best.get(payer.id, (0.0, payer))[0]:
                best[payer.id] = (score, payer)
    if not best:
        return failed(Failure.NOT_FOUND)
    ranked = sorted(best.values(), key=lambda sp: -sp[0])
    top_score, top = ranked[0]
    if len(ranked) > 1 and top_score - ranked[1][0] < AMBIGUITY_MARGIN:
        return failed(Failure.AMBIGUOUS, alternatives=tuple(p for _, p in ranked[:3]))
    return found(top, top_score / 100 * 0.95, confirm=top_score < FUZZY_ACCEPT, detail="fuzzy")


_LEAD_IN = frozenset(
    {"my", "member", "id", "is", "it's", "its", "it", "number", "the", "insurance", "policy"}
    | {"subscriber", "card", "says", "so", "okay", "ok", "yeah", "yes", "sure", "and", "um"}
    | {"uh", "identification", "medicare", "medicaid", "mbi", "that's", "that", "reads"}
)
_SEPARATORS = frozenset({"dash", "hyphen", "space", "then", "slash", "comma", "and"} | FILLERS)


def _id_tokens(text: str) -> list[str]:
    toks = list(tokens(text))
    start = 0
    while start < len(toks) and (
        toks[start] in _LEAD_IN
        or (toks[start] == "i" and start + 1 < len(toks) and toks[start + 1] == "d")
        or (toks[start] == "d" and start > 0 and toks[start - 1] == "i")
    ):
        start += 1
    body = [t for t in toks[start:] if t not in _SEPARATORS]
    while body and body[-1] in ("thanks", "thank", "you", "please", "it", "that's"):
        if body[-1] == "you" and (len(body) < 2 or body[-2] != "thank"):
            break
        body.pop()
    return body


def extract_member_id(
    text: str, payer: Payer | None = None, catalog: PayerCatalog | None = None
) -> Extraction[str]:
    """Read a member ID from speech and check it against the payer's format.

    Args:
        text: "my member id is a b c one two three four five six" and the like.
        payer: The caller's payer (its regex decides "oh" = 0 or O); any payer's default
            format when ``None``.
        catalog: Only used to find the default format when ``payer`` is ``None``.

    Returns:
        The normalised ID ("ABC123456"), always to be read back; INVALID_FORMAT with the
        best reading in ``alternatives`` when no reading fits the format.
    """
    body = _id_tokens(text)
    if not body:
        return failed(Failure.NOT_FOUND)
    readings = alphanumeric_candidates(body)
    if not readings:
        return failed(Failure.INVALID_FORMAT, detail="unreadable")
    pattern = payer.member_id_pattern if payer else r"^[A-Z0-9]{6,15}$"
    valid = [r for r in readings if re.fullmatch(pattern, r)]
    if not valid:
        return failed(Failure.INVALID_FORMAT, alternatives=(readings[0],), detail="format")
    conf = 0.95 if len(valid) == 1 else 0.8
    return found(valid[0], conf, confirm=True, alternatives=tuple(valid[1:3]))


def read_back_digits(member_id: str) -> str:
    """Space an ID out for text-to-speech: "ABC123" -> "A, B, C, 1, 2, 3"."""
    return ", ".join(ch for ch in member_id.upper() if ch.isalnum())
