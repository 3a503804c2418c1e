"""Acceptance of issue 3 against SIPp: caller speech and DTMF over real RTP on 127.0.0.1.

Each test builds the caller's side deterministically at test time (espeak-ng speech or
DTMF tones as headerless μ-law for SIPp's ``rtp_stream``; RFC 4733 event packets as a pcap
for ``play_pcap_audio``), runs one SIPp call against ``voiceagent serve --log-level debug``
and compares what the server logged with what was sent.

Speech timing. The server logs each turn's ``start_ms``/``end_ms`` in *media time*: RTP
timestamp units from the first packet it received, over 8. So the only link between the
file's timeline and the server's is the claim "the first packet the server got carries file
sample 0, and packet k carries samples 160k..160k+159 with timestamp ts0 + 160k". That is
not assumed: a packet socket on ``lo`` (`tests.media.capture`) records every datagram SIPp
sent, and the test checks each payload against the file and each timestamp against its
index, and that the server received exactly as many packets as went out. Nothing is
subtracted or widened: the boundary errors printed are file truth minus server log.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from dsp.dtmf import dtmf_tone
from dsp.g711 import ulaw_encode
from rtp.dtmf import DtmfEvent, event_code
from rtp.packet import RtpPacket
from rtp.seq import ts_diff
from tests.dsp.speech import espeak, ms_to_samples, scale_to_dbfs, speech_span, white_noise
from tests.loopback import LOOPBACK, ServerProcess, free_port, voiceagent_serve
from tests.media.capture import LoopbackCapture, UdpDatagram, parse_udp_frame, write_pcap

pytestmark = pytest.mark.peer

HERE = Path(__file__).resolve().parent
KEYS = "0123456789*#"
TOLERANCE_MS = 60.0
FRAME = 160


# ----------------------------------------------------------------- SIPp
@pytest.fixture(scope="module")
def sipp(sipp: str) -> str:
    """SIPp (tests/conftest.py), and root: play_pcap_audio and the packet capture need it."""
    if os.geteuid() != 0:
        pytest.fail("these tests need root: SIPp's play_pcap_audio and the packet capture")
    return sipp


def media_port() -> int:
    """An even port with the next one free too (SIPp binds its media port and port + 2)."""
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


@dataclass(frozen=True)
class Call:
    """One SIPp call: what SIPp sent on its media port, and the server's log of the call."""

    sent: list[UdpDatagram]
    call_id: str
    records: list[dict[str, object]]

    def of(self, event: str) -> list[dict[str, object]]:
        return [r for r in self.records if r.get("event") == event]


def call_with_sipp(
    sipp: str, server: ServerProcess, workdir: Path, scenario: str, hold_ms: int
) -> Call:
    """Run ``scenario`` (in this folder) from ``workdir`` for one call held ``hold_ms``."""
    port = media_port()
    cmd = [
        sipp, "-sf", str(HERE / scenario),
        "-i", LOOPBACK, "-mi", LOOPBACK, "-ci", LOOPBACK,
        "-p", str(free_port(both=False)), "-mp", str(port),
        "-cp", str(free_port(socket.SOCK_STREAM, both=False)),
        "-nostdin", "-m", "1", "-d", str(hold_ms),
        "-timeout", f"{hold_ms // 1000 + 20}s", "-timeout_error",
        f"{LOOPBACK}:{server.sip_port}",
    ]  # fmt: skip
    with LoopbackCapture(source_port=port) as capture:
        proc = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=hold_ms / 1000 + 40
        )
    assert proc.returncode == 0, f"sipp exit {proc.returncode}\n{proc.stdout[-3000:]}{proc.stderr}"
    (ended,) = server.wait_for_event("call_ended", timeout=10)
    call_id = str(ended["call_id"])
    server.wait_for_event("media_stats", timeout=5)
    records = [r for name in ("utterance", "dtmf", "dtmf_digit", "media_stats", "call_answered")
               for r in server.events(name) if r.get("call_id") == call_id]  # fmt: skip
    return Call(list(capture.datagrams), call_id, records)


def rtp_of(call: Call) -> list[RtpPacket]:
    packets = [RtpPacket.parse(d.payload) for d in call.sent]
    assert packets, "SIPp sent no RTP"
    assert len({p.ssrc for p in packets}) == 1
    return packets


