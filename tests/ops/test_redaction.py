"""PHI redaction of log lines (issue 6, item 3): patterns, per-call values, levels, tracebacks.

The lines are produced by the real structlog configuration of `agent.logs` (JSON on stderr,
captured by pytest); the invented patient's values are registered as the conversation would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date

import pytest
import structlog

from agent.logs import CALL_VALUES, configure_logging
from agent.redaction import CallValues, RedactionLevel, Redactor, values_of

# An invented patient (never a real person).
PATIENT = {
    "first_name": "Rosalind",
    "last_name": "Okafor",
    "date_of_birth": date(1979, 11, 23),
    "phone": "+16175550173",
    "street": "48 Juniper Lane",
    "zip_code": "02446",
    "member_id": "XKW482913570",
    "symptoms": ["wheezing"],
}


def _full(call_id: str = "call-1") -> Redactor:
    values = CallValues()
    values.add(call_id, values_of(PATIENT))
    return Redactor(RedactionLevel.FULL, values)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("call me at 617-555-0173", "[PHONE]"),
        ("call me at (617) 555 0173", "[PHONE]"),
        ("call me at +1 617.555.0173", "[PHONE]"),
        ("ssn 123-45-6789", "[SSN]"),
        ("write to pat.doe@example.org", "[EMAIL]"),
        ("born 1979-11-23", "[DATE]"),
        ("born 11/23/1979", "[DATE]"),
        ("I have November 23, 1979.", "[DATE]"),
        ("november twenty third", "[DATE]"),
        ("the 23rd of November", "[DATE]"),
        ("I live at 12 Elm Street", "[ADDRESS]"),
        ("forty two maple avenue", "[ADDRESS]"),
        ("member ABC1234567", "[ID]"),
        ("number 4 4 1 2 3 4 5 6", "[NUMBER]"),
        ("four four one two three", "[NUMBER]"),
    ],
)
def test_patterns_catch_phi_nobody_collected_yet(text: str, kind: str) -> None:
    out = Redactor(RedactionLevel.FULL, CallValues()).redact_text(text)
    assert kind in out, out
    assert not any(ch.isdigit() for ch in out.split(kind)[0][-3:]), out


@pytest.mark.parametrize(
    "text",
    [
        "I have Rosalind Okafor, is that right?",
        "heard: rosalind okafor",
        "spelled R O S A L I N D",
        "spelled o-k-a-f-o-r",
        "the number is 6 1 7 5 5 5 0 1 7 3",
        "6175550173",
        "member X, K, W, 4, 8, 2, 9, 1, 3, 5, 7, 0",
        "member xkw482913570",
        "zip 0 2 4 4 6",
        "48 juniper lane",
        "i have been wheezing since monday",
        "dob 11231979",
    ],
)
def test_the_calls_own_values_are_redacted_in_any_case_and_spacing(text: str) -> None:
    out = _full().redact_text(text, "call-1")
    lowered = out.lower()
    for word in ("rosalind", "okafor", "juniper", "wheezing", "xkw", "0173", "1979", "02446"):
        assert word not in lowered.replace(" ", ""), out
    assert "[" in out


def test_a_line_of_no_call_is_checked_against_every_call_in_progress() -> None:
    values = CallValues()
    values.add("a", ["Rosalind"])
    values.add("b", ["Okafor"])
    out = Redactor(RedactionLevel.FULL, values).redact_text("rosalind okafor")
    assert out == "[VALUE] [VALUE]"
    values.forget("a")
    assert Redactor(RedactionLevel.FULL, values).redact_text("rosalind", "b") == "rosalind"


def test_partial_keeps_two_digits_or_a_first_letter_and_never_the_value() -> None:
    values = CallValues()
    values.add("c", values_of(PATIENT))
    partial = Redactor(RedactionLevel.PARTIAL, values)
    assert partial.redact_text("call 617-555-0173", "c") == "call [PHONE ..73]"
    assert partial.redact_text("hello Rosalind", "c") == "hello [VALUE R.]"
    assert partial.redact_text("id XKW482913570", "c") == "id [ID ..70]"


def test_our_own_figures_are_left_alone() -> None:
    redactor = _full()
    for text in ("127.0.0.1:5060", "codec PCMU ptime 20", "transaction timed out (timer B)"):
        assert redactor.redact_text(text, "call-1") == text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo `configure_logging` (which a test calls itself: capsys swaps stderr at the call)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    CALL_VALUES.forget("call-9")
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _read(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_every_line_carries_the_bound_context_and_no_value_of_the_call(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", "full")
    CALL_VALUES.add("call-9", values_of(PATIENT))
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(call_id="call-9", phase="DEMOGRAPHICS"):
        log.debug("said", text="I have Rosalind Okafor, born November 23, 1979.")
        log.info("heard", text="okafor", nested={"list": ["6175550173", 3]})
        try:
            raise ValueError("no payer matches 'XKW482913570' for okafor")
        except ValueError:
            log.exception("extraction_failed")
        logging.getLogger("uvicorn.error").error("client said %s", "rosalind 617 555 0173")
    lines = _read(capsys)
    assert [line["event"] for line in lines[:3]] == ["said", "heard", "extraction_failed"]
    for line in lines[:3]:
        assert line["call_id"] == "call-9" and line["phase"] == "DEMOGRAPHICS"
    text = json.dumps(lines).lower()
    for secret in ("rosalind", "okafor", "1979", "6175550173", "617 555 0173", "xkw482913570"):
        assert secret not in text, text
    assert "ValueError" in str(lines[2]["exception"])  # the traceback stays, redacted
    assert lines[3]["event"] == "client said [VALUE] [PHONE]"
    assert lines[1]["nested"] == {"list": ["[PHONE]", 3]}


def test_a_city_read_back_with_its_state_and_names_inside_extraction_values() -> None:
    from agent.nlu.demographics import PersonName

    values = CallValues()
    values.add("c", values_of({"pending": PersonName(first="Odalys", last="Brennan")}))
    redactor = Redactor(RedactionLevel.FULL, values)
    assert redactor.redact_text("That's Cambridge, MA, 02139.") == "That's [ADDRESS], [NUMBER]."
    assert redactor.redact_text("I have Odalys Brennan.", "c") == "I have [VALUE] [VALUE]."
    assert redactor.redact_text("IL is a state; is that OK?") == "IL is a state; is that OK?"
