# SPDX-License-Identifier: GPL-2.0-only
"""Every function of arch/arm64/mm/contpte.c, for every kernel profile.

Version differences (see engine.arch.profiles.FEATURE_HISTORY):
* contpte_convert skips its TLB flush on BBML2_NOABORT CPUs from v6.17;
* contpte_ptep_get[_lockless] exit early once young and dirty are known (v6.17);
* the young helpers cover a whole batch (``*_young_ptes``) from v7.0;
* contpte_ptep_set_access_flags tests raw sub-entries (v7.0, the 2026 SMMU fix)
  and flushes locally from v6.19.
"""

from __future__ import annotations

from engine.arch.base import ArchError, arch_call
from engine.arch.raw import RawHelpers, gather_young_dirty
from engine.pte import (
    PTE_AF,
    PTE_CONT,
    PTE_DIRTY,
    PTE_RDONLY,
    PTE_SPECIAL,
    PTE_VALID,
    PTE_WRITE,
    pte_mkdirty,
)
from engine.state.mmstruct import MMStruct

_VALID_CONT = PTE_VALID | PTE_CONT
# pte_mkold(pte_mkclean(x)) keeps everything but AF and DIRTY, and forces RDONLY.
_CLEAN_OLD_CLEAR = PTE_AF | PTE_DIRTY
_ACCESS_FLAGS = PTE_RDONLY | PTE_AF | PTE_WRITE | PTE_DIRTY


