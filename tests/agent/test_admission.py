"""Call admission: a fixed cap and media-clock overload refuse new calls with 503."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.admission import Admission, AdmissionConfig, AdmissionControl
from tests.loopback import voiceagent_serve
from tests.sip.test_sipp import run_sipp

TICKS_PER_S = 50 * 10  # ten phase groups ticking every 20 ms


def feed(control: AdmissionControl, seconds: int, late_per_s: int, *, start: float = 0.0,
         ticks: int = 0, late: int = 0) -> tuple[int, int]:  # fmt: skip
    """Sample once a second for ``seconds``; returns the cumulative counters."""
    for k in range(1, seconds + 1):
        ticks += TICKS_PER_S
        late += late_per_s
        control.observe(ticks, late, 0, start + k)
    return ticks, late


def test_a_healthy_clock_admits_up_to_the_cap() -> None:
    control = AdmissionControl(AdmissionConfig(max_calls=3))
    feed(control, 10, late_per_s=5)  # 1 % late: a busy machine, not an overload
    assert [control.decide(n, 10.0) for n in range(5)] == [
        Admission.ADMIT, Admission.ADMIT, Admission.ADMIT, Admission.FULL, Admission.FULL,
    ]  # fmt: skip
    assert control.refused[Admission.FULL] == 2


def test_overload_refuses_then_recovers_after_the_hold() -> None:
    control = AdmissionControl(AdmissionConfig(late_share=0.2, window_s=5, hold_s=10))
    ticks, late = feed(control, 5, late_per_s=5)
    assert control.decide(1, 5.0) is Admission.ADMIT
    ticks, late = feed(control, 3, late_per_s=TICKS_PER_S // 2, start=5, ticks=ticks, late=late)
    assert control.late_share() > 0.2
    assert control.decide(1, 8.0) is Admission.OVERLOADED
    # the clock is healthy again, but the hold keeps refusing for 10 s after the last overload
    feed(control, 30, late_per_s=0, start=8, ticks=ticks, late=late)
    assert control.late_share() == 0.0
    assert control.overloaded(8 + 3)  # last overloaded sample was within the hold
    assert control.decide(1, 38.0) is Admission.ADMIT
    assert control.refused[Admission.OVERLOADED] == 1


def test_skipped_ticks_count_as_late() -> None:
    control = AdmissionControl()
    control.observe(0, 0, 0, 0.0)
    control.observe(400, 0, 200, 1.0)  # a stalled process skipped 200 of 600 due ticks
    assert control.late_share() == pytest.approx(200 / 600)
    assert control.decide(0, 1.0) is Admission.OVERLOADED


def test_too_few_ticks_never_trip_the_check() -> None:
    control = AdmissionControl(AdmissionConfig(min_ticks=100))
    control.observe(0, 0, 0, 0.0)
    control.observe(50, 50, 0, 1.0)  # one call's first second, all late: not a verdict yet
    assert control.decide(0, 1.0) is Admission.ADMIT


def test_a_window_only_looks_back_window_s() -> None:
    control = AdmissionControl(AdmissionConfig(window_s=5, hold_s=0))
    control.observe(0, 0, 0, 0.0)
    control.observe(1000, 900, 0, 1.0)  # overloaded in the first second
    ticks, late = feed(control, 10, late_per_s=0, start=1, ticks=1000, late=900)
    assert control.late_share() == 0.0
    assert control.decide(0, 11.0) is Admission.ADMIT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_calls": -1},
        {"late_share": 0.0},
        {"late_share": 1.5},
        {"window_s": 0},
        {"min_ticks": 0},
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AdmissionConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.peer
def test_the_call_over_the_cap_gets_503_with_retry_after(sipp: str, tmp_path: Path) -> None:
    """Two SIPp calls at once against max_calls=1: one is answered, the other gets 503."""
    with voiceagent_serve(env={"VOICEAGENT_MAX_CALLS": "1"}) as server:
        run = run_sipp(sipp, server, tmp_path / "two", "uac", calls=2, rate=100, pause_ms=2000)
        invite_responses = [m for m in run.received() if m.cseq.endswith("INVITE") and m.status]
        finals = sorted(m.status for m in invite_responses if m.status and m.status >= 200)
        assert finals == [200, 503], run.explain()
        log = (tmp_path / "two" / "messages.log").read_text(errors="replace")
        refusal = log[log.index("SIP/2.0 503 Service Unavailable") :].split("\r\n\r\n")[0]
        assert "Retry-After: 5" in refusal, refusal
        refused = server.wait_for_event("call_refused", count=1, timeout=5)
        assert refused[0]["reason"] == "full"
        # the cap is per moment, not per lifetime: once the first call has ended, one more fits
        server.wait_for_event("call_ended", count=1, timeout=10)
        again = run_sipp(sipp, server, tmp_path / "again", "uac", calls=1, pause_ms=200)
        assert again.returncode == 0, again.explain()
