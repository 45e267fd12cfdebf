# SPDX-License-Identifier: GPL-2.0-only
"""arch/arm64/mm/contpte.c, function by function.

Each function has the kernel's name (``__contpte_try_fold`` is
``contpte_try_fold_slow``: Python mangles leading double underscores in a
class). Where a function changed between releases there is one Python
function per version, named after the release it first appeared in and
tagged with its FEATURE_HISTORY row (engine.arch.variants); engine.arch.layer
installs the profile's version under the kernel name when an Arch is made.
So ``type(arch).contpte_ptep_get`` is the one version the profile runs, and
``contpte_ptep_get_v6_9`` can be read beside v6.9's contpte.c.

Versions (FEATURE_HISTORY):
* contpte_convert: v6.9; v6.17 skips the flush on BBML2_NOABORT CPUs (83bbd6be7d17);
* contpte_ptep_get[_lockless]: v6.9; v6.17 stops once young and dirty are known (093ae7a033cf);
* contpte_set_ptes: v6.9; v7.3 writes an invalid entry with __set_ptes(), no PTE_CONT
  (set_ptes_valid_only, commit not identified: Debian's 7.3.4 build);
* young: contpte_ptep_{test_and_clear,clear_flush}_young (v6.9 .. v6.19) became
  contpte_{test_and_clear,clear_flush}_young_ptes (v7.0, batched_young);
* contpte_ptep_set_access_flags: v6.9; v6.19 flushes locally (cb1fa2e99955);
  v7.0 tests raw sub-entries (97c5550b7631).

Kernel pointers become addresses: ``ptep`` is the entry that maps ``addr``,
so contpte_align_down(ptep) is ``contpte_align_down(addr)``.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.arch.base import ArchError, arch_call
from engine.arch.ptlab_fast import gather_young_dirty
from engine.arch.ptlab_race import LocklessSeam
from engine.arch.variants import variant
from engine.pte import (
    PTE_AF,
    PTE_CONT,
    PTE_DIRTY,
    PTE_RDONLY,
    PTE_VALID,
    PTE_WRITE,
    pte_dirty,
    pte_mkdirty,
)
from engine.state.mmstruct import MMStruct

_VALID_CONT = PTE_VALID | PTE_CONT
# pte_mkold(pte_mkclean(x)) keeps everything but AF and DIRTY, and forces RDONLY.
_CLEAN_OLD_CLEAR = PTE_AF | PTE_DIRTY
_ACCESS_FLAGS = PTE_RDONLY | PTE_AF | PTE_WRITE | PTE_DIRTY


class Contpte(LocklessSeam):
    # The kernel names engine.arch.layer fills in with the profile's version
    # (declared here so callers type-check; absent where the profile lacks them).
    contpte_convert: Callable[[MMStruct, int, int], None]
    contpte_ptep_get: Callable[[MMStruct, int, int], int]
    contpte_ptep_get_lockless: Callable[[MMStruct, int], int]
    contpte_set_ptes: Callable[[MMStruct, int, int, int], None]
    contpte_ptep_test_and_clear_young: Callable[[MMStruct, int], bool]
    contpte_ptep_clear_flush_young: Callable[[MMStruct, int], bool]
    contpte_test_and_clear_young_ptes: Callable[[MMStruct, int, int], bool]
    contpte_clear_flush_young_ptes: Callable[[MMStruct, int, int], bool]
    contpte_ptep_set_access_flags: Callable[[MMStruct, int, int, int], int]

    # --- static helpers -----------------------------------------------------------------
    def contpte_align_down(self, addr: int) -> int:
        """contpte_align_down(): the first entry of addr's block."""
        return addr & self.cont_mask

    def contpte_align_addr_ptep(self, mm: MMStruct, start: int, end: int, nr: int) -> tuple[int, int]:
        """contpte_align_addr_ptep(): widen [start, end) to the blocks at its edges."""
        ps = self.page_size
        if self.raw_ptep_get(mm, start + (nr - 1) * ps) & PTE_CONT:
            end = (end + self.cont_size - 1) & self.cont_mask
        if self.raw_ptep_get(mm, start) & PTE_CONT:
            start = self.contpte_align_down(start)
        return start, end

    # static (linux-mm's contpte.c; older trees had it static inline in
    # pgtable.h), but Debian's GCC builds it out of line (v6.12 and v7.0 list
    # it in available_filter_functions): recorded, so the crosscheck can
    # compare it; engine.cycles does not count it as a call
    @arch_call("contpte_try_unfold_partial")
    def contpte_try_unfold_partial(self, mm: MMStruct, addr: int, nr: int) -> None:
        n = self.cont_ptes
        idx = (addr >> self.page_shift) & (n - 1)
        if idx or nr < n:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
        if (idx + nr) & (n - 1):
            last = addr + (nr - 1) * self.page_size
            self.contpte_try_unfold(mm, last, self.raw_ptep_get(mm, last))

    def contpte_try_unfold(self, mm: MMStruct, addr: int, pte: int) -> None:
        """contpte_try_unfold() of pgtable.h (an __always_inline wrapper)."""
        if (pte & _VALID_CONT) == _VALID_CONT:
            self.contpte_try_unfold_slow(mm, addr, pte)

    # --- the repaint ------------------------------------------------------------------
    def _convert_clear(self, mm: MMStruct, addr: int, pte: int) -> tuple[int, int, int]:
        """The common head of contpte_convert(): re-base the template on the
        block's first pfn, then __ptep_get_and_clear() every entry, gathering
        young and dirty (ptlab_fast.gather_young_dirty stands for that loop).
        Returns (start_addr, end addr, the new value)."""
        n = self.cont_ptes
        start_addr = self.contpte_align_down(addr)
        pfn = self.pte_pfn(pte) & ~(n - 1)
        pte = self.pfn_pte(pfn, self.pte_pgprot(pte))
        self.log.convert(start_addr, bool(pte & PTE_CONT))
        pte = gather_young_dirty(pte, self._clear_range(mm, start_addr, n), 0)
        return start_addr, start_addr + n * self.page_size, pte

    def _convert_set(self, mm: MMStruct, start_addr: int, pte: int) -> None:
        """The common tail: __set_ptes() repaints the block."""
        self.raw_set_ptes(mm, start_addr, pte, self.cont_ptes)
        if pte & PTE_CONT:
            self.log.fold(start_addr)
        else:
            self.log.unfold(start_addr)

    @variant("contpte_convert")
    @arch_call("contpte_convert")
    def contpte_convert_v6_9(self, mm: MMStruct, addr: int, pte: int) -> None:
        start_addr, end, pte = self._convert_clear(mm, addr, pte)
        self.flush_tlb_range(mm, start_addr, end, self.page_size, True, 3)
        self._convert_set(mm, start_addr, pte)

    @variant("contpte_convert", since="bbml2_elision")
    @arch_call("contpte_convert")
    def contpte_convert_v6_17(self, mm: MMStruct, addr: int, pte: int) -> None:
        start_addr, end, pte = self._convert_clear(mm, addr, pte)
        if not self.cpu.bbml2_noabort:  # system_supports_bbml2_noabort()
            self.flush_tlb_range(mm, start_addr, end, self.page_size, True, 3)
        self._convert_set(mm, start_addr, pte)

    @arch_call("__contpte_try_fold")
    def contpte_try_fold_slow(self, mm: MMStruct, addr: int, pte: int) -> None:
        """__contpte_try_fold(): fold if one folio covers the block and all N
        entries match, ignoring access and dirty state."""
        if not mm.is_user:  # mm_is_user()
            return
        ps = self.page_size
        n = self.cont_ptes
        pfn = self.pte_pfn(pte)
        head, nr_pages = self.folios.folio_of(pfn)
        folio_start = addr - (pfn - head) * ps
        folio_end = folio_start + nr_pages * ps
        cont_start = self.contpte_align_down(addr)
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
            expected += ps  # pte_advance_pfn(expected_pte, 1)
            a += ps
        self.contpte_convert(mm, addr, pte | PTE_CONT)

    @arch_call("__contpte_try_unfold")
    def contpte_try_unfold_slow(self, mm: MMStruct, addr: int, pte: int) -> None:
        if not mm.is_user:
            return
        self.contpte_convert(mm, addr, pte & ~PTE_CONT)

    # --- getters ----------------------------------------------------------------------
    @variant("contpte_ptep_get")
    @arch_call("contpte_ptep_get")
    def contpte_ptep_get_v6_9(self, mm: MMStruct, addr: int, orig_pte: int) -> int:
        """Gathers every entry of the block (a slice read: the loop's events, one per entry)."""
        start = self.contpte_align_down(addr)
        t, i0 = mm.pt.locate(start)
        vals = t[i0:i0 + self.cont_ptes]
        self.log.pte_reads(start, vals, mm.name)
        return gather_young_dirty(orig_pte, vals, 0)

    @variant("contpte_ptep_get", since="get_early_exit")
    @arch_call("contpte_ptep_get")
    def contpte_ptep_get_v6_17(self, mm: MMStruct, addr: int, orig_pte: int) -> int:
        """Once one of young/dirty is found, scans only for the other."""
        start = self.contpte_align_down(addr)
        t, i0 = mm.pt.locate(start)
        log = self.log
        ps = self.page_size
        j = i0
        end = i0 + self.cont_ptes
        while j < end:
            pte = t[j]
            log.pte_read(start + (j - i0) * ps, pte, mm.name)
            if pte_dirty(pte):
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
                    if pte_dirty(pte):
                        orig_pte = pte_mkdirty(orig_pte)
                        break
                    j += 1
                break
            j += 1
        return orig_pte

    def contpte_is_consistent(self, pte: int, pfn: int, orig_prot: int) -> bool:
        return ((pte & _VALID_CONT) == _VALID_CONT and self.pte_pfn(pte) == pfn
                and self.pte_pgprot((pte & ~_CLEAN_OLD_CLEAR) | PTE_RDONLY) == orig_prot)

    # Without a concurrent writer an inconsistent block never becomes consistent;
    # the kernel would spin forever, ptlab reports it instead.
    LOCKLESS_MAX_RETRIES = 64

    def _lockless_retry(self, mm: MMStruct, addr: int,
                        scan: Callable[[MMStruct, int, int, int, int], int | None]) -> int:
        """The ``retry:`` head of contpte_ptep_get_lockless(), shared by its
        versions; ``scan`` is the version's loop over the block, returning
        None where the kernel does ``goto retry``."""
        for _attempt in range(self.LOCKLESS_MAX_RETRIES):
            orig = self.lockless_ptep_get(mm, addr)
            if (orig & _VALID_CONT) != _VALID_CONT:
                return orig
            orig_prot = self.pte_pgprot((orig & ~_CLEAN_OLD_CLEAR) | PTE_RDONLY)
            start = self.contpte_align_down(addr)
            pfn = self.pte_pfn(orig) - ((addr - start) >> self.page_shift)
            result = scan(mm, start, pfn, orig_prot, orig)
            if result is not None:
                return result
            self.log.warn(f"ptep_get_lockless: block at {start:#x} inconsistent, retrying")
        raise ArchError(f"ptep_get_lockless({addr:#x}) would retry forever: the contiguous block "
                        "is inconsistent and nothing is changing it")

    @variant("contpte_ptep_get_lockless")
    @arch_call("contpte_ptep_get_lockless")
    def contpte_ptep_get_lockless_v6_9(self, mm: MMStruct, addr: int) -> int:
        return self._lockless_retry(mm, addr, self._lockless_scan_v6_9)

    def _lockless_scan_v6_9(self, mm: MMStruct, start: int, pfn: int, orig_prot: int,
                            orig: int) -> int | None:
        ps = self.page_size
        for i in range(self.cont_ptes):
            pte = self.lockless_ptep_get(mm, start + i * ps)
            if not self.contpte_is_consistent(pte, pfn + i, orig_prot):
                return None  # goto retry
            if pte_dirty(pte):
                orig = pte_mkdirty(orig)
            if pte & PTE_AF:
                orig |= PTE_AF
        return orig

    @variant("contpte_ptep_get_lockless", since="get_early_exit")
    @arch_call("contpte_ptep_get_lockless")
    def contpte_ptep_get_lockless_v6_17(self, mm: MMStruct, addr: int) -> int:
        return self._lockless_retry(mm, addr, self._lockless_scan_v6_17)

    def _lockless_scan_v6_17(self, mm: MMStruct, start: int, pfn: int, orig_prot: int,
                             orig: int) -> int | None:
        n = self.cont_ptes
        ps = self.page_size
        i = 0
        while i < n:
            pte = self.lockless_ptep_get(mm, start + i * ps)
            if not self.contpte_is_consistent(pte, pfn + i, orig_prot):
                return None
            if pte_dirty(pte):
                orig = pte_mkdirty(orig)
                while i < n:
                    pte = self.lockless_ptep_get(mm, start + i * ps)
                    if not self.contpte_is_consistent(pte, pfn + i, orig_prot):
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
                    pte = self.lockless_ptep_get(mm, start + i * ps)
                    if not self.contpte_is_consistent(pte, pfn + i, orig_prot):
                        return None
                    if pte_dirty(pte):
                        orig = pte_mkdirty(orig)
                        break
                    i += 1
                return orig
            i += 1
        return orig

    # --- setters and clearers ---------------------------------------------------------
    @variant("contpte_set_ptes")
    @arch_call("contpte_set_ptes")
    def contpte_set_ptes_v6_9(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        if nr == 1:
            self.log.warn("contpte_set_ptes called with nr == 1")  # VM_WARN_ON(nr == 1)
        if not mm.is_user:
            self.raw_set_ptes(mm, addr, pte, nr)
            return
        self._contpte_set_blocks(mm, addr, pte, nr)

    @variant("contpte_set_ptes", since="set_ptes_valid_only")
    @arch_call("contpte_set_ptes")
    def contpte_set_ptes_v7_3(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        """Debian's 7.3.4 build (its disassembly): 'if (!mm_is_user(mm) || !pte_valid(pte))
        return __set_ptes(...)' -- an invalid entry (PROT_NONE, present but not valid) is
        written as given, without PTE_CONT, like a kernel mapping."""
        if nr == 1:
            self.log.warn("contpte_set_ptes called with nr == 1")  # VM_WARN_ON(nr == 1)
        if not mm.is_user or not pte & PTE_VALID:
            self.raw_set_ptes(mm, addr, pte, nr)
            return
        self._contpte_set_blocks(mm, addr, pte, nr)

    def _contpte_set_blocks(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        """contpte_set_ptes()'s loop: each aligned block that the range covers whole
        (virtually and physically) gets PTE_CONT, the partial ends do not."""
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
    @variant("contpte_ptep_test_and_clear_young", until="batched_young")
    @arch_call("contpte_ptep_test_and_clear_young")
    def contpte_ptep_test_and_clear_young_v6_9(self, mm: MMStruct, addr: int) -> bool:
        """v6.9 .. v6.19: the whole block containing addr."""
        a = self.contpte_align_down(addr)
        young = False
        for _ in range(self.cont_ptes):
            young |= self.raw_ptep_test_and_clear_young(mm, a)
            a += self.page_size
        return young

    @variant("contpte_ptep_clear_flush_young", until="batched_young")
    @arch_call("contpte_ptep_clear_flush_young")
    def contpte_ptep_clear_flush_young_v6_9(self, mm: MMStruct, addr: int) -> bool:
        young = self.contpte_ptep_test_and_clear_young(mm, addr)
        if young:
            start = self.contpte_align_down(addr)
            # __flush_tlb_range_nosync(): see __ptep_clear_flush_young()
            self.flush_tlb_range(mm, start, start + self.cont_size, self.page_size, True, 3,
                                 sync=False)
        return young

    @variant("contpte_test_and_clear_young_ptes", since="batched_young")
    @arch_call("contpte_test_and_clear_young_ptes")
    def contpte_test_and_clear_young_ptes_v7_0(self, mm: MMStruct, addr: int, nr: int) -> bool:
        """v7.0: [addr, addr + nr pages) widened to the blocks at its edges."""
        start, end = self.contpte_align_addr_ptep(mm, addr, addr + nr * self.page_size, nr)
        young = False
        a = start
        while a != end:
            young |= self.raw_ptep_test_and_clear_young(mm, a)
            a += self.page_size
        return young

    @variant("contpte_clear_flush_young_ptes", since="batched_young")
    @arch_call("contpte_clear_flush_young_ptes")
    def contpte_clear_flush_young_ptes_v7_0(self, mm: MMStruct, addr: int, nr: int) -> bool:
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
    def contpte_all_subptes_match_access_flags(self, mm: MMStruct, addr: int, entry: int) -> bool:
        """v7.0 (97c5550b7631): every raw sub-entry already has entry's
        access flags and write permission (the bits __ptep_set_access_flags() consumes)."""
        want = entry & _ACCESS_FLAGS
        a = self.contpte_align_down(addr)
        for _ in range(self.cont_ptes):
            if self.raw_ptep_get(mm, a) & _ACCESS_FLAGS != want:
                return False
            a += self.page_size
        return True

    def _set_access_flags_block(self, mm: MMStruct, addr: int, entry: int) -> int:
        """The loop every version shares: __ptep_set_access_flags() on each
        entry of the block, no per-page flush. Returns the block's start."""
        start_addr = a = self.contpte_align_down(addr)
        for _ in range(self.cont_ptes):
            self.raw_ptep_set_access_flags(mm, a, entry, 0)
            a += self.page_size
        return start_addr

    @variant("contpte_ptep_set_access_flags")
    @arch_call("contpte_ptep_set_access_flags")
    def contpte_ptep_set_access_flags_v6_9(self, mm: MMStruct, addr: int, entry: int,
                                           dirty: int) -> int:
        # ptep_get(ptep): the entry is a valid contiguous one (the caller checked),
        # so that is contpte_ptep_get()
        orig = self.contpte_ptep_get(mm, addr, self.raw_ptep_get(mm, addr)) & ~PTE_CONT
        if orig == entry:
            return 0
        if bool(orig & PTE_WRITE) == bool(entry & PTE_WRITE):
            start_addr = self._set_access_flags_block(mm, addr, entry)
            if dirty:
                self.flush_tlb_range(mm, start_addr, start_addr + self.cont_size, self.page_size,
                                     True, 3)
        else:
            self.contpte_try_unfold_slow(mm, addr, orig)
            self.raw_ptep_set_access_flags(mm, addr, entry, dirty)
        return 1

    @variant("contpte_ptep_set_access_flags", since="local_access_flush")
    @arch_call("contpte_ptep_set_access_flags")
    def contpte_ptep_set_access_flags_v6_19(self, mm: MMStruct, addr: int, entry: int,
                                            dirty: int) -> int:
        orig = self.contpte_ptep_get(mm, addr, self.raw_ptep_get(mm, addr)) & ~PTE_CONT
        if orig == entry:
            return 0
        if bool(orig & PTE_WRITE) == bool(entry & PTE_WRITE):
            start_addr = self._set_access_flags_block(mm, addr, entry)
            if dirty:
                self.local_flush_tlb_contpte(mm, start_addr)
        else:
            self.contpte_try_unfold_slow(mm, addr, orig)
            self.raw_ptep_set_access_flags(mm, addr, entry, dirty)
        return 1

    @variant("contpte_ptep_set_access_flags", since="raw_access_flags_check")
    @arch_call("contpte_ptep_set_access_flags")
    def contpte_ptep_set_access_flags_v7_0(self, mm: MMStruct, addr: int, entry: int,
                                           dirty: int) -> int:
        # Compare every raw sub-entry, not the gathered view, so a
        # per-descriptor walker (no DBM, SMMU without HTTU) cannot loop.
        if self.contpte_all_subptes_match_access_flags(mm, addr, entry):
            return 0
        orig = self.raw_ptep_get(mm, addr) & ~PTE_CONT  # the raw target entry
        if bool(orig & PTE_WRITE) == bool(entry & PTE_WRITE):
            start_addr = self._set_access_flags_block(mm, addr, entry)
            if dirty:
                self.local_flush_tlb_contpte(mm, start_addr)
        else:
            self.contpte_try_unfold_slow(mm, addr, orig)
            self.raw_ptep_set_access_flags(mm, addr, entry, dirty)
        return 1
