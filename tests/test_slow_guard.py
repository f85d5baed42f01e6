"""The guard of the fast tier (``tests/slow_guard.py``), on small test files run by pytester."""

from __future__ import annotations

import slow_guard

TESTS = '''
import time
import pytest

def test_quick():
    pass

def test_long_unmarked():
    time.sleep(0.3)

@pytest.mark.slow(reason="sleeps")
def test_long_marked():
    time.sleep(0.3)

@pytest.mark.slow
def test_marked_without_reason():
    pass

def test_failing():
    assert False
'''


def test_long_unmarked_and_reasonless_slow_tests_fail(pytester):
    pytester.makeini("[pytest]\nslow_after_s = 0.2\nmarkers =\n    slow: end-to-end\n")
    pytester.makepyfile(TESTS)
    # slow_guard is imported already (this conftest): its assertions need no rewriting
    result = pytester.runpytest("-p", "slow_guard", "-q",
                                "-W", "ignore::pytest.PytestAssertRewriteWarning")
    outcomes = {r.head_line: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport")
                if r.when == "call"}
    assert outcomes == {"test_quick": "passed", "test_long_unmarked": "failed",
                        "test_long_marked": "passed", "test_marked_without_reason": "failed",
                        "test_failing": "failed"}
    result.stdout.fnmatch_lines(["*test_long_unmarked took * s (over 0.2 s)*mark.slow(reason=*",
                                 "*test_marked_without_reason is marked slow without a reason*"])


def test_the_suite_allows_a_minute(pytestconfig):
    assert float(pytestconfig.getini("slow_after_s")) == slow_guard.SLOW_S == 60.0
