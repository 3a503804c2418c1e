"""The phase handler with the real ``openai`` client and the loopback server, turn by turn.

Each test drives the sans-I/O conversation the way `agent.call_runtime` does: the caller's
words go to `PhaseHandler.propose` (streamed request, budget, failover), and the transcript
with the proposal goes to the conversation. The server's time to first token and its errors
are real (loopback HTTP, its own thread); budgets are a tenth of a second or so, so the file
runs in a few seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from agent.commands import BookSlot, Command
from agent.events import SlotBooked, Transcript
from agent.metrics import REGISTRY
from agent.phase_handler import HandlerState, PhaseHandler
from agent.proposals import request_for
from agent.providers.openai_llm import OpenAiChat
from tests.agent.test_conversation import CALLER_ID, INTAKE, Caller, spoken
from tests.cloud.openai_server import OpenAiServer
from tests.cloud.scripted_model import Reply

ALL_KEYS = {
    "insurance_payer",
    "insurance_member_id",
    "complaint_description",
    "complaint_severity",
    "demographics_first_name",
    "demographics_last_name",
    "demographics_date_of_birth",
    "demographics_phone",
    "address_street",
    "address_zip_code",
    "pharmacy",
    "emergency_contact_relationship",
    "emergency_contact_phone",
    "confirm",
    "scheduling_slot",
    "summary",
}


class ModelCall:
    """One caller whose every spoken answer goes through the model first."""

    def __init__(self, chat: OpenAiChat, budget_s: float = 2.0, **caller: Any) -> None:
        self.caller = Caller(auto_book=False, **caller)
        self.spoken: list[tuple[float, str]] = []
        self.handler = PhaseHandler(chat, call_id="call-1", budget_s=budget_s, speak=self._speak)
        self.caller.start()

    async def _speak(self, sentence: str) -> None:
        self.spoken.append((asyncio.get_running_loop().time(), sentence))

    async def say(self, words: str) -> list[Command]:
        proposal = await self.handler.propose(request_for(self.caller.conv), words)
        out = self.caller.event(Transcript(words, 0.9, proposal=proposal), play=True)
        for command in out:
            if isinstance(command, BookSlot):  # the store always has it here
                out += self.caller.event(SlotBooked(command.slot_id), play=True)
        return out

    async def confirmed(self, words: str) -> list[Command]:
        read_back = await self.say(words)
        assert "Is that right?" in spoken(read_back), spoken(read_back)
        return await self.say("yes")


def failovers(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "voiceagent_provider_failovers_total", {"role": "llm", "reason": reason}
    )
    return value or 0.0


async def test_a_whole_intake_read_by_the_model_keeps_every_field_right(
    openai_server: OpenAiServer, chat: OpenAiChat
) -> None:
    call = ModelCall(chat)
    for words, read_back in INTAKE:
        await (call.confirmed(words) if read_back else call.say(words))
    await call.say("the first one")
    out = await call.say("yes that's right")
    assert spoken(out).startswith("You're all set.")
    record = call.caller.record
    assert record.status.value == "complete"
    assert (record.insurance.payer, record.insurance.member_id) == ("Aetna", "ABC123456")
    assert record.complaint.symptoms == ["cough", "fever"]
    assert (record.complaint.duration_days, record.complaint.severity) == (3.0, 6)
    d = record.demographics
    assert (d.first_name, d.last_name, str(d.date_of_birth), d.phone) == (
        "Anna",
        "Smith",
        "1984-03-03",
        CALLER_ID,
    )
    assert (record.address.street, record.address.zip_code) == ("12 Elm Street", "02139")
    assert (record.pharmacy.name, record.pharmacy.location) == ("CVS", "Main Street")
    ec = record.emergency_contact
    assert (ec.name, ec.relationship, ec.phone) == ("Maria Lopez", "spouse", "+16175550199")
    assert record.appointment.slot_id == call.caller.config.open_slots[0].slot_id
    # Every spoken answer was put to the model, with the schema of what was being asked.
    assert {s.schema for s in openai_server.seen} == ALL_KEYS
    assert all(s.stream and "book_slot" in s.tools for s in openai_server.seen)
    assert call.handler.proposals == len(openai_server.seen)
    assert [text for _, text in call.spoken] == ["I'm sorry to hear that."]
    assert call.handler.state is HandlerState.ACTIVE


async def test_token_usage_is_asked_for_on_the_stream_and_counted(
    openai_server: OpenAiServer, chat: OpenAiChat
) -> None:
    def tokens(kind: str) -> float:
        value = REGISTRY.get_sample_value(
            "voiceagent_llm_tokens_total", {"provider": "openai", "kind": kind}
        )
        return value or 0.0

    before = tokens("prompt"), tokens("completion")
    call = ModelCall(chat)
    await call.say("aetna")
    # The loopback server, as OpenAI's API, reports usage only when the request asks for it.
    prompt, completion = tokens("prompt") - before[0], tokens("completion") - before[1]
    assert prompt > 10  # the system prompt's words and the caller's
    assert completion >= 1


async def test_a_member_id_the_payer_rejects_is_not_kept_whatever_the_model_says(
    openai_server: OpenAiServer, chat: OpenAiChat
) -> None:
    openai_server.behaviour.forced["insurance_member_id"] = Reply(
        tool=("validate_member_id", {"member_id": "123456789"})  # BCBS wants 3 letters first
    )
    call = ModelCall(chat)
    await call.confirmed("blue cross")
    out = await call.say("let me find my card")
    assert spoken(out).startswith("Sorry, that doesn't look like a member ID for your plan.")
    out = await call.say("x g h one two three four five six")
    assert spoken(out) == "I have X G H 1 2 3 4 5 6. Is that right?"
    await call.say("yes")
    assert call.caller.record.insurance.member_id == "XGH123456"


async def test_a_model_jumping_to_scheduling_changes_nothing(
    openai_server: OpenAiServer, chat: OpenAiChat
) -> None:
    openai_server.behaviour.forced["insurance_payer"] = Reply(tool=("book_slot", {"option": 1}))
    call = ModelCall(chat)
    out = await call.say("i'm not sure")
    assert not any(isinstance(c, BookSlot) for c in out)
    assert call.caller.conv.phase.value == "INSURANCE"
    assert spoken(out).startswith("Sorry, I didn't recognise that insurance company.")


async def test_the_acknowledgement_is_spoken_sentence_by_sentence_while_the_reply_streams(
    openai_server: OpenAiServer, chat: OpenAiChat
) -> None:
    openai_server.behaviour.inter_token_s = 0.01
    openai_server.behaviour.forced["complaint_description"] = Reply(
        content={
            "acknowledgement": "I'm sorry to hear that. Let's get you seen. Your ID is 4 4 1.",
            "symptoms": ["cough"],
            "duration_days": None,
        }
    )
    call = ModelCall(chat)
    await call.confirmed("aetna")
    await call.confirmed("a b c one two three four five six")
    loop = asyncio.get_running_loop()
    await call.say("i have a cough")
    replied = loop.time()
    # Both plain sentences, in order, the first well before the reply ended; the one
    # reading digits back is not said (the rules have not checked them).
    assert [text for _, text in call.spoken] == ["I'm sorry to hear that.", "Let's get you seen."]
    assert replied - call.spoken[0][0] > 0.1
    assert call.caller.record.complaint.symptoms == ["cough"]


async def test_a_late_model_leaves_the_turn_to_the_rules_and_repeated_lateness_fails_over(
    openai_server: OpenAiServer, chat: OpenAiChat
) -> None:
    openai_server.behaviour.ttft_s = 0.5
    call = ModelCall(chat, budget_s=0.1)
    before = failovers("timeout")
    loop = asyncio.get_running_loop()
    started = loop.time()
    out = await call.say("aetna")
    assert loop.time() - started < 0.4  # the budget, not the model, ended the wait
    assert spoken(out) == "I have Aetna. Is that right?"  # read by the rules
    assert call.handler.failover_reason is None  # one late turn is weather
    with structlog.testing.capture_logs() as logs:
        await call.say("yes")
    assert call.handler.state is HandlerState.FAILED_OVER
    assert failovers("timeout") == before + 1
    assert [e for e in logs if e["event"] == "provider_failover"][0]["reason"] == "timeout"
    asked = len(openai_server.seen)
    await call.confirmed("a b c one two three four five six")
    assert len(openai_server.seen) == asked  # the rest of the call is on the rules
    assert call.caller.record.insurance.member_id == "ABC123456"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("500", "http_5xx"), ("429", "http_429"), ("disconnect", "disconnect")],
)
async def test_a_failing_model_server_switches_the_call_to_the_rules_within_the_turn(
    openai_server: OpenAiServer, chat: OpenAiChat, fault: str, reason: str
) -> None:
    call = ModelCall(chat)
    await call.confirmed("aetna")  # two turns on the model
    assert call.handler.proposals == 2
    if fault == "disconnect":
        openai_server.behaviour.disconnect_after_chunks = 4
    else:
        openai_server.behaviour.fail_status = int(fault)
    before = failovers(reason)
    with structlog.testing.capture_logs() as logs:
        out = await call.say("a b c one two three four five six")
    # The failing turn is answered at once, by the rules, with nothing odd said.
    assert spoken(out) == "I have A B C 1 2 3 4 5 6. Is that right?"
    assert call.handler.state is HandlerState.FAILED_OVER
    assert failovers(reason) == before + 1
    switches = [e for e in logs if e["event"] == "provider_failover"]
    assert len(switches) == 1
    assert {k: switches[0][k] for k in ("role", "from", "to", "reason", "call_id")} == {
        "role": "llm",
        "from": "openai",
        "to": "embedded",
        "reason": reason,
        "call_id": "call-1",
    }
    assert not any("one two three" in str(v) for e in logs for v in e.values())  # no PHI
    asked = len(openai_server.seen)
    await call.say("yes")
    await call.say("a cough and a fever for three days")
    assert len(openai_server.seen) == asked
    assert call.caller.record.insurance.member_id == "ABC123456"
    assert call.caller.record.complaint.duration_days == 3.0
