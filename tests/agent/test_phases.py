"""The two transition tables of the intake (phase, turn) and the questions each phase asks."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from agent.commands import Expect
from agent.conversation import TURN_TRANSITIONS, TurnInput, TurnState
from agent.errors import AgentError, AgentStateError
from agent.phase_rules import default_questions
from agent.phases import ORDER, TRANSITIONS, Phase, PhaseInput, next_phase
from agent.questions import Context
from agent.record import IntakeRecord

INTAKE = [
    Phase.INSURANCE,
    Phase.CHIEF_COMPLAINT,
    Phase.DEMOGRAPHICS,
    Phase.ADDRESS,
    Phase.PHARMACY,
    Phase.EMERGENCY_CONTACT,
]


# ---------------------------------------------------------------------- phases
def test_phases_run_in_front_desk_order() -> None:
    assert [p.value for p in ORDER] == [
        "GREETING",
        "INSURANCE",
        "CHIEF_COMPLAINT",
        "DEMOGRAPHICS",
        "ADDRESS",
        "PHARMACY",
        "EMERGENCY_CONTACT",
        "SCHEDULING",
        "SUMMARY",
        "COMPLETE",
    ]
    walked = [Phase.GREETING]
    while walked[-1] is not Phase.COMPLETE:
        walked.append(next_phase(walked[-1], PhaseInput.DONE))
    assert walked == list(ORDER)


@pytest.mark.parametrize(
    ("phase", "previous"),
    [
        (Phase.GREETING, Phase.GREETING),
        (Phase.INSURANCE, Phase.INSURANCE),  # nothing before the first question
        (Phase.CHIEF_COMPLAINT, Phase.INSURANCE),
        (Phase.DEMOGRAPHICS, Phase.CHIEF_COMPLAINT),
        (Phase.ADDRESS, Phase.DEMOGRAPHICS),
        (Phase.PHARMACY, Phase.ADDRESS),
        (Phase.EMERGENCY_CONTACT, Phase.PHARMACY),
        (Phase.SCHEDULING, Phase.EMERGENCY_CONTACT),
        (Phase.SUMMARY, Phase.SCHEDULING),
    ],
)
def test_back_goes_one_phase_back_but_never_to_the_greeting(phase: Phase, previous: Phase) -> None:
    assert next_phase(phase, PhaseInput.BACK) is previous


@pytest.mark.parametrize("phase", ORDER[:-1])
@pytest.mark.parametrize("how", [PhaseInput.URGENT, PhaseInput.ESCALATE])
def test_urgent_and_escalate_end_the_intake_from_anywhere(phase: Phase, how: PhaseInput) -> None:
    assert next_phase(phase, how) is Phase.COMPLETE


@pytest.mark.parametrize("how", list(PhaseInput))
def test_complete_takes_no_input(how: PhaseInput) -> None:
    with pytest.raises(AgentStateError) as caught:
        next_phase(Phase.COMPLETE, how)
    assert str(caught.value) == f"phase COMPLETE cannot take {how.value!r}"
    assert isinstance(caught.value, AgentError)


def test_phase_table_is_total_except_for_complete() -> None:
    assert set(TRANSITIONS) == {(p, i) for p in ORDER[:-1] for i in PhaseInput}


# ---------------------------------------------------------------------- turns
EXPECTED_TURNS = {
    (TurnState.SPEAKING, TurnInput.PLAYED): TurnState.LISTENING,
    (TurnState.SPEAKING, TurnInput.INTERRUPTED): TurnState.LISTENING,
    (TurnState.SPEAKING, TurnInput.HEARD): TurnState.THINKING,
    (TurnState.LISTENING, TurnInput.HEARD): TurnState.THINKING,
    (TurnState.THINKING, TurnInput.SAY): TurnState.SPEAKING,
    (TurnState.THINKING, TurnInput.TRANSFER): TurnState.TRANSFERRING,
    (TurnState.TRANSFERRING, TurnInput.TRANSFER_RESULT): TurnState.THINKING,
}


@pytest.mark.parametrize(("key", "after"), list(EXPECTED_TURNS.items()))
def test_turn_moves(key: tuple[TurnState, TurnInput], after: TurnState) -> None:
    assert TURN_TRANSITIONS[key] is after


@pytest.mark.parametrize("state", list(TurnState))
def test_every_turn_state_can_end(state: TurnState) -> None:
    assert TURN_TRANSITIONS[(state, TurnInput.END)] is TurnState.ENDED


@pytest.mark.parametrize(
    "key",
    [
        (TurnState.LISTENING, TurnInput.TRANSFER),  # a transfer follows something the caller said
        (TurnState.TRANSFERRING, TurnInput.HEARD),  # speech during a transfer is no answer
        (TurnState.TRANSFERRING, TurnInput.INTERRUPTED),
        (TurnState.LISTENING, TurnInput.TRANSFER_RESULT),  # no transfer under way
        (TurnState.THINKING, TurnInput.TRANSFER_RESULT),
        (TurnState.THINKING, TurnInput.INTERRUPTED),
    ],
)
def test_illegal_turn_inputs_are_not_in_the_table(key: tuple[TurnState, TurnInput]) -> None:
    assert key not in TURN_TRANSITIONS


def test_nothing_leaves_ended() -> None:
    assert {v for (s, _), v in TURN_TRANSITIONS.items() if s is TurnState.ENDED} == {
        TurnState.ENDED
    }
    assert [i for (s, i) in TURN_TRANSITIONS if s is TurnState.ENDED] == [TurnInput.END]


# ---------------------------------------------------------------------- the questions
def _context(**record: object) -> Context:
    rec = IntakeRecord.model_validate(
        {"call_id": "c", "started_at": "2026-11-27T10:00:00", **record}
    )
    return Context(
        today=date(2026, 11, 27), now=datetime(2026, 11, 27, 10), caller_id=None, record=rec
    )


def test_every_intake_phase_and_only_those_have_questions() -> None:
    questions = default_questions()
    assert list(questions) == INTAKE
    keys = [q.key for qs in questions.values() for q in qs]
    assert len(keys) == len(set(keys))


def test_keypad_questions_expect_digits_of_the_keypad_length() -> None:
    for q in (q for qs in default_questions().values() for q in qs if q.keypad is not None):
        keypad = q.keypad
        if q.expectation.kind is Expect.DATE:  # spoken as a date, typed as MMDDYYYY
            assert keypad is not None and keypad.max_digits == 8, q.key
            continue
        if q.expectation.kind in (Expect.SPELLING, Expect.NAME):  # one key per letter
            assert keypad is not None and keypad.max_digits >= 20, q.key
            continue
        assert keypad is not None and q.expectation.kind is Expect.DIGITS, q.key
        assert keypad.max_digits == q.expectation.max_digits, q.key
        assert keypad.min_digits == q.expectation.min_digits, q.key


def test_identifiers_are_always_read_back() -> None:
    by_key = {q.key: q for qs in default_questions().values() for q in qs}
    for key in (
        "insurance.payer",
        "insurance.member_id",
        "demographics.first_name",
        "demographics.last_name",
        "demographics.date_of_birth",
        "demographics.phone",
        "address.zip_code",
        "emergency_contact.phone",
    ):
        assert by_key[key].always_confirm and by_key[key].confirm is not None, key


def test_member_id_is_skipped_for_self_pay_only() -> None:
    member_id = default_questions()[Phase.INSURANCE][1]
    assert member_id.skip_if is not None
    assert member_id.skip_if(_context(insurance={"payer": "Self-pay", "self_pay": True}))
    assert not member_id.skip_if(_context(insurance={"payer": "Aetna"}))


def test_complaint_in_own_words_is_kept_but_a_stray_word_is_not() -> None:
    description = default_questions()[Phase.CHIEF_COMPLAINT][0]
    ctx = _context()
    kept = description.extract("my right knee has been hurting for two weeks", ctx)
    assert kept.value is not None
    assert kept.value.symptoms == () and kept.value.duration_days == 14.0
    for stray in ("yes", "um okay", "no thank you"):
        assert not description.extract(stray, ctx).ok, stray


def test_a_new_complaint_replaces_the_old_duration_and_severity() -> None:
    description = default_questions()[Phase.CHIEF_COMPLAINT][0]
    ctx = _context(complaint={"description": "cough", "duration_days": 3.0, "severity": 6})
    record = description.apply(ctx.record, description.extract("a sore throat", ctx).value)
    assert (
        record.complaint.description,
        record.complaint.duration_days,
        record.complaint.severity,
    ) == ("a sore throat", None, None)
