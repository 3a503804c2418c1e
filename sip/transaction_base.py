"""What the four RFC 3261 §17 transaction machines share: timers, states, inputs, events.

Theory of operation
-------------------
The machines themselves live in `sip.transaction_client` (§17.1) and `sip.transaction_server`
(§17.2); `sip.transaction` is the public face and describes them. This module holds the
vocabulary they share and the `Transaction` base that does the bookkeeping:

* an *outbox* of datagrams for the transaction's peer, drained by `datagrams_to_send()`;
* a queue of events for the TU, drained one at a time by `next_event()`;
* named timers (``"A"`` … ``"M"``, the RFC's letters) as absolute deadlines. `handle_timer(now)`
  fires every timer that is due, earliest first, and re-arms back-off timers from their
  *scheduled* time, not from ``now``: a shell that wakes late sends the retransmissions it owes
  but does not shift the schedule (the pacer rule in STYLE.md). A timer armed with zero
  seconds (Timers D, I, J, K on a reliable transport, RFC 3261 §17.1.1.2, §17.2.1, §17.2.2,
  §17.1.2.2) fires at once, inside the call that armed it, so no zero deadline ever leaks to
  the shell;
* `_transition(input)`: one lookup in the subclass's ``TRANSITIONS`` table. A missing row is
  an illegal input and raises `SipStateError` (h11 ``_state.py``). TERMINATED has no rows, so
  every input after the end is illegal; reaching it cancels all timers and queues
  `TransactionTerminated` exactly once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, TypeAlias

from sip.errors import SipError, SipStateError
from sip.message import Request, Response


@dataclass(frozen=True, slots=True)
class SipTimers:
    """The RFC 3261 timer base values, in seconds (§17.1.1.1, Table 4 in Appendix A).

    The properties give each lettered timer its value on an *unreliable* transport; the
    machines substitute zero (or skip a retransmission timer) on a reliable one.

    Attributes:
        t1: round-trip time estimate, 500 ms by default. Tests shrink it; a deployment behind
            a slow link may raise it (pjsip ``PJSIP_T1_TIMEOUT``).
        t2: maximum retransmission interval for non-INVITE requests and INVITE responses.
        t4: maximum time a message stays in the network.
        timer_d: how long a client INVITE transaction absorbs final-response retransmissions
            on an unreliable transport; RFC 3261 §17.1.1.2 asks for at least 32 s.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError("SipTimers needs 0 < t1 <= t2")
        if self.t4 <= 0 or self.timer_d < 0:
            raise ValueError("SipTimers needs t4 > 0 and timer_d >= 0")

    @property
    def timer_a(self) -> float:
        """INVITE retransmission, initial interval (T1, doubling without cap)."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout (64*T1)."""
        return 64 * self.t1

    @property
    def timer_e(self) -> float:
        """Non-INVITE retransmission, initial interval (T1, doubling up to T2)."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout (64*T1)."""
        return 64 * self.t1

    @property
    def timer_g(self) -> float:
        """INVITE response retransmission, initial interval (T1, doubling up to T2)."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for an ACK to a final response (64*T1)."""
        return 64 * self.t1

    @property
    def timer_i(self) -> float:
        """Wait time for ACK retransmissions (T4)."""
        return self.t4

    @property
    def timer_j(self) -> float:
        """Wait time for non-INVITE request retransmissions (64*T1)."""
        return 64 * self.t1

    @property
    def timer_k(self) -> float:
        """Wait time for non-INVITE response retransmissions (T4)."""
        return self.t4

    @property
    def timer_l(self) -> float:
        """Server INVITE: wait time in Accepted (64*T1, RFC 6026 §8.7)."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """Client INVITE: wait time for 2xx retransmissions in Accepted (64*T1, RFC 6026 §8.4)."""
        return 64 * self.t1


class TransactionState(Enum):
    """States of RFC 3261 Figures 5-8, with Accepted from RFC 6026 §7."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class TransactionInput(Enum):
    """The inputs a machine's ``TRANSITIONS`` table is keyed on; values read in errors.

    Messages are classified into these (the message itself travels beside the input), and
    each lettered timer is its own input, so one table row says what each timer does.
    """

    PROVISIONAL = "a 1xx response"
    FINAL_2XX = "a 2xx response"
    FINAL_ERROR = "a 3xx-6xx response"
    REQUEST = "a retransmitted request"
    ACK = "an ACK"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"

    @classmethod
    def timer(cls, name: str) -> TransactionInput:
        """The input for a lettered timer (``"A"`` -> ``TIMER_A``)."""
        return cls[f"TIMER_{name}"]

    @classmethod
    def for_response(cls, response: Response) -> TransactionInput:
        """Classify a response by its status class."""
        if response.status < 200:
            return cls.PROVISIONAL
        return cls.FINAL_2XX if response.status < 300 else cls.FINAL_ERROR


