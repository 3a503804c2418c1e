"""Our user agent as a server: what VoiceAgent does with each request (RFC 3261 §8.2, §12-§15).

Theory of operation
-------------------
`UasCore` takes every request the transaction layer passes up, after §8.2 inspection
(`sip.uas.inspect`), and answers it or turns it into a call event.

Requests outside a dialog: OPTIONS is answered 200 with Allow/Accept/Supported (trunks use
it as a keepalive); REGISTER is accepted as a registrar that keeps no bindings (softphones
and pyVoIP register before they call; we answer 200 echoing the Contact, or challenge when
digest authentication is configured); INVITE becomes an `IncomingCall` (`CallState.OFFERED`)
that the application rings, answers or rejects. Requests inside a dialog: ACK confirms, BYE
ends (200), re-INVITE and UPDATE carry offers (`OfferReceived`) or refresh the session
timer (answered with the current SDP), INFO is passed up, NOTIFY reports on our REFER
(`sip.refer`: 200, or 481 when no transfer of ours listens; a final 2xx sipfrag makes us
end the call with BYE, RFC 5589 §6.1). An in-dialog request for no known dialog gets 481,
one with an old CSeq 500 (§12.2.2).

An offer from the peer while our own re-INVITE/UPDATE is pending is glare: 491 (§14.2); a
second offer while theirs is unanswered gets 500 with Retry-After (§14.2, RFC 3311 §5.2).

CANCEL (§9.2): 200 for the CANCEL and 487 for the INVITE when it is still unanswered; 481
when nothing matches. A 2xx that is never ACKed (the INVITE server transaction's Timer H,
§13.3.1.4) ends the call with a BYE.
"""

from __future__ import annotations

import secrets

from sip.call import (
    Call,
    CallConfirmed,
    CallInput,
    CallState,
    EndReason,
    IncomingCall,
    InfoReceived,
    OfferReceived,
)
from sip.dialog import Dialog
from sip.errors import SipError
from sip.layer import RequestReceived
from sip.message import Request, Response, make_response
from sip.refer import ReferState, answer_notify
from sip.transaction import ServerInvite, TransactionKey
from sip.ua_core import CallTable, UserAgentConfig
from sip.uas import (
    Rejection,
    dialog_response,
    digest_challenge,
    inspect,
    options_headers,
    registrar_contacts,
)


