"""The one root of every error the RTP package raises."""

from __future__ import annotations


class RtpError(Exception):
    """Root of all errors raised by the `rtp` package."""


class RtpParseError(RtpError, ValueError):
    """An RTP or RTCP packet could not be parsed."""
