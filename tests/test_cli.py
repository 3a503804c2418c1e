"""The ``voiceagent`` command as an operator meets it: help, bad settings, busy ports, config.

Every test runs the installed console script in a subprocess (so argument parsing, exit
codes and what reaches stderr are real) with every ``VOICEAGENT_*`` variable of the test
runner removed. Servers listen on 127.0.0.1 only; each wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import Settings
from tests.loopback import LOOPBACK, free_port, free_rtp_range

TIMEOUT_S = 20.0


def voiceagent() -> str:
    exe = shutil.which("voiceagent")
    assert exe is not None, "the voiceagent console script is not on PATH: pip install -e ."
    return exe


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEAGENT_")}
    return {**env, **extra}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [voiceagent(), *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


@contextlib.contextmanager
def serving(*args: str, env: dict[str, str]) -> Iterator[dict[str, object]]:
    """Run ``voiceagent serve ARGS``; yield its "listening" log record; stop it after."""
    proc = subprocess.Popen(
        [voiceagent(), "serve", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stderr = proc.stderr
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            for line in list(lines):
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == "listening":
                        yield record
                        return
            time.sleep(0.02)
        raise AssertionError(f"server never logged 'listening': {lines}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        reader.join(timeout=5)


# ---------------------------------------------------------------------------- help
def test_top_level_help_names_the_serve_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "answer SIP calls" in result.stdout


def test_serve_help_explains_every_setting() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # undo argparse's line wrapping
    options = re.findall(r"^\s+(--[a-z0-9-]+)", result.stdout, re.MULTILINE)
    assert "--config" in options and "--sip-port" in options
    for name, field in Settings.model_fields.items():
        env = f"VOICEAGENT_{name.upper()}"
        assert env in text, f"{name} is not explained in serve --help"
        assert field.description and " ".join(field.description.split()) in text
        flag = "--" + name.replace("_", "-")
        if flag in options:  # an option's help says where else it can be set, and its default
            assert re.search(rf"{re.escape(flag)} \S+ .*?\[env {env}; default ", text)
    settings_flags = {"--" + name.replace("_", "-") for name in Settings.model_fields}
    assert set(options) - settings_flags == {"--config"}  # no option goes unexplained


# ---------------------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        ((), {"VOICEAGENT_SIP_PORT": "99999"}, "sip_port"),
        (("--rtp-ports", "5-3"), {}, "rtp_ports"),
        (("--sip-host", "pbx.example"), {}, "sip_host"),
        (("--log-level", "loud"), {}, "log_level"),
        ((), {"VOICEAGENT_MAX_CALL_SECONDS": "-1"}, "max_call_seconds"),
    ],
)
def test_bad_value_exits_with_one_line_naming_the_setting(
    args: tuple[str, ...], env: dict[str, str], setting: str
) -> None:
    result = run("serve", "--sip-host", LOOPBACK, *args, env=clean_env(**env))
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert line.startswith("voiceagent: ")
    assert setting in line and f"VOICEAGENT_{setting.upper()}" in line
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run("serve", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode != 0
    assert "absent.toml" in one_line(result.stderr)


def test_unknown_key_in_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "voiceagent.toml"
    config.write_text('sip_prot = 5070\nsip_host = "127.0.0.1"\n')
    result = run("serve", "--config", str(config))
    assert result.returncode != 0
    assert "sip_prot" in one_line(result.stderr)


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
def test_port_already_taken_exits_with_one_line(kind: int) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind((LOOPBACK, port))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        result = run(
            "serve", "--sip-host", LOOPBACK, "--sip-port", str(port),
            "--rtp-ports", free_rtp_range(),
        )  # fmt: skip
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert f"{LOOPBACK}:{port}" in line and "in use" in line


# ---------------------------------------------------------------------------- config precedence
def write_config(path: Path, port: int, rtp_ports: str) -> Path:
    path.write_text(
        f'# VoiceAgent test config\nsip_host = "{LOOPBACK}"\nsip_port = {port}\n'
        f'rtp_ports = "{rtp_ports}"\n'
    )
    return path


def test_toml_config_is_honoured(tmp_path: Path) -> None:
    port, rtp = free_port(), free_rtp_range()
    config = write_config(tmp_path / "voiceagent.toml", port, rtp)
    with serving("--config", str(config), env=clean_env()) as listening:
        assert listening["sip"] == f"{LOOPBACK}:{port}"
        assert listening["rtp_ports"] == rtp
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            with pytest.raises(OSError):  # the server really holds the TOML's port
                probe.bind((LOOPBACK, port))


def test_environment_overrides_toml_and_options_override_both(tmp_path: Path) -> None:
    toml_port, env_port, cli_port, rtp = free_port(), free_port(), free_port(), free_rtp_range()
    config = write_config(tmp_path / "voiceagent.toml", toml_port, rtp)
    env = clean_env(VOICEAGENT_SIP_PORT=str(env_port), VOICEAGENT_CONFIG=str(config))
    with serving(env=env) as listening:  # VOICEAGENT_CONFIG names the file too
        assert listening["sip"] == f"{LOOPBACK}:{env_port}"
        assert listening["rtp_ports"] == rtp  # not overridden: still from TOML
    with serving("--sip-port", str(cli_port), env=env) as listening:
        assert listening["sip"] == f"{LOOPBACK}:{cli_port}"
