# SPDX-License-Identifier: GPL-2.0-only
"""include/linux/pgtable.h (and mm/pgtable-generic.c): the generic versions
core mm gets where the architecture does not define its own.

On arm64 they run for the names the profile's pgtable.h leaves undefined:
before seed v6 13-16/18 (FEATURE_HISTORY batch_apis) clear_full_ptes(),
get_and_clear_full_ptes() and wrprotect_ptes() are these per-entry loops, so
each first touch of a contiguous block unfolds it; without
CONFIG_ARM64_CONTPTE the batched young helpers are too. The others
(set_pte_at(), ptep_get_and_clear_full(), ptep_clear_flush(), ...) arm64
never overrides.
"""

from __future__ import annotations

from engine.arch.base import arch_call
from engine.arch.pgtable_contpte import PgtableContpte
from engine.arch.variants import variant
from engine.pte import PTE_AF, PTE_DIRTY, PTE_RDONLY, PTE_VALID, PTE_WRITE, pte_mkdirty
from engine.state.mmstruct import MMStruct


class PgtableGeneric(PgtableContpte):
    @variant("pte_batch_hint")
    def pte_batch_hint_generic(self, mm: MMStruct, addr: int, pte: int) -> int:
        return 1

    @variant("set_pte_at")
    def set_pte_at_generic(self, mm: MMStruct, addr: int, pte: int) -> None:
        """#define set_pte_at(mm, addr, ptep, pte) set_ptes(mm, addr, ptep, pte, 1)"""
        self.set_ptes(mm, addr, pte, 1)

    @variant("ptep_get_and_clear_full")
    def ptep_get_and_clear_full_generic(self, mm: MMStruct, addr: int, full: int) -> int:
        return self.ptep_get_and_clear(mm, addr)

    @variant("clear_full_ptes", since="contpte")
    @arch_call("clear_full_ptes")
    def clear_full_ptes_generic(self, mm: MMStruct, addr: int, nr: int, full: int) -> None:
        for _ in range(nr):
            self.ptep_get_and_clear_full(mm, addr, full)
            addr += self.page_size

    @variant("get_and_clear_full_ptes", since="contpte")
    @arch_call("get_and_clear_full_ptes")
    def get_and_clear_full_ptes_generic(self, mm: MMStruct, addr: int, nr: int, full: int) -> int:
        pte = self.ptep_get_and_clear_full(mm, addr, full)
        for _ in range(nr - 1):
            addr += self.page_size
            tmp = self.ptep_get_and_clear_full(mm, addr, full)
            if tmp & PTE_DIRTY or (tmp & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:  # pte_dirty()
                pte = pte_mkdirty(pte)
            if tmp & PTE_AF:  # pte_young()
                pte |= PTE_AF
        return pte

    @variant("get_and_clear_ptes", since="batched_mprotect")
    def get_and_clear_ptes_generic(self, mm: MMStruct, addr: int, nr: int) -> int:
        return self.get_and_clear_full_ptes(mm, addr, nr, 0)

    @variant("clear_ptes", since="batched_mprotect")
    def clear_ptes_generic(self, mm: MMStruct, addr: int, nr: int) -> None:
        self.clear_full_ptes(mm, addr, nr, 0)

    @variant("ptep_clear_flush")
    @arch_call("ptep_clear_flush")
    def ptep_clear_flush_generic(self, mm: MMStruct, addr: int) -> int:
        """mm/pgtable-generic.c: get_and_clear, then flush the page if the old
        entry could be cached (pte_accessible)."""
        pte = self.ptep_get_and_clear(mm, addr)
        if pte & PTE_VALID:
            self.flush_tlb_page(mm, addr)
        return pte

    @variant("test_and_clear_young_ptes", since="batched_young", until="contpte")
    @arch_call("test_and_clear_young_ptes")
    def test_and_clear_young_ptes_generic(self, mm: MMStruct, addr: int, nr: int) -> bool:
        young = False
        for _ in range(nr):
            young |= self.ptep_test_and_clear_young(mm, addr)
            addr += self.page_size
        return young

    @variant("clear_flush_young_ptes", since="batched_young", until="contpte")
    @arch_call("clear_flush_young_ptes")
    def clear_flush_young_ptes_generic(self, mm: MMStruct, addr: int, nr: int) -> bool:
        young = False
        for _ in range(nr):
            young |= self.ptep_clear_flush_young(mm, addr)
            addr += self.page_size
        return young

    @variant("wrprotect_ptes", since="contpte")
    @arch_call("wrprotect_ptes")
    def wrprotect_ptes_generic(self, mm: MMStruct, addr: int, nr: int) -> None:
        for _ in range(nr):
            self.ptep_set_wrprotect(mm, addr)
            addr += self.page_size
