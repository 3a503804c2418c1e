"""The outbox sender: delivers each intake's email over SMTP, retrying until it is sent.

Theory of operation. The records store's ``outbox`` table is the durable queue
(`agent.records`): a row appears in the same transaction as an intake's final save and is
marked sent only after the SMTP server accepted the message (RFC 5321 §4.2.5: a 250 reply
to the end of DATA means the server has taken responsibility for it). `Mailer.run` is the
one sender task:

1. On start it tries every unsent email at once, whatever its backoff said: a restart is
   when an operator expects a stuck queue to move (SMTP down for the whole call, back up
   later: the email goes out when the server restarts).
2. Then it sends what is due, sleeping until the earliest next attempt, a new email
   (`wake`, called by the records store from its worker thread), or ``POLL_S``.
3. A failed attempt is rescheduled with exponential backoff (`agent.retry`, 5 s doubling
   to an hour) and counted by reason; the reason logged is a class (connect, tls, auth,
   rejected, timeout), never the server's text, which can quote the message.

Delivery is at least once: a crash between the server's 250 and the mark sends the email
again after the restart, with the same Message-ID. In the normal case (the mark is written
before the process ends) a restart sends nothing twice. `flush` makes one bounded attempt
at everything unsent when the server shuts down.

Transport security (``smtp_tls``): ``starttls`` (RFC 3207, the submission port 587) requires
the upgrade and fails rather than send in clear text; ``implicit`` is TLS from the first byte
(RFC 8314, port 465); ``none`` is plain SMTP for a relay on the same host. Certificates are
verified against the system store, or ``smtp_ca_file``.

This module is an asyncio shell (STYLE rule 2); the runtime creates its task.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from dataclasses import dataclass

import aiosmtplib
import structlog

from agent.config import Settings
from agent.intake_email import FULL, NOTICE, Addresses, compose
from agent.metrics import EMAIL_FAILURES, OUTBOX_DEPTH, RECORDS_EMAILED
from agent.records import OutboxEntry, SqliteRecords
from agent.retry import Backoff

log = structlog.get_logger("voiceagent.mailer")

RETRY = Backoff(base_s=5.0, cap_s=3600.0)
POLL_S = 30.0  # the longest the sender sleeps without looking at the outbox
SEND_TIMEOUT_S = 30.0  # one SMTP session: connect, TLS, AUTH, MAIL, RCPT, DATA
BATCH = 50  # emails taken from the outbox per pass


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to send (from `Settings`)."""

    host: str
    port: int
    tls: str  # "starttls" | "implicit" | "none"
    username: str | None
    password: str | None
    ca_file: str | None
    addresses: Addresses
    phi: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """None when email is not configured (no SMTP host or no recipient)."""
        if not settings.smtp_host or not settings.email_to:
            return None
        host = settings.advertised_address
        host = f"[{host}]" if ":" in host else host
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
            addresses=Addresses(
                sender=settings.email_from,
                recipient=settings.email_to,
                records_url=f"http://{host}:{settings.http_port}/api/intakes",
            ),
            phi=settings.email_phi,
        )


class Mailer:
    """Sends the outbox of one records store."""

    def __init__(self, records: SqliteRecords, config: SmtpConfig) -> None:
        self.records = records
        self.config = config
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._sending = asyncio.Lock()  # `run` and `flush` never send one email twice at once
        self._tls = ssl.create_default_context(cafile=config.ca_file)

    def wake(self) -> None:
        """A new email is owed (thread-safe: the records store calls it from a worker)."""
        self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Send until cancelled."""
        starting = True
        while True:
            try:
                await self._send_pending(everything=starting)
                if starting:
                    unsent = await asyncio.to_thread(self.records.outbox_depth)
                    log.info("outbox_started", unsent=unsent)
                    starting = False
                next_at = await asyncio.to_thread(self.records.outbox_next_attempt)
            except Exception as exc:  # the database itself failed: the sender must live on
                log.error("outbox_error", error=type(exc).__name__)
                next_at = time.time() + POLL_S
            wait_s = POLL_S if next_at is None else min(POLL_S, max(0.0, next_at - time.time()))
            try:
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def flush(self, timeout_s: float) -> bool:
        """One bounded attempt at every unsent email (at shutdown); whether none is left."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._send_pending(everything=True)
        except TimeoutError:
            log.warning("outbox_flush_timeout", timeout_s=timeout_s)
        depth = await asyncio.to_thread(self.records.outbox_depth)
        log.info("outbox_flushed", unsent=depth)
        return depth == 0

    async def _send_pending(self, *, everything: bool) -> None:
        async with self._sending:
            # Each entry is attempted once per pass: a failure reschedules it into the future.
            horizon = float("inf") if everything else time.time()
            entries = await asyncio.to_thread(self.records.outbox_due, horizon, BATCH)
            for entry in entries:
                await self._send(entry)
            OUTBOX_DEPTH.set(await asyncio.to_thread(self.records.outbox_depth))

    async def _send(self, entry: OutboxEntry) -> None:
        record = await asyncio.to_thread(self.records.get, entry.call_id)
        if record is None:  # cannot happen (foreign key); do not retry forever
            await asyncio.to_thread(self.records.outbox_failed, entry.call_id, "missing", 1e18)
            return
        message = compose(record, self.config.addresses, phi=self.config.phi)
        kind = FULL if self.config.phi else NOTICE
        config = self.config
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.tls == "implicit",
                start_tls=config.tls == "starttls",
                tls_context=self._tls if config.tls != "none" else None,
                timeout=SEND_TIMEOUT_S,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            reason = _reason(exc)
            delay_s = RETRY.delay_s(entry.attempts + 1, random.uniform(0.8, 1.0))
            await asyncio.to_thread(
                self.records.outbox_failed, entry.call_id, reason, time.time() + delay_s
            )
            EMAIL_FAILURES.labels(reason).inc()
            log.warning(
                "email_failed",
                call_id=entry.call_id,
                reason=reason,
                attempts=entry.attempts + 1,
                retry_in_s=round(delay_s, 1),
            )
            return
        await asyncio.to_thread(self.records.outbox_sent, entry.call_id, time.time())
        RECORDS_EMAILED.labels(kind).inc()
        log.info(
            "email_sent",
            call_id=entry.call_id,
            kind=kind,
            message_id=message["Message-ID"],
            attempts=entry.attempts + 1,
        )


def _reason(exc: BaseException) -> str:
    """A failure's class, for logs and a metric label (never the server's words)."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return "auth"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError):
        return "connect"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return "rejected"
    if isinstance(exc, aiosmtplib.SMTPException) and "TLS" in str(exc):
        return "tls"
    return "error"
