# SPDX-License-Identifier: GPL-2.0-only
"""madvise() advice that walks page tables (mm/madvise.c).

* DONTNEED: a zap of the range (zap_vma_range_batched, fullmm = 0).
* FREE: lazyfree. With ``madvise_large_folios`` (v6.10+) a large folio fully
  inside the range is handled in one batch with
  ``clear_young_dirty_ptes(CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)`` -- widened
  to whole blocks, never unfolding -- and only partly covered folios are
  split. Before, every large folio was split and each entry rewritten with
  ptep_get_and_clear_full + set_pte_at.
* COLD / PAGEOUT: the same batching with ``clear_young_dirty_ptes(
  CYDP_CLEAR_YOUNG)`` for COLD; PAGEOUT isolates the folios and reclaims them
  ignoring references (reclaim_pages).
* HUGEPAGE / NOHUGEPAGE: VM_HUGEPAGE / VM_NOHUGEPAGE on the VMAs.
"""

from __future__ import annotations

from engine.arch import CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG
from engine.mm.base import MmContext, kfn
from engine.mm.batch import FPB_MERGE_YOUNG_DIRTY, folio_pte_batch_flags, swap_pte_batch
from engine.mm.gather import MMUGather
from engine.mm.huge import split_folio
from engine.mm.physmem import F_ACTIVE, F_ANON, F_DIRTY, F_REFERENCED, F_SWAPBACKED, F_SWAPCACHE
from engine.mm.pmd import pmdp_invalidate, set_pmd_at
from engine.mm.process import Process
from engine.mm.reclaim import reclaim_folios
from engine.mm.rmap import folio_mapped_in
from engine.mm.swap import SWP_TYPE
from engine.mm.swapcache import folio_free_swap
from engine.mm.unmap import folio_pmd_walk
from engine.mm.vma import VMA
from engine.mm.zap import maybe_free_swap_cache
from engine.pte import PTE_AF, PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_WRITE, pte_mkclean


