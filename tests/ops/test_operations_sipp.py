"""Metrics, the admin API and graceful shutdown of ``voiceagent serve``, with SIPp as caller.

Issue 6 acceptance: after a call, /metrics exposes at least 35 ``voiceagent_`` metrics, each
with HELP text, and figures that match the call; /api needs the key (401 without it); a
SIGTERM during a SIPp call lets the call finish normally, answers a new INVITE during the
drain with 503 and Retry-After, and the process exits 0 within the drain time. A call that
outlasts the drain is ended by the server: a goodbye, then BYE.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent.record import IntakeStatus
from agent.records import SqliteRecords
from tests.loopback import LOOPBACK, ServerProcess, UdpPeer, voiceagent_serve
from tests.sip.test_sipp import ended, run_sipp

pytestmark = pytest.mark.peer

KEY = "test-key-4d1f"  # an invented key for this test


def http(server: ServerProcess, path: str, key: str | None = None) -> tuple[int, str]:
    """GET ``path`` from the server's HTTP port: (status, body)."""
    request = urllib.request.Request(f"http://{LOOPBACK}:{server.http_port}{path}")
    if key is not None:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str, name: str) -> dict[str, float]:
    """The samples of one metric: {label string: value}."""
    out = {}
    for match in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        out[match.group(1) or ""] = float(match.group(2))
    return out


def invite(sip_port: int, call_id: str) -> str:
    """Send one INVITE over UDP from a loopback socket; the first final response (bounded)."""
    peer = UdpPeer()
    try:
        head = (
            f"INVITE sip:intake@{LOOPBACK}:{sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{peer.port};branch=z9hG4bK-drain-{call_id}\r\n"
            f"From: <sip:tester@{LOOPBACK}>;tag=t1\r\n"
            f"To: <sip:intake@{LOOPBACK}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:tester@{LOOPBACK}:{peer.port}>\r\nMax-Forwards: 70\r\n"
        )
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        message = f"{head}Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
        peer.send(message.encode(), sip_port)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            data = peer.recv(timeout=1.0)
            if data is not None and not data.startswith(b"SIP/2.0 1"):
                text = data.decode()
                ack = head.replace("INVITE sip", "ACK sip", 1).replace(
                    "CSeq: 1 INVITE", "CSeq: 1 ACK"
                )
                peer.send(f"{ack}Content-Length: 0\r\n\r\n".encode(), sip_port)
                return text
        raise AssertionError("no final response to the INVITE within 5 s")
    finally:
        peer.sock.close()


def test_metrics_after_a_call_have_help_text_and_the_api_needs_the_key(
    sipp: str, tmp_path: Path
) -> None:
    # T1 = 50 ms: the finished transactions (Timers J and L, 64*T1) are counted within 3.2 s.
    env = {"VOICEAGENT_API_KEY": KEY, "VOICEAGENT_SIP_T1": "0.05", "VOICEAGENT_SIP_T2": "0.2"}
    with voiceagent_serve(env=env) as server:
        run = run_sipp(sipp, server, tmp_path, "uac", pause_ms=1500)
        assert run.returncode == 0, run.explain()
        call_id = run.first(sent=True, method="INVITE").call_id
        assert ended(server, call_id)["reason"] == "remote_bye"
        server.wait_for_event("transaction", count=2, timeout=8)  # INVITE and BYE finished

        status, text = http(server, "/metrics")
        assert status == 200
        helps = dict(re.findall(r"^# HELP (voiceagent_\w+) (.+)$", text, re.M))
        types = set(re.findall(r"^# TYPE (voiceagent_\w+) ", text, re.M))
        assert len(helps) >= 35, sorted(helps)
        assert types <= set(helps), types - set(helps)  # every metric has HELP text
        assert all(len(doc) > 15 for doc in helps.values())
        # The figures are those of the call that just ended.
        assert samples(text, "voiceagent_calls_total") == {'{outcome="remote_bye"}': 1.0}
        assert samples(text, "voiceagent_active_calls") == {"": 0.0}
        assert samples(text, "voiceagent_call_duration_seconds_count") == {"": 1.0}
        requests = samples(text, "voiceagent_sip_requests_total")
        assert requests['{method="INVITE"}'] == 1.0 and requests['{method="BYE"}'] == 1.0
        responses = samples(text, "voiceagent_sip_responses_total")
        assert responses['{code="200",method="INVITE",role="server"}'] == 1.0
        assert responses['{code="200",method="BYE",role="server"}'] == 1.0
        assert samples(text, "voiceagent_rtp_packets_sent_total")[""] > 40  # 1.5 s at 50/s
        assert samples(text, "voiceagent_rtp_ports_in_use") == {"": 0.0}
        assert call_id not in text  # no caller identifier in any label

        for path in ("/api/calls", "/api/intakes", "/api/intakes/x"):
            assert http(server, path)[0] == 401, path
            assert http(server, path, key="wrong")[0] == 401, path
        status, body = http(server, "/api/calls", key=KEY)
        assert (status, json.loads(body)) == (200, [])
        assert http(server, "/api/intakes", key=KEY)[0] == 200
        assert http(server, "/api/intakes/no-such-call", key=KEY)[0] == 404
        status, body = http(server, "/health/ready")
        assert (status, json.loads(body)["ready"]) == (200, True)
        assert "/api/intakes/{call_id}" in json.loads(http(server, "/openapi.json")[1])["paths"]


