# SPDX-License-Identifier: GPL-2.0-only
"""struct mmu_gather (mm/mmu_gather.c, include/asm-generic/tlb.h and
arch/arm64/include/asm/tlb.h).

Zapping records the range it cleared and the folio references it will drop;
``tlb_flush_mmu`` flushes the TLB for the range (arm64 ``tlb_flush()``: one
``__flush_tlb_range`` with the stride and level of what was cleared, or, for
a full-mm teardown, ``flush_tlb_mm`` only if page tables were freed) and
then drops the references. The page batch holds MMU_GATHER_BUNDLE entries
locally plus MAX_GATHER_BATCH_COUNT pages of MAX_GATHER_BATCH pointers; a
full batch forces an early flush, as in ``__tlb_remove_folio_pages``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.arch.tlbflush import TLBI_TTL_UNKNOWN
from engine.mm.rmap import folio_put_refs, folio_remove_rmap_ptes

if TYPE_CHECKING:
    from engine.mm.base import MmContext
    from engine.state.mmstruct import MMStruct

MMU_GATHER_BUNDLE = 8


class MMUGather:
    def __init__(self, ctx: MmContext, mm: MMStruct, fullmm: bool = False):
        self.ctx = ctx
        self.mm = mm
        self.fullmm = fullmm
        # MAX_GATHER_BATCH = (PAGE_SIZE - sizeof(struct mmu_gather_batch)) / sizeof(void *)
        per_batch = (ctx.ps - 16) // 8
        self.capacity = MMU_GATHER_BUNDLE + (10000 // per_batch) * per_batch
        self.pages: list[tuple[int, int]] = []  # (folio head, references to drop)
        self.slots = 0
        self.delayed: list[tuple[int, int, int, int]] = []  # delayed rmap: head, pfn, nr, addr
        self._reset_range()
        self.freed_tables = False

    def _reset_range(self) -> None:
        self.start = 1 << 64
        self.end = 0
        self.cleared_ptes = False
        self.cleared_pmds = False

    # --- recording ----------------------------------------------------------------------
    def remove_tlb_entries(self, addr: int, nr: int) -> None:
        """tlb_remove_tlb_entries(): widen the flush range, note PTEs cleared."""
        self.start = min(self.start, addr)
        self.end = max(self.end, addr + nr * self.ctx.ps)
        self.cleared_ptes = True

    def remove_pmd_tlb_entry(self, addr: int) -> None:
        self.start = min(self.start, addr)
        self.end = max(self.end, addr + self.ctx.pmd_size)
        self.cleared_pmds = True

    def flush_pte_range(self, addr: int, size: int) -> None:
        """tlb_flush_pte_range() (mprotect)."""
        self.start = min(self.start, addr)
        self.end = max(self.end, addr + size)
        self.cleared_ptes = True

    def free_table(self, addr: int) -> None:
        """pte_free_tlb(): a page table was freed (needs a walk-cache flush)."""
        self.start = min(self.start, addr)
        self.end = max(self.end, addr + self.ctx.pmd_size)
        self.freed_tables = True

    def remove_folio_pages(self, head: int, nr: int, delay_rmap: bool = False) -> bool:
        """__tlb_remove_folio_pages(): queue nr references; True when the batch
        is full and the caller must flush now (force_flush / force_break)."""
        self.pages.append((head, nr))
        self.slots += 1 if nr == 1 else 2
        return self.slots >= self.capacity

    # --- flushing -----------------------------------------------------------------------
    def flush_mmu_tlbonly(self) -> None:
        if not (self.freed_tables or self.cleared_ptes or self.cleared_pmds):
            return
        if not self.end and not self.freed_tables:
            return
        ctx = self.ctx
        arch = ctx.arch
        log = ctx.log
        log.call("tlb_flush", (self.mm.name, self.start if self.end else 0, self.end, self.fullmm,
                               self.freed_tables))
        last_level = not self.freed_tables
        if self.fullmm:
            if not last_level:
                arch.flush_tlb_mm(self.mm)
        elif self.end:
            stride = ctx.ps if self.cleared_ptes else ctx.pmd_size
            if self.freed_tables:
                level = TLBI_TTL_UNKNOWN
            elif self.cleared_ptes and not self.cleared_pmds:
                level = 3
            elif self.cleared_pmds and not self.cleared_ptes:
                level = 2
            else:
                level = TLBI_TTL_UNKNOWN
            arch.flush_tlb_range(self.mm, self.start, self.end, stride, last_level, level)
        log.ret("tlb_flush", None)
        self._reset_range()
        self.freed_tables = False

    def flush_rmaps(self) -> None:
        """tlb_flush_rmaps(): the delayed rmap removals of dirty file folios."""
        ctx = self.ctx
        for head, pfn, nr, addr in self.delayed:
            folio_remove_rmap_ptes(ctx, head, pfn, nr, addr)
        self.delayed.clear()

    def flush_mmu_free(self) -> None:
        """tlb_batch_pages_flush(): drop the queued folio references."""
        ctx = self.ctx
        for head, nr in self.pages:
            folio_put_refs(ctx, head, nr)
        self.pages.clear()
        self.slots = 0

    def flush_mmu(self) -> None:
        self.flush_mmu_tlbonly()
        self.flush_rmaps()
        self.flush_mmu_free()

    def finish(self) -> None:
        """tlb_finish_mmu()."""
        self.flush_mmu()
