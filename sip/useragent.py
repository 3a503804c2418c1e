"""The user agent core: what VoiceAgent does with each request and response (RFC 3261 §8-§15).

Theory of operation
-------------------
`UserAgent` sits on a `TransactionLayer` and turns its events into call events for the
application, and application commands (`answer`, `reject`, `hangup`, `invite`...) into
responses and requests. It is sans-I/O like the layer below it: the shell feeds
``receive_datagram(data, source, now)`` and ``handle_timer(now)``, then drains
``datagrams_to_send()`` and ``next_event()``, and re-arms one timer at ``next_deadline()``.

Requests outside a dialog: OPTIONS is answered 200 with Allow/Accept/Supported (trunks use
it as a keepalive); REGISTER is accepted as a registrar that keeps no bindings (softphones
and pyVoIP register before they call; we answer 200 echoing the Contact, or challenge when
digest authentication is configured); INVITE becomes an `IncomingCall` after §8.2
inspection. Requests inside a dialog: ACK confirms, BYE ends (200), re-INVITE and UPDATE
carry offers (`OfferReceived`) or refresh the session timer (answered with the current SDP),
INFO is passed up. An in-dialog request for no known dialog gets 481.

An offer from the peer while our own re-INVITE/UPDATE is pending is glare: 491 (§14.2); a
second offer while theirs is unanswered gets 500 with Retry-After (§14.2, RFC 3311 §5.2).

CANCEL (§9.2): 200 for the CANCEL and 487 for the INVITE when it is still unanswered; 481
when nothing matches. A 2xx that is never ACKed (the INVITE server transaction's timer)
ends the call with a BYE. In-dialog requests are sent to the address the call's signalling
came from (the trunk), never to a host named in Contact or Record-Route.

Our side as a client: `invite` places a call (an offerless one too: the 2xx's offer comes up
as `OfferReceived` and `answer` puts the answer in the ACK, RFC 3264 §4), `send_in_dialog`
sends re-INVITE/UPDATE/INFO (`InDialogResponse`), `register` binds our Contact at a
registrar (`RegistrationResult`). A 401/407 to our INVITE or REGISTER is answered once with
the configured `Credentials` (§22.2): same Call-ID and tags, CSeq + 1, a new branch.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sip.auth import DigestVerifier
from sip.call import (
    Call,
    CallConfirmed,
    CallEnded,
    CallEvent,
    CallInput,
    CallProgress,
    CallState,
    EndReason,
    IncomingCall,
    InDialogResponse,
    InfoReceived,
    OfferReceived,
)
from sip.dialog import Dialog
from sip.errors import SipError, SipStateError
from sip.layer import (
    Address,
    LayerEvent,
    MessageRejected,
    RequestReceived,
    StrayAck,
    TransactionLayer,
)
from sip.message import Request, Response, make_response
from sip.registration import Registrations
from sip.transaction import (
    AckReceived,
    ResponseReceived,
    ServerInvite,
    TransactionKey,
    TransactionTerminated,
    TransactionTimedOut,
)
from sip.uac import (
    BRANCH_COOKIE,
    Credentials,
    Originator,
    build_ack_for_2xx,
    build_cancel,
    build_invite,
    with_authorization,
)
from sip.uas import (
    Rejection,
    UasPolicy,
    dialog_response,
    digest_challenge,
    inspect,
    options_headers,
    registrar_contacts,
)


@dataclass(frozen=True, slots=True)
class UserAgentConfig:
    """How the user agent presents itself and what it accepts."""

    me: Originator
    policy: UasPolicy = field(default_factory=UasPolicy)
    max_call_seconds: float = 3600.0
    verifier: DigestVerifier | None = None  # challenge INVITE/REGISTER when set
    accept_register: bool = True
    register_expires: int = 3600
    credentials: Credentials | None = None  # answer 401/407 to our INVITE and REGISTER


@dataclass(frozen=True, slots=True)
class _InDialogRequest:
    """A request of ours inside a call, and the ACK once a re-INVITE was answered 2xx."""

    call_id: str
    request: Request
    ack: Request | None = None


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
        self.config = config
        self.layer = layer
        self._ids = id_factory
        self.calls: dict[str, Call] = {}
        self._events: collections.deque[CallEvent] = collections.deque()
        self._client_calls: dict[TransactionKey, str] = {}
        self.registrations = Registrations(
            config.me, layer, ids=id_factory, credentials=config.credentials
        )
        self._in_dialog: dict[TransactionKey, _InDialogRequest] = {}
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
            if call.hangup_at is not None and call.hangup_at <= now:
                call.hangup_at = None
                self.hangup(call.call_id, now, reason=EndReason.MAX_DURATION)
        self._drain(now)

    def next_deadline(self) -> float | None:
        """The earliest of the layer's timers and the calls' maximum-duration deadlines."""
        deadlines = [c.hangup_at for c in self.calls.values() if c.hangup_at is not None]
        layer_deadline = self.layer.next_deadline()
        if layer_deadline is not None:
            deadlines.append(layer_deadline)
        return min(deadlines) if deadlines else None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Drain datagrams for the shell to send."""
        return self.layer.datagrams_to_send()

    def next_event(self) -> CallEvent | None:
        """Drain one call event for the application."""
        return self._events.popleft() if self._events else None

    # ----------------------------------------------------------------- application commands
    def ring(self, call_id: str, now: float) -> None:
        """Send 180 Ringing for an offered call."""
        call = self.calls[call_id]
        self._respond_invite(call, 180, now)

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Answer with ``sdp``: an offered call, a pending re-INVITE or UPDATE, or our ACK.

        The last case is the 2xx to our offerless INVITE: its offer came up as
        `OfferReceived`, and the answer goes in the ACK (RFC 3264 §4).
        """
        call = self.calls[call_id]
        call.local_sdp = sdp
        if call.last_2xx is not None:
            response, call.last_2xx = call.last_2xx, None
            self._send_ack(call, response, body=sdp)
            self._events.append(CallConfirmed(call.call_id, call.remote_sdp))
            return
        if call.pending_reinvite is not None:
            key, call.pending_reinvite = call.pending_reinvite, None
            tx = self.layer.server_transaction(key)
            if tx is not None:
                response = self._with_contact(
                    make_response(tx.request, 200, body=sdp, to_tag=call.dialog_tag()), sdp
                )
                self.layer.respond(key, response, now)
            return
        call.advance(CallInput.ANSWER)
        self._respond_invite(call, 200, now, body=sdp)

    def reject(
        self, call_id: str, status: int, now: float, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Refuse an offered call (486, 488, 503...) or a pending re-INVITE offer."""
        call = self.calls[call_id]
        if call.pending_reinvite is not None:
            key, call.pending_reinvite = call.pending_reinvite, None
            tx = self.layer.server_transaction(key)
            if tx is not None:
                self.layer.respond(key, make_response(tx.request, status, headers=headers), now)
            return
        self._respond_invite(call, status, now, headers=headers)
        self._end(call, EndReason.REJECTED, status)

    def hangup(self, call_id: str, now: float, *, reason: EndReason = EndReason.LOCAL_BYE) -> None:
        """End a call: BYE when confirmed or answered, 480/CANCEL before that."""
        call = self.calls.get(call_id)
        if call is None or call.state is CallState.ENDED:
            return
        if call.state is CallState.OFFERED:
            self._respond_invite(call, 480, now)
            self._end(call, reason, 480)
        elif call.state is CallState.CALLING:
            cancel = build_cancel(call.invite)
            call.cancel_key = self.layer.send_request(cancel, call.peer, now)
        else:
            self._send_bye(call, now)
            self._end(call, reason)

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
        call_id = self._new_call_id()
        request = build_invite(
            replace(self.config.me, transport=destination.transport.upper()),
            request_uri=request_uri,
            to_uri=to_uri or request_uri,
            call_id=call_id,
            tag=self._ids(),
            branch=self._branch(),
            sdp=sdp,
        )
        call = Call(call_id, CallState.CALLING, destination, request, local_sdp=sdp)
        self.calls[call_id] = call
        call.invite_key = self.layer.send_request(request, destination, now)
        self._client_calls[call.invite_key] = call_id
        return call_id

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
        call = self.calls.get(call_id)
        if call is None or call.dialog is None or call.state is not CallState.CONFIRMED:
            raise SipStateError(f"cannot send {method}: the call is not confirmed")
        extra = (("Content-Type", content_type),) if body else ()
        refresh = method in ("INVITE", "UPDATE")  # target refresh requests carry Contact
        call.dialog, request = call.dialog.next_request(
            method,
            via=self._via(call),
            extra_headers=extra,
            body=body,
            contact=f"<{self.config.me.contact_uri}>" if refresh else None,
        )
        key = self.layer.send_request(request, call.peer, now)
        self._in_dialog[key] = _InDialogRequest(call_id, request)
        if method == "INVITE" or (method == "UPDATE" and body):
            call.own_offer = key

    def register(
        self, registrar_uri: str, destination: Address, now: float, *, expires: int | None = None
    ) -> str:
        """Bind our Contact at a registrar (§10.2); returns the REGISTER's Call-ID.

        The outcome is a `RegistrationResult` (status 408 when nobody answered).
        """
        call_id = self._new_call_id()
        expires = self.config.register_expires if expires is None else expires
        self.registrations.register(
            registrar_uri, destination, now, expires=expires, call_id=call_id
        )
        return call_id

    # ----------------------------------------------------------------- event dispatch
    def _drain(self, now: float) -> None:
        while (event := self.layer.next_event()) is not None:
            try:
                if isinstance(event, RequestReceived):
                    self._on_request(event, now)
                elif isinstance(event, LayerEvent):
                    self._on_transaction_event(event, now)
                elif isinstance(event, StrayAck):
                    self._on_stray_ack(event)
                else:
                    self.rejected.append(event)
            except SipError as exc:
                # A request that validated but whose view failed later: answer 400 if we can.
                if isinstance(event, RequestReceived) and event.request.method != "ACK":
                    self._try_respond(event.key, make_response(event.request, 400), now)
                self.rejected.append(MessageRejected(str(exc), 400, _source(event)))

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        rejection = inspect(request, self.config.policy)
        if rejection is not None:
            self._send_rejection(event.key, request, rejection, now)
            return
        to_tag = request.to().tag
        if request.method == "CANCEL":
            self._on_cancel(event, now)
        elif to_tag is not None:
            self._on_in_dialog(event, now)
        elif request.method == "OPTIONS":
            self._try_respond(event.key, self._options_response(request), now)
        elif request.method == "REGISTER":
            self._on_register(event, now)
        elif request.method == "INVITE":
            self._on_invite(event, now)
        else:
            # BYE, UPDATE, INFO outside a dialog (§12.2.2)
            self._try_respond(event.key, make_response(request, 481, to_tag=self._ids()), now)

    def _on_invite(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if not self._authorized(event, now):
            return
        call_id = request.call_id()
        if call_id in self.calls:  # a second INVITE for a call we know, outside its dialog
            self._try_respond(event.key, make_response(request, 482, to_tag=self._ids()), now)
            return
        tx = self.layer.server_transaction(event.key)
        tag = tx.to_tag if isinstance(tx, ServerInvite) else self._ids()
        dialog = Dialog.as_uas(request, local_tag=tag, initial_cseq=1)
        call = Call(
            call_id,
            CallState.OFFERED,
            event.source,
            request,
            invite_key=event.key,
            dialog=dialog,
            remote_sdp=request.body,
        )
        self.calls[call_id] = call
        self._events.append(IncomingCall(call_id, request, request.body, event.source))

    def _on_cancel(self, event: RequestReceived, now: float) -> None:
        request = event.request
        call = self.calls.get(request.call_id())
        invite_tx = self.layer.server_transaction(event.cancels) if event.cancels else None
        if call is None or invite_tx is None or call.invite_key != event.cancels:
            self._try_respond(event.key, make_response(request, 481, to_tag=self._ids()), now)
            return
        self._try_respond(event.key, make_response(request, 200, to_tag=call.dialog_tag()), now)
        if call.state is CallState.OFFERED:
            self._respond_invite(call, 487, now)
            self._end(call, EndReason.CANCELLED, 487)

    def _on_in_dialog(self, event: RequestReceived, now: float) -> None:
        request = event.request
        call = self.calls.get(request.call_id())
        if call is None or call.dialog is None or call.state is CallState.ENDED:
            self._try_respond(event.key, make_response(request, 481), now)
            return
        checked = call.dialog.accept_remote_cseq(request)
        if checked is None:
            self._try_respond(event.key, make_response(request, 500), now)  # §12.2.2
            return
        call.dialog = checked
        if request.method == "BYE":
            self._try_respond(event.key, make_response(request, 200), now)
            self._end(call, EndReason.REMOTE_BYE)
        elif request.method in ("INVITE", "UPDATE"):
            if call.pending_reinvite is not None:
                # §14.2 (RFC 3311 §5.2): their previous offer is still unanswered.
                retry = (("Retry-After", str(secrets.randbelow(11))),)
                self._try_respond(event.key, make_response(request, 500, headers=retry), now)
                return
            glare = call.own_offer is not None and (request.method == "INVITE" or request.body)
            if glare or call.state is not CallState.CONFIRMED:
                self._try_respond(event.key, make_response(request, 491), now)  # §14.2
                return
            call.dialog = call.dialog.with_remote_target(request)
            if request.body:
                call.pending_reinvite = event.key
                self._events.append(OfferReceived(call.call_id, request.body))
            else:
                # Session refresh without an offer (RFC 4028): answer with what we have.
                body = call.local_sdp if request.method == "INVITE" else b""
                response = self._with_contact(make_response(request, 200, body=body), body)
                self._try_respond(event.key, response, now)
        elif request.method == "INFO":
            self._try_respond(event.key, make_response(request, 200), now)
            self._events.append(InfoReceived(call.call_id, request.content_type(), request.body))
        elif request.method == "OPTIONS":
            self._try_respond(event.key, self._options_response(request), now)
        else:
            allow = (("Allow", ", ".join(self.config.policy.allow)),)
            self._try_respond(event.key, make_response(request, 405, headers=allow), now)

    def _on_register(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if not self.config.accept_register:
            allow = (("Allow", ", ".join(a for a in self.config.policy.allow if a != "REGISTER")),)
            self._try_respond(
                event.key, make_response(request, 405, headers=allow, to_tag=self._ids()), now
            )
            return
        if not self._authorized(event, now):
            return
        headers = registrar_contacts(request, self.config.register_expires)
        self._try_respond(
            event.key, make_response(request, 200, headers=headers, to_tag=self._ids()), now
        )

    def _on_transaction_event(self, event: LayerEvent, now: float) -> None:
        inner = event.event
        if isinstance(inner, AckReceived):
            call = self.calls.get(inner.request.call_id())
            if call is not None and call.state is CallState.ANSWERED:
                call.advance(CallInput.ACK)
                if call.dialog is not None:
                    call.dialog = call.dialog.confirmed()
                if inner.request.body:
                    call.remote_sdp = inner.request.body
                call.hangup_at = now + self.config.max_call_seconds
                self._events.append(CallConfirmed(call.call_id, call.remote_sdp))
        elif isinstance(inner, TransactionTimedOut):
            self._on_timeout(event.key, inner, now)
        elif isinstance(inner, ResponseReceived):
            self._on_response(event.key, inner.response, now)
        elif isinstance(inner, TransactionTerminated):
            self._in_dialog.pop(event.key, None)  # re-INVITE 2xx retransmissions are over

    def _on_timeout(self, key: TransactionKey, event: TransactionTimedOut, now: float) -> None:
        if (sent := self._in_dialog.pop(key, None)) is not None:
            self._in_dialog_final(key, sent, 408, b"")
            return
        if (registered := self.registrations.on_timeout(key)) is not None:
            self._events.append(registered)
            return
        for call in list(self.calls.values()):
            if call.invite_key == key and call.state is CallState.ANSWERED:
                # §13.3.1.4: no ACK for our 2xx within 64*T1: end the dialog with BYE.
                self._send_bye(call, now)
                self._end(call, EndReason.NO_ACK)
            elif call.invite_key == key and call.state is CallState.CALLING:
                self._end(call, EndReason.TIMEOUT, 408)
        self._client_calls.pop(key, None)

    def _on_response(self, key: TransactionKey, response: Response, now: float) -> None:
        if key in self.registrations:
            if (registered := self.registrations.on_response(key, response, now)) is not None:
                self._events.append(registered)
            return
        if key in self._in_dialog:
            self._on_in_dialog_response(key, self._in_dialog[key], response)
            return
        call_id = self._client_calls.get(key)
        call = self.calls.get(call_id) if call_id else None
        if call is None or key != call.invite_key:
            return  # responses to BYE and CANCEL need no action here
        if response.status < 200:
            self._events.append(CallProgress(call.call_id, response.status))
            return
        if response.status >= 300:
            retry = None
            if not call.auth_attempted and call.cancel_key is None:
                retry = self._authorize(call, response)
            if retry is None:
                self._end(call, EndReason.FAILED, response.status)
                return
            call.auth_attempted = True
            self._client_calls.pop(key, None)
            call.invite = retry
            call.invite_key = self.layer.send_request(retry, call.peer, now)
            self._client_calls[call.invite_key] = call.call_id
            return
        if call.state is not CallState.CALLING:
            if call.ack is not None:  # a retransmitted 2xx: the same ACK again (§13.2.2.4)
                self.layer.send_stateless(call.ack, call.peer)
            return
        call.advance(CallInput.ACCEPTED)
        call.dialog = Dialog.as_uac(call.invite, response)
        call.remote_sdp = response.body
        call.hangup_at = now + self.config.max_call_seconds
        if call.cancel_key is not None:  # we cancelled, but the 2xx won the race (§9.1)
            self._send_ack(call, response)
            self._send_bye(call, now)
            self._end(call, EndReason.LOCAL_BYE)
        elif not call.invite.body and response.body:
            # Offerless INVITE (RFC 3264 §4): the 2xx carries the offer; `answer` ACKs it.
            call.last_2xx = response
            self._events.append(OfferReceived(call.call_id, response.body))
        else:
            self._send_ack(call, response)
            self._events.append(CallConfirmed(call.call_id, response.body))

    def _on_in_dialog_response(
        self, key: TransactionKey, sent: _InDialogRequest, response: Response
    ) -> None:
        call = self.calls.get(sent.call_id)
        if response.status < 200 or call is None or call.dialog is None:
            return
        if sent.ack is not None:  # a retransmitted 2xx to our re-INVITE
            self.layer.send_stateless(sent.ack, call.peer)
            return
        if response.status < 300 and sent.request.method == "INVITE":
            call.dialog = call.dialog.with_remote_target(response)  # §12.2.1.2 target refresh
            call.dialog, ack = call.dialog.next_request(
                "ACK", via=self._via(call), ack_for=sent.request.cseq().seq
            )
            self.layer.send_stateless(ack, call.peer)
            self._in_dialog[key] = replace(sent, ack=ack)  # until the transaction ends
        else:
            del self._in_dialog[key]
        if response.status < 300 and sent.request.body:
            call.local_sdp = sent.request.body
            if response.body:
                call.remote_sdp = response.body
        self._in_dialog_final(key, sent, response.status, response.body)

    def _in_dialog_final(
        self, key: TransactionKey, sent: _InDialogRequest, status: int, body: bytes
    ) -> None:
        call = self.calls.get(sent.call_id)
        if call is not None and call.own_offer == key:
            call.own_offer = None
        self._events.append(InDialogResponse(sent.call_id, sent.request.method, status, body))

    def _on_stray_ack(self, event: StrayAck) -> None:
        """An ACK with no transaction: a retransmission after Timer L, or a peer's odd tag.

        pyVoIP 1.6.8 ACKs each 2xx retransmission with a To-tag of its own; those land here
        once the INVITE transaction is gone. ACKs never get responses, so we ignore them.
        """

    # ----------------------------------------------------------------- helpers
    def _authorize(self, call: Call, response: Response) -> Request | None:
        """Our INVITE again with credentials for a 401/407, or None (§22.2)."""
        if self.config.credentials is None:
            return None
        return with_authorization(
            call.invite, response, self.config.credentials, via=self._via(call), cnonce=self._ids()
        )

    def _send_ack(self, call: Call, response: Response, body: bytes = b"") -> None:
        call.ack = build_ack_for_2xx(call.invite, response, via=self._via(call), body=body)
        self.layer.send_stateless(call.ack, call.peer)

    def _authorized(self, event: RequestReceived, now: float) -> bool:
        verifier = self.config.verifier
        if verifier is None:
            return True
        challenges = digest_challenge(event.request, verifier, now)
        if challenges is None:
            return True
        self._try_respond(
            event.key,
            make_response(event.request, 401, headers=challenges, to_tag=self._ids()),
            now,
        )
        return False

    def _respond_invite(
        self,
        call: Call,
        status: int,
        now: float,
        *,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if call.invite_key is None:
            return
        response = make_response(
            call.invite, status, body=body, headers=headers, to_tag=call.dialog_tag()
        )
        if 100 < status < 300:
            response = self._with_contact(response, body)
        self._try_respond(call.invite_key, response, now)

    def _with_contact(self, response: Response, body: bytes) -> Response:
        return dialog_response(response, self.config.me.contact_uri, self.config.policy, body)

    def _options_response(self, request: Request) -> Response:
        headers = options_headers(self.config.policy)
        return make_response(request, 200, to_tag=self._ids(), headers=headers)

    def _send_rejection(
        self, key: TransactionKey, request: Request, rejection: Rejection, now: float
    ) -> None:
        response = make_response(
            request,
            rejection.status,
            rejection.reason,
            headers=rejection.headers,
            to_tag=self._ids(),
        )
        self._try_respond(key, response, now)

    def _try_respond(self, key: TransactionKey, response: Response, now: float) -> None:
        try:
            self.layer.respond(key, response, now)
        except SipError:
            pass  # the transaction already answered or ended: nothing to send

    def _send_bye(self, call: Call, now: float) -> None:
        if call.dialog is None:
            return
        call.dialog, bye = call.dialog.next_request("BYE", via=self._via(call))
        call.bye_key = self.layer.send_request(bye, call.peer, now)

    def _end(self, call: Call, reason: EndReason, status: int | None = None) -> None:
        if call.state is CallState.ENDED:
            return
        call.advance(CallInput.END)
        call.hangup_at = None
        if call.dialog is not None:
            call.dialog = call.dialog.terminated()
        del self.calls[call.call_id]
        if call.invite_key is not None:
            self._client_calls.pop(call.invite_key, None)
        self._events.append(CallEnded(call.call_id, reason, status))

    def _branch(self) -> str:
        return f"{BRANCH_COOKIE}{self._ids()}"

    def _via(self, call: Call) -> str:
        """Our Via for a request in ``call``, naming the transport it goes over (§18.1.1)."""
        return self.config.me.via(self._branch(), transport=call.peer.transport)

    def _new_call_id(self) -> str:
        return f"{self._ids()}@{self.config.me.sent_by.split(':')[0]}"


def _source(event: object) -> Address:
    source = getattr(event, "source", None)
    return source if isinstance(source, Address) else Address("udp", "0.0.0.0", 0)
