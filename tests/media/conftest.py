"""In-process media calls (tier 3): a `MediaRuntime` on the test's event loop, real sockets.

`open_call` binds a call's RTP/RTCP port pair on 127.0.0.1, attaches a `MediaSession` whose
SDP addresses point at the test's peer, and detaches (final RTCP BYE) at teardown.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from dsp.g711 import G711Law
from rtp.engine import EngineConfig
from rtp.latching import Address
from rtp.session import MediaSession, SessionConfig
from rtp.transport import CallMedia, MediaRuntime

LOOPBACK = "127.0.0.1"


@dataclass
class InProcessCall:
    """One call's media inside the test's event loop."""

    runtime: MediaRuntime
    call_id: str
    rtp_port: int
    session: MediaSession
    media: CallMedia

    def detach(self) -> None:
        """End the call's media now (sends the final RTCP compound with BYE)."""
        if self.call_id in self.runtime.engine:
            self.runtime.detach(self.call_id)


OpenCall = Callable[..., InProcessCall]


def _bind_pair(runtime: MediaRuntime, call_id: str, rng: random.Random) -> int:
    for _ in range(50):  # bounded: a port pair someone else holds is skipped
        port = rng.randrange(30000, 60000, 2)
        try:
            runtime.bind(call_id, port)
        except OSError:
            continue
        return port
    raise RuntimeError("no free RTP port pair on 127.0.0.1")


@pytest.fixture
async def open_call() -> AsyncIterator[OpenCall]:
    """Factory: ``open_call(remote_rtp_port, remote_rtcp_port, config=..., **session)``."""
    runtimes: list[MediaRuntime] = []
    calls: list[InProcessCall] = []
    rng = random.Random()

    def factory(
        remote_rtp_port: int,
        remote_rtcp_port: int,
        *,
        config: EngineConfig | None = None,
        **session: object,
    ) -> InProcessCall:
        runtime = MediaRuntime(LOOPBACK, config=config)
        runtimes.append(runtime)
        call_id = f"media-test-{len(calls)}"
        port = _bind_pair(runtime, call_id, rng)
        settings = SessionConfig(
            ssrc=rng.getrandbits(32),
            initial_seq=rng.getrandbits(16),
            initial_timestamp=rng.getrandbits(32),
            cname=f"{call_id}@voiceagent.test",
            remote_rtp=Address(LOOPBACK, remote_rtp_port),
            remote_rtcp=Address(LOOPBACK, remote_rtcp_port),
            **session,  # type: ignore[arg-type]  # the caller passes SessionConfig fields
        )
        media_session = MediaSession(settings, runtime.loop.time())
        media = runtime.attach(call_id, media_session, G711Law.PCMU)
        call = InProcessCall(runtime, call_id, port, media_session, media)
        calls.append(call)
        return call

    yield factory
    for call in calls:
        call.detach()
    for runtime in runtimes:
        runtime.close()
