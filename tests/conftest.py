# SPDX-License-Identifier: GPL-2.0-only
"""Test-suite wide settings and plumbing.

* Property tests are derandomized so the suite gives the same verdict on
  every run (CI stays green or red for a reason). Set PTLAB_FUZZ=1 to explore
  with fresh random examples.
* ``report_line("...")`` adds a line to the summary printed at the end of the
  run (fuzz case counts, for example). It works under pytest-xdist: workers
  append to files in a directory the controller created, and the controller
  prints them.
* ``run_summary.Tally`` counts what many tests (hypothesis examples, spread
  over the xdist workers) did; the controller adds every process's counts up
  and prints one line per tally with the ``report_line`` lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pytest
import run_summary
from hypothesis import settings

settings.register_profile("ptlab", derandomize=True, database=None, deadline=None)
settings.register_profile("fuzz", max_examples=300, deadline=None)
settings.load_profile("fuzz" if os.environ.get("PTLAB_FUZZ") else "ptlab")

_ENV = "PTLAB_TEST_REPORT_DIR"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and _ENV not in os.environ:
        d = tempfile.mkdtemp(prefix="ptlab-report-")
        os.environ[_ENV] = d
        config._ptlab_report_dir = d  # type: ignore[attr-defined]


@pytest.fixture
def report_line():
    """``report_line("...")`` prints the line in the summary at the end of the run (also with -q)."""
    d = Path(os.environ[_ENV])
    path = d / f"{os.getpid()}.txt"

    def add(line: str) -> None:
        with path.open("a") as f:
            f.write(line.rstrip("\n") + "\n")

    return add


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Every process that ran tests (each xdist worker, or the one process without xdist) leaves its
    # counts for the controller; this runs before the controller's terminal summary in both cases.
    counts = run_summary.dump()
    if counts:
        (Path(os.environ[_ENV]) / f"{os.getpid()}.tally.json").write_text(json.dumps(counts))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    d = getattr(config, "_ptlab_report_dir", None)
    if not d:
        return
    lines = []
    for f in sorted(Path(d).glob("*.txt")):
        lines.extend(f.read_text().splitlines())
        f.unlink()
    tallies = sorted(Path(d).glob("*.tally.json"))
    lines.extend(run_summary.render(json.loads(f.read_text()) for f in tallies))
    for f in tallies:
        f.unlink()
    for line in sorted(lines):
        terminalreporter.write_line(line)
    with contextlib.suppress(OSError):
        os.rmdir(d)
