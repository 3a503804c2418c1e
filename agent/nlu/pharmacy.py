"""The patient's pharmacy: chain (or an independent's name) and where it is.

Theory of operation
-------------------
Chains come from ``agent/data/pharmacies.yaml``: exact aliases leftmost-longest, then
rapidfuzz ``fuzz.ratio`` >= `FUZZY_ACCEPT` on one-to-three word n-grams ("walgrens"). An
independent pharmacy is the words before "pharmacy", "drug(s)" or "apothecary" ("main street
family pharmacy"). The location is what follows "on", "at", "in", "near", "by", "off" or
"across from" after the name ("the cvs on elm street"); "the corner of X and Y" or "X and Y"
after "on" gives cross streets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml
from rapidfuzz import fuzz, process

from agent.nlu.result import Extraction, Failure, failed, found
from agent.nlu.text import PhraseIndex, content, title_name, tokens

FUZZY_ACCEPT = 85

_LOCATION_CUES = ("across from", "next to", "on", "at", "in", "near", "by", "off", "over on")
_PHARMACY_WORDS = frozenset({"pharmacy", "drug", "drugs", "drugstore", "apothecary", "chemist"})
_STOP = frozenset(
    {"my", "the", "is", "it's", "i", "use", "go", "to", "we", "usually", "a", "one", "its"}
    | {"pharmacy", "um", "uh", "it", "at", "on", "that", "there", "just", "our", "local"}
)


@dataclass(frozen=True, slots=True)
class Pharmacy:
    """A pharmacy: ``chain`` is None for an independent one."""

    name: str
    chain: str | None
    location: str | None
    cross_streets: tuple[str, str] | None = None


@cache
def chains() -> Mapping[str, tuple[str, ...]]:
    """Chain name -> aliases (from ``agent/data/pharmacies.yaml``)."""
    text = resources.files("agent.data").joinpath("pharmacies.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {str(k): tuple(str(a) for a in v) for k, v in data["chains"].items()}


@cache
def _index() -> PhraseIndex[str]:
    return PhraseIndex((alias, chain) for chain, aliases in chains().items() for alias in aliases)


@cache
def _fuzzy_keys() -> tuple[list[str], list[str]]:
    keys, owners = [], []
    for chain, aliases in chains().items():
        for alias in aliases:
            key = alias.replace(" ", "").replace("'", "")
            if len(key) >= 5:
                keys.append(key)
                owners.append(chain)
    return keys, owners


def _exact_chain(toks: Sequence[str]) -> tuple[str, int, int, float] | None:
    hits = _index().scan(toks)
    if hits:
        return hits[0].label, hits[0].start, hits[0].end, 0.95
    return None


def _fuzzy_chain(toks: Sequence[str]) -> tuple[str, int, int, float] | None:
    keys, owners = _fuzzy_keys()
    best: tuple[str, int, int, float] | None = None
    for n in (1, 2, 3):
        for i in range(len(toks) - n + 1):
            gram = "".join(toks[i : i + n]).replace("'", "")
            if len(gram) < 5:
                continue
            hit = process.extractOne(gram, keys, scorer=fuzz.ratio, score_cutoff=FUZZY_ACCEPT)
            if hit is not None and (best is None or hit[1] / 100 > best[3]):
                best = (owners[hit[2]], i, i + n, float(hit[1]) / 100)
    return best


def _location(toks: Sequence[str], start: int) -> tuple[str | None, tuple[str, str] | None]:
    rest = list(toks[start:])
    for k in range(len(rest)):
        for cue in _LOCATION_CUES:
            key = tuple(cue.split())
            if tuple(rest[k : k + len(key)]) == key:
                place = [t for t in rest[k + len(key) :] if t not in ("um", "uh")]
                if place[:3] == ["the", "corner", "of"]:
                    place = place[3:]
                if not place:
                    return None, None
                text = " ".join(place)
                if "and" in place[1:-1]:
                    j = place.index("and", 1)
                    a, b = " ".join(place[:j]), " ".join(place[j + 1 :])
                    return _title(f"{a} and {b}"), (_title(a), _title(b))
                return _title(text), None
    return None, None


def _title(text: str) -> str:
    return " ".join(w if w in ("and", "of", "the") else title_name(w) for w in text.split())


def extract_pharmacy(text: str) -> Extraction[Pharmacy]:
    """Read a pharmacy answer ("the walgreens on main and fifth", "smith family pharmacy")."""
    toks = content(tokens(text))
    chain = _exact_chain(toks)
    if chain is not None:
        return _chain_result(toks, chain)
    for i, tok in enumerate(toks):
        if tok in _PHARMACY_WORDS:
            j = i
            while j > 0 and toks[j - 1] not in _STOP:
                j -= 1
            words = list(toks[j:i])
            if words:
                name = _title(" ".join([*words, "pharmacy" if tok != "drugs" else tok]))
                location, cross = _location(toks, i + 1)
                return found(Pharmacy(name, None, location, cross), 0.75)
    chain = _fuzzy_chain(toks)
    if chain is not None:
        return _chain_result(toks, chain)
    return failed(Failure.NOT_FOUND)


def _chain_result(toks: Sequence[str], chain: tuple[str, int, int, float]) -> Extraction[Pharmacy]:
    name, _, end, conf = chain
    location, cross = _location(toks, end)
    return found(Pharmacy(name, name, location, cross), conf, confirm=conf < 0.9)
