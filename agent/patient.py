"""A simulated patient: places a call with our own SIP and RTP stacks and follows a script.

The asyncio shell of a test caller (like `agent.runtime` is the server's): a `UserAgent` on
an ephemeral loopback port sends the INVITE, a `MediaRuntime` carries the audio. The patient
takes turns by listening: its own endpointer tells when the agent has finished a prompt
(``SpeechEnded`` on the agent's audio), then it speaks the next scripted turn (espeak-ng, in
the persona's voice), types digits (RFC 4733), stays silent, or hangs up. A turn with
``barge_in_after_ms`` starts that long after the agent starts speaking instead.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import structlog
from numpy.typing import NDArray

from agent.audio_files import read_wav_8k
from agent.persona import Persona, PersonaTurn
from agent.prompts import PROMPT_LEVEL_DBFS, to_telephone
from agent.providers.espeak import Voice, sample_rate_hz, synthesize
from dsp.endpoint import SpeechEnded, SpeechStarted
from dsp.g711 import G711Law
from rtp.engine import EngineConfig, PlayoutDone
from rtp.latching import Address as MediaAddress
from rtp.session import MediaSession, SessionConfig
from rtp.transport import CallMedia, MediaRuntime
from sip.call import CallConfirmed, CallEnded
from sip.layer import Address, TransactionLayer
from sip.offer_answer import Answer, LocalMedia, accept_answer, build_offer
from sip.sdp import SessionDescription
from sip.transport import SipEndpoint
from sip.uac import Originator
from sip.useragent import UserAgent, UserAgentConfig

log = structlog.get_logger("voiceagent.patient")

Line = Callable[[str, str], None]  # (speaker, text) for a live transcript


@dataclass(frozen=True, slots=True)
class PatientResult:
    """How the scripted call went."""

    call_id: str
    answered: bool
    ended_by_agent: bool
    turns_done: int


def _free_udp_port(host: str, *, even: bool = False, pair: bool = False) -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if even and port % 2:
            continue
        if pair:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((host, port + 1))
                except OSError:
                    continue
        return port
    raise OSError("no free UDP port on the loopback interface")


class SimulatedPatient:
    """One scripted call to a SIP URI."""

    def __init__(
        self,
        persona: Persona,
        request_uri: str,
        server: Address,
        *,
        host: str = "127.0.0.1",
        on_line: Line | None = None,
    ) -> None:
        self.persona = persona
        self.request_uri = request_uri
        self.server = server
        self.host = host
        self.on_line = on_line or (lambda speaker, text: None)
        self.voice = Voice(persona.voice)
        self._confirmed = asyncio.Event()
        self._ended = asyncio.Event()
        self._answer: Answer | None = None
        self._ended_by_agent = False

    async def run(self, timeout_s: float = 300.0) -> PatientResult:
        """Place the call, play the script, wait for the agent's goodbye (bounded)."""
        loop = asyncio.get_running_loop()
        sip_port = _free_udp_port(self.host)
        user = self.persona.caller_id or "patient"
        me = Originator(
            from_uri=f"sip:{user}@{self.host}",
            contact_uri=f"sip:{user}@{self.host}:{sip_port}",
            sent_by=f"{self.host}:{sip_port}",
            user_agent="VoiceAgent-Patient",
        )
        ua = UserAgent(UserAgentConfig(me=me, accept_register=False), TransactionLayer())
        media = MediaRuntime(
            self.host, config=EngineConfig(bargein_enabled=False, echo_guard=False)
        )
        rtp_port = _free_udp_port(self.host, even=True, pair=True)
        call_id = f"patient-{secrets.token_hex(6)}"
        media.bind(call_id, rtp_port)
        local = LocalMedia(
            self.host,
            rtp_port,
            session_id=secrets.randbelow(2**31),
            session_version=1,
            username="patient",
        )
        offer = build_offer(local)
        endpoint = SipEndpoint(ua, on_activity=lambda: self._on_sip(ua))
        await endpoint.start(self.host, sip_port, tcp=False)
        turns_done = 0
        sip_call_id = ua.invite(self.request_uri, self.server, str(offer).encode(), loop.time())
        endpoint.pump()
        try:
            async with asyncio.timeout(timeout_s):
                await self._wait_answered()
                assert self._answer is not None
                handle = media.attach(
                    call_id, self._session(self._answer, loop.time()), _law(self._answer)
                )
                turns_done = await self._play_script(handle, ua, sip_call_id, endpoint)
                await self._ended.wait()
        except TimeoutError:
            log.warning("patient_timeout", call_id=sip_call_id)
        finally:
            if not self._ended.is_set():
                ua.hangup(sip_call_id, loop.time())
                endpoint.pump()
                await asyncio.sleep(0.2)  # let the BYE leave before the socket closes
            media.close()
            endpoint.close()
        return PatientResult(
            sip_call_id, self._answer is not None, self._ended_by_agent, turns_done
        )

    # ----------------------------------------------------------------- signalling
    def _on_sip(self, ua: UserAgent) -> None:
        while (event := ua.next_event()) is not None:
            if isinstance(event, CallConfirmed):
                result = accept_answer(
                    build_offer(LocalMedia(self.host, 1)),  # only the codec list matters
                    SessionDescription.parse(event.remote_sdp.decode("utf-8", "replace")),
                )
                if isinstance(result, Answer):
                    self._answer = result
                self._confirmed.set()
            elif isinstance(event, CallEnded):
                self._ended_by_agent = event.reason.value == "remote_bye"
                self._ended.set()
                self._confirmed.set()

    async def _wait_answered(self) -> None:
        await self._confirmed.wait()
        if self._answer is None:
            raise TimeoutError("the call was not answered with usable media")

    def _session(self, answer: Answer, now: float) -> MediaSession:
        return MediaSession(
            SessionConfig(
                ssrc=secrets.randbits(32),
                initial_seq=secrets.randbits(16),
                initial_timestamp=secrets.randbits(32),
                cname="patient",
                payload_type=answer.codec.payload_type,
                telephone_event_pt=answer.telephone_event_pt,
                ptime_s=answer.ptime_ms / 1000,
                remote_rtp=MediaAddress(answer.remote_address, answer.remote_port),
                remote_rtcp=MediaAddress(answer.remote_address, answer.remote_port + 1),
            ),
            now,
        )

    # ----------------------------------------------------------------- the script
    async def _play_script(
        self, media: CallMedia, ua: UserAgent, call_id: str, endpoint: SipEndpoint
    ) -> int:
        done = 0
        agent = _AgentSpeech(media)
        watcher = asyncio.create_task(agent.watch())
        try:
            for turn in self.persona.turns:
                if self._ended.is_set():
                    break
                if turn.barge_in_after_ms is not None:
                    await agent.started_speaking()
                    await asyncio.sleep(turn.barge_in_after_ms / 1000)
                else:
                    await agent.finished_speaking()
                await self._take_turn(turn, media, agent, ua, call_id, endpoint)
                done += 1
        finally:
            watcher.cancel()
        return done

    async def _take_turn(
        self,
        turn: PersonaTurn,
        media: CallMedia,
        agent: _AgentSpeech,
        ua: UserAgent,
        call_id: str,
        endpoint: SipEndpoint,
    ) -> None:
        agent.reset()
        if turn.hang_up:
            self.on_line("patient", "[hangs up]")
            ua.hangup(call_id, asyncio.get_running_loop().time())
            endpoint.pump()
            self._ended.set()
            return
        if turn.silence is not None:
            self.on_line("patient", f"[silent for {turn.silence:g} s]")
            await asyncio.sleep(turn.silence)
            return
        if turn.dtmf is not None:
            self.on_line("patient", f"[keypad {turn.dtmf}]")
            media.send_digits(turn.dtmf)
            await asyncio.sleep(0.2 * len(turn.dtmf) + 0.1)
            return
        pcm = await asyncio.to_thread(self._speech, turn)
        self.on_line("patient", turn.say or f"[recording {turn.wav}]")
        agent.mute_until_done()
        media.play(pcm)
        await agent.own_playout_done()

    def _speech(self, turn: PersonaTurn) -> NDArray[np.int16]:
        if turn.wav is not None:
            return read_wav_8k(turn.wav)
        assert turn.say is not None
        return to_telephone(
            synthesize(turn.say, self.voice), sample_rate_hz(), PROMPT_LEVEL_DBFS - 4
        )


