# SPDX-License-Identifier: GPL-2.0-only
"""ptlab under PyPy (bench.pypy) gives exactly what it gives under CPython.

Needs ``python -m bench.pypy --setup`` (.ci/run does it); skipped with one
line where PyPy is not set up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pypy

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(pypy.interpreter() is None,
                                reason="PyPy is not set up (python -m bench.pypy --setup)")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_the_interpreter_is_pypy_implementing_3_11():
    exe = pypy.interpreter()
    out = subprocess.run([str(exe), "-c", "import sys, platform; print(platform.python_implementation(), "
                          "*sys.version_info[:2])"], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["PyPy", "3", "11"]


@pytest.mark.parametrize("scenario", ["check-03-fork-pte-mapped-2m", "check-08-mprotect-one-page",
                                      "page-fault3"])
def test_ptlab_run_prints_the_same_totals_and_mappings_under_pypy(scenario):
    cpython = _run("-m", "tui.cli", "run", scenario, "--json")
    under_pypy = _run("-m", "bench.pypy", "run", scenario, "--json")
    assert cpython.returncode == under_pypy.returncode == 0, under_pypy.stderr
    a, b = json.loads(cpython.stdout), json.loads(under_pypy.stdout)
    assert a["totals"]["pte_writes"] > 0 and a["processes"]
    assert b == a


def test_fingerprints_under_pypy_match_cpython_on_the_anonymous_runs():
    # every event, counter, cycle figure and digest of the 64K-folio runs (bench.fingerprint)
    r = _run("-m", "bench.pypy", "--check", "--only", "anon-64K/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].startswith("PyPy: 6 runs in") and "0 problems" in r.stdout


def test_without_arguments_it_says_what_to_give():
    r = _run("-m", "bench.pypy")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--setup" in r.stderr
