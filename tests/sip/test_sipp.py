"""Acceptance tests against SIPp 3.6.1, a real peer, over 127.0.0.1 (issue 2).

Each test starts ``voiceagent serve`` as a subprocess (`tests.loopback.voiceagent_serve`),
runs one SIPp scenario against it and checks what a caller would notice: SIPp's verdict
(exit code, statistics), the timing of the packets SIPp actually received (read from its
``-trace_msg`` log, whose every entry carries a microsecond timestamp), and the server's
JSON log. The scenarios live in ``tests/sipp/``; the 1,000-call run uses SIPp's built-in
``uac``. Timers are shortened through the environment (``VOICEAGENT_SIP_T1`` ...) so the
RFC 3261 schedules can be seen in seconds, on a real clock: tolerances are tens of
milliseconds, wide enough for a shared machine and far narrower than the gaps between
the values that a wrong timer would produce.
"""

from __future__ import annotations

import csv
import re
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from tests.loopback import LOOPBACK, REPO, ServerProcess, free_port, voiceagent_serve

pytestmark = pytest.mark.peer

SCENARIOS = REPO / "tests" / "sipp"
SIPP_GRACE_S = 15.0  # subprocess timeout on top of SIPp's own -timeout


# ----------------------------------------------------------------- SIPp runner
@dataclass(frozen=True, slots=True)
class SippMessage:
    """One entry of SIPp's -trace_msg log."""

    at: float  # seconds (epoch) when SIPp sent or read it
    sent: bool
    start_line: str
    cseq: str  # "1 INVITE"
    call_id: str

    @property
    def status(self) -> int | None:
        """The status code of a response, None for a request."""
        match = re.match(r"SIP/2\.0 (\d{3}) ", self.start_line)
        return int(match.group(1)) if match else None

    @property
    def method(self) -> str | None:
        """The method of a request, None for a response."""
        return None if self.start_line.startswith("SIP/2.0") else self.start_line.split()[0]

    def is_response(self, status: int, cseq_method: str) -> bool:
        """A response with ``status`` to a ``cseq_method`` request."""
        return self.status == status and self.cseq.split()[-1] == cseq_method


@dataclass(frozen=True, slots=True)
class SippRun:
    """The result of one SIPp run."""

    returncode: int
    elapsed_s: float
    stdout: str
    messages: tuple[SippMessage, ...]
    errors: str
    logs: str
    stats: dict[str, str]

    def explain(self) -> str:
        """Context for an assertion message."""
        return (
            f"sipp exit {self.returncode}\n--- errors:\n{self.errors[-3000:]}\n"
            f"--- scenario log:\n{self.logs[-2000:]}\n--- screen:\n{self.stdout[-3000:]}"
        )

    def received(self) -> list[SippMessage]:
        """Messages SIPp received, in order."""
        return [m for m in self.messages if not m.sent]

    def first(self, *, sent: bool, method: str) -> SippMessage:
        """The first message with this direction and request method."""
        found = [m for m in self.messages if m.sent == sent and m.method == method]
        assert found, f"no {method} {'sent' if sent else 'received'} by SIPp\n{self.explain()}"
        return found[0]


_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d)[ \t](\d\d:\d\d:\d\d\.\d+)\s*$", re.M)


def parse_message_log(text: str) -> tuple[SippMessage, ...]:
    """Split SIPp's -trace_msg log into timestamped messages."""
    out = []
    stamps = list(_STAMP.finditer(text))
    ends = [s.start() for s in stamps[1:]] + [len(text)]
    for stamp, end in zip(stamps, ends, strict=False):  # no stamps: no messages
        block = text[stamp.end() : end]
        lines = block.strip("\r\n").splitlines()
        if not lines or "message" not in lines[0]:
            continue
        body = [line for line in lines[1:] if line.strip()]
        if not body:
            continue
        head = "\n".join(body)
        cseq = re.search(r"^CSeq:\s*(.+?)\s*$", head, re.M | re.I)
        call_id = re.search(r"^(?:Call-ID|i):\s*(.+?)\s*$", head, re.M | re.I)
        when = datetime.strptime(f"{stamp.group(1)} {stamp.group(2)}", "%Y-%m-%d %H:%M:%S.%f")
        out.append(
            SippMessage(
                at=when.timestamp(),
                sent=lines[0].lstrip().lower().startswith(("udp message sent", "tcp message sent")),
                start_line=body[0].strip(),
                cseq=cseq.group(1) if cseq else "",
                call_id=call_id.group(1) if call_id else "",
            )
        )
    return tuple(out)


