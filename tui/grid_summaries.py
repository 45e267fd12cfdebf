# SPDX-License-Identifier: GPL-2.0-only
"""Summaries of runs of descriptors: what a zoomed-out cell, a range or a table shows.

A :class:`Summary` counts the entries of a run (present, valid, CONT,
swapped) and keeps the most interesting state among them by the fixed
priority of :data:`tui.legend.PRIORITY` -- never a sample. Summaries are
computed per PTE table (one per block and one for the table) from the live
tables and cached; the model drops the cache of a table a step wrote, and
tables the mid-op overlay patches are summarised per view.

:class:`GridSummaries` is mixed into :class:`tui.grid_model.GridModel`,
which reads the descriptors (overlay applied) and owns when caches are
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.pte import PTE_CONT, PTE_VALID
from tui.legend import PRIORITY, RANK, Classifier

if TYPE_CHECKING:
    from engine.pte import Layout
    from tui.grid_regions import Region


@dataclass(frozen=True)
class Summary:
    """Aggregate of a run of descriptors."""

    rank: int  # min RANK over the entries (most interesting state)
    present: int = 0  # non-zero entries (swap and migration entries included: see swapped)
    valid: int = 0
    cont: int = 0  # valid + CONT
    total: int = 0
    swapped: int = 0  # non-zero but not pte_present(): swap / migration entries

    @property
    def mapped(self) -> int:
        """Entries pte_present() says are present (valid, or PROT_NONE)."""
        return self.present - self.swapped

    def state(self) -> str:
        return PRIORITY[self.rank]

    @property
    def all_cont(self) -> bool:
        return self.valid > 0 and self.cont == self.valid

    def __add__(self, other: Summary) -> Summary:
        return Summary(min(self.rank, other.rank), self.present + other.present, self.valid + other.valid,
                       self.cont + other.cont, self.total + other.total, self.swapped + other.swapped)


_NONE_RANK = RANK["none"]

_OUT_RANK = RANK["outside"]

_CLEARED_RANK = RANK["cleared"]


def empty_summary(n: int) -> Summary:
    return Summary(_NONE_RANK, 0, 0, 0, n)


@dataclass
class _TableSummary:
    blocks: list[Summary]
    total: Summary


class GridSummaries:
    """Per-table summary caches and the summaries of cells and ranges built from them."""

    # the model's: the granule, the zoom, the descriptors as shown
    cont_ptes: int
    ptrs: int
    page_size: int
    page_shift: int
    pmd_shift: int
    ptes_per_cell: int
    cell_bytes: int
    regions: list[Region]
    layout: Layout
    classify: Classifier
    _overlay: dict[int, int]  # VA -> value, this process
    _overlay_tables: set[int]
    # the caches, per PTE table (key: VA >> pmd_shift); the model drops them
    _tcache: dict[int, _TableSummary]  # live tables
    _ocache: dict[int, _TableSummary]  # tables patched by the overlay, this view

    if TYPE_CHECKING:
        def _proc(self) -> Any: ...
        def pmd_leaf(self, addr: int) -> int: ...
        def entries(self, addr: int, n: int) -> list[int]: ...
        def state_of(self, addr: int, raw: int) -> str: ...
        def region_at(self, addr: int) -> int | None: ...

    def _summarise(self, key: int) -> _TableSummary:
        patched = key in self._overlay_tables
        cache = self._ocache if patched else self._tcache
        ts = cache.get(key)
        if ts is not None:
            return ts
        proc = self._proc()
        t = None if proc is None else proc.mm.pt.tables.get(key)
        n = self.cont_ptes
        if t is None and not patched:
            leaf = self.pmd_leaf(key << self.pmd_shift)
            if leaf:  # a PMD leaf: every slot "pmd", valid if the block descriptor is
                v = 1 if leaf & PTE_VALID else 0
                blk = Summary(RANK["pmd"], n, n * v, 0, n)
                ts = _TableSummary([blk] * (self.ptrs // n), Summary(RANK["pmd"], self.ptrs, self.ptrs * v, 0,
                                                                     self.ptrs))
            else:
                ts = _TableSummary([empty_summary(n)] * (self.ptrs // n), empty_summary(self.ptrs))
            cache[key] = ts
            return ts
        vals = [0] * self.ptrs if t is None else list(t)
        cleared: set[int] = set()
        if patched:
            base = key << self.pmd_shift
            ps_shift = self.page_shift
            for a, v in self._overlay.items():
                if a >> self.pmd_shift == key:
                    i = (a - base) >> ps_shift
                    if v == 0 and vals[i] != 0:
                        cleared.add(i)
                    vals[i] = v
        classify = self.classify
        present = self.layout.pte_present
        rank = RANK
        blocks = []
        tot = empty_summary(0)
        for b in range(0, self.ptrs, n):
            chunk = vals[b:b + n]
            zeros = chunk.count(0)
            if zeros == n and not cleared:
                s = empty_summary(n)
            else:
                r = _NONE_RANK if zeros else _OUT_RANK
                valid = cont = swapped = 0
                for v in chunk:
                    if v:
                        x = rank[classify(v)]
                        if x < r:
                            r = x
                        if v & PTE_VALID:
                            valid += 1
                            if v & PTE_CONT:
                                cont += 1
                        elif not present(v):
                            swapped += 1
                if cleared and any(b <= i < b + n for i in cleared):
                    r = min(r, _CLEARED_RANK)
                s = Summary(r, n - zeros, valid, cont, n, swapped)
            blocks.append(s)
            tot = tot + s
        ts = _TableSummary(blocks, tot)
        cache[key] = ts
        return ts

    def summary(self, start: int, n_ptes: int) -> Summary:
        """Aggregate of n_ptes descriptors from start (n_ptes: a power of two, a
        multiple of CONT_PTES; start aligned to it)."""
        n = self.cont_ptes
        if n_ptes < n:
            vals = self.entries(start, n_ptes)
            r = _NONE_RANK
            valid = cont = swapped = 0
            ps = self.page_size
            for j, v in enumerate(vals):
                x = RANK[self.state_of(start + j * ps, v)]
                r = min(r, x)
                if v & PTE_VALID:
                    valid += 1
                    cont += bool(v & PTE_CONT)
                elif v and not self.layout.pte_present(v):
                    swapped += 1
            return Summary(r, n_ptes - vals.count(0), valid, cont, n_ptes, swapped)
        shift = self.pmd_shift
        if n_ptes >= self.ptrs:
            first = start >> shift
            tot = empty_summary(0)
            for key in range(first, first + n_ptes // self.ptrs):
                tot = tot + self._summarise(key).total
            return tot
        ts = self._summarise(start >> shift)
        i = ((start >> self.page_shift) & (self.ptrs - 1)) // n
        tot = empty_summary(0)
        for s in ts.blocks[i:i + n_ptes // n]:
            tot = tot + s
        return tot

    def cell_summary(self, addr: int, region: Region | None = None) -> Summary:
        """The summary a zoomed-out cell at addr shows: only the descriptors of its own
        region (a cell straddling a region's edge never counts a neighbour's entries)."""
        cb = self.cell_bytes
        if region is None:
            i = self.region_at(addr)
            if i is None:
                i = self.region_at(addr + cb - 1)
            region = self.regions[i] if i is not None else None
        if region is None or (region.start <= addr and addr + cb <= region.end):
            return self.summary(addr, self.ptes_per_cell)
        lo, hi = max(addr, region.start), min(addr + cb, region.end)
        if hi <= lo:
            return empty_summary(0)
        return self.count_range(lo, hi)

    def count_range(self, start: int, end: int) -> Summary:
        """Aggregate of every descriptor in [start, end) (page aligned)."""
        ps = self.page_size
        tb = self.ptrs * ps
        tot = empty_summary(0)
        a = start
        while a < end:
            if a % tb == 0 and a + tb <= end:
                tot = tot + self._summarise(a >> self.pmd_shift).total
                a += tb
                continue
            bb = self.cont_ptes * ps
            if a % bb == 0 and a + bb <= end:
                ts = self._summarise(a >> self.pmd_shift)
                tot = tot + ts.blocks[((a >> self.page_shift) & (self.ptrs - 1)) // self.cont_ptes]
                a += bb
                continue
            nxt = min(end, (a // bb + 1) * bb)
            tot = tot + self.summary_small(a, (nxt - a) // ps)
            a = nxt
        return tot

    def summary_small(self, start: int, n: int) -> Summary:
        vals = self.entries(start, n)
        r = _NONE_RANK
        valid = cont = swapped = 0
        for v in vals:
            if v:
                r = min(r, RANK[self.classify(v)])
                if v & PTE_VALID:
                    valid += 1
                    cont += bool(v & PTE_CONT)
                elif not self.layout.pte_present(v):
                    swapped += 1
        return Summary(r, n - vals.count(0), valid, cont, n, swapped)
