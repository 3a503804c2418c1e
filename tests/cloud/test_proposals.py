"""The model proposes, the rules decide: proposals fed to the sans-I/O conversation directly.

No model here: each test hands the conversation a `Transcript` carrying a `Proposal`, as the
runtime does after asking the model, and checks what a caller would notice (what the agent
says next, what ends up on the record). The streamed-acknowledgement reader is tested the
h11 way: the whole reply at once, one character at a time, and with trailing data.
"""

from __future__ import annotations

import json

import pytest

from agent.acknowledgements import AcknowledgementReader, speakable
from agent.commands import BookSlot
from agent.events import Proposal, Transcript
from agent.phases import Phase
from agent.proposals import (
    FIELDS,
    TOOLS,
    proposal_from_content,
    proposal_from_tool,
    request_for,
)
from tests.agent.test_conversation import INTAKE, Caller, confirmed, spoken


def answer(caller: Caller, words: str, key: str, text: str) -> str:
    """The caller says ``words``; the model proposed ``text`` for ``key``; what the agent says."""
    return spoken(caller.event(Transcript(words, 0.9, proposal=Proposal(key, text)), play=True))


def at_member_id(payer_words: str) -> Caller:
    caller = Caller()
    caller.start()
    confirmed(caller, payer_words)
    assert caller.conv.question() is not None
    assert caller.conv.question().key == "insurance.member_id"  # type: ignore[union-attr]
    return caller


# ----------------------------------------------------------------------------- accepted
def test_a_proposal_the_rules_accept_is_used_and_still_read_back() -> None:
    caller = Caller()
    caller.start()
    # The rules make nothing of these words; the model read them as Cigna.
    said = answer(caller, "the one from my job, starts with a c", "insurance.payer", "Cigna")
    assert said == "I have Cigna. Is that right?"  # the rule's read-back still applies
    said = spoken(caller.say("yes"))
    assert caller.record.insurance.payer == "Cigna"
    assert "member ID" in said


def test_a_proposal_for_a_confirmation_is_used_only_where_the_rules_hear_no_yes_or_no() -> None:
    caller = at_member_id("aetna")
    assert "Is that right?" in spoken(caller.say("a b c one two three four five six"))
    # "no" from the caller is never overridden by a model that heard "yes".
    said = answer(caller, "no", "confirm", "yes")
    assert caller.record.insurance.member_id is None
    assert "try again" in said
    caller.say("a b c one two three four five six")
    answer(caller, "mm that one sounds about right", "confirm", "yes")
    assert caller.record.insurance.member_id == "ABC123456"


# ----------------------------------------------------------------------------- rejected
def test_a_member_id_in_the_wrong_format_for_the_payer_is_rejected() -> None:
    caller = at_member_id("blue cross")  # BCBS IDs start with three letters
    said = answer(caller, "um let me find my card", "insurance.member_id", "123456789")
    assert said.startswith("Sorry, that doesn't look like a member ID for your plan.")
    assert caller.record.insurance.member_id is None
    assert caller.conv.question().key == "insurance.member_id"  # type: ignore[union-attr]


def test_a_rejected_proposal_leaves_the_callers_own_words_to_the_rules() -> None:
    caller = at_member_id("blue cross")
    said = answer(caller, "x g h one two three four five six", "insurance.member_id", "123456789")
    assert said == "I have X G H 1 2 3 4 5 6. Is that right?"  # the caller's, not the model's
    caller.say("yes")
    assert caller.record.insurance.member_id == "XGH123456"


def test_a_model_cannot_jump_to_scheduling() -> None:
    caller = Caller()
    caller.start()
    out = caller.event(
        Transcript("uh hold on", 0.9, proposal=Proposal("scheduling.slot", "1")), play=True
    )
    assert not any(isinstance(c, BookSlot) for c in out)
    assert caller.conv.phase is Phase.INSURANCE
    assert spoken(out).startswith("Sorry, I didn't recognise that insurance company.")
    assert caller.record.appointment.slot_id is None


def test_a_slot_that_was_not_offered_is_rejected() -> None:
    caller = Caller(auto_book=True)
    caller.start()
    for words, read_back in INTAKE:
        confirmed(caller, words) if read_back else caller.say(words)
    assert caller.conv.phase is Phase.SCHEDULING
    out = caller.event(Transcript("hmm", 0.9, proposal=Proposal("scheduling.slot", "9")), play=True)
    assert not any(isinstance(c, BookSlot) for c in out)
    assert spoken(out).startswith("Sorry, which option?")
    # The caller's own words win over a proposal the rules reject.
    out = caller.event(
        Transcript("the second one", 0.9, proposal=Proposal("scheduling.slot", "9")), play=True
    )
    assert caller.record.appointment.slot_id == caller.config.open_slots[1].slot_id


def test_the_red_flag_screen_reads_the_callers_words_whatever_the_model_says() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    confirmed(caller, "a b c one two three four five six")
    said = answer(caller, "i have crushing chest pain", "complaint.description", "back pain")
    assert "call 9 1 1" in said
    assert caller.record.status.value == "urgent"