def _media_port() -> int:
    """A port P with P and P+2 free on loopback (SIPp binds both for RTP echo)."""
    for _ in range(50):
        port = free_port(both=False)
        if port % 2 or port > 65000:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((LOOPBACK, port + 2))
            except OSError:
                continue
        return port
    raise RuntimeError("no free media port pair on 127.0.0.1")


def run_sipp(
    sipp: str,
    server: ServerProcess,
    workdir: Path,
    scenario: str,
    *,
    calls: int = 1,
    rate: float | None = None,
    pause_ms: int | None = None,
    timeout_s: float = 30.0,
    trace_msg: bool = True,
    extra: Sequence[str] = (),
) -> SippRun:
    """Run SIPp (``scenario``: built-in ``uac`` or a file in tests/sipp) to completion.

    Everything SIPp binds or sends is on 127.0.0.1; SIPp's own ``-timeout`` plus
    ``-timeout_error`` bound the run, and the subprocess timeout bounds SIPp.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    messages_file = workdir / "messages.log"
    errors_file = workdir / "errors.log"
    logs_file = workdir / "scenario.log"
    stat_file = workdir / "stat.csv"
    source = ["-sn", scenario] if scenario == "uac" else ["-sf", str(SCENARIOS / scenario)]
    cmd = [
        sipp,
        *source,
        "-i",
        LOOPBACK,
        "-mi",
        LOOPBACK,
        "-ci",
        LOOPBACK,
        "-p",
        str(free_port(both=False)),
        "-mp",
        str(_media_port()),
        "-cp",
        str(free_port(socket.SOCK_STREAM, both=False)),
        "-nostdin",
        "-timeout",
        f"{timeout_s:g}s",
        "-timeout_error",
        "-m",
        str(calls),
        "-trace_err",
        "-error_file",
        str(errors_file),
        "-trace_logs",
        "-log_file",
        str(logs_file),
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
    ]
    if rate is not None:
        cmd += ["-r", f"{rate:g}"]
    if pause_ms is not None:
        cmd += ["-d", str(pause_ms)]
    if trace_msg:
        cmd += ["-trace_msg", "-message_file", str(messages_file)]
    cmd += [*extra, f"{LOOPBACK}:{server.sip_port}"]
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout_s + SIPP_GRACE_S,
        check=False,
    )
    elapsed = time.monotonic() - started

    def read(path: Path) -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    stats: dict[str, str] = {}
    if stat_file.exists():
        rows = list(csv.DictReader(stat_file.read_text().splitlines(), delimiter=";"))
        if rows:
            stats = rows[-1]  # the last dump is the final, cumulative one
    return SippRun(
        proc.returncode,
        elapsed,
        proc.stdout + proc.stderr,
        parse_message_log(read(messages_file)),
        read(errors_file),
        read(logs_file),
        stats,
    )


def call_events(server: ServerProcess, call_id: str) -> list[str]:
    """The server's log events for one call, in order."""
    names = ("call_ringing", "call_answered", "call_confirmed", "session_modified", "call_ended")
    records = [r for name in names for r in server.events(name) if r.get("call_id") == call_id]
    records.sort(key=lambda r: str(r.get("timestamp")))
    return [str(r["event"]) for r in records]


def ended(server: ServerProcess, call_id: str, timeout: float = 5.0) -> dict[str, object]:
    """The call_ended record of ``call_id`` (waits, bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in server.events("call_ended"):
            if record.get("call_id") == call_id:
                return record
        time.sleep(0.02)
    raise AssertionError(f"server logged no call_ended for {call_id}: {server.log_lines[-8:]}")


@pytest.fixture
def short_timers() -> dict[str, str]:
    """T1 = 100 ms, T2 = 400 ms: the 2xx schedule reads 0.1, 0.2, 0.4, 0.4 s."""
    return {"VOICEAGENT_SIP_T1": "0.1", "VOICEAGENT_SIP_T2": "0.4"}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where SIPp runs and writes its logs."""
    return tmp_path / "sipp"


