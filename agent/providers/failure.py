"""How a cloud provider failed: one typed error, with a reason class safe for logs and metrics.

A provider raises `ProviderError` when it cannot do its job within its budget (a socket that
will not reopen, a 429 or 5xx answer, no final result in time). The failover wrappers
(`agent.providers.failover`) catch it at one boundary and switch the call to the embedded
provider. The reason is a bounded `FailureReason`, the label of the failover counter; the
message never holds what the caller said or the vendor's response body.
"""

from __future__ import annotations

from enum import Enum

from agent.errors import AgentError

__all__ = ["FailureReason", "ProviderError", "reason_for_status"]


class FailureReason(Enum):
    """Why a provider was given up on (a metric label: keep the set small)."""

    TIMEOUT = "timeout"
    DISCONNECT = "disconnect"
    HTTP_429 = "http_429"
    HTTP_5XX = "http_5xx"
    ERROR = "error"


class ProviderError(AgentError):
    """A cloud provider failed; ``reason`` says how (no PHI in the message)."""

    def __init__(self, reason: FailureReason, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


def reason_for_status(status: int | None) -> FailureReason:
    """The reason class of an HTTP status (a REST answer or a refused WebSocket handshake)."""
    if status == 429:
        return FailureReason.HTTP_429
    if status is not None and status >= 500:
        return FailureReason.HTTP_5XX
    return FailureReason.ERROR
