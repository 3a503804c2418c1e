"""Framing SIP messages on a stream transport (RFC 3261 §18.3, RFC 5626 §3.5.1).

`StreamFramer.feed(data)` buffers bytes from a TCP connection and returns the complete
messages found so far. A message ends Content-Length bytes after its empty line; the header
section may not exceed `MAX_MESSAGE_BYTES`. A framing error (no or conflicting
Content-Length, an oversized message) cannot be recovered on a stream: the list ends with
`Unframeable`, whose `SipParseError` carries the request line and headers read so far in
``error.request``, and the shell answers (400 or 513) if it can, then closes the connection.
Messages framed before the error in the same segment come first in the list and are served:
a good request followed by garbage in one TCP segment is not lost. After an error the framer
takes nothing more. A double CRLF between
messages is a keepalive ping, answered with a single CRLF pong (RFC 5626).

The header section ends where `sip.message.parse_message` says it does: at the first empty
line, also when lines end in a bare LF (which the parser tolerates, like pjsip). Content-Length
is read after unfolding (§7.3.1): a value folded onto a continuation line frames as usual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.errors import SipParseError
from sip.message import MAX_MESSAGE_BYTES, partial_request

_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_FOLD_RE = re.compile(rb"\r?\n[ \t]+")
_PARTIAL_BYTES = 8192  # enough of the head to answer from (the UDP path reads as much)


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A CRLFCRLF ping that deserves a CRLF pong."""


@dataclass(frozen=True, slots=True)
class Unframeable:
    """The stream cannot be framed from here on: answer ``error`` if possible, then close.

    ``error.status_hint`` is 400 (bad Content-Length) or 513 (too large).
    """

    error: SipParseError


class StreamFramer:
    """Turns a byte stream into SIP messages."""

    def __init__(self, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_message_bytes
        # How far the buffer is known to hold no end of headers, and the framed length once
        # the head is in: a peer sending one byte per segment must not make every feed rescan
        # (or re-read) the whole head, which would take quadratic time.
        self._scanned = 0
        self._total: int | None = None
        self.failed = False

    def feed(self, data: bytes) -> list[bytes | KeepAlive | Unframeable]:
        """Add ``data``; return each complete message (and keepalive) in order.

        The list ends with `Unframeable` when the stream cannot be framed any more; the
        connection must then be closed (later feeds return nothing).
        """
        if self.failed:
            return []
        self._buffer += data
        out: list[bytes | KeepAlive | Unframeable] = []
        try:
            self._frame_all(out)
        except SipParseError as exc:
            self.failed = True
            self._buffer.clear()
            out.append(Unframeable(exc))
        return out

    def _frame_all(self, out: list[bytes | KeepAlive | Unframeable]) -> None:
        while self._buffer:
            if self._buffer.startswith(b"\r\n\r\n"):
                self._consume(4)
                out.append(KeepAlive())
                continue
            stripped = self._buffer.lstrip(b"\r\n")
            if len(stripped) != len(self._buffer):
                if not stripped:
                    break  # a lone CRLF: maybe the start of a ping
                self._consume(len(self._buffer) - len(stripped))
            total = self._total if self._total is not None else self._frame()
            if total is None:
                break
            if len(self._buffer) < total:
                self._total = total
                break
            out.append(bytes(self._buffer[:total]))
            self._consume(total)

    @property
    def pending(self) -> int:
        """Bytes buffered and not yet part of a complete message."""
        return len(self._buffer)

    def _frame(self) -> int | None:
        """The length of the message at the front of the buffer; None until its head is in."""
        end = _HEAD_END_RE.search(self._buffer, self._scanned)
        if end is None:
            self._scanned = max(0, len(self._buffer) - 3)  # an end may straddle two feeds
            if len(self._buffer) > self._max:
                raise self._error("header section exceeds the size limit", 513)
            return None
        head = _FOLD_RE.sub(b" ", bytes(self._buffer[: end.start()]))
        lengths = {m.group(1).strip(b" \t") for m in _CONTENT_LENGTH_RE.finditer(head)}
        if len(lengths) != 1:
            raise self._error("stream message needs exactly one Content-Length", 400)
        (length_text,) = lengths
        if not length_text.isdigit():
            raise self._error("Content-Length is not a number", 400)
        # 20 digits bound the int() work; anything that long is over the limit anyway
        total = end.end() + int(length_text) if len(length_text) <= 20 else self._max + 1
        if total > self._max:
            raise self._error("message is larger than the size limit", 513)
        return total

    def _consume(self, count: int) -> None:
        del self._buffer[:count]
        self._scanned = 0
        self._total = None

    def _error(self, text: str, status: int) -> SipParseError:
        partial = partial_request(bytes(self._buffer[:_PARTIAL_BYTES]))
        return SipParseError(text, status_hint=status, request=partial)
