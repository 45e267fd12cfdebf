# SPDX-License-Identifier: GPL-2.0-only
"""Lines for the summary printed at the end of a test run, built from counts.

A test adds to a ``Tally`` as it goes (``EXAMPLES.add(cases=1, ops=3)``); the
line is rendered once, when the run ends, from the counts of every process that
ran tests. So the line is right whichever pytest-xdist worker ran which test,
and no "test" has to run last (in the same worker) to print it. Not a test
module.

tests/conftest.py does the plumbing: each process writes its counts into the
run's report directory when its session ends (``dump``); the controller adds
them up and renders the lines (``render``).
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

Render = Callable[[Counter[str]], str]

_tallies: dict[str, Tally] = {}


class Tally:
    """Counts summed over the whole run, and how to turn them into one summary line.

    ``render`` is a ``str.format`` template over the counts (a count never added
    is 0), or a function of the summed counts. The controller process imports
    that function by name -- under xdist it never imports the test modules -- so
    it must live at the top level of a helper module, not of a ``test_*`` file.
    """

    def __init__(self, render: str | Render) -> None:
        if isinstance(render, str):
            self.key = "template:" + render
        else:
            module, name = render.__module__, render.__qualname__
            if module.startswith("test_") or "." in name:
                raise ValueError(f"{module}.{name}: a Tally's render function must be a top-level "
                                 "function of a helper module (the controller imports it by name)")
            self.key = f"function:{module}:{name}"
        if self.key in _tallies:
            raise ValueError(f"two Tallies render the same way ({self.key}): use one")
        _tallies[self.key] = self
        self.counts: Counter[str] = Counter()

    def add(self, **counts: int) -> None:
        self.counts.update(counts)


def dump() -> dict[str, dict[str, int]]:
    """This process's counts, by tally (JSON-able); tallies nothing was added to are left out."""
    return {key: dict(t.counts) for key, t in _tallies.items() if t.counts}


def render(dumps: Iterable[dict[str, dict[str, int]]]) -> list[str]:
    """The summary lines for the counts of every process (``dump()`` results)."""
    total: dict[str, Counter[str]] = {}
    for d in dumps:
        for key, counts in d.items():
            total.setdefault(key, Counter()).update(counts)
    lines = []
    for key, counts in sorted(total.items()):
        kind, _, rest = key.partition(":")
        if kind == "template":
            lines.append(rest.format_map(_Zero(counts)))
        else:
            module, _, name = rest.partition(":")
            fn: Any = getattr(importlib.import_module(module), name)
            lines.append(fn(counts))
    return lines


class _Zero(dict[str, int]):
    def __missing__(self, key: str) -> int:
        return 0
