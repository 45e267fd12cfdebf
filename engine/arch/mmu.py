# SPDX-License-Identifier: GPL-2.0-only
"""arm64 overrides outside the contpte block: the mprotect transaction
helpers of arch/arm64/mm/mmu.c, flush_tlb_fix_spurious_fault() and
ptep_try_set() of arch/arm64/include/asm/pgtable.h."""

from __future__ import annotations

from engine.arch.base import arch_call
from engine.arch.pgtable_nocontpte import PgtableNoContpte
from engine.arch.variants import variant
from engine.pte import PTE_UXN, PTE_VALID
from engine.state.mmstruct import MMStruct


class Arm64Mmu(PgtableNoContpte):
    @variant("flush_tlb_fix_spurious_fault")
    def flush_tlb_fix_spurious_fault_v6_9(self, mm: MMStruct, addr: int) -> None:
        """``do { } while (0)``: a spurious fault needs no maintenance."""

    @variant("flush_tlb_fix_spurious_fault", since="spurious_fault_flush")
    def flush_tlb_fix_spurious_fault_v6_19(self, mm: MMStruct, addr: int) -> None:
        """v6.19 (cb1fa2e99955, 79301c7d605a): a local page flush, since remote
        CPUs may now hold the stale entry that set_access_flags no longer
        broadcast-invalidates."""
        self.flush_tlb_page(mm, addr, sync=True, broadcast=False, notify=False)

    # --- mprotect transactions ----------------------------------------------------------
    @variant("ptep_modify_prot_start")
    @arch_call("ptep_modify_prot_start")
    def ptep_modify_prot_start_v6_9(self, mm: MMStruct, addr: int) -> int:
        if self.cpu.erratum_2645198 and not self.ptep_get(mm, addr) & PTE_UXN:
            # break-before-make when dropping exec on Cortex-A510
            return self.ptep_clear_flush(mm, addr)
        return self.ptep_get_and_clear(mm, addr)

    @variant("ptep_modify_prot_start", since="batched_mprotect")
    @arch_call("ptep_modify_prot_start")
    def ptep_modify_prot_start_v6_17(self, mm: MMStruct, addr: int) -> int:
        return self.modify_prot_start_ptes_inline(mm, addr, 1)

    @variant("ptep_modify_prot_commit")
    @arch_call("ptep_modify_prot_commit")
    def ptep_modify_prot_commit_v6_9(self, mm: MMStruct, addr: int, old_pte: int, pte: int) -> None:
        self.set_ptes(mm, addr, pte, 1)

    def modify_prot_start_ptes_inline(self, mm: MMStruct, addr: int, nr: int) -> int:
        """modify_prot_start_ptes() as ptep_modify_prot_start() calls it: unrecorded."""
        pte = self.get_and_clear_full_ptes(mm, addr, nr, 0)
        if self.cpu.erratum_2645198 and pte & PTE_VALID and not pte & PTE_UXN:
            # The kernel passes nr * PAGE_SIZE as the *end* address, so the
            # range underflows and becomes a whole-mm flush (safe over-invalidation).
            self.flush_tlb_range(mm, addr, nr * self.page_size, self.page_size, True, 3)
        return pte

    @variant("modify_prot_start_ptes", since="batched_mprotect")
    @arch_call("modify_prot_start_ptes")
    def modify_prot_start_ptes_v6_17(self, mm: MMStruct, addr: int, nr: int) -> int:
        return self.modify_prot_start_ptes_inline(mm, addr, nr)

    @variant("modify_prot_commit_ptes", since="batched_mprotect")
    @arch_call("modify_prot_commit_ptes")
    def modify_prot_commit_ptes_v6_17(self, mm: MMStruct, addr: int, old_pte: int, pte: int,
                                      nr: int) -> None:
        self.set_ptes(mm, addr, pte, nr)

    @variant("ptep_try_set", since="tlbf_flags_api")
    @arch_call("ptep_try_set")
    def ptep_try_set_v7_3(self, mm: MMStruct, addr: int, pte: int) -> bool:
        t, i = mm.pt.locate(addr)
        if self._cmpxchg(mm, t, i, addr, 0, pte) != 0:
            return False
        log = self.log
        log.dsb("ishst")
        log.isb()
        return True
