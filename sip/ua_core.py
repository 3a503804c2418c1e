"""What the UAC core and the UAS core of our user agent share (RFC 3261 §8).

Theory of operation
-------------------
RFC 3261 splits a user agent above the transaction layer into a UAC core (requests we
send, §8.1) and a UAS core (requests we receive, §8.2). One call can involve both: we
answer an INVITE as UAS and later send a re-INVITE in its dialog as UAC, and either side
may end it. `CallTable` is what they have in common:

- the calls by Call-ID, plus an index from our INVITE's client transaction to its call;
- the queue of `CallEvent` for the application;
- the steps every call shares however it started: ending it (exactly one `CallEnded`,
  the dialog terminated, the call forgotten; a transfer still under way is decided first,
  `sip.refer`) and sending BYE (§15.1.1);
- how our requests name us: a fresh branch (§8.1.1.7) and a Via for the transport the
  call's signalling uses (§18.1.1).

`UserAgentConfig` lives here, rather than in `sip.useragent`, so that both cores can take
it without importing the facade that builds them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field

from sip.auth import DigestVerifier
from sip.call import Call, CallEnded, CallEvent, CallInput, CallState, EndReason
from sip.layer import TransactionLayer
from sip.refer import NOTIFY_TIMEOUT_SECONDS
from sip.transaction import TransactionKey
from sip.uac import BRANCH_COOKIE, Credentials, Originator
from sip.uas import UasPolicy


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
    refer_notify_seconds: float = NOTIFY_TIMEOUT_SECONDS  # final NOTIFY due after a 202


class CallTable:
    """The calls a user agent holds, the events it reports, and the steps both cores share."""

    def __init__(self, me: Originator, layer: TransactionLayer, ids: Callable[[], str]) -> None:
        """Create an empty table.

        Args:
            me: how we present ourselves (Via sent-by and transport).
            layer: the transaction layer both cores send through.
            ids: the source of tags, branches and Call-ID prefixes.
        """
        self.me = me
        self.layer = layer
        self.ids = ids
        self.calls: dict[str, Call] = {}
        self.events: collections.deque[CallEvent] = collections.deque()
        self._invites: dict[TransactionKey, str] = {}  # our INVITE's client transaction

    def add(self, call: Call) -> None:
        """Hold ``call`` under its Call-ID."""
        self.calls[call.call_id] = call

    def track_invite(self, call: Call) -> None:
        """Index ``call`` by its (client) INVITE transaction, so responses find it."""
        if call.invite_key is not None:
            self._invites[call.invite_key] = call.call_id

    def invite_call(self, key: TransactionKey) -> Call | None:
        """The call whose INVITE of ours went out in transaction ``key``."""
        call_id = self._invites.get(key)
        return self.calls.get(call_id) if call_id else None

    def forget_invite(self, key: TransactionKey) -> str | None:
        """Drop ``key`` from the INVITE index; the Call-ID it named, if any."""
        return self._invites.pop(key, None)

    def end(self, call: Call, reason: EndReason, status: int | None = None) -> None:
        """End ``call`` once: terminate its dialog, forget it and report `CallEnded`."""
        if call.state is CallState.ENDED:
            return
        call.advance(CallInput.END)
        call.hangup_at = None
        if call.dialog is not None:
            call.dialog = call.dialog.terminated()
        del self.calls[call.call_id]
        if call.invite_key is not None:
            self._invites.pop(call.invite_key, None)
        if call.refer is not None:  # its outcome comes before the end of the call
            by_transferee = reason is EndReason.REMOTE_BYE
            self.events.extend(call.refer.on_call_ended(by_transferee=by_transferee))
        self.events.append(CallEnded(call.call_id, reason, status))

    def send_bye(self, call: Call, now: float) -> None:
        """Send BYE in the call's dialog (§15.1.1); nothing when there is no dialog."""
        if call.dialog is None:
            return
        call.dialog, bye = call.dialog.next_request("BYE", via=self.via(call))
        call.bye_key = self.layer.send_request(bye, call.peer, now)

    def branch(self) -> str:
        """A new branch with the RFC 3261 magic cookie (§8.1.1.7)."""
        return f"{BRANCH_COOKIE}{self.ids()}"

    def via(self, call: Call) -> str:
        """Our Via for a request in ``call``, naming the transport it goes over (§18.1.1)."""
        return self.me.via(self.branch(), transport=call.peer.transport)