class UasCore:
    """The requests we receive, and our responses to them."""

    def __init__(self, config: UserAgentConfig, table: CallTable) -> None:
        """Create the UAS core over ``table``, the calls it shares with the UAC core."""
        self._config = config
        self._table = table
        self._layer = table.layer
        self._ids = table.ids

    # ----------------------------------------------------------------- application commands
    def ring(self, call: Call, now: float) -> None:
        """Send 180 Ringing for an offered call."""
        self._respond_invite(call, 180, now)

    def answer(self, call: Call, sdp: bytes, now: float) -> None:
        """Answer the peer's pending re-INVITE/UPDATE offer, else the offered call, with 200."""
        if call.pending_reinvite is not None:
            key, call.pending_reinvite = call.pending_reinvite, None
            tx = self._layer.server_transaction(key)
            if tx is not None:
                response = self._with_contact(
                    make_response(tx.request, 200, body=sdp, to_tag=call.dialog_tag()), sdp
                )
                self._layer.respond(key, response, now)
            return
        call.advance(CallInput.ANSWER)
        self._respond_invite(call, 200, now, body=sdp)

    def reject(
        self, call: Call, status: int, now: float, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Refuse the peer's pending re-INVITE offer, else the offered call (which ends)."""
        if call.pending_reinvite is not None:
            key, call.pending_reinvite = call.pending_reinvite, None
            tx = self._layer.server_transaction(key)
            if tx is not None:
                self._layer.respond(key, make_response(tx.request, status, headers=headers), now)
            return
        self._respond_invite(call, status, now, headers=headers)
        self._table.end(call, EndReason.REJECTED, status)

    def abandon(self, call: Call, reason: EndReason, now: float) -> None:
        """Hang up an offered call before answering it: 480 to its INVITE."""
        self._respond_invite(call, 480, now)
        self._table.end(call, reason, 480)

    # ----------------------------------------------------------------- transaction events
    def on_request(self, event: RequestReceived, now: float) -> None:
        """A new request (not a retransmission) from the transaction layer."""
        request = event.request
        rejection = inspect(request, self._config.policy)
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

    def on_malformed(self, event: RequestReceived, now: float) -> None:
        """A request that validated but whose view failed later: answer 400 if we can."""
        if event.request.method != "ACK":
            self._try_respond(event.key, make_response(event.request, 400), now)

    def on_ack(self, ack: Request, now: float) -> None:
        """The ACK for our 2xx to an INVITE: the call is confirmed."""
        call = self._table.calls.get(ack.call_id())
        if call is None or call.state is not CallState.ANSWERED:
            return
        if call.dialog is not None:
            # §13.2.2.4: the ACK of this INVITE (same CSeq number) from this caller (its From
            # tag); a stray ACK with a known Call-ID confirms nothing. The To tag is not
            # compared: pyVoIP 1.6 ACKs our 2xx with a To tag of its own making (its calls
            # would never be confirmed), and Call-ID, From tag and CSeq already single out
            # the INVITE.
            if (
                ack.from_().tag or ""
            ) != call.dialog.id.remote_tag or ack.cseq().seq != call.invite.cseq().seq:
                return
        call.advance(CallInput.ACK)
        if call.dialog is not None:
            call.dialog = call.dialog.confirmed()
        if ack.body:
            call.remote_sdp = ack.body
        call.hangup_at = now + self._config.max_call_seconds
        self._table.events.append(CallConfirmed(call.call_id, call.remote_sdp))

    def on_timeout(self, key: TransactionKey, now: float) -> None:
        """Timer H fired for ``key``: if it answered a call, that call ends with BYE."""
        for call in list(self._table.calls.values()):
            if call.invite_key == key and call.state is CallState.ANSWERED:
                # §13.3.1.4: no ACK for our 2xx within 64*T1: end the dialog with BYE.
                self._table.send_bye(call, now)
                self._table.end(call, EndReason.NO_ACK)

    # ----------------------------------------------------------------- requests
    def _on_invite(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if not self._authorized(event, now):
            return
        call_id = request.call_id()
        if call_id in self._table.calls:  # a second INVITE for a known call, outside its dialog
            self._try_respond(event.key, make_response(request, 482, to_tag=self._ids()), now)
            return
        tx = self._layer.server_transaction(event.key)
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
        self._table.add(call)
        self._table.events.append(IncomingCall(call_id, request, request.body, event.source))

    def _on_cancel(self, event: RequestReceived, now: float) -> None:
        request = event.request
        call = self._table.calls.get(request.call_id())
        invite_tx = self._layer.server_transaction(event.cancels) if event.cancels else None
        if call is None or invite_tx is None or call.invite_key != event.cancels:
            self._try_respond(event.key, make_response(request, 481, to_tag=self._ids()), now)
            return
        self._try_respond(event.key, make_response(request, 200, to_tag=call.dialog_tag()), now)
        if call.state is CallState.OFFERED:
            self._respond_invite(call, 487, now)
            self._table.end(call, EndReason.CANCELLED, 487)

    def _on_in_dialog(self, event: RequestReceived, now: float) -> None:
        request = event.request
        call = self._table.calls.get(request.call_id())
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
            self._table.end(call, EndReason.REMOTE_BYE)
        elif request.method in ("INVITE", "UPDATE"):
            self._on_offer_or_refresh(call, checked, event, now)
        elif request.method == "INFO":
            self._try_respond(event.key, make_response(request, 200), now)
            self._table.events.append(
                InfoReceived(call.call_id, request.content_type(), request.body)
            )
        elif request.method == "OPTIONS":
            self._try_respond(event.key, self._options_response(request), now)
        elif request.method == "NOTIFY":
            self._on_notify(call, event, now)
        else:
            allow = (("Allow", ", ".join(self._config.policy.allow)),)
            self._try_respond(event.key, make_response(request, 405, headers=allow), now)

    def _on_offer_or_refresh(
        self, call: Call, dialog: Dialog, event: RequestReceived, now: float
    ) -> None:
        """A re-INVITE or UPDATE in ``call`` (whose ``dialog`` took its CSeq).

        A new offer, glare, or a session refresh.
        """
        request = event.request
        if call.pending_reinvite is not None:
            # §14.2 (RFC 3311 §5.2): their previous offer is still unanswered.
            retry = (("Retry-After", str(secrets.randbelow(11))),)
            self._try_respond(event.key, make_response(request, 500, headers=retry), now)
            return
        glare = call.own_offer is not None and (request.method == "INVITE" or request.body)
        if glare or call.state is not CallState.CONFIRMED:
            self._try_respond(event.key, make_response(request, 491), now)  # §14.2
            return
        call.dialog = dialog.with_remote_target(request)
        if request.body:
            call.pending_reinvite = event.key
            self._table.events.append(OfferReceived(call.call_id, request.body))
        else:
            # Session refresh without an offer (RFC 4028): answer with what we have.
            body = call.local_sdp if request.method == "INVITE" else b""
            response = self._with_contact(make_response(request, 200, body=body), body)
            self._try_respond(event.key, response, now)

    def _on_notify(self, call: Call, event: RequestReceived, now: float) -> None:
        """A NOTIFY about our REFER: answer it, report it, and leave once it succeeded."""
        answer = answer_notify(call.refer, event.request, now)
        self._try_respond(event.key, make_response(event.request, answer.status), now)
        self._table.events.extend(answer.events)
        refer = call.refer
        if refer is not None and refer.state is ReferState.SUCCEEDED and answer.events:
            # RFC 5589 §6.1: the transfer worked, so the transferor ends its own dialog.
            self._table.send_bye(call, now)
            self._table.end(call, EndReason.TRANSFERRED)

    def _on_register(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if not self._config.accept_register:
            allow = (("Allow", ", ".join(a for a in self._config.policy.allow if a != "REGISTER")),)
            self._try_respond(
                event.key, make_response(request, 405, headers=allow, to_tag=self._ids()), now
            )
            return
        if not self._authorized(event, now):
            return
        headers = registrar_contacts(request, self._config.register_expires)
        self._try_respond(
            event.key, make_response(request, 200, headers=headers, to_tag=self._ids()), now
        )

    def _authorized(self, event: RequestReceived, now: float) -> bool:
        verifier = self._config.verifier
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

    # ----------------------------------------------------------------- responses
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
        return dialog_response(response, self._config.me.contact_uri, self._config.policy, body)

    def _options_response(self, request: Request) -> Response:
        headers = options_headers(self._config.policy)
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
            self._layer.respond(key, response, now)
        except SipError:
            pass  # the transaction already answered or ended: nothing to send
