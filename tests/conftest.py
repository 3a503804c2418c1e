"""Fixtures shared by the test packages: real peer programs, installed when missing."""

from __future__ import annotations

import pytest

from tests.loopback import require_tool


@pytest.fixture(scope="session")
def sipp() -> str:
    """The sipp binary (Debian sip-tester); installed with apt when missing, never skipped."""
    return require_tool("sipp", "sip-tester")


# The whole-call tests run in real time (a persona call lasts about five minutes) and spend it
# waiting on audio, so under pytest-xdist (``-n 2``, as scripts/test.sh runs the suite) they
# run one after another on one worker while every other test runs, in order, on the other.
# On that worker the timing-sensitive media and benchmark tests come last but one, and the
# eight-persona test (eight calls recognised at once, which mishear on a saturated machine)
# last: by then most of the whole-call modules have finished.
REAL_TIME_CALL_MODULES = frozenset(
    {
        "tests/cloud/test_cloud_calls.py",
        "tests/ops/test_persona_logs.py",
        "tests/ops/test_state_email_call.py",
    }
)
LATE_PREFIXES = ("tests/media/", "tests/bench/")
LAST_MODULES = frozenset({"tests/agent/test_personas_audio.py"})


def _order(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    if module in LAST_MODULES:
        return 2
    return 1 if module.startswith(LATE_PREFIXES) else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The real-time call modules in one xdist group, the rest in another, late ones last."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        group = "calls" if module in REAL_TIME_CALL_MODULES else "serial"
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_order)
