"""A test whose call takes over ``SLOW_S`` fails unless it is marked slow with a reason.

The fast tier (``python -m pytest -q -m "not slow"``) answers in a few minutes only while nothing
slow hides in it, and a reason on every slow mark says what the test pays for (a sweep, a
cluster, a browser), which is where a speed-up starts. ``tests/conftest.py`` registers the hook.
"""

from __future__ import annotations

import pytest

SLOW_S = 60.0
"""The default of the ``slow_after_s`` ini option."""


def pytest_addoption(parser):
    parser.addini("slow_after_s", "seconds a test's call may take unless it is marked slow",
                  default=str(SLOW_S))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a passing call over ``slow_after_s`` without a slow mark, or a slow mark without
    ``reason=``, into a failure that says what to do."""
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.passed:
        return
    limit = float(item.config.getini("slow_after_s"))
    mark = item.get_closest_marker("slow")
    if mark is not None and not mark.kwargs.get("reason"):
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} is marked slow without a reason: write "
                           '@pytest.mark.slow(reason="what it pays for")')
    elif mark is None and call.duration > limit:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} took {call.duration:.1f} s (over {limit:g} s): "
                           "make it faster or mark it @pytest.mark.slow(reason=...)")
