"""The embedded recogniser on real speech: espeak-ng voices through G.711, streamed 20 ms at a time.

The caller audio is espeak-ng (voices en-us+m3 and en-gb, neither the agent's en-us voice nor
the en-us/en-us+f3 voices the recogniser's constants were measured on), resampled to 8 kHz,
padded with 300 ms of line noise at -60 dBFS on each side (an endpointed turn keeps some
silence around the speech) and sent through a μ-law round trip. Every turn goes through the
public streaming API: ``async with stt.start(hints)``, ``feed`` per 20 ms frame, ``finish``.

The levels asserted are the ones measured here, with a little margin; they are what the
dialogue can count on from the embedded recogniser on 8 kHz synthetic speech, and the summary
printed by `test_report` is the table quoted in the change description.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from numpy.typing import NDArray

from agent.providers.base import HintKind, RecognitionHints, SpeechToText, Transcript
from agent.providers.grammars import GrammarSearch, compile_hints
from agent.providers.pocketsphinx_stt import PocketsphinxStt, SpeechRecognitionError, SphinxConfig
from agent.providers.sphinx_recognizer import DecoderKind, Recognizer, RecognizerConfig
from tests.dsp.speech import espeak, to_int16, ulaw_round_trip, white_noise

module_loop = pytest.mark.asyncio(loop_scope="module")
slow = pytest.mark.slow  # the corpus takes 40-70 s to recognise on two cores

VOICES = ("en-us+m3", "en-gb")
FRAME = 160  # 20 ms at 8 kHz

PAYERS = (
    "aetna", "blue cross blue shield", "medicare", "united healthcare", "cigna", "humana",
    "kaiser permanente", "tricare", "medicaid", "self pay",
)  # fmt: skip
DATES = (
    "march third nineteen eighty four",
    "july twenty second nineteen ninety",
    "december first two thousand five",
    "the fifth of may nineteen seventy",
    "october thirty first nineteen sixty two",
    "january fifteenth two thousand eleven",
    "august ninth nineteen fifty seven",
    "february twenty eighth nineteen ninety nine",
)
YES_NO = (
    ("yes", True), ("no", False), ("yeah", True), ("nope", False), ("that's right", True),
    ("no it's not", False), ("correct", True), ("not really", False), ("yes please", True),
    ("wrong", False),
)  # fmt: skip
PHONE_NUMBERS = (
    "five five five one two three four five six seven",
    "six one seven four nine two eight three oh one",
    "eight zero zero two seven seven one nine four six",
    "three one two nine nine eight four four zero two",
    "four one five three six two seven eight nine one",
    "nine seven eight two one oh three three five six",
)
MEMBER_IDS = (
    "w two four six eight one three five",
    "x y z one two three four five six",
    "h k seven seven three one nine",
    "a b nine eight seven six five four",
    "m q two zero one five eight",
    "j four four nine r t six",
)
COMPLAINTS = (
    "i have had a headache and a fever for three days",
    "my chest hurts when i breathe",
    "i have a sore throat and a cough",
    "my back has been hurting since last week",
    "i need a refill of my blood pressure medicine",
    "i feel dizzy and sick to my stomach",
)
OUT_OF_GRAMMAR = (
    "i don't know",
    "can you repeat that please",
    "what did you say",
    "hold on a second",
    "i am not sure about that",
)
YES_WORDS = frozenset({"yes", "yeah", "yep", "correct", "right", "that's", "sure", "okay"})
CARRIER_WORDS = frozenset({"i", "have", "it's", "it", "is", "i've", "got", "my", "i'm", "on"})


def caller_audio(text: str, voice: str) -> NDArray[np.int16]:
    """One endpointed caller turn as it reaches the recogniser: 8 kHz, through PCMU."""
    speech = espeak(text, voice).astype(np.float64)
    pad = np.zeros(2400)  # 300 ms
    signal_ = np.concatenate([pad, speech, pad])
    noisy = signal_ + white_noise(signal_.size, -60.0, seed=len(text))
    return ulaw_round_trip(to_int16(noisy))


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Levenshtein distance over words, and the reference length."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def error_rate(pairs: Sequence[tuple[str, str]]) -> float:
    counts = [word_errors(ref, hyp) for ref, hyp in pairs]
    return sum(e for e, _ in counts) / sum(n for _, n in counts)


@dataclass(frozen=True, slots=True)
class Heard:
    kind: str
    voice: str
    said: str
    transcript: Transcript
    latency_s: float
    in_grammar: bool
    right: bool  # what the dialogue would extract is what was said


async def recognise(
    stt: SpeechToText, hints: RecognitionHints, pcm: NDArray[np.int16]
) -> tuple[Transcript, float]:
    async with stt.start(hints) as stream:
        for start in range(0, pcm.size, FRAME):
            await stream.feed(pcm[start : start + FRAME])
        started = time.perf_counter()
        transcript = await stream.finish()
        return transcript, time.perf_counter() - started


def _meaning(kind: str, text: str) -> str:
    words = text.split()
    if kind == "payer":
        words = [w for w in words if w not in CARRIER_WORDS and w != "insurance"]
    if kind == "date":
        words = [w for w in words if w not in {"the", "of", "and"}]
    if kind in ("digits", "member"):
        words = ["zero" if w == "oh" else w for w in words]
    return " ".join(words)


def _right(kind: str, said: str, text: str) -> bool:
    if kind == "yesno":
        return bool(text) and (text.split()[0] in YES_WORDS) == dict(YES_NO)[said]
    return _meaning(kind, said) == _meaning(kind, text)


GRAMMAR_SETS: dict[str, tuple[RecognitionHints, Sequence[str]]] = {
    "payer": (RecognitionHints.one_of(HintKind.PAYER_NAMES, PAYERS), PAYERS),
    "date": (RecognitionHints.of(HintKind.DATE), DATES),
    "yesno": (RecognitionHints.yes_no(), [said for said, _ in YES_NO]),
    "digits": (RecognitionHints.digits(10, 10), PHONE_NUMBERS),
    "member": (RecognitionHints.alphanumeric(6, 10), MEMBER_IDS),
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stt() -> AsyncIterator[PocketsphinxStt]:
    # One block in flight at most: when the last frame has been fed, everything before it
    # has been decoded, as in a real-time call, so finish() latency is what a caller waits.
    provider = await PocketsphinxStt.open(SphinxConfig(max_pending_blocks=1))
    yield provider
    await provider.aclose()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def heard(stt: PocketsphinxStt) -> list[Heard]:
    jobs: list[tuple[str, RecognitionHints, str, str, bool]] = []
    for kind, (hints, phrases) in GRAMMAR_SETS.items():
        jobs += [(kind, hints, said, voice, True) for said in phrases for voice in VOICES]
        if kind != "member":
            jobs += [
                (kind, hints, said, voice, False) for said in OUT_OF_GRAMMAR for voice in VOICES
            ]
    jobs += [
        ("free", RecognitionHints.free_speech(), s, v, True) for s in COMPLAINTS for v in VOICES
    ]

    # Synthesis first (espeak-ng runs as a subprocess per phrase), off the loop and in parallel.
    audio = dict(
        zip(
            [(said, voice) for _, _, said, voice, _ in jobs],
            await asyncio.gather(
                *(asyncio.to_thread(caller_audio, said, voice) for _, _, said, voice, _ in jobs)
            ),
            strict=True,
        )
    )

    async def one(job: tuple[str, RecognitionHints, str, str, bool]) -> Heard:
        kind, hints, said, voice, in_grammar = job
        transcript, latency = await recognise(stt, hints, audio[(said, voice)])
        right = in_grammar and _right(kind, said, transcript.text)
        return Heard(kind, voice, said, transcript, latency, in_grammar, right)

    async def lane(lane_jobs: list[tuple[str, RecognitionHints, str, str, bool]]) -> list[Heard]:
        return [await one(job) for job in lane_jobs]

    # One lane per worker: two grammar workers and one language-model worker.
    grammar_jobs = [job for job in jobs if job[0] != "free"]
    lanes = await asyncio.gather(
        lane(grammar_jobs[0::2]),
        lane(grammar_jobs[1::2]),
        lane([j for j in jobs if j[0] == "free"]),
    )
    results = [h for lane_result in lanes for h in lane_result]
    return results


def _of(heard: list[Heard], kind: str, in_grammar: bool = True) -> list[Heard]:
    return [h for h in heard if h.kind == kind and h.in_grammar == in_grammar]


def _right_share(items: list[Heard]) -> float:
    return sum(h.right for h in items) / len(items)


def _wer(items: list[Heard]) -> float:
    """Word errors on what the answer means (payer carriers and "the", "of", "and" left out)."""
    return error_rate(
        [(_meaning(h.kind, h.said), _meaning(h.kind, h.transcript.text)) for h in items]
    )


def _auc(right: list[float], wrong: list[float]) -> float:
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


@slow
@module_loop
async def test_report(stt: PocketsphinxStt, heard: list[Heard]) -> None:
    lines = [f"workers ready in {stt.load_s:.2f} s"]
    for kind in ("payer", "date", "yesno", "digits", "member", "free"):
        items = _of(heard, kind)
        latencies = sorted(h.latency_s for h in items)
        raw = error_rate([(h.said, h.transcript.text) for h in items])
        lines.append(
            f"{kind:7s} right {_right_share(items):5.0%}  WER {_wer(items):5.0%} (raw {raw:4.0%})  "
            f"finish->transcript p50 {1000 * statistics.median(latencies):5.1f} ms "
            f"max {1000 * latencies[-1]:5.1f} ms  n={len(items)}"
        )
    graded = [h for h in heard if h.kind not in ("free",)]
    right = [h.transcript.confidence for h in graded if h.right]
    wrong = [h.transcript.confidence for h in graded if not h.right]
    lines.append(
        f"confidence right {statistics.mean(right):.2f} (n={len(right)}) "
        f"wrong {statistics.mean(wrong):.2f} (n={len(wrong)}) AUC {_auc(right, wrong):.3f}"
    )
    for h in heard:
        lines.append(
            f"  {h.kind:6s} {h.voice:8s} {'ok ' if h.right else '-- '}{h.said!r} -> "
            f"{h.transcript.text!r} {h.transcript.confidence:.2f}"
        )
    print("\n".join(lines))
    assert len(heard) == 2 * (10 + 8 + 10 + 6 + 6 + 6) + 2 * 5 * 4


# Measured on this machine (deterministic: fixed audio, and every turn starts from the same
# decoder state): payer 80 % right / 19 % WER, date 41 % WER, yes/no 95 % right, ten digits
# 36 % WER, member IDs 73 % symbol errors, free speech 81 % WER; PEERS.md's ballpark for
# pocketsphinx on 8 kHz espeak-ng is 0 % / 0 % / 17 % / 64 % / - / 85-92 %.


@slow
@module_loop
async def test_payer_names_are_recognised(heard: list[Heard]) -> None:
    payers = _of(heard, "payer")
    assert _right_share(payers) >= 0.70
    assert _wer(payers) <= 0.30


@slow
@module_loop
async def test_dates_of_birth_are_mostly_recognised(heard: list[Heard]) -> None:
    # A date drawn at random from the grammar would get nearly every word wrong.
    assert _wer(_of(heard, "date")) <= 0.50


@slow
@module_loop
async def test_yes_and_no_are_told_apart(heard: list[Heard]) -> None:
    answers = _of(heard, "yesno")
    assert _right_share(answers) >= 0.85  # the polarity the dialogue acts on
    assert _wer(answers) <= 0.35  # "yeah" for "yes" counts as a word error here


@slow
@module_loop
async def test_ten_digit_numbers(heard: list[Heard]) -> None:
    numbers = _of(heard, "digits")
    assert all(len(h.transcript.text.split()) == 10 for h in numbers if h.transcript.text)
    assert _wer(numbers) <= 0.45


@slow
@module_loop
async def test_member_ids_of_letters_and_digits(heard: list[Heard]) -> None:
    ids = _of(heard, "member")
    assert all(6 <= len(h.transcript.text.split()) <= 10 for h in ids if h.transcript.text)
    assert _wer(ids) <= 0.82


@slow
@module_loop
async def test_free_speech_chief_complaint_with_the_language_model(heard: list[Heard]) -> None:
    complaints = _of(heard, "free")
    assert all(h.transcript.text for h in complaints)
    assert _wer(complaints) <= 0.88


@slow
@module_loop
async def test_confidence_separates_right_answers_from_wrong_ones(heard: list[Heard]) -> None:
    graded = [h for h in heard if h.kind != "free"]
    right = [h.transcript.confidence for h in graded if h.right]
    wrong = [h.transcript.confidence for h in graded if not h.right]
    assert statistics.mean(right) - statistics.mean(wrong) >= 0.35
    assert _auc(right, wrong) >= 0.88
    # What the dialogue does with 0.5 as its bar: accept most right answers, and confirm or
    # re-ask most wrong ones and nearly everything said outside the grammar.
    assert sum(c >= 0.5 for c in right) / len(right) >= 0.55
    assert sum(c < 0.5 for c in wrong) / len(wrong) >= 0.85
    off_script = [h.transcript.confidence for h in graded if not h.in_grammar]
    assert sum(c < 0.5 for c in off_script) / len(off_script) >= 0.85
    assert all(0.0 <= h.transcript.confidence <= 1.0 for h in heard)


@slow
@module_loop
async def test_transcript_follows_finish_quickly(heard: list[Heard]) -> None:
    # Streaming keeps the decoder level with the audio, so finish() only closes the turn.
    # Decoding a whole turn after the fact would take 100-300 ms per grammar turn and
    # 0.7-1 s per free-speech turn here; measured p50s are 15-30 ms and 35-50 ms (about
    # double that on a loaded machine).
    grammar = sorted(h.latency_s for h in heard if h.kind != "free")
    free = sorted(h.latency_s for h in _of(heard, "free"))
    assert statistics.median(grammar) <= 0.060
    assert grammar[-1] <= 0.250
    assert statistics.median(free) <= 0.150
    assert all(h.transcript.is_final for h in heard)
    assert all(h.transcript.audio_s > 0.6 for h in heard)


# --- grammars ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lexicon() -> Recognizer:
    return Recognizer(DecoderKind.GRAMMAR)


ALL_KINDS = [
    RecognitionHints.yes_no(),
    RecognitionHints.digits(3, 5),
    RecognitionHints.alphanumeric(6, 10),
    RecognitionHints.of(HintKind.NUMBER),
    RecognitionHints.of(HintKind.DATE),
    RecognitionHints.of(HintKind.NAME_SPELLING),
    RecognitionHints.one_of(HintKind.PAYER_NAMES, PAYERS),
    RecognitionHints.one_of(HintKind.CHOICE, ["monday at nine", "tuesday at two thirty"]),
]


@pytest.mark.parametrize("hints", ALL_KINDS, ids=lambda h: h.kind.name)
def test_every_grammar_word_can_be_pronounced(lexicon: Recognizer, hints: RecognitionHints) -> None:
    search = compile_hints(hints, lexicon)
    assert isinstance(search, GrammarSearch)
    body = search.jsgf.split("\n", 2)[2]
    tokens = {t for t in body.replace(";", " ").split() if t[0].isalpha() or t[0] == "'"}
    tokens.discard("public")
    added = dict(search.words)
    assert tokens, search.jsgf
    assert [t for t in tokens if lexicon.lookup_word(t) is None and t not in added] == []
    lexicon.begin(hints)  # pocketsphinx accepts the grammar
    lexicon.abort()


def test_payer_names_missing_from_cmudict_are_mapped_or_dropped() -> None:
    fresh = Recognizer(DecoderKind.GRAMMAR)  # a dictionary no grammar has added words to
    names = ["tricare", "highmark", "wellcare", "hmo", "xqzvt plan", "aetna"]
    search = compile_hints(RecognitionHints.one_of(HintKind.PAYER_NAMES, names), fresh)
    assert isinstance(search, GrammarSearch)
    assert dict(search.words) == {
        "tricare": "T R AY K EH R",  # the hand-written table
        "highmark": "HH AY M AA R K",  # "high" + "mark"
        "wellcare": "W EH L K EH R",  # "well" + "care"
        "hmo": "EY CH EH M OW",  # said as letters
    }
    assert search.dropped == ("xqzvt plan",)
    assert "xqzvt" not in search.jsgf


def test_digit_grammar_holds_exactly_the_allowed_lengths(lexicon: Recognizer) -> None:
    search = compile_hints(RecognitionHints.digits(3, 5), lexicon)
    assert isinstance(search, GrammarSearch)
    top = "( <digit> <digit> <digit> [ <digit> [ <digit> ] ] ) | <command>"
    assert f"public <answer> = {top};" in search.jsgf
    assert "<command> = ( go back ) | representative | operator;" in search.jsgf


def test_equal_hints_share_one_search(lexicon: Recognizer) -> None:
    first = compile_hints(RecognitionHints.one_of(HintKind.CHOICE, ["a b", "c"]), lexicon)
    again = compile_hints(RecognitionHints.one_of(HintKind.CHOICE, ["A B", "c"]), lexicon)
    other = compile_hints(RecognitionHints.one_of(HintKind.CHOICE, ["a b"]), lexicon)
    assert isinstance(first, GrammarSearch) and isinstance(other, GrammarSearch)
    assert first == again and first.name != other.name


def test_hints_reject_impossible_shapes(lexicon: Recognizer) -> None:
    with pytest.raises(ValueError, match="1 <= min <= max"):
        RecognitionHints.digits(5, 3)
    with pytest.raises(ValueError, match="at least one phrase"):
        RecognitionHints.one_of(HintKind.PAYER_NAMES, [])
    with pytest.raises(ValueError, match="can be pronounced"):
        compile_hints(RecognitionHints.one_of(HintKind.CHOICE, ["zzxqvb"]), lexicon)


# --- the stream ---------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def small() -> AsyncIterator[PocketsphinxStt]:
    provider = await PocketsphinxStt.open(
        SphinxConfig(grammar_workers=1, language_model_workers=1, acquire_timeout_s=0.3)
    )
    yield provider
    await provider.aclose()


@module_loop
async def test_interim_results_arrive_before_the_final_one(small: PocketsphinxStt) -> None:
    pcm = caller_audio(COMPLAINTS[0], "en-gb")
    async with small.start(RecognitionHints.free_speech()) as stream:
        seen: list[Transcript] = []

        async def read() -> None:
            async for transcript in stream.interim():
                seen.append(transcript)

        reader = asyncio.create_task(read())
        for start in range(0, pcm.size, FRAME):
            await stream.feed(pcm[start : start + FRAME])
        final = await stream.finish()
        await asyncio.wait_for(reader, 5)
    assert len(seen) >= 3  # one every 0.5 s of audio, when the text changed
    assert not any(t.is_final for t in seen[:-1])
    assert seen[-1] == final and final.is_final
    assert await stream.finish() == final  # idempotent
    with pytest.raises(SpeechRecognitionError, match="after the turn ended"):
        await stream.feed(pcm[:FRAME])


async def _collect(transcripts: AsyncIterator[Transcript]) -> list[Transcript]:
    return [t async for t in transcripts]


@module_loop
async def test_leaving_a_turn_unfinished_frees_its_worker(small: PocketsphinxStt) -> None:
    pcm = caller_audio("medicare", "en-us+m3")
    payers = RecognitionHints.one_of(HintKind.PAYER_NAMES, PAYERS)
    for _ in range(3):  # barge-in: the turn is dropped half way, three times over
        async with small.start(payers) as stream:
            await stream.feed(pcm[: pcm.size // 2])
        partials = await asyncio.wait_for(_collect(stream.interim()), 5)  # the iterator ends
        assert not any(t.is_final for t in partials)
    transcript, _ = await recognise(small, payers, pcm)  # the one worker is free again
    assert transcript.text == "medicare"


@module_loop
async def test_a_busy_pool_refuses_within_its_timeout(small: PocketsphinxStt) -> None:
    async with small.start(RecognitionHints.yes_no()):
        started = time.perf_counter()
        with pytest.raises(SpeechRecognitionError, match="no idle recogniser"):
            async with small.start(RecognitionHints.yes_no()):
                pass
        assert 0.25 <= time.perf_counter() - started < 2.0


@module_loop
async def test_hints_it_cannot_pronounce_fail_the_turn_not_the_worker(
    small: PocketsphinxStt,
) -> None:
    with pytest.raises(SpeechRecognitionError, match="refused the hints"):
        async with small.start(RecognitionHints.one_of(HintKind.CHOICE, ["zzxqvb"])):
            pass
    transcript, _ = await recognise(small, RecognitionHints.yes_no(), caller_audio("no", "en-gb"))
    assert transcript.text in ("no", "nope")


@module_loop
async def test_feed_takes_only_8khz_int16_mono(small: PocketsphinxStt) -> None:
    async with small.start(RecognitionHints.yes_no()) as stream:
        with pytest.raises(TypeError):
            await stream.feed(np.zeros(160, dtype=np.float32))
        with pytest.raises(TypeError):
            await stream.feed(np.zeros((2, 160), dtype=np.int16))


@module_loop
async def test_line_noise_alone_is_not_an_answer(small: PocketsphinxStt) -> None:
    noise = ulaw_round_trip(to_int16(white_noise(8000 * 2, -60.0, seed=9)))
    transcript, _ = await recognise(small, RecognitionHints.yes_no(), noise)
    assert transcript.text == "" or transcript.confidence < 0.3


@module_loop
async def test_decoding_never_stalls_the_event_loop() -> None:
    # pocketsphinx keeps the GIL while it decodes: with the second pass, the end of a
    # free-speech turn holds it for 270-480 ms, which would stall every call's 20 ms media
    # tick if the decoder ran in a thread. In a worker process the loop never waits for it.
    config = SphinxConfig(
        grammar_workers=1, language_model_workers=1, recognizer=RecognizerConfig(second_pass=True)
    )
    provider = await PocketsphinxStt.open(config)
    pcm = caller_audio(COMPLAINTS[1], "en-us+m3")
    gaps: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        last = time.perf_counter()
        while not stop.is_set() and len(gaps) < 10_000_000:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    try:
        prober = asyncio.create_task(probe())
        transcript, latency = await recognise(provider, RecognitionHints.free_speech(), pcm)
        stop.set()
        await prober
    finally:
        await provider.aclose()
    print(f"second-pass finish {1000 * latency:.0f} ms, longest loop gap {1000 * max(gaps):.1f} ms")
    assert transcript.text
    assert latency > 0.150  # the second pass did run
    assert max(gaps) < 0.150


@module_loop
async def test_a_dead_worker_fails_its_turn_and_is_replaced() -> None:
    before = {p.pid for p in multiprocessing.active_children()}
    provider = await PocketsphinxStt.open(SphinxConfig(grammar_workers=1, language_model_workers=1))
    try:
        mine = [p for p in multiprocessing.active_children() if p.pid not in before]
        assert len(mine) == 2
        pcm = caller_audio("cigna", "en-us+m3")
        hints = RecognitionHints.one_of(HintKind.PAYER_NAMES, PAYERS)
        async with provider.start(hints) as stream:
            await stream.feed(pcm[:FRAME])
            for process in mine:
                assert process.pid is not None
                os.kill(process.pid, signal.SIGKILL)
            with pytest.raises(SpeechRecognitionError):
                for start in range(0, pcm.size, FRAME):
                    await stream.feed(pcm[start : start + FRAME])
                await stream.finish()
        transcript, _ = await recognise(provider, hints, pcm)  # a fresh worker took over
        assert transcript.text == "cigna"
    finally:
        await provider.aclose()


KILLED_SERVER = """
import asyncio, multiprocessing, os, signal
from agent.providers.pocketsphinx_stt import PocketsphinxStt

async def main():
    await PocketsphinxStt.open()
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    asyncio.run(main())
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_workers_exit_when_their_server_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(KILLED_SERVER)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == -signal.SIGKILL
    children = [int(pid) for pid in result.stdout.split()]
    assert len(children) >= 3  # two grammar workers, one language-model worker
    deadline = time.monotonic() + 5.0
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)  # a real process exiting: bounded poll
    assert not any(_running(pid) for pid in children)
