"""Blind transfers in flight: a REFER sent for an intake, and the intake awaiting its outcome.

Part of the runtime's asyncio shell (`agent.runtime`, STYLE rule 2). A caller who asks for
a person is transferred blind with REFER (RFC 3515, RFC 5589 §6): the intake calls
`BlindTransfers.transfer` (its ``CallServices.transfer``) while "connecting you now" plays;
the sans-I/O `UserAgent` sends the REFER and reports the outcome as transfer events
(`sip.refer`), which `on_event` turns into the awaiting intake's answer. The UA bounds every
outcome (Timer F for the REFER, then the final NOTIFY's wait), and so does the wait here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from agent.metrics import TRANSFERS
from sip.errors import SipError
from sip.refer import TransferAccepted, TransferFailed, TransferSucceeded
from sip.useragent import UserAgent

log = structlog.get_logger("voiceagent")

TransferEvent = TransferAccepted | TransferSucceeded | TransferFailed


class BlindTransfers:
    """The REFERs in flight, by Call-ID, each with the future its intake awaits."""

    def __init__(self, ua: UserAgent, wait_s: float, pump: Callable[[], None]) -> None:
        """``wait_s``: the longest wait for an outcome; ``pump``: send what the UA queued."""
        self.ua = ua
        self.wait_s = wait_s
        self._pump = pump
        self._outcomes: dict[str, asyncio.Future[bool]] = {}

    def pending(self, call_id: str) -> bool:
        """Whether an intake awaits the outcome of a transfer of this call."""
        return call_id in self._outcomes

    async def transfer(self, call_id: str, target: str) -> bool:
        """Blind-transfer a call to ``target`` with REFER; whether it worked.

        True when the transferee accepted (202) and reported a 2xx from the target, or hung
        up on us after accepting; we then have sent BYE (or received it). False when the
        REFER was refused (405/501 from a peer without REFER, 603...), nobody answered it,
        the target failed, or no final NOTIFY came in time: the call goes on.
        """
        loop = asyncio.get_running_loop()
        if call_id in self._outcomes:
            return False
        try:
            self.ua.refer(call_id, target, loop.time())
        except SipError as exc:  # the call is no longer confirmed
            log.warning("transfer_not_sent", call_id=call_id, error=type(exc).__name__)
            return False
        outcome: asyncio.Future[bool] = loop.create_future()
        self._outcomes[call_id] = outcome
        log.info("transfer_started", call_id=call_id)
        self._pump()  # send the REFER and re-arm the SIP timer
        try:
            async with asyncio.timeout(self.wait_s):
                return await outcome
        except TimeoutError:  # the UA's own timers should have decided long before
            log.warning("transfer_undecided", call_id=call_id, waited_s=self.wait_s)
            return False
        finally:
            self._outcomes.pop(call_id, None)

    def on_event(self, event: TransferEvent) -> None:
        """A transfer's progress or outcome, from the UA."""
        if isinstance(event, TransferAccepted):
            log.info("transfer_accepted", call_id=event.call_id, status=event.status)
            return
        TRANSFERS.labels("succeeded" if isinstance(event, TransferSucceeded) else "failed").inc()
        if isinstance(event, TransferSucceeded):
            log.info("transfer_succeeded", call_id=event.call_id, status=event.status)
        else:
            log.info(
                "transfer_failed",
                call_id=event.call_id,
                reason=event.reason.value,
                status=event.status,
            )
        outcome = self._outcomes.get(event.call_id)
        if outcome is not None and not outcome.done():
            outcome.set_result(isinstance(event, TransferSucceeded))