def _dirty(pte: int) -> bool:
    return bool(pte & PTE_DIRTY) or (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE


def _mapped_shared(ctx: MmContext, proc: Process, head: int, n: int) -> bool:
    """folio_maybe_mapped_shared(): mapped by another mm too -- by PTEs, or by a
    PMD (a PMD THP a fork shares; 6.12 crosscheck: random-1-141)."""
    if any(p is not proc for p, *_ in folio_mapped_in(ctx, head, n)):
        return True
    return n == 1 << ctx.pmd_order and any(p is not proc for p, _v, _a in folio_pmd_walk(ctx, head))


def _madvise_split(ctx: MmContext, proc: Process, head: int, n: int) -> bool:
    """Split a large folio that the range only partly covers (or, before
    v6.10, any large folio); False if it is shared and left alone."""
    if _mapped_shared(ctx, proc, head, n):
        return False
    return split_folio(ctx, head, 0) >= 0


@kfn("madvise_free_pte_range")
def madvise_free_range(ctx: MmContext, proc: Process, vma: VMA, start: int, end: int) -> int:
    mm = proc.mm
    arch = ctx.arch
    lay = ctx.layout
    ps = ctx.ps
    pm = ctx.pm
    batched = ctx.profile.madvise_large_folios
    tlb = MMUGather(ctx, mm)
    addr = start
    done = 0
    while addr < end:
        if mm.pt.get_pmd(addr):
            nxt = min((addr | (ctx.pmd_size - 1)) + 1, end)
            if _free_huge_pmd(ctx, tlb, proc, addr, nxt):
                done += (nxt - addr) // ps
                addr = nxt
                continue
            if mm.pt.get_pmd(addr):  # left alone (zero page, shared, split failed)
                addr = nxt
                continue
            # split: the PTE walk of the same range follows
        if mm.pt.tables.get(addr >> ctx.g.pmd_shift) is None:
            addr = min((addr | (ctx.pmd_size - 1)) + 1, end)
            continue
        nr = 1
        ptent = arch.ptep_get(mm, addr)
        if ptent == 0:
            addr += ps
            continue
        if not lay.pte_present(ptent):
            if lay.swp_type(ptent) == SWP_TYPE:
                nr = swap_pte_batch(ctx, mm, addr, (end - addr) // ps, ptent)
                slot = lay.swp_offset(ptent)
                ctx.swap.put(slot, nr)
                ctx.mm_event("swap_free", slot, nr)
                maybe_free_swap_cache(ctx, slot, nr)
                for k in range(nr):
                    arch.pte_clear(mm, addr + k * ps)
            addr += nr * ps
            continue
        if ptent & PTE_SPECIAL:
            addr += ps
            continue
        head, n = arch.folios.folio_of(ctx.pte_pfn(ptent))
        if not pm.flags[head - pm.base] & F_ANON:
            addr += ps
            continue
        if n > 1:
            if batched:
                nr, ptent = folio_pte_batch_flags(ctx, mm, head, n, addr, ptent, (end - addr) // ps,
                                                       FPB_MERGE_YOUNG_DIRTY)
            if not batched or nr < n:
                if not _madvise_split(ctx, proc, head, n):
                    addr += nr * ps
                    continue
                continue  # re-read the entry: the folio is small now
        fl = pm.flags[head - pm.base]
        if fl & (F_SWAPCACHE | F_DIRTY):
            if _mapped_shared(ctx, proc, head, n):
                addr += nr * ps
                continue
            if fl & F_SWAPCACHE and not folio_free_swap(ctx, head):
                addr += nr * ps
                continue
            pm.clear_flag(head, F_DIRTY)
        if ptent & PTE_AF or _dirty(ptent):
            if batched:
                arch.clear_young_dirty_ptes(mm, addr, nr, CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)
            else:
                old = arch.ptep_get_and_clear_full(mm, addr, 0)
                arch.set_ptes(mm, addr, pte_mkclean(old & ~PTE_AF), 1)
            tlb.remove_tlb_entries(addr, nr)
        # folio_mark_lazyfree(): reclaim may now discard it instead of swapping
        pm.clear_flag(head, F_SWAPBACKED | F_ACTIVE | F_REFERENCED)
        ctx.mm_event("lazyfree", addr, nr)
        done += nr
        addr += nr * ps
    tlb.finish()
    return done


def _free_huge_pmd(ctx: MmContext, tlb: MMUGather, proc: Process, addr: int, nxt: int) -> bool:
    """mm/huge_memory.c madvise_free_huge_pmd(): True when the whole PMD folio was
    made lazyfree; a PMD only partly in the range is split with split_folio() (the
    PTE walk then goes on over it); the huge zero page and a folio mapped by
    another mm are left alone (found by ptlab crosscheck: 6.12, random-1-47)."""
    mm = proc.mm
    pm = ctx.pm
    pmd = mm.pt.get_pmd(addr)
    head = ctx.pte_pfn(pmd)
    if head == pm.huge_zero_pfn or _mapped_shared(ctx, proc, head, 1 << ctx.pmd_order):
        return False
    if nxt - addr != ctx.pmd_size:
        split_folio(ctx, head, 0)
        return False
    pm.clear_flag(head, F_DIRTY)
    if pmd & PTE_AF or _dirty(pmd):
        haddr = addr & ~(ctx.pmd_size - 1)
        pmdp_invalidate(ctx, proc, haddr)
        set_pmd_at(ctx, mm, haddr, pte_mkclean(pmd & ~PTE_AF))
        tlb.remove_pmd_tlb_entry(haddr)
    pm.clear_flag(head, F_SWAPBACKED | F_ACTIVE | F_REFERENCED)  # folio_mark_lazyfree()
    ctx.mm_event("lazyfree", addr, 1 << ctx.pmd_order)
    return True


@kfn("madvise_cold_or_pageout_pte_range")
def madvise_cold_range(ctx: MmContext, proc: Process, vma: VMA, start: int, end: int, pageout: bool) -> int:
    mm = proc.mm
    arch = ctx.arch
    lay = ctx.layout
    ps = ctx.ps
    pm = ctx.pm
    batched = ctx.profile.madvise_large_folios
    tlb = MMUGather(ctx, mm)
    isolated: list[int] = []
    addr = start
    while addr < end:
        pmd = mm.pt.get_pmd(addr)
        if pmd:
            nxt = min((addr | (ctx.pmd_size - 1)) + 1, end)
            head = ctx.pte_pfn(pmd)
            # the huge zero page and a folio mapped by another mm too are left alone
            if head == pm.huge_zero_pfn or _mapped_shared(ctx, proc, head, 1 << ctx.pmd_order):
                addr = nxt
                continue
            if nxt - addr != ctx.pmd_size:
                # a part of the PMD: split_folio() itself (its unmap_folio() turns the
                # PMD into migration entries, remap_page() maps the pages back), then
                # the PTE walk (regular_folio); if the split fails the PMD is skipped
                if split_folio(ctx, head, 0) < 0:
                    addr = nxt
                    continue
            else:
                _cold_pmd(ctx, tlb, proc, addr, pageout, isolated)
                addr = nxt
                continue
        if mm.pt.tables.get(addr >> ctx.g.pmd_shift) is None:
            addr = min((addr | (ctx.pmd_size - 1)) + 1, end)
            continue
        nr = 1
        ptent = arch.ptep_get(mm, addr)
        if ptent == 0 or not lay.pte_present(ptent) or ptent & PTE_SPECIAL:
            addr += ps
            continue
        head, n = arch.folios.folio_of(ctx.pte_pfn(ptent))
        if n > 1:
            if batched:
                nr, ptent = folio_pte_batch_flags(ctx, mm, head, n, addr, ptent, (end - addr) // ps,
                                                       FPB_MERGE_YOUNG_DIRTY)
            if not batched or nr < n:
                if not _madvise_split(ctx, proc, head, n):
                    addr += nr * ps
                    continue
                continue
        if pm.lmap[head - pm.base] != n:
            # mm/madvise.c madvise_cold_or_pageout_pte_range(): "if its mapcount is the
            # same as its number of pages, it must be exclusive" -- a folio mapped
            # elsewhere too (e.g. after fork) is left alone (found by ptlab crosscheck:
            # 6.12 keeps a fork-shared folio mapped through MADV_PAGEOUT)
            addr += nr * ps
            continue
        if not pageout and ptent & PTE_AF:
            if batched:
                arch.clear_young_dirty_ptes(mm, addr, nr, CYDP_CLEAR_YOUNG)
            else:
                old = arch.ptep_get_and_clear_full(mm, addr, 0)
                arch.set_ptes(mm, addr, old & ~PTE_AF, 1)
            tlb.remove_tlb_entries(addr, nr)
        pm.clear_flag(head, F_REFERENCED)
        if pageout:
            if head not in isolated:
                isolated.append(head)
        else:
            pm.clear_flag(head, F_ACTIVE)  # folio_deactivate()
        addr += nr * ps
    tlb.finish()
    if pageout and isolated:
        reclaim_folios(ctx, isolated, ignore_references=True)
    return len(isolated)


def _cold_pmd(ctx: MmContext, tlb: MMUGather, proc: Process, addr: int, pageout: bool,
              isolated: list[int]) -> None:
    pmd = proc.mm.pt.get_pmd(addr)
    head = ctx.pte_pfn(pmd)
    if head == ctx.pm.huge_zero_pfn:
        return
    if not pageout and pmd & PTE_AF:
        pmdp_invalidate(ctx, proc, addr)
        set_pmd_at(ctx, proc.mm, addr, pmd & ~PTE_AF)
        tlb.remove_pmd_tlb_entry(addr)
    ctx.pm.clear_flag(head, F_REFERENCED)
    if pageout:
        isolated.append(head)
    else:
        ctx.pm.clear_flag(head, F_ACTIVE)
