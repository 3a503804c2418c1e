"""The loopback server's "model": our own rule-based extractors, answering in the model's forms.

A test double, and it says so: it reads the caller's words (the user message) with the phase
rules' own extractors, picked by the schema name of the request, and answers in the requested
JSON schema, or with a tool call where a real model would act (look up a payer, validate a
member ID, book or find a slot, transfer). It is right exactly when the rules are, which is
what a persona test needs; wrong answers on purpose come from `Behaviour.forced` in
`tests.cloud.openai_server`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from agent import understanding as nlu
from agent.nlu.complaint import ChiefComplaint, Severity
from agent.nlu.emergency_contact import EmergencyContact
from agent.nlu.insurance import Payer
from agent.nlu.numbers import words_to_int
from agent.nlu.phone import PhoneNumber, PhoneSource
from agent.nlu.text import content, tokens
from agent.phase_rules import default_questions
from agent.questions import Context, Question
from agent.record import IntakeRecord


@dataclass(frozen=True, slots=True)
class Reply:
    """A canned answer: JSON ``content``, or one tool call ``(name, arguments)``."""

    content: dict[str, Any] | None = None
    tool: tuple[str, dict[str, Any]] | None = None


_QUESTIONS: dict[str, Question] = {
    re.sub(r"[^a-zA-Z0-9_-]", "_", q.key): q for qs in default_questions().values() for q in qs
}
_PAYER_IN_PROMPT = re.compile(r"The caller's insurance is ([^.]+)\.")


def scripted_reply(request: dict[str, Any], acknowledgements: bool = True) -> Reply:
    """What the scripted model answers: our own extractors' reading, in the requested form."""
    system = next((m["content"] for m in request["messages"] if m["role"] == "system"), "")
    user = next((m["content"] for m in reversed(request["messages"]) if m["role"] == "user"), "")
    schema = (request.get("response_format") or {}).get("json_schema", {})
    name = schema.get("name", "")
    properties = list(schema.get("schema", {}).get("properties", {}))
    if nlu.intent(user) is nlu.Intent.OPERATOR:
        return Reply(tool=("transfer_to_staff", {}))
    values = _read(name, user, system)
    if isinstance(values, Reply):
        return values
    ack = (
        "I'm sorry to hear that."
        if acknowledgements and name == "complaint_description" and values.get("symptoms")
        else ""
    )
    return Reply(
        content={p: values.get(p, ack if p == "acknowledgement" else None) for p in properties}
    )


def _read(name: str, user: str, system: str) -> dict[str, Any] | Reply:
    if name == "confirm":
        answer = nlu.yes_no(user)
        return {"answer": "unclear" if answer is None else ("yes" if answer else "no")}
    if name == "summary":
        return {
            "all_correct": nlu.yes_no(user) is True,
            "correction": None if nlu.yes_no(user) else user,
        }
    if name == "scheduling_slot":
        words = content(tokens(user))
        number = words_to_int(words) if len(words) == 1 else None
        return (
            Reply(tool=("book_slot", {"option": number}))
            if number
            else Reply(tool=("find_slot", {"when": user}))
        )
    question = _QUESTIONS.get(name)
    if question is None:
        return {}
    found = question.extract(user, _context(system)).value
    if found is None:
        return {}
    return _as_json(name, found)


def _context(system: str) -> Context:
    record = IntakeRecord(call_id="scripted-model", started_at=datetime.now())
    payer = _PAYER_IN_PROMPT.search(system)
    if payer is not None:
        insurance = record.insurance.model_copy(update={"payer": payer.group(1)})
        record = record.model_copy(update={"insurance": insurance})
    # A placeholder caller ID: "this number" then reads as the calling number, which the
    # scripted model answers with use_calling_number (it never sees the real one).
    return Context(today=date.today(), now=datetime.now(), caller_id="+12025550100", record=record)


def _as_json(name: str, value: Any) -> dict[str, Any] | Reply:
    if isinstance(value, Payer):
        return Reply(tool=("lookup_payer", {"name": value.name}))
    if name == "insurance_member_id":
        return Reply(tool=("validate_member_id", {"member_id": str(value)}))
    if isinstance(value, ChiefComplaint):
        return {"symptoms": [s.name for s in value.symptoms], "duration_days": value.duration_days}
    if isinstance(value, Severity):
        return {"severity": value.score}
    if isinstance(value, PhoneNumber):
        if value.source is PhoneSource.CALLER_ID:
            return {"phone": None, "use_calling_number": True}
        return {"phone": value.e164[-10:], "use_calling_number": False}
    if isinstance(value, EmergencyContact):
        person = value.name
        said = f"{person.first} {person.last}" if person is not None else None
        return {"relationship": value.relationship_word, "name": said}
    if name == "emergency_contact_name":
        return {"name": f"{value.first} {value.last}"}
    if name == "address_street":
        return {"street": value.street}
    if name == "address_zip_code":
        return {"zip_code": value.zip_code}
    if name == "pharmacy":
        return {"pharmacy": value.name, "location": value.location}
    if isinstance(value, date):
        return {"date_of_birth": value.isoformat()}
    prop = name.split("_", 1)[1] if name.startswith(("demographics_", "complaint_")) else name
    return {prop: value}