# ----------------------------------------------------------------- 1. load
@pytest.mark.slow
def test_stock_uac_1000_calls_at_50_cps(sipp: str, workdir: Path) -> None:
    with voiceagent_serve() as server:
        run = run_sipp(
            sipp,
            server,
            workdir,
            "uac",
            calls=1000,
            rate=50,
            timeout_s=90,
            trace_msg=False,
            extra=["-trace_screen", "-screen_file", str(workdir / "screen.log")],
        )
        assert run.returncode == 0, run.explain()
        stats = run.stats
        assert stats, f"no -trace_stat output\n{run.explain()}"
        assert int(stats["SuccessfulCall(C)"]) == 1000, stats
        assert int(stats["FailedCall(C)"]) == 0, stats
        failures = {
            k: v
            for k, v in stats.items()
            if k.startswith("Failed") and k.endswith("(C)") and int(v) != 0
        }
        assert failures == {}, failures  # FailedUnexpectedMessage, FailedMaxUDPRetrans, ...
        assert int(stats["OutOfCallMsgs(C)"]) == 0, stats
        assert int(stats["DeadCallMsgs(C)"]) == 0, stats
        assert int(stats["FatalErrors(C)"]) == 0, stats

        records = server.wait_for_event("call_ended", count=1000, timeout=30)
        assert len(records) == 1000
        assert {r["reason"] for r in records} == {"remote_bye"}
        assert len({r["call_id"] for r in records}) == 1000
        print(
            f"\n1000 calls at 50 cps: SIPp ran {run.elapsed_s:.1f} s, "
            f"retransmissions {stats['Retransmissions(C)']}, "
            f"response time {stats.get('ResponseTime1(C)')}"
        )


# ----------------------------------------------------------------- 2. lost ACK
def test_2xx_retransmitted_t1_doubling_to_t2_until_late_ack(
    sipp: str, workdir: Path, short_timers: dict[str, str]
) -> None:
    # 200 at 0; retransmissions at 0.1, 0.3, 0.7, 1.1, (1.5): ACK at 1.3 s sees four.
    with voiceagent_serve(env=short_timers) as server:
        run = run_sipp(sipp, server, workdir, "drop_first_ack.xml", pause_ms=1300)
    assert run.returncode == 0, run.explain()
    ack = run.first(sent=True, method="ACK")
    oks = [m for m in run.received() if m.is_response(200, "INVITE")]
    before_ack = [m.at for m in oks if m.at < ack.at]
    gaps = [round(b - a, 3) for a, b in zip(before_ack, before_ack[1:], strict=False)]
    print(f"\n2xx retransmission intervals seen by SIPp: {gaps} s")
    assert len(gaps) == 4, f"{len(before_ack)} 200s before the ACK, gaps {gaps}"
    for gap, want in zip(gaps, (0.1, 0.2, 0.4, 0.4), strict=True):
        assert gap == pytest.approx(want, abs=0.04), f"gaps {gaps}, want 0.1 0.2 0.4 0.4"
    # The ACK stopped them: nothing more for the INVITE after it.
    assert [m for m in oks if m.at > ack.at] == []
    record = ended(server, ack.call_id)
    assert record["reason"] == "remote_bye"
    events = call_events(server, ack.call_id)
    assert events.index("call_confirmed") < events.index("call_ended"), events


# ----------------------------------------------------------------- 3. no ACK
def test_never_acked_2xx_ends_with_bye_after_64_t1(sipp: str, workdir: Path) -> None:
    t1, t2 = 0.05, 0.2  # 64*T1 = 3.2 s
    env = {"VOICEAGENT_SIP_T1": str(t1), "VOICEAGENT_SIP_T2": str(t2)}
    with voiceagent_serve(env=env) as server:
        run = run_sipp(sipp, server, workdir, "never_ack.xml", timeout_s=20)
    assert run.returncode == 0, run.explain()
    bye = run.first(sent=False, method="BYE")
    oks = [m for m in run.received() if m.is_response(200, "INVITE")]
    assert oks, run.explain()
    delay = bye.at - oks[0].at
    print(
        f"\nBYE {delay:.3f} s after the first 200 (64*T1 = {64 * t1:.2f} s); "
        f"{len(oks)} 200s sent in all"
    )
    assert delay == pytest.approx(64 * t1, rel=0.25)
    # The 200 kept coming at intervals of at most T2 right up to the BYE.
    gaps = [b.at - a.at for a, b in zip(oks, oks[1:], strict=False)]
    assert max(gaps) == pytest.approx(t2, abs=0.04), gaps
    assert bye.at - oks[-1].at <= t2 + 0.04
    assert [m for m in oks if m.at > bye.at] == []
    assert not any(m.sent and m.method == "ACK" for m in run.messages)
    record = ended(server, bye.call_id)
    assert record["reason"] == "no_ack"
    assert "call_confirmed" not in call_events(server, bye.call_id)


