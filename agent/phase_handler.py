"""The language-model phase handler of one call: a proposal per turn, in budget, with failover.

Theory of operation
-------------------
Part of the runtime's per-call shell (`agent.call_runtime`), at the edge between the speech
recogniser's transcript and the sans-I/O `Conversation`. For each caller turn:

    Transcript text ──> request_for(conversation) ──> model (streamed) ──> Proposal
                                                        │ acknowledgement sentences ──> TTS
    Transcript(text, proposal) ──> Conversation: the rules accept the proposal or ignore it

States of the handler::

    ACTIVE ──error, 429, 5xx, dropped stream──────────────> FAILED_OVER (rest of the call)
    ACTIVE ──LATE_TURNS_BEFORE_FAILOVER late turns in a row──> FAILED_OVER

* **Budget.** Each request runs under ``budget_s`` (``llm_turn_budget_s``, 1.5 s by default),
  counted from the end of recognition. A late model is cancelled (the stream is closed) and
  *that turn* goes to the rules alone: the transcript is passed on without a proposal. A slow
  turn or two is weather; several in a row (`LATE_TURNS_BEFORE_FAILOVER`) mean the server is
  not keeping up, and the call fails over with reason ``timeout``.
* **Failover.** An error answer (429, 5xx, another status), a refused connection or a stream
  dropped mid-reply switches this call to the embedded (rule-based) path at once: the failing
  turn itself is answered by the rules, so the caller hears nothing unusual, only the next
  question. The switch is logged once as ``provider_failover`` (role, from, to, reason; no
  PHI) and counted in `agent.metrics.PROVIDER_FAILOVERS`. Other calls keep their model.
* **Speaking.** The ``acknowledgement`` the model streams first is read sentence by sentence
  (`agent.acknowledgements.AcknowledgementReader`) and each sentence `speakable` passes is handed to
  ``speak`` (synthesis and playout) while the rest of the reply is still arriving.

Nothing here reads a clock: the budget is an ``asyncio.timeout`` (this is a shell, STYLE rule 2).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from enum import Enum
from typing import Protocol

import structlog

from agent.acknowledgements import AcknowledgementReader, speakable
from agent.events import Proposal
from agent.metrics import PROVIDER_FAILOVERS
from agent.proposals import TurnRequest, proposal_from_content, proposal_from_tool
from agent.providers.openai_llm import ContentDelta, ModelUnavailable, ToolCall

log = structlog.get_logger("voiceagent.llm")

#: Consecutive turns over budget before the call stops asking the model.
LATE_TURNS_BEFORE_FAILOVER = 2


class ProposalModel(Protocol):
    """What the handler needs of a model client (`agent.providers.openai_llm.OpenAiChat`)."""

    def stream(
        self, request: TurnRequest, caller_words: str
    ) -> AsyncGenerator[ContentDelta | ToolCall, None]:
        """The reply to one turn as it streams; raises `ModelUnavailable` on failure."""
        ...

    async def aclose(self) -> None:
        """Release the client's connections."""
        ...


class HandlerState(Enum):
    """Whether this call still asks the model."""

    ACTIVE = "active"
    FAILED_OVER = "failed_over"


class PhaseHandler:
    """One call's proposals from the language model."""

    def __init__(
        self,
        model: ProposalModel,
        *,
        call_id: str,
        budget_s: float,
        speak: Callable[[str], Awaitable[None]] | None = None,
        provider: str = "openai",
    ) -> None:
        self.model = model
        self.call_id = call_id
        self.budget_s = budget_s
        self.state = HandlerState.ACTIVE
        self.failover_reason: str | None = None
        self.proposals = 0  # turns that got a proposal (accepted or not by the rules)
        self._speak = speak
        self._provider = provider
        self._late = 0
        self._spoke = 0

    async def propose(self, request: TurnRequest | None, caller_words: str) -> Proposal | None:
        """The model's proposal for this turn, or None: no request, late, or failed over."""
        if self.state is HandlerState.FAILED_OVER or request is None or not caller_words:
            return None
        try:
            async with asyncio.timeout(self.budget_s):
                proposal = await self._ask(request, caller_words)
        except TimeoutError:
            self._late += 1
            log.info("llm_turn_late", call_id=self.call_id, key=request.key, late=self._late)
            if self._late >= LATE_TURNS_BEFORE_FAILOVER:
                self._fail_over("timeout")
            return None
        except ModelUnavailable as exc:
            self._fail_over(exc.reason)
            return None
        self._late = 0
        self.proposals += proposal is not None
        log.info(
            "llm_proposal",
            call_id=self.call_id,
            key=request.key,
            proposed=proposal.key if proposal is not None else None,
            spoke=self._spoke,  # sentences said (counted, never logged: they may name people)
        )
        return proposal

    async def _ask(self, request: TurnRequest, caller_words: str) -> Proposal | None:
        reader = AcknowledgementReader()
        self._spoke = 0
        content: list[str] = []
        tools: list[Proposal] = []
        async with contextlib.aclosing(self.model.stream(request, caller_words)) as reply:
            async for item in reply:
                if isinstance(item, ToolCall):
                    if (found := proposal_from_tool(item.name, item.arguments)) is not None:
                        tools.append(found)
                    continue
                content.append(item.text)
                for sentence in reader.feed(item.text):
                    if self._speak is not None and speakable(sentence):
                        await self._speak(sentence)
                        self._spoke += 1
        # A tool call for what is being asked first; then the JSON; then any other tool call
        # (a proposal for another key, which the rules will ignore unless it is an intent).
        for proposal in tools:
            if proposal.key == request.key:
                return proposal
        from_json = proposal_from_content(request.key, "".join(content))
        return from_json or (tools[0] if tools else None)

    def _fail_over(self, reason: str) -> None:
        if self.state is HandlerState.FAILED_OVER:
            return
        self.state, self.failover_reason = HandlerState.FAILED_OVER, reason
        PROVIDER_FAILOVERS.labels(role="llm", reason=reason).inc()
        log.warning(
            "provider_failover",
            call_id=self.call_id,
            role="llm",
            reason=reason,
            to="embedded",
            **{"from": self._provider},
        )
