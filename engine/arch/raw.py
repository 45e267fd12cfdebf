# SPDX-License-Identifier: GPL-2.0-only
"""The raw "__" helpers of arch/arm64/include/asm/pgtable.h and
arch/arm64/mm/fault.c (__ptep_set_access_flags).

Kernel names start with two underscores, which Python would mangle inside a
class, so the methods here are named ``raw_<name>``; the public Ptep
namespace maps the kernel names onto them.

Each single-descriptor access is an event: ``pte_read`` for a load,
``pte_write`` with ``atomic`` = store / xchg / cmpxchg for a store. A
compare-and-swap that loses (the entry changed since it was read) is recorded
as the load it amounts to, and the loop retries exactly like the kernel's.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from itertools import repeat

from engine.arch.base import ArchError, arch_call
from engine.arch.ptlab_fast import gather_young_dirty, wrprotect_values
from engine.arch.tlbflush import TlbFlush
from engine.arch.variants import variant
from engine.pte import (
    PTE_AF,
    PTE_DIRTY,
    PTE_RDONLY,
    PTE_USER,
    PTE_UXN,
    PTE_VALID,
    PTE_WRITE,
    pte_mkclean,
    pte_mkold,
    pte_wrprotect,
)
from engine.state.mmstruct import MMStruct

CYDP_CLEAR_YOUNG = 1
CYDP_CLEAR_DIRTY = 2

class RawHelpers(TlbFlush):
    # The helpers engine.arch.layer fills in with the profile's version
    # (declared here so callers type-check).
    raw_set_ptes: Callable[[MMStruct, int, int, int], None]
    raw_ptep_set_access_flags: Callable[[MMStruct, int, int, int], int]
    pmdp_set_access_flags: Callable[[MMStruct, int, int, bool], bool]

    # --- single entries ------------------------------------------------------------
    def raw_ptep_get(self, mm: MMStruct, addr: int) -> int:
        """__ptep_get(): READ_ONCE(*ptep)."""
        # mm.pt.get(addr), inline: this read runs several times per order-0 PTE
        t = mm.pt.tables.get(addr >> self.pmd_shift)
        v = t[(addr >> self.page_shift) & self.idx_mask] if t is not None else 0
        self.log.pte_read(addr, v, mm.name)
        return v

    def _store(self, mm: MMStruct, addr: int, value: int) -> None:
        t, i = mm.pt.locate(addr)
        old = t[i]
        t[i] = value
        self.log.pte_write(addr, old, value, "store", mm.name)

    def _barrier_if_kernel(self, value: int) -> None:
        # __set_pte(): a valid kernel entry (VALID, !USER, UXN) is followed by
        # dsb(ishst); isb(); user entries get no barrier.
        if (value & (PTE_VALID | PTE_USER | PTE_UXN)) == (PTE_VALID | PTE_UXN):
            log = self.log
            log.dsb("ishst")
            log.isb()

    def raw_set_pte(self, mm: MMStruct, addr: int, value: int) -> None:
        self._store(mm, addr, value)
        self._barrier_if_kernel(value)

    def raw_pte_clear(self, mm: MMStruct, addr: int) -> None:
        self.raw_set_pte(mm, addr, 0)

    def raw_ptep_get_and_clear(self, mm: MMStruct, addr: int) -> int:
        """__ptep_get_and_clear(): xchg_relaxed(ptep, 0)."""
        t, i = mm.pt.locate(addr)
        old = t[i]
        t[i] = 0
        self.log.pte_write(addr, old, 0, "xchg", mm.name)
        return old

    def _cmpxchg(self, mm: MMStruct, t: array[int], i: int, addr: int, expected: int, new: int) -> int:
        """cmpxchg_relaxed(): returns the value found."""
        cur = t[i]
        if cur == expected:
            t[i] = new
            self.log.pte_write(addr, cur, new, "cmpxchg", mm.name)
        else:
            self.log.pte_read(addr, cur, mm.name)
        return cur

    def raw_ptep_test_and_clear_young(self, mm: MMStruct, addr: int) -> bool:
        t, i = mm.pt.locate(addr)
        pte = t[i]
        self.log.pte_read(addr, pte, mm.name)
        while True:
            old = pte
            pte = self._cmpxchg(mm, t, i, addr, old, old & ~PTE_AF)
            if pte == old:
                return bool(pte & PTE_AF)

    def raw_ptep_clear_flush_young(self, mm: MMStruct, addr: int) -> bool:
        young = self.raw_ptep_test_and_clear_young(mm, addr)
        if young:
            # The trailing DSB is elided: a stale young TLB entry only risks
            # reclaiming a page that is in use until the next context switch.
            self.flush_tlb_page(mm, addr, sync=False)
        return young

    def raw_ptep_set_wrprotect_seeded(self, mm: MMStruct, addr: int, pte: int) -> None:
        """___ptep_set_wrprotect(): cmpxchg loop seeded with ``pte``."""
        t, i = mm.pt.locate(addr)
        while True:
            old = pte
            pte = self._cmpxchg(mm, t, i, addr, old, pte_wrprotect(old))
            if pte == old:
                return

    def raw_ptep_set_wrprotect(self, mm: MMStruct, addr: int) -> None:
        self.raw_ptep_set_wrprotect_seeded(mm, addr, self.raw_ptep_get(mm, addr))

    # --- ranges ------------------------------------------------------------------------
    @variant("raw_set_ptes")
    @arch_call("__set_ptes")
    def raw_set_ptes_v6_9(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        """__set_ptes() of pgtable.h up to v6.15: __set_pte() on each of nr
        entries, the pfn advancing by one each time, so a valid kernel entry
        gets its DSB ISHST; ISB after every store."""
        if nr < 1:
            raise ValueError("set_ptes() needs nr >= 1")  # (a caller's contract, not a kernel check)
        t, i = mm.pt.locate(addr)
        ps = self.page_size
        kernel = (pte & (PTE_VALID | PTE_USER | PTE_UXN)) == (PTE_VALID | PTE_UXN)
        log = self.log
        if kernel or i + nr > len(t):
            for j in range(i, i + nr):
                old = t[j]
                t[j] = pte
                log.pte_write(addr, old, pte, "store", mm.name)
                if kernel:  # __set_pte(): pte_valid_not_user()
                    log.dsb("ishst")
                    log.isb()
                addr += ps
                pte += ps  # pte_advance_pfn(pte, 1): OA bits sit above PAGE_SHIFT
        elif nr == 1:
            old = t[i]
            t[i] = pte
            log.pte_write(addr, old, pte, "store", mm.name)
        else:
            # a user entry's __set_pte() has no barrier: the same stores and
            # events, a slice at a time
            new = array("Q", range(pte, pte + nr * ps, ps))
            olds = t[i:i + nr]
            t[i:i + nr] = new
            log.pte_writes(addr, olds, new, "store", mm.name)

    @variant("raw_set_ptes", since="set_ptes_single_barrier")
    @arch_call("__set_ptes")
    def raw_set_ptes_v6_16(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        """__set_ptes() from v6.16 (f89b399e8d6e "arm64/mm: hoist barriers out
        of set_ptes_anysz() loop", FEATURE_HISTORY set_ptes_single_barrier):
        __set_pte_nosync() on each entry, then __set_pte_complete() once on
        the last value -- one DSB ISHST; ISB for a valid kernel entry."""
        if nr < 1:
            raise ValueError("set_ptes() needs nr >= 1")  # (a caller's contract, not a kernel check)
        t, i = mm.pt.locate(addr)
        ps = self.page_size
        log = self.log
        if i + nr > len(t):
            for j in range(i, i + nr):
                old = t[j]
                t[j] = pte
                log.pte_write(addr, old, pte, "store", mm.name)
                addr += ps
                pte += ps  # pte_advance_pfn(pte, 1): OA bits sit above PAGE_SHIFT
        elif nr == 1:
            old = t[i]
            t[i] = pte
            log.pte_write(addr, old, pte, "store", mm.name)
        else:
            # the same stores and events, a slice at a time
            new = array("Q", range(pte, pte + nr * ps, ps))
            olds = t[i:i + nr]
            t[i:i + nr] = new
            log.pte_writes(addr, olds, new, "store", mm.name)
        if (pte & (PTE_VALID | PTE_USER | PTE_UXN)) == (PTE_VALID | PTE_UXN):
            log.dsb("ishst")  # __set_pte_complete()
            log.isb()

    def _clear_range(self, mm: MMStruct, addr: int, nr: int) -> array[int]:
        """nr xchg(ptep, 0), one event each; returns the old values."""
        t, i = mm.pt.locate(addr)
        if i + nr > len(t):
            raise ArchError(f"{nr} entries from {addr:#x} cross a page table")
        old = t[i:i + nr]
        t[i:i + nr] = array("Q", bytes(8 * nr))
        self.log.pte_writes(addr, old, repeat(0), "xchg", mm.name)
        return old

    @arch_call("__clear_full_ptes")
    def raw_clear_full_ptes(self, mm: MMStruct, addr: int, nr: int, full: int) -> None:
        if nr == 1:
            # one xchg (every order-0 PTE of a munmap): _clear_range()'s store and
            # event without its arrays
            t, i = mm.pt.locate(addr)
            old = t[i]
            t[i] = 0
            self.log.pte_write(addr, old, 0, "xchg", mm.name)
            return
        self._clear_range(mm, addr, nr)

    @arch_call("__get_and_clear_full_ptes")
    def raw_get_and_clear_full_ptes(self, mm: MMStruct, addr: int, nr: int, full: int) -> int:
        old = self._clear_range(mm, addr, nr)
        return gather_young_dirty(old[0], old, 1)

    @arch_call("__wrprotect_ptes")
    def raw_wrprotect_ptes(self, mm: MMStruct, addr: int, nr: int) -> None:
        # per entry: __ptep_get() seeds the cmpxchg loop of ___ptep_set_wrprotect(),
        # which succeeds at once (nothing else writes the table meanwhile)
        t, i = mm.pt.locate(addr)
        if i + nr > len(t):
            raise ArchError(f"{nr} entries from {addr:#x} cross a page table")
        old = t[i:i + nr]
        new = wrprotect_values(old)
        t[i:i + nr] = new
        self.log.pte_read_writes(addr, old, new, "cmpxchg", mm.name)

    @arch_call("__clear_young_dirty_ptes")
    def raw_clear_young_dirty_ptes(self, mm: MMStruct, addr: int, nr: int, flags: int) -> None:
        t, i = mm.pt.locate(addr)
        ps = self.page_size
        both = flags == (CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)
        for j in range(i, i + nr):
            pte = t[j]
            self.log.pte_read(addr, pte, mm.name)
            if both:
                # A plain store: a racing hardware AF/dirty update may be lost,
                # which MADV_FREE tolerates.
                self.raw_set_pte(mm, addr, pte_mkclean(pte_mkold(pte)))
            else:
                while True:
                    old = pte
                    if flags & CYDP_CLEAR_YOUNG:
                        pte = pte_mkold(pte)
                    if flags & CYDP_CLEAR_DIRTY:
                        pte = pte_mkclean(pte)
                    pte = self._cmpxchg(mm, t, j, addr, old, pte)
                    if pte == old:
                        break
            addr += ps

    # --- fault.c ------------------------------------------------------------------------
    def _merge_access_flags(self, mm: MMStruct, addr: int, entry: int) -> bool:
        """The body both versions of __ptep_set_access_flags() share: read the entry,
        stop if it already is entry (False), else cmpxchg in entry's access flags and
        write permission (True)."""
        t, i = mm.pt.locate(addr)
        pte = t[i]
        self.log.pte_read(addr, pte, mm.name)
        if pte == entry:
            return False
        # Only the access flags and write permission are taken from entry, and
        # PTE_RDONLY becomes the more permissive (lower) of the two.
        keep = (entry & (PTE_RDONLY | PTE_AF | PTE_WRITE | PTE_DIRTY)) ^ PTE_RDONLY
        while True:
            old = pte
            new = ((old ^ PTE_RDONLY) | keep) ^ PTE_RDONLY
            pte = self._cmpxchg(mm, t, i, addr, old, new)
            if pte == old:
                return True

    @variant("raw_ptep_set_access_flags")
    @arch_call("__ptep_set_access_flags")
    def raw_ptep_set_access_flags_v6_9(self, mm: MMStruct, addr: int, entry: int,
                                       dirty: int) -> int:
        """__ptep_set_access_flags() of arch/arm64/mm/fault.c up to v6.18: the
        stale read-only entry is invalidated with a broadcast flush_tlb_page()."""
        if not self._merge_access_flags(mm, addr, entry):
            return 0
        if dirty:
            self.flush_tlb_page(mm, addr, sync=True)
        return 1

    @variant("raw_ptep_set_access_flags", since="local_access_flush")
    @arch_call("__ptep_set_access_flags")
    def raw_ptep_set_access_flags_v6_19(self, mm: MMStruct, addr: int, entry: int,
                                        dirty: int) -> int:
        """__ptep_set_access_flags() from v6.19 (cb1fa2e99955, FEATURE_HISTORY
        local_access_flush): local_flush_tlb_page(), this CPU only; a remote
        CPU still holding the read-only entry takes a spurious fault
        (flush_tlb_fix_spurious_fault())."""
        if not self._merge_access_flags(mm, addr, entry):
            return 0
        if dirty:
            self.flush_tlb_page(mm, addr, sync=True, broadcast=False)
        return 1

    # --- pmdp_set_access_flags() (pgtable.h, CONFIG_TRANSPARENT_HUGEPAGE) -----------------
    # arm64 defines it as __ptep_set_access_flags() on the PMD cast to a pte_t *,
    # so it changes with that function (cb1fa2e99955, local_access_flush). ptlab
    # keeps PMD leaves out of the PTE tables (mm.pt.pmd_leaves) and writes the
    # new PMD as one cmpxchg event, so the two versions are written for those.
    def _write_pmd_if_changed(self, mm: MMStruct, haddr: int, entry: int) -> bool:
        """The PMD takes entry unless it already is entry (one cmpxchg event)."""
        leaves = mm.pt.pmd_leaves
        key = haddr >> self.g.pmd_shift
        old = leaves.get(key, 0)
        if old == entry:
            return False
        leaves[key] = entry
        self.log.pmd_write(haddr, old, entry, "cmpxchg", mm.name)
        return True

    @variant("pmdp_set_access_flags")
    def pmdp_set_access_flags_v6_9(self, mm: MMStruct, haddr: int, entry: int,
                                   dirty: bool) -> bool:
        """pmdp_set_access_flags() up to v6.18: the PMD takes entry if it
        differs, and a dirtying change is flushed with a broadcast
        flush_tlb_page(), as raw_ptep_set_access_flags_v6_9 flushes a PTE."""
        if not self._write_pmd_if_changed(mm, haddr, entry):
            return False
        if dirty:
            self.flush_tlb_page(mm, haddr, sync=True)
        return True

    @variant("pmdp_set_access_flags", since="local_access_flush")
    def pmdp_set_access_flags_v6_19(self, mm: MMStruct, haddr: int, entry: int,
                                    dirty: bool) -> bool:
        """pmdp_set_access_flags() from v6.19 (cb1fa2e99955, FEATURE_HISTORY
        local_access_flush): __ptep_set_access_flags() flushes with
        local_flush_tlb_page(), this CPU only (raw_ptep_set_access_flags_v6_19)."""
        if not self._write_pmd_if_changed(mm, haddr, entry):
            return False
        if dirty:
            self.flush_tlb_page(mm, haddr, sync=True, broadcast=False)
        return True