# ----------------------------------------------------------------- 4. CANCEL
def test_cancel_while_ringing_gets_200_and_487_and_ack_is_absorbed(
    sipp: str, workdir: Path, short_timers: dict[str, str]
) -> None:
    # Ring for 1.5 s; after the ACK SIPp stays 2 s: long enough for three Timer G
    # retransmissions of the 487 (0.1, 0.3, 0.7 s) and for the cancelled answer timer.
    env = {**short_timers, "VOICEAGENT_ANSWER_DELAY_SECONDS": "1.5"}
    with voiceagent_serve(env=env) as server:
        run = run_sipp(sipp, server, workdir, "cancel_ringing.xml", pause_ms=2000)
    assert run.returncode == 0, run.explain()
    ack = run.first(sent=True, method="ACK")
    received = run.received()
    assert [m.status for m in received if m.at < ack.at] == [100, 180, 200, 487]
    assert [m for m in received if m.at > ack.at] == [], "487 (or a 200) after the ACK"
    record = ended(server, ack.call_id)
    assert (record["reason"], record["status"]) == ("cancelled", 487)
    assert call_events(server, ack.call_id) == ["call_ringing", "call_ended"]


def test_answer_delay_rings_then_answers(sipp: str, workdir: Path) -> None:
    env = {"VOICEAGENT_ANSWER_DELAY_SECONDS": "1.0"}
    with voiceagent_serve(env=env) as server:
        run = run_sipp(sipp, server, workdir, "ring_then_answer.xml")
    assert run.returncode == 0, run.explain()
    received = run.received()
    ringing = next(m for m in received if m.status == 180)
    answer = next(m for m in received if m.is_response(200, "INVITE"))
    print(f"\n180 -> 200: {answer.at - ringing.at:.3f} s (answer delay 1.0 s)")
    assert answer.at - ringing.at == pytest.approx(1.0, abs=0.1)
    assert ended(server, answer.call_id)["reason"] == "remote_bye"
    assert call_events(server, answer.call_id) == [
        "call_ringing",
        "call_answered",
        "call_confirmed",
        "call_ended",
    ]


# ----------------------------------------------------------------- 5. offer/answer
def test_offerless_invite_gets_offer_in_200_and_answer_in_ack(sipp: str, workdir: Path) -> None:
    with voiceagent_serve() as server:
        run = run_sipp(sipp, server, workdir, "offerless.xml")
    assert run.returncode == 0, run.explain()  # the scenario checks the SDP offer in the 200
    invite = run.first(sent=True, method="INVITE")
    assert ended(server, invite.call_id)["reason"] == "remote_bye"
    assert call_events(server, invite.call_id) == ["call_answered", "call_confirmed", "call_ended"]
    answered = [r for r in server.events("call_answered") if r["call_id"] == invite.call_id]
    assert answered[0].get("offer") == "ours"


def test_reinvite_hold_and_unhold(sipp: str, workdir: Path) -> None:
    with voiceagent_serve() as server:
        run = run_sipp(sipp, server, workdir, "reinvite_hold.xml")
    assert run.returncode == 0, run.explain()  # the scenario checks recvonly / sendrecv
    assert re.search(r"^hold answer to CSeq +2 INVITE: a=recvonly ", run.logs, re.M), run.logs
    assert re.search(r"^unhold answer to CSeq +3 INVITE: a=sendrecv ", run.logs, re.M), run.logs
    invite = run.first(sent=True, method="INVITE")
    assert ended(server, invite.call_id)["reason"] == "remote_bye"
    modified = [
        (r["on_hold"], r["direction"])
        for r in server.events("session_modified")
        if r["call_id"] == invite.call_id
    ]
    assert modified == [(True, "recvonly"), (False, "sendrecv")]
