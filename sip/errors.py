"""The one root of every error the SIP package raises.

Errors are raised inside the protocol code and translated into responses (or a counted
drop) at one boundary, `sip.layer.TransactionLayer.receive_datagram` (the h11 model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sip.message import Request


class SipError(Exception):
    """Root of all errors raised by the `sip` package."""


class SipParseError(SipError, ValueError):
    """A message, header or body could not be parsed.

    Attributes:
        status_hint: the status code a UAS should answer with when a response can still be
            formed (the role of h11's ``error_status_hint``). 400 unless a more precise code
            applies (505 for a wrong version, 513 for an oversized message).
        request: the request as far as it could be read (start line and raw headers), so a
            response can still be formed from its Via, From, To, Call-ID and CSeq; None when
            the input was not recognisably a request.
    """

    def __init__(
        self, message: str, *, status_hint: int = 400, request: Request | None = None
    ) -> None:
        super().__init__(message)
        self.status_hint = status_hint
        self.request = request


class SipStateError(SipError):
    """An input that the current protocol state does not accept (a failed table lookup)."""
