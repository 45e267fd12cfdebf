# SPDX-License-Identifier: GPL-2.0-only
"""Run one list of ops under two or more configurations and say where they part.

Used by ``ptlab compare`` and the TUI's comparison screen: totals side by
side, per-op cost differences, and the first op after which the page tables
differ (per-op digests), with the first differing descriptor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.session import Position, Session
from engine.summary import folded_blocks

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
    """Folded blocks over every process, at the current position (engine.summary.folded_blocks)."""
    n = session.machine.arch.cont_ptes
    return sum(folded_blocks(p.mm.pt, n) for p in session.machine.process_list())


def iter_differences(a: Session, b: Session) -> Iterator[tuple[str, int | None, int | None, int | None]]:
    """(process, addr, value in a, value in b) for every differing descriptor,
    processes by name then addresses ascending; a process missing on one side
    yields (name, None, None, None) once."""
    pa = {p.name: p for p in a.machine.process_list()}
    pb = {p.name: p for p in b.machine.process_list()}
    g = a.machine.arch.g
    for name in sorted(set(pa) | set(pb)):
        if name not in pa or name not in pb:
            yield name, None, None, None
            continue
        ta, tb = pa[name].mm.pt, pb[name].mm.pt
        for key in sorted(set(ta.tables) | set(tb.tables)):
            x, y = ta.tables.get(key), tb.tables.get(key)
            if x == y:
                continue
            base = key << g.pmd_shift
            for i in range(g.ptrs_per_pte):
                vx = x[i] if x is not None else 0
                vy = y[i] if y is not None else 0
                if vx != vy:
                    yield name, base + i * g.page_size, vx, vy
        for key in sorted(set(ta.pmd_leaves) | set(tb.pmd_leaves)):
            if ta.pmd_leaves.get(key) != tb.pmd_leaves.get(key):
                yield name, key << g.pmd_shift, ta.pmd_leaves.get(key, 0), tb.pmd_leaves.get(key, 0)


def first_differing_entry(a: Session, b: Session) -> tuple[str | None, int | None, int | None, int | None]:
    """(process, addr, value in a, value in b) of the lowest differing descriptor."""
    return next(iter_differences(a, b), (None, None, None, None))


def _labelled(progress: Callable[[str, int, int], None], label: str) -> Callable[[int, int], None]:
    return lambda k, n: progress(label, k, n)


def compare_sessions(runs: list[Run], progress: Callable[[str, int, int], None] | None = None,
                     top: int = 20) -> Comparison:
    for r in runs:
        r.session.run(progress=_labelled(progress, str(r.label)) if progress else None)
    base = runs[0]
    div: Divergence | None = None
    n = min(r.session.executed for r in runs)
    for k in range(n):
        d0 = base.session.records[k].digest
        other = next((r for r in runs[1:] if r.session.records[k].digest != d0), None)
        if other is None:
            continue
        base.session.seek(Position(k + 1))
        other.session.seek(Position(k + 1))
        proc, addr, va, vb = first_differing_entry(base.session, other.session)
        op = base.session.ops[k]
        values = [va, vb] if len(runs) == 2 else [va] + [
            (r.session.pte(proc, addr) if proc is not None and addr is not None else None)
            for r in runs[1:]]
        div = Divergence(k, str(op), op.line, proc, addr, values)
        break
    diffs: list[dict[str, Any]] = []
    if len(runs) >= 2:
        other = runs[1]
        for k in range(n):
            ca, cb = base.session.records[k].cycles, other.session.records[k].cycles
            if ca != cb:
                ka, kb = Counter(base.session.records[k].counters), Counter(other.session.records[k].counters)
                changed = {c: [ka.get(c, 0), kb.get(c, 0)] for c in sorted(set(ka) | set(kb))
                           if ka.get(c, 0) != kb.get(c, 0) and not c.startswith("call:") and c != "events"}
                diffs.append({"op": k + 1, "text": str(base.session.ops[k]), "cycles": [ca, cb],
                              "delta": cb - ca, "counters": changed})
        diffs.sort(key=lambda d: -abs(d["delta"]))
        diffs = diffs[:top]
    return Comparison(runs, div, diffs)