def test_sigterm_during_a_call_drains_refuses_new_calls_and_exits_0(
    sipp: str, tmp_path: Path
) -> None:
    drain_s = 20.0
    env = {"VOICEAGENT_DRAIN_SECONDS": str(drain_s)}
    with voiceagent_serve(env=env) as server, ThreadPoolExecutor(1) as pool:
        call = pool.submit(run_sipp, sipp, server, tmp_path, "uac", pause_ms=4000, timeout_s=30)
        server.wait_for_event("call_answered", timeout=15)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for_event("draining", timeout=5)

        status, body = http(server, "/health/ready")
        assert (status, json.loads(body)) == (503, {"ready": False, "reasons": ["draining"]})
        response = invite(server.sip_port, "drain-probe-1")
        assert response.startswith("SIP/2.0 503 "), response
        assert re.search(r"^Retry-After: *\d+", response, re.M | re.I), response

        run = call.result(timeout=60)
        assert run.returncode == 0, run.explain()  # the call went on and ended with its BYE
        assert server.proc.wait(timeout=drain_s + 5) == 0
        took = time.monotonic() - signalled
    call_id = run.first(sent=True, method="INVITE").call_id
    assert ended(server, call_id)["reason"] == "remote_bye"
    assert took < drain_s, took  # it left as soon as the call ended, not at the deadline
    [draining], [drained], [stopped] = (
        server.events(n) for n in ("draining", "drained", "stopped")
    )
    call_end = ended(server, call_id)
    stamps = [str(r["timestamp"]) for r in (draining, call_end, drained, stopped)]
    assert stamps == sorted(stamps)  # the drain waited for the call, then stopped


def test_a_call_that_outlasts_the_drain_gets_a_goodbye_and_a_bye(sipp: str, tmp_path: Path) -> None:
    drain_s = 1.0
    with voiceagent_serve(env={"VOICEAGENT_DRAIN_SECONDS": str(drain_s)}) as server:
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(
                run_sipp, sipp, server, tmp_path, "server_hangs_up.xml", timeout_s=40
            )
            server.wait_for_event("call_answered", timeout=15)
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            run = call.result(timeout=60)
            assert run.returncode == 0, run.explain()  # SIPp got our BYE and answered it
            assert server.proc.wait(timeout=30) == 0
            took = time.monotonic() - signalled
    call_id = run.first(sent=True, method="INVITE").call_id
    assert ended(server, call_id)["reason"] == "local_bye"
    assert server.events("drain_goodbye")
    bye = run.first(sent=False, method="BYE")
    invite_at = run.first(sent=True, method="INVITE").at
    assert bye.at - invite_at > drain_s  # not before the drain ran out
    assert took < drain_s + 20, took


