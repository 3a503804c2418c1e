"""A scripted media run whose every output is hashed: the compiled and source builds must agree.

Run as ``python -m tests.rtp.compiled_scenario``; prints one JSON line: whether the media
modules were loaded compiled, and a SHA-256 over every datagram, event and caller frame of
the run. Twelve calls on one engine (three phase groups) hear real speech through a lossy,
reordering, jittery link, on μ-law and A-law, with and without RFC 4733 (so in-band DTMF runs);
prompts play and are barged in on, digits go both ways, a caller's SSRC restarts, and RTCP
flows both ways.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct

import numpy as np

import rtp.engine
from dsp.compiled import is_compiled
from dsp.dtmf import dtmf_tone
from dsp.g711 import G711Law, alaw_encode, ulaw_encode
from rtp.dtmf import DtmfEvent, event_code
from rtp.engine import MediaEngine
from rtp.latching import Address
from rtp.session import MediaSession, SessionConfig
from tests.dsp.speech import espeak, scale_to_dbfs

CALLS = 12
TICKS = 600  # 12 s
PEER = Address("127.0.0.1", 30000)
_HEADER = struct.Struct("!BBHII")


def caller_pcm() -> np.ndarray:
    """Speech, silence, speech and a keypad tone: a caller's twelve seconds."""
    speech = scale_to_dbfs(espeak("I have had a sore throat since Tuesday."), -24.0)
    quiet = np.zeros(8000, dtype=np.int16)
    tone = dtmf_tone("5", 0.12, -10.0)
    pcm = np.concatenate([quiet, speech, quiet, tone, quiet, speech, quiet])
    pcm = np.concatenate([pcm, np.zeros(TICKS * 160, dtype=np.int16)])[: TICKS * 160]
    return pcm.astype(np.int16)


def run() -> dict[str, object]:
    """Drive the engine; hash everything it produces."""
    rng = random.Random(3550)
    digest = hashlib.sha256()
    engine = MediaEngine(phases=3, group_calls=4)
    pcm = caller_pcm()
    prompt = scale_to_dbfs(espeak("Please tell me your date of birth."), -20.0)
    sessions = []
    for call in range(CALLS):
        law = G711Law.PCMA if call % 4 == 3 else G711Law.PCMU
        config = SessionConfig(
            ssrc=0x1000 + call,
            initial_seq=65500 - call,
            initial_timestamp=0xFFFFF000 + call,
            cname=f"c{call}",
            payload_type=8 if law is G711Law.PCMA else 0,
            telephone_event_pt=None if call % 3 == 1 else 101,
            remote_rtp=PEER,
            remote_rtcp=Address("127.0.0.1", 30001),
        )
        session = MediaSession(config, 0.0, rng=random.Random(call))
        engine.add(f"call-{call}", session, law)
        sessions.append((session, config, law))
    encoded = {G711Law.PCMU: ulaw_encode(pcm).tobytes(), G711Law.PCMA: alaw_encode(pcm).tobytes()}
    in_flight: list[tuple[float, int, bytes]] = []
    for k in range(TICKS):
        now = k * 0.020
        for call, (_, config, law) in enumerate(sessions):
            ssrc = 0xCA11 + call + (0x100 if k >= 400 and call % 2 else 0)  # a restart
            seq = (call * 1000 + k) & 0xFFFF
            payload = encoded[law][k * 160 : (k + 1) * 160]
            data = _HEADER.pack(0x80, config.payload_type, seq, (k * 160) & 0xFFFFFFFF, ssrc)
            if config.telephone_event_pt is not None and 200 <= k < 206:
                event = DtmfEvent(event_code("7"), end=k == 205, duration=160 * (k - 199))
                data = _HEADER.pack(0x80, 101, seq, 200 * 160, ssrc)
                payload = bytes(event)
            if rng.random() < 0.05:
                continue  # lost
            delay = rng.uniform(0.0, 0.040)
            in_flight.append((now + delay, call, data + payload))
        in_flight.sort()
        due = [p for p in in_flight if p[0] <= now]
        in_flight = [p for p in in_flight if p[0] > now]
        for arrival, call, data in due:
            sessions[call][0].receive_rtp(data, PEER, arrival)
        if k == 50:
            for call in range(0, CALLS, 2):
                engine.play(f"call-{call}", prompt)
        if k == 300:
            engine.send_digits("call-0", "12#")
            engine.stop("call-2")
        for phase in range(3):
            result = engine.tick(now + phase * 0.020 / 3, phase)
            for datagram in result.datagrams:
                digest.update(datagram.call_id.encode() + datagram.data)
            for event in result.events:
                digest.update(repr(event).encode())
            for call_id, frame in sorted(result.audio.items()):
                digest.update(f"{call_id}:{frame.frame_index}:{frame.timestamp}".encode())
                digest.update(frame.pcm.tobytes() + bytes([frame.concealed]))
    for session, _, _ in sessions:
        digest.update(repr(session.report()).encode() + repr(session.jitter.stats()).encode())
    return {"compiled": is_compiled(rtp.engine), "sha256": digest.hexdigest()}


if __name__ == "__main__":
    print(json.dumps(run()))
