# SPDX-License-Identifier: GPL-2.0-only
"""The type checker, as a test (issue #15: a type checker in CI; CI runs only pytest).

mypy runs with the configuration in pyproject.toml ([tool.mypy]: every package,
strict on the engine and the snapshot container except the modules listed there
with their reasons) and must report nothing. The engine's machine contract
(engine.contract) is checked this way: engine.machine_kinds registers every machine
kind with the contract's types.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_reports_no_errors():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    # its own process: mypy's import machinery stays out of the test run; the cache (gitignored)
    # makes a run after a small change take seconds
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE")}
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-color-output", "--no-error-summary"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert r.returncode == 0 and not errors, (
        f"mypy found {len(errors)} error(s) (exit status {r.returncode}):\n{r.stdout}{r.stderr}")