def test_during_a_call_the_api_lists_it_without_phi_and_a_full_port_pool_is_not_ready(
    sipp: str, tmp_path: Path
) -> None:
    # One RTP port pair: the call in progress takes it, so no other call could be answered.
    low = 40000 + (os.getpid() * 14) % 10000  # even
    with (
        voiceagent_serve(
            "--rtp-ports", f"{low}-{low + 1}", env={"VOICEAGENT_API_KEY": KEY}
        ) as server,
        ThreadPoolExecutor(1) as pool,
    ):
        call = pool.submit(run_sipp, sipp, server, tmp_path, "uac", pause_ms=3000)
        server.wait_for_event("call_confirmed", timeout=15)
        status, body = http(server, "/api/calls", key=KEY)
        [listed] = json.loads(body)
        assert status == 200 and listed["state"] == "confirmed" and listed["codec"] == "PCMU"
        assert set(listed) == {"call_id", "state", "duration_s", "phase", "codec"}
        assert "sipp@" not in body  # nothing of the caller's From or Contact
        status, body = http(server, "/health/ready")
        assert (status, json.loads(body)["reasons"]) == (503, ["rtp_ports down"])
        status, body = http(server, "/health/detailed")
        [ports] = [d for d in json.loads(body)["dependencies"] if d["name"] == "rtp_ports"]
        assert ports == {"name": "rtp_ports", "ok": False, "required": True, "detail": "1/1 in use"}
        run = call.result(timeout=30)
        assert run.returncode == 0, run.explain()
        ended(server, run.first(sent=True, method="INVITE").call_id)
        assert http(server, "/health/ready")[0] == 200  # the port is back


def test_sip_from_outside_the_allowed_networks_is_dropped_and_counted() -> None:
    env = {"VOICEAGENT_SIP_ALLOWED_NETWORKS": '["10.0.0.0/8"]'}
    with voiceagent_serve(env=env) as server:
        with pytest.raises(AssertionError, match="no final response"):
            invite(server.sip_port, "acl-probe-1")
        text = http(server, "/metrics")[1]
        assert samples(text, "voiceagent_sip_acl_rejected_total")[""] >= 1.0
        assert samples(text, "voiceagent_sip_messages_received_total") == {"": 0.0}
    with voiceagent_serve(env={"VOICEAGENT_SIP_ALLOWED_NETWORKS": '["127.0.0.0/8"]'}) as server:
        assert invite(server.sip_port, "acl-probe-2").startswith("SIP/2.0 200 ")


def test_an_intake_cut_by_the_drain_is_saved_before_the_process_exits(
    sipp: str, tmp_path: Path
) -> None:
    env = {
        "VOICEAGENT_APP": "intake",
        "VOICEAGENT_DATA_DIR": str(tmp_path / "data"),
        "VOICEAGENT_DRAIN_SECONDS": "1",
    }
    with voiceagent_serve(env=env) as server, ThreadPoolExecutor(1) as pool:
        call = pool.submit(run_sipp, sipp, server, tmp_path, "server_hangs_up.xml", timeout_s=60)
        server.wait_for_event("call_answered", timeout=30)
        server.proc.send_signal(signal.SIGTERM)
        run = call.result(timeout=90)
        assert run.returncode == 0, run.explain()
        assert server.proc.wait(timeout=30) == 0
    call_id = run.first(sent=True, method="INVITE").call_id
    store = SqliteRecords(tmp_path / "data" / "records.sqlite3")
    try:
        record = store.get(call_id)
    finally:
        store.close()
    assert record is not None and record.status is IntakeStatus.INCOMPLETE
    assert record.ended_at is not None
    assert record.transcript[0].speaker == "agent"  # the intake had begun: a greeting
    assert server.events("drain_goodbye") and ended(server, call_id)["reason"] == "local_bye"
    assert [r["status"] for r in server.events("record_saved")][-1] == "incomplete"
