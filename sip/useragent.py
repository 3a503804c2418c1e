"""The user agent: a transaction layer, our calls, and a UAC and a UAS core (RFC 3261 §8).

Theory of operation
-------------------
`UserAgent` sits on a `TransactionLayer` and turns its events into call events for the
application, and application commands (`answer`, `reject`, `hangup`, `invite`...) into
responses and requests. It is sans-I/O like the layer below it: the shell feeds
``receive_datagram(data, source, now)`` and ``handle_timer(now)``, then drains
``datagrams_to_send()`` and ``next_event()``, and re-arms one timer at ``next_deadline()``.

It is a small facade over three collaborators, split the way RFC 3261 §8 splits a UA:

- `sip.uas_core.UasCore`: requests we receive (INVITE, ACK, CANCEL, BYE, re-INVITE,
  UPDATE, INFO, OPTIONS, REGISTER as a registrar, NOTIFY about our REFER) and our
  responses to them;
- `sip.uac_core.UacCore`: requests we send (INVITE, CANCEL, re-INVITE/UPDATE/INFO,
  REGISTER, REFER) and what their responses and timeouts mean;
- `sip.ua_core.CallTable`: the calls both share, the event queue, and ending a call.

The facade routes each layer event to the core that owns it and each command to the core
for the call's state: ``hangup`` answers 480 to an unanswered INVITE of theirs (UAS),
CANCELs an unanswered INVITE of ours (UAC), and sends BYE in a dialog either started.
A call's maximum duration (``max_call_seconds`` from confirmation) and the wait for a
transfer's final NOTIFY (`sip.refer`) are deadlines here, merged with the layer's into
``next_deadline()``. ``refer`` starts a blind transfer; its outcome comes up as
`TransferAccepted`, then `TransferSucceeded` (and our BYE) or `TransferFailed`.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable

from sip.call import Call, CallEvent, CallState, EndReason
from sip.errors import SipError
from sip.layer import (
    Address,
    LayerEvent,
    MessageRejected,
    RequestReceived,
    StrayAck,
    TransactionLayer,
)
from sip.transaction import (
    AckReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
)
from sip.ua_core import CallTable, UserAgentConfig
from sip.uac_core import UacCore
from sip.uas_core import UasCore

__all__ = ["UserAgent", "UserAgentConfig"]


def _random_id() -> str:
    return secrets.token_hex(8)


class UserAgent:
    """One SIP endpoint: a transaction layer plus calls."""

    def __init__(
        self,
        config: UserAgentConfig,
        layer: TransactionLayer,
        *,
        id_factory: Callable[[], str] = _random_id,
    ) -> None:
        """Create a user agent with no calls.

        Args:
            config: how we present ourselves and what we accept.
            layer: the transaction layer we send and receive through.
            id_factory: the source of tags, branches and Call-IDs (deterministic in tests).
        """
        self.config = config
        self.layer = layer
        self._table = CallTable(config.me, layer, id_factory)
        self._uas = UasCore(config, self._table)
        self._uac = UacCore(config, self._table)
        self.calls: dict[str, Call] = self._table.calls
        self.registrations = self._uac.registrations
        self.rejected: collections.deque[MessageRejected] = collections.deque(maxlen=64)

    # ----------------------------------------------------------------- shell interface
    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Feed bytes from the network."""
        self.layer.receive_datagram(data, source, now)
        self._drain(now)

    def handle_timer(self, now: float) -> None:
        """Fire transaction timers and call deadlines due at ``now``."""
        self.layer.handle_timer(now)
        for call in list(self.calls.values()):
            if call.refer is not None:
                self._table.events.extend(call.refer.handle_timer(now))
            if call.hangup_at is not None and call.hangup_at <= now:
                call.hangup_at = None
                self.hangup(call.call_id, now, reason=EndReason.MAX_DURATION)
        self._drain(now)

    def next_deadline(self) -> float | None:
        """The earliest of the layer's timers and the calls' own deadlines."""
        deadlines = [c.hangup_at for c in self.calls.values() if c.hangup_at is not None]
        deadlines += [
            d for c in self.calls.values() if c.refer and (d := c.refer.next_deadline()) is not None
        ]
        layer_deadline = self.layer.next_deadline()
        if layer_deadline is not None:
            deadlines.append(layer_deadline)
        return min(deadlines) if deadlines else None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Drain datagrams for the shell to send."""
        return self.layer.datagrams_to_send()

    def next_event(self) -> CallEvent | None:
        """Drain one call event for the application."""
        events = self._table.events
        return events.popleft() if events else None

    # ----------------------------------------------------------------- application commands
    def ring(self, call_id: str, now: float) -> None:
        """Send 180 Ringing for an offered call."""
        self._uas.ring(self.calls[call_id], now)

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Answer with ``sdp``: an offered call, a pending re-INVITE or UPDATE, or our ACK.

        The last case is the 2xx to our offerless INVITE: its offer came up as
        `OfferReceived`, and the answer goes in the ACK (RFC 3264 §4).
        """
        call = self.calls[call_id]
        call.local_sdp = sdp
        if call.last_2xx is not None:
            self._uac.ack_with_answer(call, sdp)
        else:
            self._uas.answer(call, sdp, now)

    def reject(
        self, call_id: str, status: int, now: float, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Refuse an offered call (486, 488, 503...) or a pending re-INVITE offer."""
        self._uas.reject(self.calls[call_id], status, now, headers)

    def hangup(self, call_id: str, now: float, *, reason: EndReason = EndReason.LOCAL_BYE) -> None:
        """End a call: BYE when confirmed or answered, 480/CANCEL before that."""
        call = self.calls.get(call_id)
        if call is None or call.state is CallState.ENDED:
            return
        if call.state is CallState.OFFERED:
            self._uas.abandon(call, reason, now)
        elif call.state is CallState.CALLING:
            self._uac.cancel(call, now)
        else:
            self._table.send_bye(call, now)
            self._table.end(call, reason)

    def invite(
        self,
        request_uri: str,
        destination: Address,
        sdp: bytes,
        now: float,
        *,
        to_uri: str | None = None,
    ) -> str:
        """Place a call (our UAC side); returns its Call-ID. ``sdp`` may be empty."""
        return self._uac.invite(request_uri, destination, sdp, now, to_uri=to_uri)

    def send_in_dialog(
        self,
        call_id: str,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> None:
        """Send re-INVITE, UPDATE or INFO in a confirmed call (§12.2.1.1, §14.1, RFC 3311).

        The final response comes back as `InDialogResponse`; a 2xx to a re-INVITE is ACKed
        here. Until then a re-INVITE (or an UPDATE with SDP) is our pending offer.

        Raises:
            SipStateError: the call is not confirmed.
        """
        self._uac.send_in_dialog(call_id, method, now, body=body, content_type=content_type)

    def refer(self, call_id: str, target: str, now: float) -> None:
        """Blind-transfer a confirmed call to ``target`` (a SIP URI) with REFER (RFC 3515).

        Events follow: `TransferAccepted` on 202, then `TransferSucceeded` (we then send BYE
        and the call ends as `EndReason.TRANSFERRED`) or `TransferFailed` (the call goes on).

        Raises:
            SipStateError: the call is not confirmed, or a transfer is already under way.
        """
        self._uac.refer(call_id, target, now)

    def register(
        self, registrar_uri: str, destination: Address, now: float, *, expires: int | None = None
    ) -> str:
        """Bind our Contact at a registrar (§10.2); returns the REGISTER's Call-ID.

        The outcome is a `RegistrationResult` (status 408 when nobody answered).
        """
        return self._uac.register(registrar_uri, destination, now, expires=expires)

    # ----------------------------------------------------------------- event dispatch
    def _drain(self, now: float) -> None:
        while (event := self.layer.next_event()) is not None:
            try:
                if isinstance(event, RequestReceived):
                    self._uas.on_request(event, now)
                elif isinstance(event, LayerEvent):
                    self._on_transaction_event(event, now)
                elif isinstance(event, StrayAck):
                    # No transaction: a retransmission after Timer L, or a peer's odd tag
                    # (pyVoIP 1.6.8 ACKs each 2xx retransmission with a To-tag of its own).
                    # ACKs never get responses, so we ignore them.
                    pass
                else:
                    self.rejected.append(event)
            except SipError as exc:
                if isinstance(event, RequestReceived):
                    self._uas.on_malformed(event, now)
                self.rejected.append(MessageRejected(str(exc), 400, _source(event)))

    def _on_transaction_event(self, event: LayerEvent, now: float) -> None:
        inner = event.event
        if isinstance(inner, AckReceived):
            self._uas.on_ack(inner.request, now)
        elif isinstance(inner, TransactionTimedOut):
            # Client and server transaction keys never compare equal (§17.1.3, §17.2.3),
            # so at most one core recognises ``event.key``.
            self._uac.on_timeout(event.key, now)
            self._uas.on_timeout(event.key, now)
        elif isinstance(inner, ResponseReceived):
            self._uac.on_response(event.key, inner.response, now)
        elif isinstance(inner, TransactionTerminated):
            self._uac.on_terminated(event.key)


def _source(event: object) -> Address:
    source = getattr(event, "source", None)
    return source if isinstance(source, Address) else Address("udp", "0.0.0.0", 0)
