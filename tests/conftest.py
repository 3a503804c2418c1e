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
