"""Operations settings and start-up: bad values are refused, a taken HTTP port stops the server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from agent.config import ConfigError, load_settings
from tests.loopback import LOOPBACK, REPO, free_port, free_rtp_range


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("log_redaction", "minimal", "must be full or partial"),
        ("sip_allowed_networks", ["10.0.0.0/8", "not-a-net"], "not a network"),
        ("drain_seconds", -1, "greater than or equal to 0"),
        ("http_host", "localhost", "must be an IP address"),
    ],
)
def test_bad_operations_settings_are_refused_in_one_line(
    setting: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings({setting: value})
    assert setting in str(caught.value) and "\n" not in str(caught.value)


def test_serve_exits_1_naming_the_http_port_when_it_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        taken = holder.getsockname()[1]
        cmd = [
            sys.executable,
            "-m",
            "agent.cli",
            "serve",
            "--sip-host",
            LOOPBACK,
            "--sip-port",
            str(free_port()),
            "--rtp-ports",
            free_rtp_range(),
            "--http-port",
            str(taken),
        ]
        env = {**os.environ, "VOICEAGENT_APP": "echo"}
        done = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"(HTTP {LOOPBACK}:{taken})" in done.stderr
