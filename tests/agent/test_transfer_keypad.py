"""The operator key: 0 asks for a person wherever keys enter no answer (text level, no audio).

A caller on a keypad phone menu expects 0 to reach a person. In the intake, keys also type
answers (member IDs, dates of birth, ZIP codes, slot numbers), so 0 means "a person" only
where keys enter nothing: a spoken question and a yes/no read-back. Driven by the `Caller`
harness of test_conversation.py on a virtual clock.
"""

from __future__ import annotations

from agent.commands import Command, StopSpeaking, Transfer
from agent.conversation import TurnState
from agent.events import CallStarted, DtmfDigit, TransferResult
from agent.record import IntakeStatus
from tests.agent.test_conversation import CALLER_ID, START, Caller, spoken

DESK = "sip:frontdesk@127.0.0.1:5090"


def transfers(commands: list[Command]) -> list[Transfer]:
    return [c for c in commands if isinstance(c, Transfer)]


def test_zero_during_the_greeting_stops_it_and_transfers() -> None:
    caller = Caller(transfer_target=DESK)
    caller.event(CallStarted(CALLER_ID, START))  # the greeting is still playing
    assert caller.turn() is TurnState.SPEAKING
    out = caller.event(DtmfDigit("0"))
    assert isinstance(out[0], StopSpeaking)  # the rest of the greeting is not played
    assert spoken(out) == "Sure, connecting you to our staff now."
    assert transfers(out) == [Transfer(DESK)]
    assert caller.turn() is TurnState.TRANSFERRING
    assert caller.last_saved.status is IntakeStatus.TRANSFERRED
    assert [t.text for t in caller.record.transcript if t.speaker == "caller"] == ["[keypad 0]"]
    caller.event(TransferResult(True))
    assert caller.hangup is not None and caller.hangup.reason == "transferred"


def test_zero_without_a_transfer_target_takes_a_callback_message() -> None:
    caller = Caller()
    caller.start()
    out = caller.press("0")
    assert transfers(out) == []
    assert "our staff will call you back" in spoken(out)
    assert caller.turn() is TurnState.LISTENING


def test_zero_after_a_failed_transfer_is_not_another_transfer() -> None:
    caller = Caller(transfer_target=DESK)
    caller.start()
    caller.press("0")
    out = caller.event(TransferResult(False), play=True)
    assert spoken(out).startswith("I couldn't connect you.")
    assert transfers(caller.press("0")) == []  # a key during the callback message is ignored


def test_zero_during_a_read_back_asks_for_a_person() -> None:
    caller = Caller(transfer_target=DESK)
    caller.start()
    read_back = caller.say("aetna")
    assert "Is that right?" in spoken(read_back)
    assert transfers(caller.press("0")) == [Transfer(DESK)]


def test_zero_in_a_keypad_entry_is_a_digit() -> None:
    caller = Caller(transfer_target=DESK)
    caller.start()
    caller.say("aetna")
    caller.say("yes")  # now the member ID question, which takes keys
    assert caller.listen is not None and caller.listen.keypad is not None
    out = caller.press("100200300#")
    assert transfers(out) == []
    assert caller.turn() is not TurnState.TRANSFERRING
    assert spoken(out) == "I have 1 0 0 2 0 0 3 0 0. Is that right?"  # zeros are digits
