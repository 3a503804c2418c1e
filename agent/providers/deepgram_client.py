"""The official Deepgram SDK client, pointed at one base URL, and its errors translated.

Deepgram serves REST (``/v1/speak``) and WebSockets (``/v1/listen``) on the same host, as
does a self-hosted Deepgram: one setting (``deepgram_url``) names it, and the SDK's
`DeepgramClientEnvironment` gets the REST URL as ``base`` and the same host with ``ws://``
or ``wss://`` as ``production``. Tests point it at a loopback server the same way; nothing in
the SDK is patched.

The SDK's own retries are off (``max_retries=0``): a retry loop inside the SDK would spend the
turn's budget that the failover wrapper needs to switch to the embedded provider in time.
"""

from __future__ import annotations

import httpx
import websockets.exceptions
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError

from agent.providers.failure import FailureReason, ProviderError, reason_for_status

__all__ = ["deepgram_client", "deepgram_environment", "provider_error"]


def deepgram_environment(url: str) -> DeepgramClientEnvironment:
    """REST at ``url`` and WebSockets at the same host (``http`` -> ``ws``)."""
    base = url.rstrip("/")
    if base.startswith("https://"):
        sockets = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        sockets = "ws://" + base.removeprefix("http://")
    else:
        raise ValueError("the Deepgram URL must start with http:// or https://")
    return DeepgramClientEnvironment(base=base, production=sockets, agent=sockets, agent_rest=base)


def deepgram_client(api_key: str | None, url: str, timeout_s: float) -> AsyncDeepgramClient:
    """A client sending ``Authorization: Token <api_key>`` to ``url``, with no SDK retries.

    A self-hosted Deepgram may need no key; the SDK then still sends a placeholder token.
    """
    return AsyncDeepgramClient(
        api_key=api_key or "none",
        environment=deepgram_environment(url),
        timeout=timeout_s,
        max_retries=0,
    )


def provider_error(exc: BaseException, what: str) -> ProviderError:
    """Translate an SDK, socket or timeout failure into a `ProviderError` (no PHI)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ApiError):
        return ProviderError(reason_for_status(exc.status_code), f"{what}: {exc.status_code}")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return ProviderError(FailureReason.TIMEOUT, what)
    if isinstance(
        exc, OSError | EOFError | httpx.TransportError | websockets.exceptions.WebSocketException
    ):
        return ProviderError(FailureReason.DISCONNECT, f"{what}: {type(exc).__name__}")
    return ProviderError(FailureReason.ERROR, f"{what}: {type(exc).__name__}")
