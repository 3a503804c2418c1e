"""A whole persona call logged at debug level: none of the patient's PHI reaches the log.

Issue 6 acceptance. A scripted patient (``tests/personas/humana_sore_throat.yaml``, an
invented person whose names are not among the examples the agent's own prompts give, as the
demo patient's emergency contact is) calls ``voiceagent serve`` over real SIP and RTP on
loopback, with ``log_level=debug``: the server then logs every prompt it says (``said``,
including the read-backs of names, numbers and dates) and every answer it heard (``heard``).
The call must produce the record the script expects (so the values really went through the
server), the debug lines must be there and show the redactor at work, and no identifier of
the patient may appear in any line, in any of the forms the redactor is meant to catch:
digits with and without separators, dates written in several ways, names and address words
in any case or spelled letter by letter.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date
from pathlib import Path

import pytest

from agent.patient import SimulatedPatient
from agent.persona import Persona, unmet_expectations
from agent.records import SqliteRecords
from sip.layer import Address
from tests.loopback import voiceagent_serve

PERSONA = Path(__file__).resolve().parents[1] / "personas" / "humana_sore_throat.yaml"
# Identifiers (every line) and symptoms (what the caller said: the agent's own prompts name
# "a cough and a fever" as an example, which is not the caller's PHI).
IDENTIFIERS = (
    "insurance.member_id",
    "demographics.first_name",
    "demographics.last_name",
    "demographics.date_of_birth",
    "demographics.phone",
    "address.street",
    "address.zip_code",
    "address.city",
    "emergency_contact.name",
    "emergency_contact.phone",
)


def digit_forms(digits: str) -> set[str]:
    """A number as a log line might hold it."""
    forms = {digits, " ".join(digits), ", ".join(digits), "-".join(digits)}
    national = digits[-10:]
    if len(national) == 10:
        a, b, c = national[:3], national[3:6], national[6:]
        forms |= {national, f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}"}
    return forms


def word_forms(text: str) -> set[str]:
    """A name or an address as words: whole, each word, spelled out, lower case."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text) if len(w) >= 3]
    forms = {text.lower(), *words}
    for word in words:
        forms |= {" ".join(word), ", ".join(word), "-".join(word)}
    return forms


def date_forms(value: date) -> set[str]:
    """A date of birth written the usual ways (lower case)."""
    month = f"{value:%B}".lower()
    return {
        value.isoformat(),
        f"{value:%m/%d/%Y}",
        f"{value.month}/{value.day}/{value.year}",
        f"{value:%m%d%Y}",
        f"{value:%m-%d-%Y}",
        f"{month} {value.day}, {value.year}",
        f"{month} {value.day} {value.year}",
    }


def phi_forms(persona: Persona, fields: tuple[str, ...]) -> set[str]:
    """Every form of the persona's expected values for ``fields``."""
    forms: set[str] = set()
    for field in fields:
        value = persona.expect[field]
        if field.endswith("date_of_birth"):
            forms |= date_forms(date.fromisoformat(str(value)))
            continue
        text = str(value)
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) >= 4:
            forms |= digit_forms(digits)
        if any(c.isalpha() for c in text):
            forms |= word_forms(text)
    assert persona.caller_id
    return forms | digit_forms(persona.caller_id)


def found(forms: set[str], text: str) -> list[str]:
    """The forms present in ``text`` as whole words (lower case)."""
    lowered = text.lower()
    return sorted(
        f for f in forms if re.search(rf"(?<![a-z0-9]){re.escape(f)}(?![a-z0-9])", lowered)
    )


@pytest.mark.slow
async def test_a_persona_call_at_debug_level_logs_none_of_its_phi(tmp_path: Path) -> None:
    persona = Persona.load(PERSONA)
    env = {
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_DATA_DIR": str(tmp_path),
        "VOICEAGENT_CLINIC_NAME": "Maple Street Clinic",
        "VOICEAGENT_LOG_LEVEL": "debug",
        "VOICEAGENT_LOG_REDACTION": "full",
    }
    with voiceagent_serve(env=env) as server:
        target = Address("udp", "127.0.0.1", server.sip_port)
        patient = SimulatedPatient(persona, f"sip:intake@127.0.0.1:{server.sip_port}", target)
        result = await patient.run(timeout_s=420.0)
        assert result.answered
        await asyncio.to_thread(server.wait_for_event, "record_saved", 1, 15.0)
        await asyncio.to_thread(server.wait_for_event, "call_ended", 1, 15.0)
    store = SqliteRecords(tmp_path / "records.sqlite3")
    try:
        record = store.get(result.call_id)
    finally:
        store.close()
    assert record is not None
    assert unmet_expectations(persona, record) == [], record.model_dump(mode="json")

    lines = [json.loads(line) for line in server.log_lines if line.startswith("{")]
    said = [line for line in lines if line["event"] == "said"]
    heard = [line for line in lines if line["event"] == "heard"]
    # Not vacuous: the debug lines carry the conversation, and the redactor had work to do.
    assert len(said) >= 20 and len(heard) >= 10, (len(said), len(heard))
    assert all(line.get("call_id") == result.call_id and line.get("phase") for line in said)
    tags = re.findall(r"\[(VALUE|DATE|PHONE|NUMBER|ADDRESS|ID)[^\]]*\]", json.dumps(said))
    assert len(tags) >= 10, tags

    everything = "\n".join(server.log_lines)
    leaks = found(phi_forms(persona, IDENTIFIERS), everything)
    assert not leaks, [line for line in server.log_lines if found(set(leaks), line)][:10]
    symptoms = {str(s).lower() for s in persona.expect["complaint.symptoms"]}
    heard_text = json.dumps([line["text"] for line in heard])
    assert not found(symptoms, heard_text), heard_text