class _AgentSpeech:
    """Follows the agent's prompts on the patient's side of the call."""

    def __init__(self, media: CallMedia) -> None:
        self.media = media
        self._started = asyncio.Event()
        self._finished = asyncio.Event()
        self._own_done = asyncio.Event()
        self._muted = False

    def reset(self) -> None:
        self._started.clear()
        self._finished.clear()
        self._own_done.clear()

    def mute_until_done(self) -> None:
        self._muted = True

    async def watch(self) -> None:
        # The patient's audio queue is not needed: drain it so it never fills.
        drain = asyncio.create_task(self._drain())
        try:
            async for event in self.media.iter_events():
                if isinstance(event, PlayoutDone):
                    self._muted = False
                    self._own_done.set()
                elif isinstance(event, SpeechStarted):
                    self._started.set()
                elif isinstance(event, SpeechEnded) and self._started.is_set():
                    # Only the end of a prompt that started after our last turn counts: the
                    # end of one we barged in on is not the agent's next prompt ending.
                    self._finished.set()
        finally:
            drain.cancel()

    async def _drain(self) -> None:
        while await self.media.audio.get() is not None:
            pass

    async def started_speaking(self) -> None:
        await self._started.wait()

    async def finished_speaking(self) -> None:
        await self._finished.wait()

    async def own_playout_done(self) -> None:
        await self._own_done.wait()


def _law(answer: Answer) -> G711Law:
    return G711Law.PCMA if answer.codec.name.upper() == "PCMA" else G711Law.PCMU
