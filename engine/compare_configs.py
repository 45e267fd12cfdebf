# SPDX-License-Identifier: GPL-2.0-only
"""Run one list of ops under two or more configurations and say where they part.

Used by ``ptlab compare`` and the TUI's comparison screen: totals side by
side, per-op cost differences, and the first op after which the page tables
differ (per-op digests), with the first differing descriptor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.mapping_summary import folded_blocks
from engine.queries import TABLES, cost_counters_differing, first_differing_entry, first_divergence
from engine.session import Position, Session

TOTAL_KEYS = ("ops", "pte_reads", "pte_writes", "converts", "folds", "unfolds", "flush_tlb_range", "tlbi",
              "dsb", "page_faults", "tlb_hits", "tlb_misses", "tlb_conflicts", "invariant_violations",
              "cycles")


@dataclass
class Run:
    label: dict[str, Any]  # kernel / policy / cpu / granule
    session: Session

    def totals(self) -> dict[str, Any]:
        t = self.session.totals()
        out: dict[str, Any] = {k: int(t.get(k, 0)) for k in TOTAL_KEYS if k != "cycles"}
        out["cycles"] = round(float(t.get("cycles", 0.0)), 1)
        out["cont_blocks"] = self.final_cont_blocks()
        return out

    def final_cont_blocks(self) -> int:
        """Folded blocks at the end of the run (like every other total), whatever
        position the session was left at (the first divergence, after compare)."""
        s = self.session
        keep = s.position
        end = Position(s.executed)
        if keep == end:
            return count_cont_blocks(s)
        s.seek(end)
        try:
            return count_cont_blocks(s)
        finally:
            s.seek(keep)


@dataclass
class Divergence:
    op: int  # index of the first op after which the page tables differ
    text: str
    line: int
    process: str | None
    addr: int | None
    values: list[int | None]  # the descriptor in each run (None: process absent)

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op + 1, "text": self.text, "line": self.line, "process": self.process,
                "addr": None if self.addr is None else f"{self.addr:#x}",
                "values": [None if v is None else f"{v:#018x}" for v in self.values]}


@dataclass
class Comparison:
    runs: list[Run]
    first_divergence: Divergence | None
    op_cost_diffs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        div = self.first_divergence
        return {"runs": [dict(r.label, totals=r.totals()) for r in self.runs],
                "first_divergence": None if div is None else div.as_dict(),
                "op_cost_diffs": self.op_cost_diffs}


def count_cont_blocks(session: Session) -> int:
    """Folded blocks over every process, at the current position (engine.mapping_summary.folded_blocks)."""
    n = session.machine.arch.cont_ptes
    return sum(folded_blocks(p.mm.pt, n) for p in session.machine.process_list())


def _labelled(progress: Callable[[str, int, int], None], label: str) -> Callable[[int, int], None]:
    return lambda k, n: progress(label, k, n)


def compare_sessions(runs: list[Run], progress: Callable[[str, int, int], None] | None = None,
                     top: int = 20) -> Comparison:
    for r in runs:
        r.session.run(progress=_labelled(progress, str(r.label)) if progress else None)
    base = runs[0]
    div: Divergence | None = None
    n = min(r.session.executed for r in runs)
    # the first op after which the tables of any run differ from the first run's (the same
    # ops run in each: only the tables can part them before the shortest run's end)
    parts = [(d.op, i) for i, r in enumerate(runs[1:], 1)
             if (d := first_divergence(base.session, r.session)).why == TABLES and d.op is not None]
    if parts:
        k, i = min(parts)
        other = runs[i]
        base.session.seek(Position(k + 1))
        other.session.seek(Position(k + 1))
        proc, addr, va, vb = first_differing_entry(base.session, other.session)
        op = base.session.ops[k]
        values = [va, vb] if len(runs) == 2 else [va] + [
            (r.session.pte(proc, addr) if proc is not None and addr is not None else None)
            for r in runs[1:]]
        div = Divergence(k, str(op), op.line, proc, addr, values)
    diffs: list[dict[str, Any]] = []
    if len(runs) >= 2:
        other = runs[1]
        for k in range(n):
            ca, cb = base.session.records[k].cycles, other.session.records[k].cycles
            if ca != cb:
                ka, kb = base.session.records[k].counters, other.session.records[k].counters
                changed = {c: [ka.get(c, 0), kb.get(c, 0)] for c in cost_counters_differing(ka, kb)}
                diffs.append({"op": k + 1, "text": str(base.session.ops[k]), "cycles": [ca, cb],
                              "delta": cb - ca, "counters": changed})
        diffs.sort(key=lambda d: -abs(d["delta"]))
        diffs = diffs[:top]
    return Comparison(runs, div, diffs)
