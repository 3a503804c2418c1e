"""SIP transactions: the four RFC 3261 §17 machines (with RFC 6026) and transaction matching.

Theory of operation
-------------------
A transaction is a request plus every response to it (and, for an INVITE answered with a
non-2xx, the ACK). Four sans-I/O machines implement it, one per side and kind:

================  ===========================  ==========================================
machine           states                       timers (unreliable / reliable transport)
================  ===========================  ==========================================
`ClientInvite`    Calling, Proceeding,         A = T1 doubling / none; B = 64*T1;
(§17.1.1)         Completed, Accepted          D = ``timer_d`` (32 s) / 0; M = 64*T1
`ClientNonInvite` Trying, Proceeding,          E = T1 doubling to T2, then T2 / none;
(§17.1.2)         Completed                    F = 64*T1; K = T4 / 0
`ServerInvite`    Proceeding, Completed,       G = T1 doubling to T2 / none (2xx: always);
(§17.2.1)         Confirmed, Accepted          H = 64*T1; I = T4 / 0; L = 64*T1
`ServerNonInvite` Trying, Proceeding,          J = 64*T1 / 0
(§17.2.2)         Completed
================  ===========================  ==========================================

Every machine ends in Terminated. The diagrams, and the rules that are not table rows, sit at
the top of `sip.transaction_client` and `sip.transaction_server`; the shared bookkeeping
(timers as deadlines, the outbox, the event queue, the table lookup) in
`sip.transaction_base`. The split keeps each module under the 400-line budget; every public
name is importable from here.

Inputs: a client's ``receive(response, now)``; a server's ``receive(request, now)`` (a
retransmission or an ACK) and ``respond(response, now)`` from the TU; ``handle_timer(now)``.
Outputs: ``datagrams_to_send()`` (for the transaction's peer), ``next_event()``
(`ResponseReceived`, `AckReceived`, `TransactionTimedOut`, `TransactionTerminated`) and
``next_deadline()``. Each machine's ``TRANSITIONS`` maps ``(state, TransactionInput)`` to the
next state; an input with no row raises `SipStateError`. Time is only ever ``now``.

Matching (`server_key`, `client_key`) turns a message into a hashable `TransactionKey`, so the
layer's lookup is a dict access:

* §17.1.3, a response to a client transaction: top Via branch and CSeq method. A CANCEL and
  the INVITE it cancels share a branch but not a method, so they stay apart.
* §17.2.3, a request to a server transaction whose branch starts with ``z9hG4bK``: branch,
  sent-by and method, with ACK counted as INVITE (an ACK to a non-2xx belongs to the INVITE's
  transaction) and CANCEL as itself (§9.2: it is a transaction of its own).
* §17.2.3, an RFC 2543 request (no magic cookie): Request-URI, From tag, Call-ID, CSeq number,
  top Via text and method (ACK counted as INVITE), plus the To tag except for INVITE and ACK.
  The RFC matches an ACK's To tag against the tag of the *response*, which the INVITE did
  not carry, so that comparison is left to the layer (``ServerInvite.to_tag``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, TypeAlias

from sip.errors import SipParseError
from sip.message import Request, Response
from sip.transaction_base import (
    AckReceived,
    ResponseReceived,
    SipTimers,
    Transaction,
    TransactionEvent,
    TransactionInput,
    TransactionState,
    TransactionTerminated,
    TransactionTimedOut,
    Transitions,
)
from sip.transaction_client import ClientInvite, ClientNonInvite, non2xx_ack
from sip.transaction_server import ServerInvite, ServerNonInvite

__all__ = [
    "MAGIC_COOKIE",
    "AckReceived",
    "ClientInvite",
    "ClientNonInvite",
    "ClientTransaction",
    "Event",
    "ResponseReceived",
    "ServerInvite",
    "ServerNonInvite",
    "ServerTransaction",
    "SipTimers",
    "Transaction",
    "TransactionEvent",
    "TransactionInput",
    "TransactionKey",
    "TransactionState",
    "TransactionTerminated",
    "TransactionTimedOut",
    "Transitions",
    "client_key",
    "non2xx_ack",
    "server_key",
    "transaction_key",
]

# RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this; others are RFC 2543.
MAGIC_COOKIE: Final = "z9hG4bK"

Event: TypeAlias = TransactionEvent
ClientTransaction: TypeAlias = ClientInvite | ClientNonInvite
ServerTransaction: TypeAlias = ServerInvite | ServerNonInvite


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """What identifies a transaction; equal keys mean the same transaction.

    An RFC 3261 key sets ``branch`` (and ``sent_by`` on the server side) and leaves the RFC 2543
    fields None; an RFC 2543 key is the reverse.

    Attributes:
        method: the request method, ACK counted as INVITE (the CSeq method for a response).
        branch: the top Via branch.
        sent_by: the top Via sent-by, host lower-cased (server keys only).
        request_uri: RFC 2543: the Request-URI as received.
        call_id: RFC 2543: the Call-ID.
        from_tag: RFC 2543: the From tag.
        to_tag: RFC 2543: the To tag (None for INVITE and ACK, see the module docstring).
        cseq: RFC 2543: the CSeq number.
        top_via: RFC 2543: the top Via value as received.
    """

    method: str
    branch: str | None = None
    sent_by: str | None = None
    request_uri: str | None = None
    call_id: str | None = None
    from_tag: str | None = None
    to_tag: str | None = None
    cseq: int | None = None
    top_via: str | None = None


def server_key(request: Request) -> TransactionKey:
    """The key of the server transaction ``request`` belongs to (RFC 3261 §17.2.3).

    Raises:
        SipParseError: the request lacks a header the key needs.
    """
    via = request.top_via()
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        sent_by = replace(via.sent_by, host=via.sent_by.host.lower())
        return TransactionKey(method, branch=branch, sent_by=str(sent_by))
    return TransactionKey(
        method,
        request_uri=request.uri,
        call_id=request.call_id(),
        from_tag=request.from_().tag,
        to_tag=None if method == "INVITE" else request.to().tag,
        cseq=request.cseq().seq,
        top_via=request.headers.values("via")[0],
    )


def client_key(message: Request | Response) -> TransactionKey:
    """The key of the client transaction of a request we send, or of a response to it.

    RFC 3261 §17.1.3: the top Via branch and the CSeq method.

    Raises:
        SipParseError: the top Via has no branch (we always send one), or CSeq is missing.
    """
    branch = message.top_via().branch
    if not branch:
        raise SipParseError("top Via has no branch, so no client transaction matches")
    return TransactionKey(message.cseq().method, branch=branch)


def transaction_key(message: Request | Response) -> TransactionKey:
    """`server_key` for a request received, `client_key` for a response received."""
    if isinstance(message, Request):
        return server_key(message)
    return client_key(message)