def check_stream_is_the_file(call: Call, ulaw: bytes) -> None:
    """Every packet SIPp sent carries the file's next 160 octets, 160 timestamp units on."""
    packets = rtp_of(call)
    whole = len(ulaw) // FRAME
    assert len(packets) >= whole
    for k, packet in enumerate(packets[:whole]):
        assert packet.payload == ulaw[k * FRAME : (k + 1) * FRAME], f"packet {k}"
        assert ts_diff(packet.timestamp, packets[0].timestamp) == k * FRAME, f"packet {k}"
    (stats,) = call.of("media_stats")
    assert stats["packets_received"] == len(packets), stats  # the first one included
    assert stats["lost"] == 0 and stats["late"] == 0, stats


def on_a_line(pcm: NDArray[np.float64], seed: int) -> bytes:
    """Float PCM with -60 dBFS of line noise under it, as μ-law (whole 20 ms frames)."""
    pcm = np.concatenate([pcm, np.zeros((-len(pcm)) % FRAME)])
    noisy = pcm + white_noise(len(pcm), -60.0, seed)
    return bytes(ulaw_encode(np.clip(np.round(noisy), -32768, 32767).astype(np.int16)))


# ----------------------------------------------------------------- speech
# Utterances of different lengths and voices, after the given silence (ms).
SPEECH = (
    (700, "en-us", "Hello, I would like to book an appointment for next Tuesday."),
    (1200, "en-us", "Yes."),
    (1500, "en-gb+m3", "My date of birth is March third, nineteen eighty."),
    (1000, "en-us", "Blue Cross Blue Shield."),
)
TAIL_MS = 1500  # > 700 ms of trailing silence, so the last turn ends before the stream does


def speech_file() -> tuple[bytes, list[tuple[float, float]]]:
    """The caller's μ-law stream and, from the clean signal, where speech really is (ms)."""
    parts: list[NDArray[np.float64]] = []
    spans: list[tuple[float, float]] = []
    at = 0
    for gap_ms, voice, text in SPEECH:
        clip = scale_to_dbfs(espeak(text, voice), -20.0)
        parts += [np.zeros(ms_to_samples(gap_ms)), clip.astype(np.float64)]
        at += ms_to_samples(gap_ms)
        span = speech_span(clip, at)
        spans.append((span.start_ms, span.end_ms))
        at += len(clip)
    parts.append(np.zeros(ms_to_samples(TAIL_MS)))
    return on_a_line(np.concatenate(parts), seed=33), spans


@pytest.mark.slow
def test_speech_turns_the_server_detects_match_the_file_within_60_ms(
    sipp: str, tmp_path: Path
) -> None:
    ulaw, truth = speech_file()
    (tmp_path / "caller.ulaw").write_bytes(ulaw)
    duration_ms = len(ulaw) // 8
    with voiceagent_serve("--log-level", "debug") as server:
        call = call_with_sipp(sipp, server, tmp_path, "uac_stream.xml", duration_ms + 500)
    check_stream_is_the_file(call, ulaw)
    sent = call.sent
    pacing_ms = [1000 * (d.at - sent[0].at) - 20 * k for k, d in enumerate(sent)]
    utterances = call.of("utterance")
    assert len(utterances) == len(SPEECH), utterances
    errors: list[tuple[float, float]] = []
    for record, (start_ms, end_ms) in zip(utterances, truth, strict=True):
        assert isinstance(record["start_ms"], float) and isinstance(record["end_ms"], float)
        errors.append((record["start_ms"] - start_ms, record["end_ms"] - end_ms))
    (stats,) = call.of("media_stats")
    print(
        f"\nSIPp sent {len(sent)} packets, arrival vs 20 ms grid {min(pacing_ms):+.1f}.."
        f"{max(pacing_ms):+.1f} ms; server jitter buffer dropped {stats['dropped']} and "
        f"inserted {stats['inserted']} frames (media time is unaffected: RTP timestamps)"
    )
    for (start_err, end_err), (start_ms, end_ms) in zip(errors, truth, strict=True):
        print(
            f"  speech {start_ms:7.1f}-{end_ms:7.1f} ms: start {start_err:+6.1f} ms, "
            f"end {end_err:+6.1f} ms"
        )
    worst = max(abs(e) for pair in errors for e in pair)
    assert worst <= TOLERANCE_MS, errors


