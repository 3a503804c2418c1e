"""Our user agent as a client: the requests we send and their responses (RFC 3261 §8.1).

Theory of operation
-------------------
`UacCore` places calls, sends requests inside them and registers, all through the shared
`TransactionLayer`, and turns the responses into call events:

- ``invite`` places a call (`CallState.CALLING`). A 1xx is `CallProgress`; a 2xx
  confirms it and is ACKed (§13.2.2.4), the same ACK again for each retransmitted 2xx; a
  3xx-6xx or Timer B ends it. An offerless INVITE's 2xx carries the offer: it comes up as
  `OfferReceived`, and ``ack_with_answer`` puts our answer in the ACK (RFC 3264 §4).
- ``cancel`` sends CANCEL (§9.1); a 2xx that wins the race is ACKed and followed by BYE.
- ``send_in_dialog`` sends re-INVITE, UPDATE or INFO in a confirmed call; the final
  response (or 408 for a timeout) is `InDialogResponse`. A 2xx to a re-INVITE is ACKed
  here and refreshes the remote target (§12.2.1.2). A 481 or 408 (a timeout too) to any
  re-INVITE, UPDATE or INFO we send ends the call (§12.2.1.2): after a 408 with BYE, after a
  481 without (the peer has no dialog left); a failed REFER only fails the transfer. Until
  its answer, a re-INVITE (or an UPDATE with SDP) is our pending offer, which the UAS core
  uses to detect glare (§14.2).
- ``register`` binds our Contact at a registrar (§10.2) through `Registrations`.
- ``refer`` sends REFER in a confirmed call (RFC 3515): a blind transfer, tracked by the
  call's `ReferSubscription`, to which the REFER's final response (or Timer F, as 408) goes;
  its NOTIFYs arrive through the UAS core.

A 401/407 to our INVITE or REGISTER is answered once with the configured `Credentials`
(§22.2): same Call-ID and tags, CSeq + 1, a new branch. In-dialog requests go to the
address the call's signalling uses, never to a host named in Contact or Record-Route.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sip.call import (
    Call,
    CallConfirmed,
    CallInput,
    CallProgress,
    CallState,
    EndReason,
    InDialogResponse,
    OfferReceived,
)
from sip.dialog import Dialog
from sip.errors import SipStateError
from sip.layer import Address
from sip.message import Request, Response
from sip.refer import ReferSubscription
from sip.registration import Registrations
from sip.transaction import TransactionKey
from sip.ua_core import CallTable, UserAgentConfig
from sip.uac import build_ack_for_2xx, build_cancel, build_invite, with_authorization


@dataclass(frozen=True, slots=True)
class _InDialogRequest:
    """A request of ours inside a call, and the ACK once a re-INVITE was answered 2xx."""

    call_id: str
    request: Request
    ack: Request | None = None


class UacCore:
    """The requests we send (INVITE, CANCEL, re-INVITE/UPDATE/INFO, REGISTER) and their fate."""

    def __init__(self, config: UserAgentConfig, table: CallTable) -> None:
        """Create the UAC core over ``table``, the calls it shares with the UAS core."""
        self._config = config
        self._table = table
        self._layer = table.layer
        self._ids = table.ids
        self.registrations = Registrations(
            config.me, table.layer, ids=table.ids, credentials=config.credentials
        )
        self._in_dialog: dict[TransactionKey, _InDialogRequest] = {}

    # ----------------------------------------------------------------- requests
    def invite(
        self,
        request_uri: str,
        destination: Address,
        sdp: bytes,
        now: float,
        *,
        to_uri: str | None = None,
    ) -> str:
        """Place a call; returns its Call-ID. ``sdp`` may be empty (an offerless INVITE)."""
        call_id = self._new_call_id()
        request = build_invite(
            replace(self._config.me, transport=destination.transport.upper()),
            request_uri=request_uri,
            to_uri=to_uri or request_uri,
            call_id=call_id,
            tag=self._ids(),
            branch=self._table.branch(),
            sdp=sdp,
        )
        call = Call(call_id, CallState.CALLING, destination, request, local_sdp=sdp)
        self._table.add(call)
        call.invite_key = self._layer.send_request(request, destination, now)
        self._table.track_invite(call)
        return call_id

    def cancel(self, call: Call, now: float) -> None:
        """CANCEL our unanswered INVITE (§9.1); the call ends with the INVITE's 487."""
        cancel = build_cancel(call.invite)
        call.cancel_key = self._layer.send_request(cancel, call.peer, now)

    def ack_with_answer(self, call: Call, sdp: bytes) -> None:
        """ACK the 2xx to our offerless INVITE with ``sdp`` as the answer (RFC 3264 §4)."""
        response, call.last_2xx = call.last_2xx, None
        if response is None:
            raise SipStateError("no 2xx with an offer is waiting for an answer")
        self._send_ack(call, response, body=sdp)
        self._table.events.append(CallConfirmed(call.call_id, call.remote_sdp))

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

        Raises:
            SipStateError: the call is not confirmed.
        """
        call = self._table.calls.get(call_id)
        if call is None or call.dialog is None or call.state is not CallState.CONFIRMED:
            raise SipStateError(f"cannot send {method}: the call is not confirmed")
        extra = (("Content-Type", content_type),) if body else ()
        refresh = method in ("INVITE", "UPDATE")  # target refresh requests carry Contact
        call.dialog, request = call.dialog.next_request(
            method,
            via=self._table.via(call),
            extra_headers=extra,
            body=body,
            contact=f"<{self._config.me.contact_uri}>" if refresh else None,
        )
        key = self._layer.send_request(request, call.peer, now)
        self._in_dialog[key] = _InDialogRequest(call_id, request)
        if method == "INVITE" or (method == "UPDATE" and body):
            call.own_offer = key

    def refer(self, call_id: str, target: str, now: float) -> None:
        """Ask the peer of a confirmed call to call ``target`` instead (RFC 3515 §2.4.1).

        Raises:
            SipStateError: the call is not confirmed, or a transfer is already under way.
        """
        call = self._table.calls.get(call_id)
        if call is None or call.dialog is None or call.state is not CallState.CONFIRMED:
            raise SipStateError("cannot send REFER: the call is not confirmed")
        if call.refer is not None and not call.refer.decided:
            raise SipStateError("cannot send REFER: a transfer is already under way")
        me = self._config.me
        call.dialog, request = call.dialog.next_request(
            "REFER",
            via=self._table.via(call),
            contact=f"<{me.contact_uri}>",
            extra_headers=(("Refer-To", f"<{target}>"), ("Referred-By", f"<{me.from_uri}>")),
        )
        key = self._layer.send_request(request, call.peer, now)
        self._in_dialog[key] = _InDialogRequest(call_id, request)
        call.refer = ReferSubscription(
            call_id, request.cseq().seq, notify_timeout_s=self._config.refer_notify_seconds
        )

    def register(
        self, registrar_uri: str, destination: Address, now: float, *, expires: int | None = None
    ) -> str:
        """Bind our Contact at a registrar (§10.2); returns the REGISTER's Call-ID."""
        call_id = self._new_call_id()
        expires = self._config.register_expires if expires is None else expires
        self.registrations.register(
            registrar_uri, destination, now, expires=expires, call_id=call_id
        )
        return call_id

    # ----------------------------------------------------------------- transaction events
    def on_response(self, key: TransactionKey, response: Response, now: float) -> None:
        """A response in one of our client transactions."""
        if key in self.registrations:
            if (registered := self.registrations.on_response(key, response, now)) is not None:
                self._table.events.append(registered)
            return
        if key in self._in_dialog:
            self._on_in_dialog_response(key, self._in_dialog[key], response, now)
            return
        call = self._table.invite_call(key)
        if call is None or key != call.invite_key:
            return  # responses to BYE and CANCEL need no action here
        if response.status < 200:
            self._table.events.append(CallProgress(call.call_id, response.status))
        elif response.status >= 300:
            self._on_invite_failure(key, call, response, now)
        else:
            self._on_invite_success(call, response, now)

    def on_timeout(self, key: TransactionKey, now: float) -> None:
        """Timer B or F fired for ``key``: a 408 for whatever request of ours it carried."""
        if (sent := self._in_dialog.pop(key, None)) is not None:
            self._in_dialog_final(key, sent, 408, b"", now)
            return
        if (registered := self.registrations.on_timeout(key)) is not None:
            self._table.events.append(registered)
            return
        call = self._table.invite_call(key)
        if call is not None and call.invite_key == key and call.state is CallState.CALLING:
            self._table.end(call, EndReason.TIMEOUT, 408)
        self._table.forget_invite(key)

    def on_terminated(self, key: TransactionKey) -> None:
        """A client transaction ended: a re-INVITE's 2xx retransmissions are over."""
        self._in_dialog.pop(key, None)

    # ----------------------------------------------------------------- responses
    def _on_invite_failure(
        self, key: TransactionKey, call: Call, response: Response, now: float
    ) -> None:
        retry = None
        if not call.auth_attempted and call.cancel_key is None:
            retry = self._authorize(call, response)
        if retry is None:
            self._table.end(call, EndReason.FAILED, response.status)
            return
        call.auth_attempted = True
        self._table.forget_invite(key)
        call.invite = retry
        call.invite_key = self._layer.send_request(retry, call.peer, now)
        self._table.track_invite(call)

    def _on_invite_success(self, call: Call, response: Response, now: float) -> None:
        if call.state is not CallState.CALLING:
            if call.ack is not None:  # a retransmitted 2xx: the same ACK again (§13.2.2.4)
                self._layer.send_stateless(call.ack, call.peer)
            return
        call.advance(CallInput.ACCEPTED)
        call.dialog = Dialog.as_uac(call.invite, response)
        call.remote_sdp = response.body
        call.hangup_at = now + self._config.max_call_seconds
        if call.cancel_key is not None:  # we cancelled, but the 2xx won the race (§9.1)
            self._send_ack(call, response)
            self._table.send_bye(call, now)
            self._table.end(call, EndReason.LOCAL_BYE)
        elif not call.invite.body and response.body:
            # Offerless INVITE (RFC 3264 §4): the 2xx carries the offer; `answer` ACKs it.
            call.last_2xx = response
            self._table.events.append(OfferReceived(call.call_id, response.body))
        else:
            self._send_ack(call, response)
            self._table.events.append(CallConfirmed(call.call_id, response.body))

    def _on_in_dialog_response(
        self, key: TransactionKey, sent: _InDialogRequest, response: Response, now: float
    ) -> None:
        call = self._table.calls.get(sent.call_id)
        if response.status < 200 or call is None or call.dialog is None:
            return
        if sent.ack is not None:  # a retransmitted 2xx to our re-INVITE
            self._layer.send_stateless(sent.ack, call.peer)
            return
        if response.status < 300 and sent.request.method == "INVITE":
            call.dialog = call.dialog.with_remote_target(response)  # §12.2.1.2 target refresh
            call.dialog, ack = call.dialog.next_request(
                "ACK", via=self._table.via(call), ack_for=sent.request.cseq().seq
            )
            self._layer.send_stateless(ack, call.peer)
            self._in_dialog[key] = replace(sent, ack=ack)  # until the transaction ends
        else:
            del self._in_dialog[key]
        if response.status < 300 and sent.request.body:
            call.local_sdp = sent.request.body
            if response.body:
                call.remote_sdp = response.body
        self._in_dialog_final(key, sent, response.status, response.body, now)

    def _in_dialog_final(
        self, key: TransactionKey, sent: _InDialogRequest, status: int, body: bytes, now: float
    ) -> None:
        call = self._table.calls.get(sent.call_id)
        if call is not None and call.own_offer == key:
            call.own_offer = None
        if sent.request.method == "REFER":  # the transfer's outcome, not an InDialogResponse
            refer = call.refer if call is not None else None
            if refer is not None and refer.refer_cseq == sent.request.cseq().seq:
                self._table.events.extend(refer.on_response(status, now))
        else:
            self._table.events.append(
                InDialogResponse(sent.call_id, sent.request.method, status, body)
            )
        if (
            call is not None
            and status in (408, 481)
            and call.state is CallState.CONFIRMED
            and sent.request.method != "REFER"
        ):
            # §12.2.1.2: a 481 or 408 (or no answer) to a request inside a dialog ends it. A
            # 481 says the peer has no such dialog (nothing left to BYE); after a 408 the peer
            # may still hold it, so it gets a BYE. A REFER's failure is only the transfer's
            # (its usage is the subscription it would create, RFC 5057 §5.1): the patient
            # stays on the line and the agent takes a message instead.
            if status == 408:
                self._table.send_bye(call, now)
            reason = EndReason.TIMEOUT if status == 408 else EndReason.DIALOG_GONE
            self._table.end(call, reason, status)

    # ----------------------------------------------------------------- helpers
    def _authorize(self, call: Call, response: Response) -> Request | None:
        """Our INVITE again with credentials for a 401/407, or None (§22.2)."""
        if self._config.credentials is None:
            return None
        return with_authorization(
            call.invite,
            response,
            self._config.credentials,
            via=self._table.via(call),
            cnonce=self._ids(),
        )

    def _send_ack(self, call: Call, response: Response, body: bytes = b"") -> None:
        call.ack = build_ack_for_2xx(call.invite, response, via=self._table.via(call), body=body)
        self._layer.send_stateless(call.ack, call.peer)

    def _new_call_id(self) -> str:
        return f"{self._ids()}@{self._config.me.sent_by.split(':')[0]}"
