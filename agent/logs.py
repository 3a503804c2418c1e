"""structlog set-up: one JSON object per line on stderr, with context, and no PHI.

Context: the runtime binds ``call_id`` (and ``branch`` for a transaction, ``phase`` for an
intake) with `structlog.contextvars` around the work it does for a call, so every line
written meanwhile carries them, including lines from modules that know nothing of calls.

Redaction: the last processor before rendering passes every value of the line (message,
fields, the formatted traceback of an exception) through `agent.redaction.Redactor` at the
``log_redaction`` level, with the values of the line's call from `CALL_VALUES`. The keys in
`SAFE_KEYS` are identifiers and settings this process made itself, never caller input.
Lines from the standard library's ``logging`` (uvicorn, asyncio) take the same path.

`CALL_VALUES` is one per process, like the Prometheus registry: the conversation of a call
adds what it collects, and the processor reads it by the bound ``call_id``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from agent.redaction import CallValues, RedactionLevel, Redactor

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Values this process generated (or read from its own settings): not redacted.
SAFE_KEYS: Final = frozenset(
    {
        "event",
        "timestamp",
        "level",
        "logger",
        "call_id",
        "branch",
        "phase",
        "sip",
        "http",
        "rtp_ports",
    }
)

CALL_VALUES = CallValues()


class RedactPhi:
    """structlog processor: every value of the line without PHI (see the module docstring)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        """Rewrite ``event_dict`` in place."""
        call_id = event_dict.get("call_id")
        key = call_id if isinstance(call_id, str) else None
        for name, value in list(event_dict.items()):
            if name in SAFE_KEYS and name != "event":
                continue
            if name == "event" and isinstance(value, str) and value.isidentifier():
                continue  # an event name: a constant in our code
            event_dict[name] = self.redactor.redact(value, key)
        return event_dict


def _drop_color_message(
    logger: WrappedLogger, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's duplicate of the message
    return event_dict


def configure_logging(level: str = "info", redaction: str = "full") -> RedactPhi:
    """Send JSON lines at ``level`` and above to stderr, redacted at ``redaction``."""
    redact = RedactPhi(Redactor(RedactionLevel(redaction), CALL_VALUES))
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, redact, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # The standard library's loggers (uvicorn, asyncio's "Task exception was never
    # retrieved") go through the same processors, the redaction included.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_color_message,
            redact,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(_LEVELS[level], logging.INFO))  # library debug output is noise
    return redact
