# SPDX-License-Identifier: GPL-2.0-only
"""Helpers for the core-mm tests: run a scenario, look at what it called."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.scenario import builtin, parse
from engine.scenario_machine import Machine


@dataclass
class Run:
    machine: Machine
    events: list = field(default_factory=list)
    per_op: list = field(default_factory=list)  # Counter per op

    @property
    def totals(self) -> dict:
        return self.machine.counters()

    def calls(self, name: str) -> list[tuple]:
        """Argument tuples of every call of the named function, in order."""
        return [ev[2] for ev in self.events if ev[0] == "call" and ev[1] == name]

    # where nr sits in each batched function's recorded arguments (mm first)
    _NR_AT = {"clear_full_ptes": 2, "get_and_clear_full_ptes": 2, "clear_young_dirty_ptes": 2}

    def nrs(self, name: str) -> list[int]:
        """The nr argument of every call of a batched ptep function."""
        at = self._NR_AT.get(name, -1)
        return [args[at] for args in self.calls(name)]

    def count(self, kind: str) -> int:
        return sum(1 for ev in self.events if ev[0] == kind)

    def op_counts(self, i: int) -> Counter:
        return self.per_op[i]


def run(source: str, kernel: str | None = None, cpu: str | None = None, **config) -> Run:
    """Run a built-in scenario (by name) or scenario text; keep every event."""
    s = builtin(source) if "\n" not in source else parse(source)
    cfg = s.config(kernel=kernel, cpu=cpu, **config)
    m = Machine(cfg)
    r = Run(m)
    for op in s.ops:
        mark = len(m.log.buf)
        r.per_op.append(m.apply(op))
        r.events.extend(m.log.buf[mark:])
    return r
