"""Fixtures shared by the test packages: real peer programs, installed when missing."""

from __future__ import annotations

import pytest

from tests.loopback import require_tool


@pytest.fixture(scope="session")
def sipp() -> str:
    """The sipp binary (Debian sip-tester); installed with apt when missing, never skipped."""
    return require_tool("sipp", "sip-tester")


# The whole-call tests run in real time (a persona call lasts about five minutes) and spend it
# waiting on audio (the eight-persona test keeps under half a CPU busy). Under pytest-xdist
# (``-n 2 --dist loadgroup``, as scripts/test.sh runs the suite) the eight-persona and the
# cloud calls run one after the other on one worker (group "calls"); every other test runs
# in order on the other (group "serial"): the plain tests, then the timing-sensitive media
# and benchmark tests (beside the eight-persona call, which is light), then the
# recogniser-heavy modules (pocketsphinx decoding hundreds of answers as fast as it can, in
# processes of its own: beside the cloud calls, after the eight calls, which mishear on a
# saturated machine), and the Redis and SMTP outage call last.
CALL_MODULES = ("tests/agent/test_personas_audio.py", "tests/cloud/test_cloud_calls.py")
SERIAL_LAST = (
    ("tests/media/", "tests/bench/"),
    ("tests/agent/test_stt_pocketsphinx.py", "tests/agent/test_stt_open_answers.py"),
    ("tests/ops/test_state_email_call.py",),
)


def _order(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    if module in CALL_MODULES:
        return CALL_MODULES.index(module)
    for rank, prefixes in enumerate(SERIAL_LAST, start=1):
        if module.startswith(prefixes):
            return rank
    return 0


# tryfirst: xdist's own hook reads the xdist_group marks to name each item's group; without
# them it would share the suite out module by module instead.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two xdist groups, each in its order (above)."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        group = "calls" if module in CALL_MODULES else "serial"
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_order)
