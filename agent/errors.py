"""The one root of every error the agent package raises."""

from __future__ import annotations


class AgentError(Exception):
    """Root of all errors raised by the `agent` package."""


class AgentStateError(AgentError):
    """An input the conversation's current state does not accept."""
