"""Client transactions: RFC 3261 §17.1 with the RFC 6026 Accepted state.

Theory of operation
-------------------
`ClientInvite` (§17.1.1, Figure 5 as amended by RFC 6026 §7.2)::

    Calling --1xx--> Proceeding --1xx--> Proceeding
    Calling/Proceeding --3xx-6xx: send ACK--> Completed --Timer D--> Terminated
    Calling/Proceeding --2xx--> Accepted --Timer M--> Terminated
    Calling --Timer B: TransactionTimedOut("B")--> Terminated

The INVITE goes out at construction. Timer A (T1, doubling, no cap; unreliable transports
only) retransmits it in Calling; Timer B (64*T1) abandons it. Both guard Calling alone
(§17.1.1.2), so a provisional response stops both: a ringing INVITE may wait as long as the
TU likes, and CANCEL is its way out. A non-2xx final is acknowledged here, with the ACK of
§17.1.1.3, which is re-sent for every retransmission of that final until Timer D. A 2xx is
acknowledged end to end by the TU; Accepted only passes every 2xx up (retransmissions and
2xx from other forks alike, RFC 6026 §8.4) until Timer M. A 2xx that reaches Completed (a
fork answering after another failed) is passed up too, so the TU can ACK and BYE it.

`ClientNonInvite` (§17.1.2, Figure 6)::

    Trying --1xx--> Proceeding --1xx--> Proceeding
    Trying/Proceeding --final--> Completed --Timer K--> Terminated
    Trying/Proceeding --Timer F: TransactionTimedOut("F")--> Terminated

Timer E (unreliable only) retransmits the request at T1, 2*T1, … capped at T2 while Trying,
and every T2 once Proceeding (§17.1.2.2). Retransmitted finals are absorbed in Completed.

Responses that the RFC leaves the transaction to absorb (a late 1xx, a retransmitted final
to a non-INVITE, a non-2xx in Accepted) are table rows with no action, so only a response
after TERMINATED raises `SipStateError`.
"""

from __future__ import annotations

from typing import ClassVar

from sip.errors import SipParseError
from sip.headers import Headers
from sip.message import Request, Response
from sip.transaction_base import (
    ResponseReceived,
    SipTimers,
    Transaction,
    TransactionInput,
    TransactionState,
    Transitions,
    check_request_method,
)

_S = TransactionState
_I = TransactionInput

# RFC 3261 §17.1.1.3: Max-Forwards of the ACK for a non-2xx final response.
ACK_MAX_FORWARDS = 70


def non2xx_ack(invite: Request, response: Response) -> Request:
    """Build the ACK for a 3xx-6xx response to ``invite`` (RFC 3261 §17.1.1.3).

    The ACK has the INVITE's Request-URI, Call-ID, From and CSeq number (method ACK), the
    INVITE's top Via only (so it shares the branch), the response's To (with its tag), and the
    INVITE's Route headers. Raw header values are copied, so the ACK matches byte for byte
    what the server's transaction compares.
    """
    fields: list[tuple[str, str]] = [
        ("Via", invite.headers.values("via")[0]),
        ("Max-Forwards", str(ACK_MAX_FORWARDS)),
    ]
    fields.extend(("Route", f.value) for f in invite.headers.fields("route"))
    fields += [
        ("From", _raw(invite, "from")),
        ("To", _raw(response, "to")),
        ("Call-ID", _raw(invite, "call-id")),
        ("CSeq", f"{invite.cseq().seq} ACK"),
        ("Content-Length", "0"),
    ]
    return Request(method="ACK", uri=invite.uri, headers=Headers(fields))


def _raw(message: Request | Response, name: str) -> str:
    value = message.headers.get(name)
    if value is None:
        raise SipParseError(f"missing {name}")
    return value


