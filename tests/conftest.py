"""Fixtures shared by the test packages: real peer programs, installed when missing."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def sipp() -> str:
    """The sipp binary (Debian sip-tester); installed with apt when missing, never skipped."""
    path = shutil.which("sipp")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "sip-tester"],
            check=False,
            capture_output=True,
            timeout=300,
        )
        path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp is not installed and could not be installed (apt: sip-tester)")
    return path


# The whole-call tests run in real time (a persona call lasts about five minutes) and spend it
# waiting on audio, so under pytest-xdist (``-n``, as scripts/test.sh runs the suite) each of
# them gets a worker of its own while every other test runs, in order, on one worker: the
# timing-sensitive media tests then never share the machine with each other. The eight-persona
# test is the exception: eight calls recognised at once mishear when the machine is saturated
# (the simulated patients' and the server's clocks fall behind), so it runs last on the
# in-order worker, after the other whole-call modules have finished.
REAL_TIME_CALL_MODULES = frozenset(
    {
        "tests/cloud/test_cloud_calls.py",
        "tests/ops/test_persona_logs.py",
        "tests/ops/test_state_email_call.py",
    }
)
RUN_LAST_MODULES = frozenset({"tests/agent/test_personas_audio.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each real-time call module in an xdist group of its own, the rest in one."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        group = module if module in REAL_TIME_CALL_MODULES else "serial"
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] in RUN_LAST_MODULES)
