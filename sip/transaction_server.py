"""Server transactions: RFC 3261 §17.2 with the RFC 6026 Accepted state.

Theory of operation
-------------------
`ServerInvite` (§17.2.1, Figure 7 as amended by RFC 6026 §7.1)::

    Proceeding --TU 1xx--> Proceeding
    Proceeding --TU 3xx-6xx--> Completed --ACK--> Confirmed --Timer I--> Terminated
                               Completed --Timer H: TransactionTimedOut("H")--> Terminated
    Proceeding --TU 2xx--> Accepted --ACK: AckReceived (first only)--> Accepted
                           Accepted --Timer L--> Terminated
                                     (TransactionTimedOut("H") first if never ACKed)

A 100 Trying goes out at construction unless ``send_trying=False`` (§17.2.1 allows the TU
200 ms to send its own provisional; answering at once is what Asterisk and pjsip do). An
INVITE retransmission is answered with the last provisional in Proceeding and the final in
Completed, and absorbed in Accepted and Confirmed. For a non-2xx final, Timer G (T1 doubling
to T2, unreliable only) resends it until the ACK, Timer H (64*T1) gives up, and Timer I (T4;
zero when reliable) absorbs ACK retransmissions.

The 2xx is retransmitted here, not by the TU: RFC 3261 §13.3.1.4 gives that job to the UAS
core and RFC 6026 §7.1 forbids the transaction from doing it on its own, but keeping it here
lets the TU stay unaware of timers. The schedule is Timer G's (T1 doubling to T2), reusing
its name, and it runs on reliable transports too because a 2xx is retransmitted end to end
across any UDP hop (§13.3.1.4). The ACK for a 2xx has a branch of its own, so the layer
matches it by dialog (``to_tag``) and passes it in: the first stops the retransmissions and
goes up as `AckReceived`; later ones are absorbed. Timer L (64*T1, RFC 6026 §8.7) ends
Accepted; reaching it un-ACKed is the §13.3.1.4 timeout, reported as ``"H"`` so the TU sends
BYE.

`ServerNonInvite` (§17.2.2, Figure 8)::

    Trying --TU 1xx--> Proceeding --TU 1xx--> Proceeding
    Trying/Proceeding --TU final--> Completed --Timer J--> Terminated

Request retransmissions are absorbed in Trying and answered with the last response in
Proceeding and Completed. Timer J is 64*T1 on unreliable transports and zero on reliable.

A TU response in any state but Trying/Proceeding, an ACK to a non-INVITE or before a final
response, and any input after TERMINATED are missing table rows and raise `SipStateError`.
"""

from __future__ import annotations

from typing import ClassVar

from sip.errors import SipStateError
from sip.message import Request, Response, make_response
from sip.transaction_base import (
    AckReceived,
    SipTimers,
    Transaction,
    TransactionInput,
    TransactionState,
    Transitions,
    check_request_method,
)

_S = TransactionState
_I = TransactionInput


class _ServerTransaction(Transaction):
    """Shared by both server machines: the last response, and request classification."""

    def __init__(
        self, request: Request, *, timers: SipTimers, reliable: bool, state: TransactionState
    ) -> None:
        super().__init__(request, timers=timers, reliable=reliable, state=state)
        self._last_response: Response | None = None

    @property
    def last_response(self) -> Response | None:
        """The last response sent (provisional or final), or None."""
        return self._last_response

    def _send_response(self, response: Response) -> None:
        self._last_response = response
        self._send(bytes(response))

    def _resend_last(self) -> None:
        if self._last_response is not None:
            self._send(bytes(self._last_response))

    def _classify(self, request: Request) -> TransactionInput:
        """ACK, or a retransmission of the request that created the transaction."""
        if request.method == "ACK":
            return _I.ACK
        if request.method != self._request.method:
            # CANCEL shares the INVITE's branch but is a transaction of its own (§9.2).
            raise SipStateError(
                f"{type(self).__name__} for {self._request.method} cannot take a"
                f" {request.method} request"
            )
        return _I.REQUEST