class ClientInvite(Transaction):
    """The INVITE client transaction; sends the INVITE at construction."""

    TRANSITIONS: ClassVar[Transitions] = {
        (_S.CALLING, _I.PROVISIONAL): _S.PROCEEDING,
        (_S.CALLING, _I.FINAL_2XX): _S.ACCEPTED,
        (_S.CALLING, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.CALLING, _I.TIMER_A): _S.CALLING,
        (_S.CALLING, _I.TIMER_B): _S.TERMINATED,
        (_S.PROCEEDING, _I.PROVISIONAL): _S.PROCEEDING,
        (_S.PROCEEDING, _I.FINAL_2XX): _S.ACCEPTED,
        (_S.PROCEEDING, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.COMPLETED, _I.PROVISIONAL): _S.COMPLETED,  # late, absorbed
        (_S.COMPLETED, _I.FINAL_2XX): _S.COMPLETED,  # another fork answered: pass up
        (_S.COMPLETED, _I.FINAL_ERROR): _S.COMPLETED,  # retransmission: re-send the ACK
        (_S.COMPLETED, _I.TIMER_D): _S.TERMINATED,
        (_S.ACCEPTED, _I.PROVISIONAL): _S.ACCEPTED,  # late, absorbed
        (_S.ACCEPTED, _I.FINAL_2XX): _S.ACCEPTED,  # RFC 6026 §8.4: pass up
        (_S.ACCEPTED, _I.FINAL_ERROR): _S.ACCEPTED,  # absorbed
        (_S.ACCEPTED, _I.TIMER_M): _S.TERMINATED,
    }

    def __init__(
        self, request: Request, *, timers: SipTimers, now: float, reliable: bool = False
    ) -> None:
        check_request_method("ClientInvite", request, invite=True)
        super().__init__(request, timers=timers, reliable=reliable, state=_S.CALLING)
        self._ack: bytes | None = None
        self._send(bytes(request))
        if not reliable:
            self._arm("A", now, timers.timer_a)  # RFC 3261 §17.1.1.2
        self._arm("B", now, timers.timer_b)

    def receive(self, response: Response, now: float) -> None:
        """Take a response matched to this transaction (RFC 3261 §17.1.3).

        Raises:
            SipStateError: the transaction has terminated.
        """
        inp = _I.for_response(response)
        prior = self._transition(inp)
        first = prior in (_S.CALLING, _S.PROCEEDING)
        if first:
            self._cancel("A", "B")  # Timer B guards Calling only (§17.1.1.2)
        if inp is _I.FINAL_ERROR and first:
            self._ack = bytes(non2xx_ack(self._request, response))
            self._send(self._ack)
            self._emit(ResponseReceived(response))
            self._arm("D", now, 0.0 if self._reliable else self._timers.timer_d)
        elif inp is _I.FINAL_ERROR and prior is _S.COMPLETED and self._ack is not None:
            self._send(self._ack)  # §17.1.1.2: a retransmitted final gets the ACK again
        elif inp is _I.FINAL_2XX:
            self._emit(ResponseReceived(response))
            if first:
                self._arm("M", now, self._timers.timer_m)  # RFC 6026 §7.2
        elif inp is _I.PROVISIONAL and first:
            self._emit(ResponseReceived(response))

    def _on_timer(self, name: str, at: float) -> None:
        if name == "B":
            self._transition(_I.TIMER_B, timed_out="B")
            return
        self._transition(_I.timer(name))
        if name == "A":
            self._send(bytes(self._request))
            self._back_off("A", at, cap=float("inf"))  # §17.1.1.2: A doubles without a cap


class ClientNonInvite(Transaction):
    """The non-INVITE client transaction; sends the request at construction."""

    TRANSITIONS: ClassVar[Transitions] = {
        (_S.TRYING, _I.PROVISIONAL): _S.PROCEEDING,
        (_S.TRYING, _I.FINAL_2XX): _S.COMPLETED,
        (_S.TRYING, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.TRYING, _I.TIMER_E): _S.TRYING,
        (_S.TRYING, _I.TIMER_F): _S.TERMINATED,
        (_S.PROCEEDING, _I.PROVISIONAL): _S.PROCEEDING,
        (_S.PROCEEDING, _I.FINAL_2XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.PROCEEDING, _I.TIMER_E): _S.PROCEEDING,
        (_S.PROCEEDING, _I.TIMER_F): _S.TERMINATED,
        (_S.COMPLETED, _I.PROVISIONAL): _S.COMPLETED,  # §17.1.2.2: absorbed
        (_S.COMPLETED, _I.FINAL_2XX): _S.COMPLETED,
        (_S.COMPLETED, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.COMPLETED, _I.TIMER_K): _S.TERMINATED,
    }

    def __init__(
        self, request: Request, *, timers: SipTimers, now: float, reliable: bool = False
    ) -> None:
        check_request_method("ClientNonInvite", request, invite=False)
        super().__init__(request, timers=timers, reliable=reliable, state=_S.TRYING)
        self._send(bytes(request))
        if not reliable:
            self._arm("E", now, timers.timer_e)  # RFC 3261 §17.1.2.2
        self._arm("F", now, timers.timer_f)

    def receive(self, response: Response, now: float) -> None:
        """Take a response matched to this transaction (RFC 3261 §17.1.3).

        Raises:
            SipStateError: the transaction has terminated.
        """
        inp = _I.for_response(response)
        if self._transition(inp) is _S.COMPLETED:
            return
        self._emit(ResponseReceived(response))
        if inp is not _I.PROVISIONAL:
            self._cancel("E", "F")
            self._arm("K", now, 0.0 if self._reliable else self._timers.timer_k)

    def _on_timer(self, name: str, at: float) -> None:
        if name == "F":
            self._transition(_I.TIMER_F, timed_out="F")
            return
        prior = self._transition(_I.timer(name))
        if name == "E":
            self._send(bytes(self._request))
            if prior is _S.PROCEEDING:
                self._arm("E", at, self._timers.t2)  # §17.1.2.2: every T2 once Proceeding
            else:
                self._back_off("E", at, cap=self._timers.t2)  # doubling, capped at T2
