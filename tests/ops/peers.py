"""Real peers for the operations tests: a redis-server, and an aiosmtpd SMTP server with TLS.

Both listen on 127.0.0.1 only. The Redis server keeps nothing on disk (``--save ""
--appendonly no``), so a restart comes back empty, as after a crash without persistence:
anything found in it afterwards was written back. The SMTP server requires STARTTLS (or
speaks TLS from the first byte) and AUTH, with a self-signed certificate made here.
"""

from __future__ import annotations

import datetime
import ipaddress
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.loopback import LOOPBACK, free_port, require_tool

SMTP_USER = "clinic-relay"
SMTP_PASSWORD = "not-a-real-password-7"


def redis_server_binary() -> str:
    """redis-server (Debian redis-server); installed with apt when missing, never skipped."""
    return require_tool("redis-server", "redis-server")


class RedisServer:
    """One redis-server process on a fixed loopback port, which tests stop and restart."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.port = port or free_port(socket.SOCK_STREAM, both=False)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                LOOPBACK,
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: gone at once, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@dataclass
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def self_signed(directory: Path) -> TlsFiles:
    """A certificate for localhost and 127.0.0.1 that is its own CA (for smtp_ca_file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voiceagent test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "smtp-cert.pem", directory / "smtp-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class Inbox:
    """What the SMTP server accepted."""

    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], bool]] = field(default_factory=list)  # from, to, tls
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert isinstance(envelope.original_content, bytes)
        with self.lock:
            self.messages.append(message_from_bytes(envelope.original_content))
            self.envelopes.append(
                (
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    server.transport is not None
                    and server.transport.get_extra_info("ssl_object") is not None,
                )
            )
        return "250 OK"

    def by_message_id(self, message_id: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m["Message-ID"] == message_id]

    def wait(self, count: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"SMTP server got {len(self.messages)} of {count} messages")


def _authenticator(
    server: SmtpServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


class SmtpPeer:
    """aiosmtpd on 127.0.0.1: STARTTLS required (or implicit TLS), AUTH required."""

    def __init__(self, tls: TlsFiles, inbox: Inbox, *, implicit: bool = False) -> None:
        self.tls = tls
        self.inbox = inbox
        self.implicit = implicit
        self.port = free_port(socket.SOCK_STREAM, both=False)
        self.controller: Controller | None = None

    def start(self) -> None:
        context = self.tls.server_context()
        kwargs: dict[str, Any] = {
            "hostname": LOOPBACK,
            "port": self.port,
            "authenticator": _authenticator,
            "auth_required": True,
            "auth_require_tls": True,
            "ready_timeout": 10,
        }
        if self.implicit:
            kwargs["ssl_context"] = context
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here every byte is TLS already.
            kwargs["auth_require_tls"] = False
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        self.controller = Controller(self.inbox, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def env(self, ca_file: Path | None = None) -> dict[str, str]:
        """The voiceagent settings that send here."""
        return {
            "VOICEAGENT_SMTP_HOST": LOOPBACK,
            "VOICEAGENT_SMTP_PORT": str(self.port),
            "VOICEAGENT_SMTP_TLS": "implicit" if self.implicit else "starttls",
            "VOICEAGENT_SMTP_USERNAME": SMTP_USER,
            "VOICEAGENT_SMTP_PASSWORD": SMTP_PASSWORD,
            "VOICEAGENT_SMTP_CA_FILE": str(ca_file or self.tls.cert),
            "VOICEAGENT_EMAIL_FROM": "intake@maple-street.example",
            "VOICEAGENT_EMAIL_TO": "frontdesk@maple-street.example",
        }
