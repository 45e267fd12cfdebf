# SPDX-License-Identifier: GPL-2.0-only
"""Sparse page tables: one compact ``array('Q')`` per PTE table.

A PTE table covers one PMD-sized region (PTRS_PER_PTE entries). Upper levels
are modelled as a dict keyed by the PMD index, which is enough to walk and to
hold PMD leaf (block) entries for PMD-mapped THP. No Python object exists per
PTE: 4 million PTEs cost 32 MiB.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from engine.granule import Granule


class PageTable:
    __slots__ = ("g", "tables", "pmd_leaves", "_shift", "_page_shift", "_idx_mask", "_empty")

    def __init__(self, g: Granule):
        self.g = g
        self.tables: dict[int, array] = {}
        self.pmd_leaves: dict[int, int] = {}
        self._shift = g.pmd_shift
        self._page_shift = g.page_shift
        self._idx_mask = g.ptrs_per_pte - 1
        self._empty = bytes(8 * g.ptrs_per_pte)

    # --- locating entries -----------------------------------------------------------
    def table(self, addr: int, create: bool = True) -> array | None:
        key = addr >> self._shift
        t = self.tables.get(key)
        if t is None and create:
            if key in self.pmd_leaves:
                raise ValueError(f"{addr:#x} is mapped by a PMD leaf; split it first")
            t = array("Q", self._empty)
            self.tables[key] = t
        return t

    def index(self, addr: int) -> int:
        return (addr >> self._page_shift) & self._idx_mask

    def locate(self, addr: int) -> tuple[array, int]:
        return self.table(addr), (addr >> self._page_shift) & self._idx_mask  # type: ignore[return-value]

    def get(self, addr: int) -> int:
        t = self.tables.get(addr >> self._shift)
        if t is None:
            return 0
        return t[(addr >> self._page_shift) & self._idx_mask]

    def set(self, addr: int, value: int) -> None:
        t, i = self.locate(addr)
        t[i] = value

    # --- PMD leaves -------------------------------------------------------------------
    def get_pmd(self, addr: int) -> int:
        return self.pmd_leaves.get(addr >> self._shift, 0)

    def set_pmd(self, addr: int, value: int) -> None:
        key = addr >> self._shift
        if value:
            if key in self.tables and any(self.tables[key]):
                raise ValueError(f"{addr:#x}: PTE table still populated")
            self.tables.pop(key, None)
            self.pmd_leaves[key] = value
        else:
            self.pmd_leaves.pop(key, None)

    def free_table(self, addr: int) -> None:
        """Drop an empty PTE table (like free_pte_range / reclaim_pt)."""
        key = addr >> self._shift
        t = self.tables.get(key)
        if t is not None and not any(t):
            del self.tables[key]

    # --- iteration ------------------------------------------------------------------
    def iter_present(self, start: int = 0, end: int = 1 << 64) -> Iterator[tuple[int, int]]:
        """(va, raw) for every non-zero PTE in [start, end), ascending."""
        ps = self._page_shift
        for key in sorted(self.tables):
            base = key << self._shift
            if base + self.g.pmd_size <= start or base >= end:
                continue
            t = self.tables[key]
            for i, v in enumerate(t):
                if v:
                    va = base + (i << ps)
                    if start <= va < end:
                        yield va, v

    def nr_tables(self) -> int:
        return len(self.tables)

    # --- snapshots --------------------------------------------------------------------
    def clone(self) -> PageTable:
        other = PageTable(self.g)
        other.tables = {k: array("Q", t) for k, t in self.tables.items()}
        other.pmd_leaves = dict(self.pmd_leaves)
        return other

    def digest_items(self) -> Iterator[tuple[int, bytes]]:
        for key in sorted(self.tables):
            t = self.tables[key]
            if any(t):
                yield key, t.tobytes()
