"""Fixtures shared by the test packages: real peer programs, installed when missing."""

from __future__ import annotations

import pytest

from tests.loopback import require_tool


@pytest.fixture(scope="session")
def sipp() -> str:
    """The sipp binary (Debian sip-tester); installed with apt when missing, never skipped."""
    return require_tool("sipp", "sip-tester")


# The whole-call tests run in real time (a persona call lasts about five minutes) and spend it
# waiting on audio (the eight-persona test keeps under half a CPU busy), so under pytest-xdist
# (``-n 2``, as scripts/test.sh runs the suite) they run one after another on one worker, the
# eight-persona test first, while every other test runs, in order, on the other. On that
# worker the recogniser-heavy modules (pocketsphinx decoding hundreds of answers as fast as
# it can, in processes of its own) come after the plain tests, by which time the eight
# calls, which mishear on a saturated machine, are over; the timing-sensitive media and
# benchmark tests come last, beside the lighter cloud and state calls.
REAL_TIME_CALL_MODULES = (  # in the order they run
    "tests/agent/test_personas_audio.py",
    "tests/cloud/test_cloud_calls.py",
    "tests/ops/test_state_email_call.py",
)
RECOGNISER_MODULES = frozenset(
    {
        "tests/agent/test_stt_pocketsphinx.py",
        "tests/agent/test_stt_open_answers.py",
    }
)
LATE_PREFIXES = ("tests/media/", "tests/bench/")


def _order(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    if module in REAL_TIME_CALL_MODULES:
        return REAL_TIME_CALL_MODULES.index(module)
    if module in RECOGNISER_MODULES:
        return 1
    return 2 if module.startswith(LATE_PREFIXES) else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The real-time call modules in one xdist group, the rest in another, each in order."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        group = "calls" if module in REAL_TIME_CALL_MODULES else "serial"
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_order)