Transitions: TypeAlias = Mapping[tuple[TransactionState, TransactionInput], TransactionState]


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """Client transaction -> TU: a response to pass up (RFC 3261 §17.1.1.2, §17.1.2.2)."""

    response: Response


@dataclass(frozen=True, slots=True)
class AckReceived:
    """Server INVITE transaction -> TU: the first ACK for our 2xx (RFC 3261 §13.3.1.4)."""

    request: Request


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """A transaction gave up: ``"B"``/``"F"`` (no final response), ``"H"`` (no ACK)."""

    timer: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction reached TERMINATED; the layer may forget it."""


TransactionEvent: TypeAlias = (
    ResponseReceived | AckReceived | TransactionTimedOut | TransactionTerminated
)


def check_request_method(kind: str, request: Request, *, invite: bool) -> None:
    """Refuse a request that ``kind`` of transaction cannot carry.

    Raises:
        SipError: an ACK (it has no transaction of its own, RFC 3261 §17), or an INVITE for a
            non-INVITE machine or the reverse.
    """
    if request.method == "ACK":
        raise SipError(f"{kind} cannot carry an ACK: ACK has no transaction of its own")
    if (request.method == "INVITE") is not invite:
        raise SipError(f"{kind} cannot carry a request with method {request.method}")


# Retransmission timers lose a tie against a timeout due at the same instant, so a
# transaction never sends one last copy in the call that abandons it.
_RETRANSMIT_TIMERS = frozenset({"A", "E", "G"})


class Transaction:
    """Bookkeeping shared by the four machines; see the module docstring."""

    TRANSITIONS: ClassVar[Transitions] = {}

    def __init__(
        self, request: Request, *, timers: SipTimers, reliable: bool, state: TransactionState
    ) -> None:
        self._request = request
        self._timers = timers
        self._reliable = reliable
        self._state = state
        self._outbox: list[bytes] = []
        self._events: deque[TransactionEvent] = deque()
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}

    @property
    def state(self) -> TransactionState:
        """The current state."""
        return self._state

    @property
    def request(self) -> Request:
        """The request that created the transaction."""
        return self._request

    def datagrams_to_send(self) -> list[bytes]:
        """Drain the datagrams for the transaction's peer, oldest first."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> TransactionEvent | None:
        """Drain one event for the TU, or None."""
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        """The earliest pending timer, or None when nothing is pending."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, earliest first (a late call catches up)."""
        while self._deadlines:
            name, at = min(
                self._deadlines.items(),
                key=lambda item: (item[1], item[0] in _RETRANSMIT_TIMERS),
            )
            if at > now:
                return
            del self._deadlines[name]
            self._on_timer(name, at)

    def _on_timer(self, name: str, at: float) -> None:
        """Run timer ``name``, which was due at ``at``."""
        raise NotImplementedError

    def _transition(
        self, inp: TransactionInput, *, timed_out: str | None = None
    ) -> TransactionState:
        """Apply one table row; return the state before it.

        Raises:
            SipStateError: the table has no row for (state, input).
        """
        prior = self._state
        target = self.TRANSITIONS.get((prior, inp))
        if target is None:
            raise SipStateError(
                f"{type(self).__name__} in state {prior.name} cannot take {inp.value}"
                f" (CSeq {self._request.headers.get('cseq')!r})"
            )
        if timed_out is not None:
            self._events.append(TransactionTimedOut(timed_out))
        self._state = target
        if target is TransactionState.TERMINATED and prior is not target:
            self._deadlines.clear()
            self._events.append(TransactionTerminated())
        return prior

    def _arm(self, name: str, now: float, delay: float) -> None:
        """Start timer ``name`` ``delay`` seconds after ``now``; zero fires it at once."""
        self._intervals[name] = delay
        if delay <= 0:
            self._on_timer(name, now)
        else:
            self._deadlines[name] = now + delay

    def _back_off(self, name: str, at: float, cap: float) -> None:
        """Re-arm a retransmission timer at twice its last interval, at most ``cap``."""
        self._arm(name, at, min(2 * self._intervals[name], cap))

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _send(self, data: bytes) -> None:
        self._outbox.append(data)

    def _emit(self, event: TransactionEvent) -> None:
        self._events.append(event)
