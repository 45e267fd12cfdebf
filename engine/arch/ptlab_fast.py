# SPDX-License-Identifier: GPL-2.0-only
"""ptlab-only fast helpers: nothing here has a kernel counterpart.

The kernel loops over descriptors one at a time. ptlab keeps page tables in
``array('Q')`` and, where a loop's outcome depends only on the values it
reads, computes it a slice at a time at C speed. Every helper here returns
exactly what the kernel's loop would, and its caller emits exactly the
events the loop would; the kernel-named functions that use them say which
loop they stand for.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from operator import xor

from engine.arch.base import ArchBase
from engine.pte import PTE_AF, PTE_DIRTY, PTE_RDONLY, PTE_WRITE, pte_mkdirty, pte_wrprotect
from engine.state.mmstruct import MMStruct

_WRD = PTE_WRITE | PTE_RDONLY | PTE_DIRTY
# pte_wrprotect() only changes WRITE, RDONLY and DIRTY, as a function of those
# three bits: new = old ^ _WRPROTECT_XOR[old & _WRD]
_WRPROTECT_XOR = {m: m ^ pte_wrprotect(m) for m in (
    w | r | dd for w in (0, PTE_WRITE) for r in (0, PTE_RDONLY) for dd in (0, PTE_DIRTY))}
_YD = PTE_WRITE | PTE_RDONLY | PTE_DIRTY | PTE_AF


def wrprotect_values(values: array[int]) -> array[int]:
    """array of pte_wrprotect(v) for each v, at C speed (the __wrprotect_ptes() loop)."""
    if len(values) <= 32:
        xs = _WRPROTECT_XOR
        return array("Q", [v ^ xs[v & _WRD] for v in values])
    flags = set(map(_WRD.__and__, values))
    if len(flags) == 1:
        x = _WRPROTECT_XOR[flags.pop()]
        return array("Q", map(x.__xor__, values)) if x else array("Q", values)
    return array("Q", map(xor, values, map(_WRPROTECT_XOR.__getitem__, map(_WRD.__and__, values))))


def gather_young_dirty(pte: int, values: Sequence[int], start: int) -> int:
    """pte with the dirty and young state of values[start:] ORed in, as the
    __get_and_clear_full_ptes(), contpte_convert() and (v6.9) contpte_ptep_get()
    loops do one entry at a time."""
    young = dirty = False
    for f in set(map(_YD.__and__, values[start:] if start else values)):
        if f & PTE_DIRTY or (f & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:
            dirty = True
        if f & PTE_AF:
            young = True
    if dirty:
        pte = pte_mkdirty(pte)
    if young:
        pte |= PTE_AF
    return pte



class FastReads(ArchBase):
    """Reads core mm makes in loops, a page table slice at a time."""

    def none_run(self, mm: MMStruct, addr: int, max_nr: int, lockless: bool = False) -> int:
        """How many entries from addr on (at most max_nr, within addr's page
        table) are none; emits exactly what calling ptep_get() -- or
        ptep_get_lockless() -- on each of them would. For loops that read
        entries one by one until one is not none: call this first, then read
        the entry that ends the run as before."""
        pt = mm.pt
        idx = (addr >> self.page_shift) & (self.g.ptrs_per_pte - 1)
        n = min(max_nr, self.g.ptrs_per_pte - idx)
        if n <= 0:
            return 0
        t = pt.tables.get(addr >> self.g.pmd_shift)
        if t is None:
            k = n
        else:
            b = t[idx:idx + n].tobytes()
            k = (len(b) - len(b.lstrip(b"\0"))) >> 3
        if not k:
            return 0
        self.log.none_reads("ptep_get_lockless" if lockless else "ptep_get", addr, k, mm.name)
        return k