def test_a_transfer_tool_call_asks_for_a_person_through_the_intent_rules() -> None:
    caller = Caller(transfer_target="sip:staff@127.0.0.1")
    caller.start()
    out = caller.event(
        Transcript(
            "i'd rather sort this out with someone",
            0.9,
            proposal=Proposal("intent", "representative"),
        ),
        play=False,
    )
    assert "connecting you to our staff" in spoken(out)


# ----------------------------------------------------------------------------- requests
def test_every_question_has_a_strict_schema_and_every_tool_is_strict() -> None:
    caller = Caller()
    caller.start()
    request = request_for(caller.conv)
    assert request is not None and request.key == "insurance.payer"
    schema = request.response_format["json_schema"]
    assert schema["strict"] is True and schema["name"] == "insurance_payer"
    body = schema["schema"]
    assert list(body["properties"])[0] == "acknowledgement"
    assert body["required"] == list(body["properties"])
    assert body["additionalProperties"] is False
    keys = {q.key for qs in caller.config.questions.values() for q in qs}
    assert keys <= set(FIELDS)
    for tool in TOOLS:
        assert tool["function"]["strict"] is True
        assert tool["function"]["parameters"]["additionalProperties"] is False


def test_no_request_where_only_the_rules_read_answers() -> None:
    caller = Caller()  # no transfer target: "a person" takes a callback message
    caller.start()
    caller.say("representative")
    assert request_for(caller.conv) is None  # the message is taken as said


@pytest.mark.parametrize(
    ("key", "data", "text"),
    [
        ("demographics.phone", {"phone": None, "use_calling_number": True}, "this number"),
        (
            "demographics.phone",
            {"phone": "617-555-0142", "use_calling_number": False},
            "6 1 7 5 5 5 0 1 4 2",
        ),
        (
            "complaint.description",
            {"symptoms": ["cough", "fever"], "duration_days": None},
            "cough and fever",
        ),
        ("complaint.description", {"symptoms": ["cough"], "duration_days": 3}, "cough for 3 days"),
        ("complaint.duration_days", {"duration_days": 14}, "14 days"),
        ("pharmacy", {"pharmacy": "Walmart", "location": "Broadway"}, "Walmart on Broadway"),
        ("summary", {"all_correct": False, "correction": "my zip is 02139"}, "my zip is 02139"),
        ("confirm", {"answer": "unclear"}, None),
        ("insurance.payer", {"payer": None}, None),
    ],
)
def test_json_answers_become_the_words_the_rules_read(
    key: str, data: dict[str, object], text: str | None
) -> None:
    found = proposal_from_content(key, json.dumps({"acknowledgement": "", **data}))
    assert (found.text if found is not None else None) == text


def test_tool_calls_become_proposals_and_junk_does_not() -> None:
    assert proposal_from_tool("book_slot", '{"option": 2}') == Proposal("scheduling.slot", "2")
    assert proposal_from_tool("validate_member_id", '{"member_id": "xgh-123 456"}') == Proposal(
        "insurance.member_id", "XGH123456"
    )
    assert proposal_from_tool("transfer_to_staff", "{}") == Proposal("intent", "representative")
    assert proposal_from_tool("delete_record", "{}") is None
    assert proposal_from_tool("book_slot", '{"option": 2') is None  # cut off mid-stream
    assert proposal_from_content("insurance.payer", '{"payer": "Aet') is None


# ----------------------------------------------------------------------------- speaking
REPLY = (
    '{"acknowledgement": "I\'m sorry to hear that. Let\\"s get you seen! ", "symptoms": ["cough"]}'
)


def test_acknowledgement_sentences_whole_bytewise_and_with_trailing_data() -> None:
    want = ["I'm sorry to hear that.", 'Let"s get you seen!']
    assert AcknowledgementReader().feed(REPLY) == want
    reader = AcknowledgementReader()
    got = [s for char in REPLY for s in reader.feed(char)]
    assert got == want
    cut = REPLY.index("that. ") + len("that. ")
    reader = AcknowledgementReader()
    assert reader.feed(REPLY[:cut]) == ["I'm sorry to hear that."]  # before the value arrives
    assert reader.feed(REPLY[cut:] + '{"acknowledgement": "more."}') == ['Let"s get you seen!']


def test_no_acknowledgement_in_another_shape() -> None:
    assert AcknowledgementReader().feed('{"symptoms": ["cough"], "acknowledgement": "Hi."}') == []
    assert AcknowledgementReader().feed('{"acknowledgement": ""}') == []


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        ("I'm sorry to hear that.", True),
        ("Okay.", True),
        ("I have 4 4 1 2.", False),  # digits: an unchecked value read back
        ("Your appointment is booked, see you on Monday at the clinic with Dr Rivera then.", False),
        ("", False),
    ],
)
def test_only_short_plain_sentences_are_spoken(sentence: str, ok: bool) -> None:
    assert speakable(sentence) is ok
