"""Our side of registration (RFC 3261 §10.2): REGISTER sent, challenged, answered.

Theory of operation
-------------------
`Registrations` keeps each REGISTER we have in flight, keyed by its client transaction. The
`UserAgent` hands it the final responses and timeouts of those transactions:

    sent ──2xx──> RegistrationResult(status, granted expires)
     │  ──401/407, credentials configured, first time──> resent with Authorization (§22.2):
     │        same Call-ID and From tag, CSeq + 1, new branch ──> (as "sent", no second retry)
     └──other final / Timer F──> RegistrationResult(status or 408, None)

It sends through the `TransactionLayer` the UA shares, so retransmissions and Timer F are
the transaction's business. Nothing is refreshed automatically: re-registering before the
granted expiry is the application's decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sip.call import RegistrationResult
from sip.layer import Address, TransactionLayer
from sip.message import Request, Response
from sip.transaction import TransactionKey
from sip.uac import (
    BRANCH_COOKIE,
    Credentials,
    Originator,
    build_register,
    granted_expires,
    with_authorization,
)


@dataclass(frozen=True, slots=True)
class _Pending:
    request: Request
    destination: Address
    authorized: bool = False  # the retry with credentials went out: never loop on 401


class Registrations:
    """REGISTER requests of ours in flight."""

    def __init__(
        self,
        me: Originator,
        layer: TransactionLayer,
        *,
        ids: Callable[[], str],
        credentials: Credentials | None = None,
    ) -> None:
        self._me = me
        self._layer = layer
        self._ids = ids
        self._credentials = credentials
        self._pending: dict[TransactionKey, _Pending] = {}

    def register(
        self, registrar_uri: str, destination: Address, now: float, *, expires: int, call_id: str
    ) -> None:
        """Send a REGISTER binding our Contact for ``expires`` seconds (0 removes it)."""
        me = replace(self._me, transport=destination.transport.upper())
        request = build_register(
            me,
            registrar_uri=registrar_uri,
            call_id=call_id,
            tag=self._ids(),
            branch=self._branch(),
            cseq=1,
            expires=expires,
        )
        key = self._layer.send_request(request, destination, now)
        self._pending[key] = _Pending(request, destination)

    def __contains__(self, key: object) -> bool:
        return key in self._pending

    def on_response(
        self, key: TransactionKey, response: Response, now: float
    ) -> RegistrationResult | None:
        """Take a response to one of our REGISTERs; the result once it is final."""
        pending = self._pending.get(key)
        if pending is None or response.status < 200:
            return None
        del self._pending[key]
        retry = None
        if self._credentials is not None and not pending.authorized:
            via = self._me.via(self._branch(), pending.destination.transport)
            retry = with_authorization(
                pending.request, response, self._credentials, via=via, cnonce=self._ids()
            )
        if retry is not None:
            retry_key = self._layer.send_request(retry, pending.destination, now)
            self._pending[retry_key] = _Pending(retry, pending.destination, authorized=True)
            return None
        expires = granted_expires(response, self._me.contact_uri) if response.status < 300 else None
        return RegistrationResult(self._me.from_uri, response.status, expires)

    def on_timeout(self, key: TransactionKey) -> RegistrationResult | None:
        """Timer F fired for ``key``: a 408 result if it was ours."""
        if self._pending.pop(key, None) is None:
            return None
        return RegistrationResult(self._me.from_uri, 408, None)

    def _branch(self) -> str:
        return f"{BRANCH_COOKIE}{self._ids()}"
