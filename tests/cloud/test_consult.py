"""Which caller turns go to the model (`agent.consult`), on the sans-I/O conversation.

A closed answer the rules read (a payer from the catalog, digits, a date, a yes in a
read-back) is settled by the rules: asking the model would only delay the next question.
Checked two ways: the turns of a whole intake are sorted into asked and settled as a front
desk would expect, and on every settled turn an honest model's proposal (the loopback
server's scripted reading, `tests.cloud.scripted_model`) changes nothing the caller hears or
the record keeps, so not asking loses nothing.
"""

from __future__ import annotations

import copy
import json

from agent.commands import Command
from agent.consult import CLOSED_ANSWERS, rules_settle
from agent.events import Proposal, Transcript
from agent.phases import Phase
from agent.proposals import proposal_from_content, proposal_from_tool, request_for
from tests.agent.test_conversation import INTAKE, Caller, confirmed, spoken
from tests.cloud.scripted_model import scripted_reply


def honest_proposal(caller: Caller, words: str) -> Proposal | None:
    """What the loopback model proposes for ``words`` at this point of the call."""
    request = request_for(caller.conv)
    if request is None:
        return None
    body = {
        "messages": request.messages(words),
        "response_format": request.response_format,
        "tools": list(request.tools),
    }
    reply = scripted_reply(body)
    if reply.tool is not None:
        name, arguments = reply.tool
        return proposal_from_tool(name, json.dumps(arguments))
    return proposal_from_content(request.key, json.dumps(reply.content))


def answer(caller: Caller, words: str, log: list[tuple[str, bool]]) -> list[Command]:
    """Say ``words``; note whether the rules settle the turn, and check that, if they do,
    an honest proposal would have made no difference."""
    settled = rules_settle(caller.conv, words)
    log.append((words, settled))
    proposal = honest_proposal(caller, words)
    if settled and proposal is not None:
        with_model = copy.deepcopy(caller)
        asked = with_model.event(Transcript(words, 0.9, proposal=proposal), play=True)
        alone = caller.say(words)
        assert spoken(asked) == spoken(alone), words
        assert with_model.record == caller.record, words
        return alone
    return caller.say(words)


def test_closed_answers_the_rules_read_are_settled_and_open_ones_go_to_the_model() -> None:
    caller = Caller()
    caller.start()
    log: list[tuple[str, bool]] = []
    for words, read_back in INTAKE:
        said = answer(caller, words, log)
        if read_back:
            assert "Is that right?" in spoken(said), words
            answer(caller, "yes", log)
    assert caller.conv.phase is Phase.SCHEDULING
    answer(caller, "the second one", log)
    asked = [words for words, settled in log if not settled]
    # The open questions: the complaint, the street, the pharmacy, the emergency contact.
    assert asked == [
        "a cough and a fever for three days",
        "twelve elm street",
        "the cvs on main street",
        "my wife maria lopez",
    ]
    assert caller.record.appointment.slot_id == caller.config.open_slots[1].slot_id


def test_a_closed_answer_the_rules_cannot_read_goes_to_the_model() -> None:
    caller = Caller()
    caller.start()
    assert caller.conv.question().expectation.kind in CLOSED_ANSWERS  # type: ignore[union-attr]
    assert rules_settle(caller.conv, "aetna")
    assert not rules_settle(caller.conv, "the one from my job, starts with a c")
    caller.say("aetna")
    # In the read-back: a yes or a no is the rules'; anything else is the model's to read.
    assert rules_settle(caller.conv, "yes")
    assert rules_settle(caller.conv, "no")
    assert not rules_settle(caller.conv, "hmm let me check my card")


def test_red_flags_and_requests_for_a_person_never_wait_for_the_model() -> None:
    caller = Caller()
    caller.start()
    confirmed(caller, "aetna")
    confirmed(caller, "a b c one two three four five six")
    assert caller.conv.question().key == "complaint.description"  # type: ignore[union-attr]
    assert not rules_settle(caller.conv, "back pain")  # an open question
    assert rules_settle(caller.conv, "i have crushing chest pain")
    assert rules_settle(caller.conv, "can i talk to a representative")


def test_at_the_slot_offer_a_choice_the_rules_read_is_settled() -> None:
    caller = Caller()
    caller.start()
    for words, read_back in INTAKE:
        confirmed(caller, words) if read_back else caller.say(words)
    assert caller.conv.phase is Phase.SCHEDULING
    assert rules_settle(caller.conv, "the first one")
    assert not rules_settle(caller.conv, "whichever suits the doctor best")
