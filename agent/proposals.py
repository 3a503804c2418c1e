"""What a language model may propose for the caller's answer, and how a proposal meets the rules.

Theory of operation
-------------------
The model proposes, the rules decide. For each caller turn the runtime asks the model (when
one is configured) to read the caller's words for the one thing the conversation is asking
right now, and nothing else:

* ``request_for(conversation)`` names that thing with a *key*: the current question's key in
  its answer mode (``"insurance.member_id"``), ``"confirm"`` during a read-back, ``"summary"``
  and ``"scheduling.slot"`` in those steps. Steps the rules keep for themselves (urgent advice,
  a callback message taken as said, choosing which part of the record to amend) get no request.
  The request carries a strict JSON schema for that key (structured outputs) and the tools
  (actions) the model may call instead: look up a payer, validate a member ID, find or book a
  slot, transfer to staff.
* The model's JSON, or its tool call, becomes a `Proposal(key, text)`: the proposed value
  rendered in the *canonical words the rule-based extractor for that key already reads*
  ("UnitedHealthcare", "9876543210", "1984-03-03", "2" for the second slot, "representative").
  A tool call is an action *proposed*; carrying it out is the conversation's job, so a turn
  costs one model round trip and the tool's "result" is what the agent says next.
* The proposal rides on the `Transcript` event into the sans-I/O conversation, next to the
  caller's own words. There `agent.dialogue` uses it only if its key is what is being asked
  and the same rule that reads the caller's words accepts it (the payer catalog, the payer's
  member-ID format, date plausibility, the ZIP table, the slots actually offered). Otherwise
  it is dropped and the caller's words go through the rules as if no model were configured.
  The red-flag screen and the global intents always read the caller's own words first.

So the model cannot store a value no rule accepts, skip a read-back (confirmation is decided
by the question, not the model), or move the intake to another phase: it has no way to name
one, and a proposal for another question's key is ignored. Why canonical words rather than a
typed value on the event: the extractors are the validators, and feeding them text keeps one
code path (and one set of tests) for both providers.

The model may also speak: the first property of every schema is a short ``acknowledgement``
("I'm sorry to hear that."), read from the stream as it arrives and handed to speech synthesis
sentence by sentence, within the limits of `agent.acknowledgements`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.conversation import Conversation, Mode
from agent.events import Proposal

__all__ = [
    "TOOLS",
    "TurnRequest",
    "proposal_from_content",
    "proposal_from_tool",
    "request_for",
]

Schema = dict[str, Any]
Render = Callable[[Mapping[str, Any]], str | None]

_NULLABLE_STRING: Schema = {"type": ["string", "null"]}


@dataclass(frozen=True, slots=True)
class _Field:
    """The schema properties for one key and how a filled-in object becomes canonical words."""

    instruction: str
    properties: Mapping[str, Schema]
    render: Render


def _text(name: str, transform: Callable[[str], str] = str.strip) -> Render:
    def render(data: Mapping[str, Any]) -> str | None:
        value = data.get(name)
        return transform(value) if isinstance(value, str) and value.strip() else None

    return render


def _digits(name: str) -> Render:
    return _text(name, lambda v: " ".join(c for c in v if c.isdigit()))


def _number(name: str, unit: str = "") -> Render:
    def render(data: Mapping[str, Any]) -> str | None:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return f"{value:g}{unit}"

    return render


def _phone(data: Mapping[str, Any]) -> str | None:
    if data.get("use_calling_number") is True:
        return "this number"
    return _digits("phone")(data)


def _symptoms(data: Mapping[str, Any]) -> str | None:
    value = data.get("symptoms")
    if not isinstance(value, list):
        return None
    words = " and ".join(s.strip() for s in value if isinstance(s, str) and s.strip())
    # A duration said with the complaint is kept, so it is not asked for again.
    days = _number("duration_days", " days")(data)
    return f"{words} for {days}" if words and days else words or None


def _pharmacy(data: Mapping[str, Any]) -> str | None:
    name, location = data.get("pharmacy"), data.get("location")
    if not isinstance(name, str) or not name.strip():
        return None
    return f"{name.strip()} on {location.strip()}" if isinstance(location, str) else name.strip()


def _relationship(data: Mapping[str, Any]) -> str | None:
    relation = _text("relationship", lambda v: f"my {v.strip().lower()}")(data)
    name = _text("name")(data)
    return f"{relation} {name}" if relation and name else relation


def _yes_no(data: Mapping[str, Any]) -> str | None:
    answer = data.get("answer")
    return answer if answer in ("yes", "no") else None


def _summary(data: Mapping[str, Any]) -> str | None:
    if data.get("all_correct") is True:
        return "yes"
    return _text("correction")(data)


_NAME = "the name as the caller said or spelled it, capitalised, or null"
_PHONE: Schema = {"type": ["string", "null"], "description": "ten digits, or null"}

FIELDS: dict[str, _Field] = {
    "insurance.payer": _Field(
        "the caller's health insurance company, or self pay",
        {"payer": {"type": ["string", "null"], "description": "the payer's name, or null"}},
        _text("payer"),
    ),
    "insurance.member_id": _Field(
        "the member ID on the caller's insurance card",
        {"member_id": {"type": ["string", "null"], "description": "letters and digits only"}},
        _text("member_id", lambda v: "".join(c for c in v if c.isalnum()).upper()),
    ),
    "complaint.description": _Field(
        "the reason for the visit",
        {
            "symptoms": {"type": "array", "items": {"type": "string"}},
            "duration_days": {"type": ["number", "null"], "description": "if said, in days"},
        },
        _symptoms,
    ),
    "complaint.duration_days": _Field(
        "how long the caller has had the symptoms",
        {"duration_days": {"type": ["number", "null"], "description": "in days"}},
        _number("duration_days", " days"),
    ),
    "complaint.severity": _Field(
        "how bad it is, from 1 to 10",
        {"severity": {"type": ["integer", "null"], "minimum": 1, "maximum": 10}},
        _number("severity"),
    ),
    "demographics.first_name": _Field(
        "the caller's first name",
        {"first_name": {"type": ["string", "null"], "description": _NAME}},
        _text("first_name"),
    ),
    "demographics.last_name": _Field(
        "the caller's last name",
        {"last_name": {"type": ["string", "null"], "description": _NAME}},
        _text("last_name"),
    ),
    "demographics.date_of_birth": _Field(
        "the caller's date of birth",
        {"date_of_birth": {"type": ["string", "null"], "description": "YYYY-MM-DD"}},
        _text("date_of_birth"),
    ),
    "demographics.phone": _Field(
        "the best phone number to reach the caller",
        {"phone": _PHONE, "use_calling_number": {"type": "boolean"}},
        _phone,
    ),
    "address.street": _Field(
        "the street address: house number and street",
        {"street": _NULLABLE_STRING},
        _text("street"),
    ),
    "address.zip_code": _Field(
        "the five-digit ZIP code",
        {"zip_code": {"type": ["string", "null"], "description": "five digits"}},
        _digits("zip_code"),
    ),
    "pharmacy": _Field(
        "the pharmacy and, if given, where it is",
        {"pharmacy": _NULLABLE_STRING, "location": _NULLABLE_STRING},
        _pharmacy,
    ),
    "emergency_contact.relationship": _Field(
        "how the emergency contact is related to the caller, and their name if said",
        {
            "relationship": {"type": ["string", "null"], "description": "one word: wife, son..."},
            "name": {"type": ["string", "null"], "description": _NAME},
        },
        _relationship,
    ),
    "emergency_contact.name": _Field(
        "the emergency contact's first and last name",
        {"name": {"type": ["string", "null"], "description": _NAME}},
        _text("name"),
    ),
    "emergency_contact.phone": _Field(
        "the emergency contact's phone number", {"phone": _PHONE}, _digits("phone")
    ),
    "confirm": _Field(
        "whether the caller says the value read back is right",
        {"answer": {"type": "string", "enum": ["yes", "no", "unclear"]}},
        _yes_no,
    ),
    "summary": _Field(
        "whether the summary is all correct, or what the caller corrects",
        {"all_correct": {"type": "boolean"}, "correction": _NULLABLE_STRING},
        _summary,
    ),
    "scheduling.slot": _Field(
        "which offered appointment the caller picks",
        {"option": {"type": ["integer", "null"], "minimum": 1}},
        _number("option"),
    ),
}


def _tool(name: str, description: str, properties: Mapping[str, Schema]) -> Schema:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": dict(properties),
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


#: The actions the model may propose, and the key and canonical words each becomes.
TOOLS: tuple[Schema, ...] = (
    _tool("lookup_payer", "Look up the caller's insurance company.", {"name": {"type": "string"}}),
    _tool(
        "validate_member_id",
        "Check a member ID against the caller's insurance plan.",
        {"member_id": {"type": "string"}},
    ),
    _tool(
        "find_slot",
        "Find the offered appointment matching the caller's wish.",
        {"when": {"type": "string"}},
    ),
    _tool(
        "book_slot",
        "Book an offered appointment by its option number.",
        {"option": {"type": "integer"}},
    ),
    _tool("transfer_to_staff", "The caller wants to talk to a person.", {}),
)

_TOOL_PROPOSALS: dict[str, tuple[str, Render]] = {
    "lookup_payer": ("insurance.payer", _text("name")),
    "validate_member_id": ("insurance.member_id", FIELDS["insurance.member_id"].render),
    "find_slot": ("scheduling.slot", _text("when")),
    "book_slot": ("scheduling.slot", _number("option")),
    "transfer_to_staff": ("intent", lambda _: "representative"),
}

_ACK: Schema = {
    "type": "string",
    "description": "at most one short sentence to say before the next question, with no "
    "names or numbers; usually empty",
}


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What to ask the model about one caller turn.

    Attributes:
        key: what the conversation is asking (`Proposal.key`).
        system: the instructions (PHI: what the agent asked; never logged).
        response_format: the ``json_schema`` response format for ``key``.
        tools: the actions the model may propose instead of answering in JSON.
    """

    key: str
    system: str
    response_format: Schema
    tools: tuple[Schema, ...] = TOOLS

    def messages(self, caller_words: str) -> list[dict[str, str]]:
        """The chat messages for the caller's words."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": caller_words},
        ]


def expected_key(conv: Conversation) -> str | None:
    """What the conversation is asking right now, or None where only the rules read answers."""
    cursor = conv.cursor
    if cursor.mode is Mode.CONFIRM:
        return "confirm"
    if cursor.mode is Mode.SPECIAL:
        return {"slot": "scheduling.slot", "summary": "summary"}.get(cursor.special)
    q = conv.question()
    return q.key if q is not None else None


def request_for(conv: Conversation) -> TurnRequest | None:
    """The model request for the conversation's current question, if the model may propose."""
    key = expected_key(conv)
    if key is None or key not in FIELDS:
        return None
    field = FIELDS[key]
    properties = {"acknowledgement": _ACK, **field.properties}
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    context = ""
    if key == "insurance.member_id" and conv.record.insurance.payer:
        context = f" The caller's insurance is {conv.record.insurance.payer}."
    if key == "scheduling.slot":
        from agent.understanding import say_slot  # the options exactly as they were offered

        offered = conv.cursor.scratch.get("offered", ())
        context = " Options offered: " + "; ".join(
            f"option {i + 1}, {say_slot(s)}" for i, s in enumerate(offered)
        )
    system = (
        f"You read a patient's answer on a phone intake line for {conv.config.clinic_name}. "
        f'The assistant just said: "{conv.cursor.last_prompt}" Extract {field.instruction}.'
        f"{context} Use null where the caller did not say it; never guess. Call a tool "
        "instead when the caller asks for an action."
    )
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", key)
    return TurnRequest(
        key,
        system,
        {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}},
    )


def proposal_from_content(key: str, content: str) -> Proposal | None:
    """The proposal in the model's JSON answer for ``key``; None if there is none."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    field = FIELDS.get(key)
    if field is None or not isinstance(data, dict):
        return None
    text = field.render(data)
    return Proposal(key, text) if text else None


def proposal_from_tool(name: str, arguments: str) -> Proposal | None:
    """The proposal a tool call makes; None for an unknown tool or malformed arguments."""
    entry = _TOOL_PROPOSALS.get(name)
    try:
        data = json.loads(arguments or "{}")
    except ValueError:
        return None
    if entry is None or not isinstance(data, dict):
        return None
    key, render = entry
    text = render(data)
    return Proposal(key, text) if text else None