def _dirty(pte: int) -> bool:
    return bool(pte & PTE_DIRTY) or (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE


class Contpte(RawHelpers):
    # --- helpers ----------------------------------------------------------------------
    def contpte_align_addr_ptep(self, mm: MMStruct, start: int, end: int, nr: int) -> tuple[int, int]:
        """contpte_align_addr_ptep(): widen [start, end) to the blocks at its edges."""
        ps = self.page_size
        if self.raw_ptep_get(mm, start + (nr - 1) * ps) & PTE_CONT:
            end = (end + self.cont_size - 1) & self.cont_mask
        if self.raw_ptep_get(mm, start) & PTE_CONT:
            start &= self.cont_mask
        return start, end

    # static inline in pgtable.h, but Debian's GCC builds it out of line (v6.12 and
    # v7.0 list it in available_filter_functions): recorded, so the crosscheck can
    # compare it; engine.costs does not count it as a call
    @arch_call("contpte_try_unfold_partial")
    def contpte_try_unfold_partial(self, mm: MMStruct, addr: int, nr: int) -> None:
        n = self.cont_ptes
        idx = (addr >> self.page_shift) & (n - 1)
        if idx or nr < n:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
        if (idx + nr) & (n - 1):
            last = addr + (nr - 1) * self.page_size
            self.contpte_try_unfold(mm, last, self.raw_ptep_get(mm, last))

    # --- the repaint ------------------------------------------------------------------
    @arch_call("contpte_convert")
    def contpte_convert(self, mm: MMStruct, addr: int, pte: int) -> None:
        n = self.cont_ptes
        ps = self.page_size
        start_addr = addr & self.cont_mask
        # re-base the template on the block's first pfn
        pfn = self.pte_pfn(pte) & ~(n - 1)
        pte = self.pfn_pte(pfn, self.pte_pgprot(pte))
        to_cont = bool(pte & PTE_CONT)
        log = self.log
        log.convert(start_addr, to_cont)
        pte = gather_young_dirty(pte, self._clear_range(mm, start_addr, n), 0)
        a = start_addr + n * ps
        if not (self.profile.bbml2_elision and self.cpu.bbml2_noabort):
            self.flush_tlb_range(mm, start_addr, a, ps, True, 3)
        self.raw_set_ptes(mm, start_addr, pte, n)
        if to_cont:
            log.fold(start_addr)
        else:
            log.unfold(start_addr)

    @arch_call("__contpte_try_fold")
    def contpte_try_fold_slow(self, mm: MMStruct, addr: int, pte: int) -> None:
        """__contpte_try_fold(): fold if one folio covers the block and all N
        entries match, ignoring access and dirty state."""
        if not mm.is_user:
            return
        ps = self.page_size
        n = self.cont_ptes
        pfn = self.pte_pfn(pte)
        head, nr_pages = self.folios.folio_of(pfn)
        folio_start = addr - (pfn - head) * ps
        folio_end = folio_start + nr_pages * ps
        cont_start = addr & self.cont_mask
        if folio_start > cont_start or folio_end < cont_start + self.cont_size:
            return
        prot = self.pte_pgprot((pte & ~_CLEAN_OLD_CLEAR) | PTE_RDONLY)
        expected = self.pfn_pte(pfn & ~(n - 1), prot)
        t, i0 = mm.pt.locate(cont_start)
        log = self.log
        a = cont_start
        for j in range(i0, i0 + n):
            sub = t[j]
            log.pte_read(a, sub, mm.name)
            if ((sub & ~_CLEAN_OLD_CLEAR) | PTE_RDONLY) != expected:
                return
            expected += ps
            a += ps
        self.contpte_convert(mm, addr, pte | PTE_CONT)

    @arch_call("__contpte_try_unfold")
    def contpte_try_unfold_slow(self, mm: MMStruct, addr: int, pte: int) -> None:
        if not mm.is_user:
            return
        self.contpte_convert(mm, addr, pte & ~PTE_CONT)

    # inline wrappers from pgtable.h
    def contpte_try_fold(self, mm: MMStruct, addr: int, pte: int) -> None:
        policy = self.fold_policy
        if policy is not None:
            if policy.should_try_fold(self, mm, addr, pte):
                self.contpte_try_fold_slow(mm, addr, pte)
            return
        if not self.profile.auto_fold:
            return
        mask = self.cont_ptes - 1
        if ((addr >> self.page_shift) & mask) == mask:
            if ((self.pte_pfn(pte) & mask) == mask and pte & PTE_VALID
                    and not pte & (PTE_CONT | PTE_SPECIAL)):
                self.contpte_try_fold_slow(mm, addr, pte)

    def contpte_try_unfold(self, mm: MMStruct, addr: int, pte: int) -> None:
        if (pte & _VALID_CONT) == _VALID_CONT:
            self.contpte_try_unfold_slow(mm, addr, pte)

    # --- getters ----------------------------------------------------------------------
    @arch_call("contpte_ptep_get")
    def contpte_ptep_get(self, mm: MMStruct, addr: int, orig_pte: int) -> int:
        start = addr & self.cont_mask
        t, i0 = mm.pt.locate(start)
        log = self.log
        ps = self.page_size
        n = self.cont_ptes
        if not self.profile.get_early_exit:
            vals = t[i0:i0 + n]
            log.pte_reads(start, vals, mm.name)
            return gather_young_dirty(orig_pte, vals, 0)
        # v6.17+: once one of young/dirty is found, scan only for the other.
        j = i0
        end = i0 + n
        while j < end:
            pte = t[j]
            log.pte_read(start + (j - i0) * ps, pte, mm.name)
            if _dirty(pte):
                orig_pte = pte_mkdirty(orig_pte)
                while j < end:
                    pte = t[j]
                    log.pte_read(start + (j - i0) * ps, pte, mm.name)
                    if pte & PTE_AF:
                        orig_pte |= PTE_AF
                        break
                    j += 1
                break
            if pte & PTE_AF:
                orig_pte |= PTE_AF
                j += 1
                while j < end:
                    pte = t[j]
                    log.pte_read(start + (j - i0) * ps, pte, mm.name)
                    if _dirty(pte):
                        orig_pte = pte_mkdirty(orig_pte)
                        break
                    j += 1
                break
            j += 1
        return orig_pte

    def _consistent(self, pte: int, pfn: int, orig_prot: int) -> bool:
        return ((pte & _VALID_CONT) == _VALID_CONT and self.pte_pfn(pte) == pfn
                and self.pte_pgprot((pte & ~_CLEAN_OLD_CLEAR) | PTE_RDONLY) == orig_prot)

    # Without a concurrent writer an inconsistent block never becomes consistent;
    # the kernel would spin forever, the simulator reports it instead.
    LOCKLESS_MAX_RETRIES = 64

    @arch_call("contpte_ptep_get_lockless")
    def contpte_ptep_get_lockless(self, mm: MMStruct, addr: int) -> int:
        ps = self.page_size
        n = self.cont_ptes
        for _attempt in range(self.LOCKLESS_MAX_RETRIES):
            orig = self._lockless_read(mm, addr)
            if (orig & _VALID_CONT) != _VALID_CONT:
                return orig
            orig_prot = self.pte_pgprot((orig & ~_CLEAN_OLD_CLEAR) | PTE_RDONLY)
            start = addr & self.cont_mask
            idx = (addr - start) >> self.page_shift
            pfn0 = self.pte_pfn(orig) - idx
            result = self._lockless_scan(mm, start, pfn0, orig_prot, orig, n, ps)
            if result is not None:
                return result
            self.log.warn(f"ptep_get_lockless: block at {start:#x} inconsistent, retrying")
        raise ArchError(f"ptep_get_lockless({addr:#x}) would retry forever: the contiguous block "
                        "is inconsistent and nothing is changing it")

    def _lockless_read(self, mm: MMStruct, addr: int) -> int:
        if self.lockless_hook is not None:
            self.lockless_hook()
        return self.raw_ptep_get(mm, addr)

    def _lockless_scan(self, mm: MMStruct, start: int, pfn: int, orig_prot: int, orig: int,
                       n: int, ps: int) -> int | None:
        early = self.profile.get_early_exit
        i = 0
        if not early:
            while i < n:
                pte = self._lockless_read(mm, start + i * ps)
                if not self._consistent(pte, pfn + i, orig_prot):
                    return None
                if _dirty(pte):
                    orig = pte_mkdirty(orig)
                if pte & PTE_AF:
                    orig |= PTE_AF
                i += 1
            return orig
        while i < n:
            pte = self._lockless_read(mm, start + i * ps)
            if not self._consistent(pte, pfn + i, orig_prot):
                return None
            if _dirty(pte):
                orig = pte_mkdirty(orig)
                while i < n:
                    pte = self._lockless_read(mm, start + i * ps)
                    if not self._consistent(pte, pfn + i, orig_prot):
                        return None
                    if pte & PTE_AF:
                        orig |= PTE_AF
                        break
                    i += 1
                return orig
            if pte & PTE_AF:
                orig |= PTE_AF
                i += 1
                while i < n:
                    pte = self._lockless_read(mm, start + i * ps)
                    if not self._consistent(pte, pfn + i, orig_prot):
                        return None
                    if _dirty(pte):
                        orig = pte_mkdirty(orig)
                        break
                    i += 1
                return orig
            i += 1
        return orig

    # --- setters and clearers ---------------------------------------------------------
    @arch_call("contpte_set_ptes")
    def contpte_set_ptes(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        if nr == 1:
            self.log.warn("contpte_set_ptes called with nr == 1")
        if not mm.is_user:
            self.raw_set_ptes(mm, addr, pte, nr)
            return
        ps = self.page_size
        end = addr + nr * ps
        pfn = self.pte_pfn(pte)
        prot = self.pte_pgprot(pte)
        mask = self.cont_mask
        size = self.cont_size
        low = size - 1
        while True:
            b = (addr + size) & mask
            nxt = b if (b - 1) < (end - 1) else end  # pte_cont_addr_end()
            cnt = (nxt - addr) >> self.page_shift
            v = self.pfn_pte(pfn, prot)
            if ((addr | nxt | (pfn << self.page_shift)) & low) == 0:
                v |= PTE_CONT
            else:
                v &= ~PTE_CONT
            self.raw_set_ptes(mm, addr, v, cnt)
            addr = nxt
            pfn += cnt
            if addr == end:
                break

    @arch_call("contpte_clear_full_ptes")
    def contpte_clear_full_ptes(self, mm: MMStruct, addr: int, nr: int, full: int) -> None:
        self.contpte_try_unfold_partial(mm, addr, nr)
        self.raw_clear_full_ptes(mm, addr, nr, full)

    @arch_call("contpte_get_and_clear_full_ptes")
    def contpte_get_and_clear_full_ptes(self, mm: MMStruct, addr: int, nr: int, full: int) -> int:
        self.contpte_try_unfold_partial(mm, addr, nr)
        return self.raw_get_and_clear_full_ptes(mm, addr, nr, full)

    # --- access flag harvesting -------------------------------------------------------
    @arch_call("contpte_ptep_test_and_clear_young")
    def contpte_ptep_test_and_clear_young(self, mm: MMStruct, addr: int) -> bool:
        """v6.9 .. v6.19: the whole block containing addr."""
        a = addr & self.cont_mask
        young = False
        for _ in range(self.cont_ptes):
            young |= self.raw_ptep_test_and_clear_young(mm, a)
            a += self.page_size
        return young

    @arch_call("contpte_ptep_clear_flush_young")
    def contpte_ptep_clear_flush_young(self, mm: MMStruct, addr: int) -> bool:
        young = self.contpte_ptep_test_and_clear_young(mm, addr)
        if young:
            start = addr & self.cont_mask
            self.flush_tlb_range(mm, start, start + self.cont_size, self.page_size, True, 3,
                                 sync=False)
        return young

    @arch_call("contpte_test_and_clear_young_ptes")
    def contpte_test_and_clear_young_ptes(self, mm: MMStruct, addr: int, nr: int) -> bool:
        """v7.0: [addr, addr + nr pages) widened to the blocks at its edges."""
        start, end = self.contpte_align_addr_ptep(mm, addr, addr + nr * self.page_size, nr)
        young = False
        a = start
        while a != end:
            young |= self.raw_ptep_test_and_clear_young(mm, a)
            a += self.page_size
        return young

    @arch_call("contpte_clear_flush_young_ptes")
    def contpte_clear_flush_young_ptes(self, mm: MMStruct, addr: int, nr: int) -> bool:
        young = self.contpte_test_and_clear_young_ptes(mm, addr, nr)
        if young:
            start, end = self.contpte_align_addr_ptep(mm, addr, addr + nr * self.page_size, nr)
            self.flush_tlb_range(mm, start, end, self.page_size, True, 3, sync=False)
        return young

    @arch_call("contpte_wrprotect_ptes")
    def contpte_wrprotect_ptes(self, mm: MMStruct, addr: int, nr: int) -> None:
        # Whole blocks are write-protected in place (the caller's mmu_gather
        # flush makes it stick); a partially covered block must unfold, or its
        # members would disagree on permissions even after the flush.
        self.contpte_try_unfold_partial(mm, addr, nr)
        self.raw_wrprotect_ptes(mm, addr, nr)

    @arch_call("contpte_clear_young_dirty_ptes")
    def contpte_clear_young_dirty_ptes(self, mm: MMStruct, addr: int, nr: int, flags: int) -> None:
        start, end = self.contpte_align_addr_ptep(mm, addr, addr + nr * self.page_size, nr)
        self.raw_clear_young_dirty_ptes(mm, start, (end - start) // self.page_size, flags)

    # --- access flags -----------------------------------------------------------------
    @arch_call("contpte_ptep_set_access_flags")
    def contpte_ptep_set_access_flags(self, mm: MMStruct, addr: int, entry: int, dirty: int) -> int:
        ps = self.page_size
        if self.profile.raw_access_flags_check:
            # 2026 fix: compare every raw sub-entry, not the gathered view, so a
            # per-descriptor walker (no DBM, SMMU without HTTU) cannot loop.
            want = entry & _ACCESS_FLAGS
            a = addr & self.cont_mask
            for _ in range(self.cont_ptes):
                if self.raw_ptep_get(mm, a) & _ACCESS_FLAGS != want:
                    break
                a += ps
            else:
                return 0
            orig = self.raw_ptep_get(mm, addr) & ~PTE_CONT
        else:
            orig = self.contpte_ptep_get(mm, addr, self.raw_ptep_get(mm, addr)) & ~PTE_CONT
            if orig == entry:
                return 0
        if bool(orig & PTE_WRITE) == bool(entry & PTE_WRITE):
            # Only access/dirty change: update every entry (software access
            # management needs all of them) and flush the block once.
            start = addr & self.cont_mask
            a = start
            for _ in range(self.cont_ptes):
                self.raw_ptep_set_access_flags(mm, a, entry, 0)
                a += ps
            if dirty:
                if self.profile.local_access_flush:
                    self.flush_tlb_range(mm, start, start + self.cont_size, ps, True, 3,
                                         sync=True, broadcast=False)
                else:
                    self.flush_tlb_range(mm, start, start + self.cont_size, ps, True, 3)
        else:
            self.contpte_try_unfold_slow(mm, addr, orig)
            self.raw_ptep_set_access_flags(mm, addr, entry, dirty)
        return 1