class ServerInvite(_ServerTransaction):
    """The INVITE server transaction; answers 100 Trying at construction by default."""

    TRANSITIONS: ClassVar[Transitions] = {
        (_S.PROCEEDING, _I.REQUEST): _S.PROCEEDING,  # re-send the last provisional
        (_S.PROCEEDING, _I.PROVISIONAL): _S.PROCEEDING,
        (_S.PROCEEDING, _I.FINAL_2XX): _S.ACCEPTED,
        (_S.PROCEEDING, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.COMPLETED, _I.REQUEST): _S.COMPLETED,  # re-send the final
        (_S.COMPLETED, _I.ACK): _S.CONFIRMED,
        (_S.COMPLETED, _I.TIMER_G): _S.COMPLETED,
        (_S.COMPLETED, _I.TIMER_H): _S.TERMINATED,
        (_S.CONFIRMED, _I.REQUEST): _S.CONFIRMED,  # absorbed
        (_S.CONFIRMED, _I.ACK): _S.CONFIRMED,  # absorbed
        (_S.CONFIRMED, _I.TIMER_I): _S.TERMINATED,
        (_S.ACCEPTED, _I.REQUEST): _S.ACCEPTED,  # absorbed (RFC 6026 §8.7)
        (_S.ACCEPTED, _I.ACK): _S.ACCEPTED,  # the first goes up, the rest are absorbed
        (_S.ACCEPTED, _I.TIMER_G): _S.ACCEPTED,  # 2xx retransmission (§13.3.1.4)
        (_S.ACCEPTED, _I.TIMER_L): _S.TERMINATED,
    }

    def __init__(
        self,
        request: Request,
        *,
        timers: SipTimers,
        now: float,
        reliable: bool = False,
        to_tag: str,
        send_trying: bool = True,
    ) -> None:
        check_request_method("ServerInvite", request, invite=True)
        super().__init__(request, timers=timers, reliable=reliable, state=_S.PROCEEDING)
        self._to_tag = to_tag
        self._acked = False
        if send_trying:
            self._send_response(make_response(request, 100))

    @property
    def to_tag(self) -> str:
        """Our To tag, which an ACK for a 2xx must carry (the layer matches on it)."""
        return self._to_tag

    def receive(self, request: Request, now: float) -> None:
        """Take a retransmitted INVITE or an ACK (to our non-2xx, or to our 2xx).

        Raises:
            SipStateError: an ACK before any final response, another method, or any request
                after TERMINATED.
        """
        inp = self._classify(request)
        prior = self._transition(inp)
        if inp is _I.REQUEST and prior in (_S.PROCEEDING, _S.COMPLETED):
            self._resend_last()  # §17.2.1
        elif inp is _I.ACK and prior is _S.COMPLETED:
            self._cancel("G", "H")
            self._arm("I", now, 0.0 if self._reliable else self._timers.timer_i)
        elif inp is _I.ACK and prior is _S.ACCEPTED and not self._acked:
            self._acked = True
            self._cancel("G")
            self._emit(AckReceived(request))

    def respond(self, response: Response, now: float) -> None:
        """Send a response from the TU (built with ``to_tag`` already in To).

        Raises:
            SipStateError: a final response has already been sent.
        """
        inp = _I.for_response(response)
        self._transition(inp)
        self._send_response(response)
        if inp is _I.FINAL_2XX:
            self._arm("G", now, self._timers.timer_g)  # runs on reliable transports too
            self._arm("L", now, self._timers.timer_l)
        elif inp is _I.FINAL_ERROR:
            if not self._reliable:
                self._arm("G", now, self._timers.timer_g)
            self._arm("H", now, self._timers.timer_h)

    def _on_timer(self, name: str, at: float) -> None:
        if name == "H":
            self._transition(_I.TIMER_H, timed_out="H")
        elif name == "L":
            self._transition(_I.TIMER_L, timed_out=None if self._acked else "H")
        else:
            self._transition(_I.timer(name))
            if name == "G":
                self._resend_last()
                self._back_off("G", at, cap=self._timers.t2)  # §17.2.1: doubling, capped at T2


class ServerNonInvite(_ServerTransaction):
    """The non-INVITE server transaction."""

    TRANSITIONS: ClassVar[Transitions] = {
        (_S.TRYING, _I.REQUEST): _S.TRYING,  # absorbed: nothing to re-send yet
        (_S.TRYING, _I.PROVISIONAL): _S.PROCEEDING,
        (_S.TRYING, _I.FINAL_2XX): _S.COMPLETED,
        (_S.TRYING, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.PROCEEDING, _I.REQUEST): _S.PROCEEDING,  # re-send the last provisional
        (_S.PROCEEDING, _I.PROVISIONAL): _S.PROCEEDING,
        (_S.PROCEEDING, _I.FINAL_2XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.FINAL_ERROR): _S.COMPLETED,
        (_S.COMPLETED, _I.REQUEST): _S.COMPLETED,  # re-send the final
        (_S.COMPLETED, _I.TIMER_J): _S.TERMINATED,
    }

    def __init__(
        self, request: Request, *, timers: SipTimers, now: float, reliable: bool = False
    ) -> None:
        check_request_method("ServerNonInvite", request, invite=False)
        super().__init__(request, timers=timers, reliable=reliable, state=_S.TRYING)

    def receive(self, request: Request, now: float) -> None:
        """Take a retransmission of the request.

        Raises:
            SipStateError: an ACK or another method, or any request after TERMINATED.
        """
        if self._transition(self._classify(request)) is not _S.TRYING:
            self._resend_last()  # §17.2.2

    def respond(self, response: Response, now: float) -> None:
        """Send a response from the TU.

        Raises:
            SipStateError: a final response has already been sent.
        """
        inp = _I.for_response(response)
        self._transition(inp)
        self._send_response(response)
        if inp is not _I.PROVISIONAL:
            self._arm("J", now, 0.0 if self._reliable else self._timers.timer_j)

    def _on_timer(self, name: str, at: float) -> None:
        self._transition(_I.timer(name))
