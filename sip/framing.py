"""Framing SIP messages on a stream transport (RFC 3261 §18.3, RFC 5626 §3.5.1).

`StreamFramer.feed(data)` buffers bytes from a TCP connection and returns the complete
messages found so far. A message ends Content-Length bytes after its empty line; the header
section may not exceed `MAX_MESSAGE_BYTES`. A framing error (no or conflicting
Content-Length, an oversized message) cannot be recovered on a stream: it raises
`SipParseError` and the shell answers if it can, then closes the connection. A double CRLF
between messages is a keepalive ping, answered with a single CRLF pong (RFC 5626).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.errors import SipParseError
from sip.message import MAX_MESSAGE_BYTES

_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A CRLFCRLF ping that deserves a CRLF pong."""


class StreamFramer:
    """Turns a byte stream into SIP messages."""

    def __init__(self, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_message_bytes

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        """Add ``data``; return each complete message (and keepalive) in order.

        Raises:
            SipParseError: the stream cannot be framed any more; close the connection.
                ``status_hint`` is 400 (bad Content-Length) or 513 (too large).
        """
        self._buffer += data
        out: list[bytes | KeepAlive] = []
        while self._buffer:
            if self._buffer.startswith(b"\r\n\r\n"):
                del self._buffer[:4]
                out.append(KeepAlive())
                continue
            stripped = self._buffer.lstrip(b"\r\n")
            if len(stripped) != len(self._buffer):
                if not stripped:
                    break  # a lone CRLF: maybe the start of a ping
                del self._buffer[: len(self._buffer) - len(stripped)]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self._max:
                    raise SipParseError("header section exceeds the size limit", status_hint=513)
                break
            head = bytes(self._buffer[:end])
            lengths = {m.group(1).strip() for m in _CONTENT_LENGTH_RE.finditer(head)}
            if len(lengths) != 1:
                raise SipParseError("stream message needs exactly one Content-Length")
            (length_text,) = lengths
            if not length_text.isdigit():
                raise SipParseError("Content-Length is not a number")
            total = end + 4 + int(length_text)
            if total > self._max:
                raise SipParseError("message is larger than the size limit", status_hint=513)
            if len(self._buffer) < total:
                break
            out.append(bytes(self._buffer[:total]))
            del self._buffer[:total]
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered and not yet part of a complete message."""
        return len(self._buffer)