# ----------------------------------------------------------------- DTMF
def rfc4733_packets(keys: str) -> list[tuple[float, bytes]]:
    """One key press per 200 ms: updates every 20 ms for 100 ms, the end packet three times."""
    out: list[tuple[float, bytes]] = []
    seq, at, ssrc = 4000, 1.0, 0x5EED1234
    for n, key in enumerate(keys):
        start_ts = 8000 + n * 1600
        for update in range(1, 5):
            event = DtmfEvent(event_code(key), duration=160 * update)
            packet = RtpPacket(101, seq, start_ts, ssrc, bytes(event), marker=update == 1)
            out.append((at, bytes(packet)))
            seq, at = seq + 1, at + 0.020
        end = DtmfEvent(event_code(key), end=True, duration=800)
        for _ in range(3):  # RFC 4733 §2.5.1.4: the end packet, sent three times
            out.append((at, bytes(RtpPacket(101, seq, start_ts, ssrc, bytes(end)))))
            seq += 1
        at += 0.120
    return out


def digits_logged(call: Call) -> tuple[str, set[object]]:
    digits = call.of("dtmf_digit")
    return "".join(str(d["digit"]) for d in digits), {d["source"] for d in digits}


def test_rfc4733_digits_from_sipp_are_decoded_exactly_once(sipp: str, tmp_path: Path) -> None:
    packets = rfc4733_packets(KEYS)
    write_pcap(tmp_path / "caller.pcap", packets)
    with voiceagent_serve("--log-level", "debug") as server:
        call = call_with_sipp(sipp, server, tmp_path, "uac_pcap.xml", 4000)
    assert [p.payload_type for p in rtp_of(call)] == [101] * len(packets)  # as recorded
    (stats,) = call.of("media_stats")
    assert stats["packets_received"] == len(packets), stats  # redundant ends all arrived
    assert digits_logged(call) == (KEYS, {"rfc4733"})
    counts = [(r["source"], r["count"]) for r in call.of("dtmf")]  # the info-level line
    assert counts == [("rfc4733", n) for n in range(1, 13)]
    assert all("digit" not in r for r in call.of("dtmf"))  # digits only at debug level


def test_inband_dtmf_tones_from_sipp_are_detected_exactly_once(sipp: str, tmp_path: Path) -> None:
    parts: list[NDArray[np.float64]] = [np.zeros(ms_to_samples(500))]
    for key in KEYS:  # 100 ms tone, 100 ms pause: a quick typist
        parts += [dtmf_tone(key, 0.100, -16.0).astype(np.float64), np.zeros(ms_to_samples(100))]
    parts.append(np.zeros(ms_to_samples(500)))
    ulaw = on_a_line(np.concatenate(parts), seed=44)
    (tmp_path / "caller.ulaw").write_bytes(ulaw)
    with voiceagent_serve("--log-level", "debug") as server:
        call = call_with_sipp(sipp, server, tmp_path, "uac_stream_no_te.xml", len(ulaw) // 8 + 500)
    check_stream_is_the_file(call, ulaw)
    assert digits_logged(call) == (KEYS, {"inband"})
    assert len(call.of("dtmf")) == len(KEYS)


def test_the_pcap_writer_round_trips_through_the_capture_parser(tmp_path: Path) -> None:
    """The pcap records are the frames the sniffer would read (offline, no SIPp)."""
    packets = rfc4733_packets("1#")
    path = tmp_path / "x.pcap"
    write_pcap(path, packets, source_port=7000, destination_port=7002)
    data = path.read_bytes()
    assert struct.unpack_from("<IHHiIII", data) == (0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    offset, seen = 24, []
    while offset < len(data):
        seconds, micros, length, original = struct.unpack_from("<IIII", data, offset)
        assert length == original
        datagram = parse_udp_frame(data[offset + 16 : offset + 16 + length], seconds + micros / 1e6)
        assert datagram is not None and (datagram.source_port, datagram.destination_port) == (
            7000,
            7002,
        )
        seen.append((round(datagram.at, 6), datagram.payload))
        offset += 16 + length
    assert seen == [(round(at, 6), payload) for at, payload in packets]
