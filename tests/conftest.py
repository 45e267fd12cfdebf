# SPDX-License-Identifier: GPL-2.0-only
"""Shared pytest plumbing: tests can add lines to the summary printed at the end of a run."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config._ptlab_report_lines = []  # type: ignore[attr-defined]


@pytest.fixture
def report_line(request: pytest.FixtureRequest):
    """``report_line("...")`` prints the line in the summary at the end of the run (also with -q)."""
    return request.config._ptlab_report_lines.append  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for line in getattr(config, "_ptlab_report_lines", []):
        terminalreporter.write_line(line)
