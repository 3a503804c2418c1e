"""Loopback helpers: free ports, a `voiceagent serve` subprocess, a bounded UDP client.

Everything here talks to 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_DGRAM, *, both: bool = True) -> int:
    """A port free for UDP (and TCP when ``both``) on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
        if not both:
            return port
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port on 127.0.0.1")


def free_rtp_range(pairs: int = 50) -> str:
    """A LOW-HIGH range of ports that looked free just now."""
    base = 20000 + (os.getpid() * 97) % 20000
    base -= base % 2
    return f"{base}-{base + 2 * pairs - 1}"


@dataclass
class ServerProcess:
    """A running ``voiceagent serve`` on loopback."""

    proc: subprocess.Popen[str]
    sip_port: int
    log_lines: list[str] = field(default_factory=list)
    http_port: int = 0  # health, metrics and admin API (a free port of its own)

    def events(self, name: str) -> list[dict[str, object]]:
        """Parsed JSON log lines whose ``event`` is ``name``."""
        out = []
        for line in list(self.log_lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == name:
                out.append(record)
        return out

    def wait_for_event(
        self, name: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, object]]:
        """Wait (bounded) until ``count`` log lines with event ``name`` appeared."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(
            f"server did not log {count} x {name!r} within {timeout}s; "
            f"last lines: {self.log_lines[-5:]}"
        )


@contextlib.contextmanager
def voiceagent_serve(
    *args: str, env: dict[str, str] | None = None, sip_port: int | None = None
) -> Iterator[ServerProcess]:
    """Run ``voiceagent serve`` on 127.0.0.1 until the block ends."""
    port = sip_port or free_port()
    # Each server gets its own HTTP port: servers of concurrent test runs never collide.
    http_port = int((env or {}).get("VOICEAGENT_HTTP_PORT", 0)) or free_port(
        socket.SOCK_STREAM, both=False
    )
    cmd = [
        sys.executable,
        "-m",
        "agent.cli",
        "serve",
        "--sip-host",
        LOOPBACK,
        "--sip-port",
        str(port),
        "--rtp-ports",
        free_rtp_range(),
        "--http-port",
        str(http_port),
        *args,
    ]
    # The SIP and media tests drive the echo app (greeting, then echo); intake tests pass
    # VOICEAGENT_APP=intake explicitly.
    # A short drain: at the end of the block, calls still up are ended within seconds.
    # Overload refusal off: the suite runs several servers and workers on two shared cores,
    # so the media clock runs late because of *other* processes, and a 503 for that would
    # fail a test about something else (tests/agent/test_admission.py tests admission).
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "VOICEAGENT_APP": "echo",
        "VOICEAGENT_DRAIN_SECONDS": "2",
        "VOICEAGENT_OVERLOAD_LATE_SHARE": "1",
        **(env or {}),
    }
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    server = ServerProcess(proc, port, http_port=http_port)
    assert proc.stderr is not None
    stderr = proc.stderr

    def pump() -> None:
        for line in stderr:
            server.log_lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        server.wait_for_event("listening", timeout=20)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        reader.join(timeout=5)


class UdpPeer:
    """A blocking UDP socket on 127.0.0.1 with bounded receives."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, port))
        self.port = int(self.sock.getsockname()[1])

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, (LOOPBACK, port))

    def recv(self, timeout: float = 2.0) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return data

    def recv_all(self, window: float) -> list[tuple[float, bytes]]:
        """Everything that arrives within ``window`` seconds, with arrival times."""
        out: list[tuple[float, bytes]] = []
        end = time.monotonic() + window
        while (left := end - time.monotonic()) > 0:
            data = self.recv(timeout=left)
            if data is None:
                break
            out.append((time.monotonic(), data))
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_tool(binary: str, package: str) -> str:
    """The path of ``binary``, installing Debian ``package`` when missing; never skipped."""
    path = shutil.which(binary)
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", package],
            check=False,
            capture_output=True,
            timeout=300,
        )
        path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed and could not be installed (apt: {package})")
    return path
