# SPDX-License-Identifier: GPL-2.0-only
"""Unmapping: munmap, exit and MADV_DONTNEED (mm/memory.c zap_pte_range and
friends, mm/vma.c do_vmi_munmap, mm/mmap.c exit_mmap).

zap_pte_range skips runs of none entries with ptep_get, batches the present
entries of a large folio with folio_pte_batch and clears them with
``clear_full_ptes`` (anon) or ``get_and_clear_full_ptes`` (file: the OR of
the dirty/young bits drives folio_mark_dirty/accessed); only a block cut by
the range is unfolded. Entries without a normal page (the zero page) go
through ``ptep_get_and_clear_full`` one at a time. The TLB is flushed by the
mmu_gather: once per full page batch, before dropping the PTL if dirty file
folios need their rmap removed after the flush, and at the end.
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.batch import folio_pte_batch, swap_pte_batch
from engine.mm.gather import MMUGather
from engine.mm.physmem import F_ANON, F_DIRTY
from engine.mm.pmd import pmdp_huge_get_and_clear, split_huge_pmd, split_vmas
from engine.mm.process import Process
from engine.mm.rmap import folio_is_anon, folio_mark_accessed, folio_remove_rmap_pmd, folio_remove_rmap_ptes
from engine.mm.swap import SWP_TYPE
from engine.mm.swapcache import delete_from_swap_cache, swap_cache_lookup, swap_unreferenced
from engine.mm.vma import VMA
from engine.pte import PTE_AF, PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_WRITE


@kfn("zap_pte_range")
def zap_pte_range(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, start: int, end: int) -> int:
    """Zap [start, end) inside one PTE table; returns where it stopped."""
    mm = proc.mm
    arch = ctx.arch
    ps = ctx.ps
    get = arch.ptep_get
    lay = ctx.layout
    addr = start
    while True:
        force_flush = False
        force_break = False
        while addr != end:
            pte = get(mm, addr)
            max_nr = (end - addr) // ps
            if pte == 0:
                # skip the run of none entries; the entry ending it is used as read
                n = 1
                while n < max_nr:
                    n += arch.none_run(mm, addr + n * ps, max_nr - n)
                    if n == max_nr:
                        break
                    pte = get(mm, addr + n * ps)
                    if pte:
                        break
                    n += 1
                addr += n * ps
                if n == max_nr:
                    break
                max_nr -= n
            if lay.pte_present(pte):
                nr, ff, fb = _zap_present_ptes(ctx, tlb, proc, vma, addr, pte, max_nr)
                force_flush |= ff
                force_break |= fb
            else:
                nr = _zap_nonpresent_ptes(ctx, tlb, proc, vma, addr, pte, max_nr)
            addr += nr * ps
            if force_break:
                break
        if force_flush:
            tlb.flush_mmu_tlbonly()
            tlb.flush_rmaps()
            tlb.flush_mmu()
        if addr == end or not force_break:
            break
    return addr


def _zap_present_ptes(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, addr: int, pte: int,
                      max_nr: int) -> tuple[int, bool, bool]:
    mm = proc.mm
    arch = ctx.arch
    pfn = (pte & ctx.addr_low) >> ctx.pshift  # ctx.pte_pfn(pte), inline: once per PTE of a munmap
    if pte & PTE_SPECIAL:
        # no normal page (zero page): one entry, accessed/dirty not needed
        arch.ptep_get_and_clear_full(mm, addr, int(tlb.fullmm))
        tlb.remove_tlb_entries(addr, 1)
        return 1, False, False
    head, n = arch.folios.folio_of(pfn)
    nr = 1
    if n > 1 and max_nr != 1:
        nr = folio_pte_batch(ctx, mm, head, n, addr, pte, max_nr)
    # per batch: vm_normal_page(), page_folio(), rss counters, the zap loop's
    # own bookkeeping (mm/memory.c zap_present_ptes()); ctx.cost() without the extra call
    ctx.log.mm_cost("mm_batch", addr, 1)
    pm = ctx.pm
    delay_rmap = False
    force_flush = False
    if not pm.flags[head - pm.base] & F_ANON:
        ptent = arch.get_and_clear_full_ptes(mm, addr, nr, int(tlb.fullmm))
        if ptent & PTE_DIRTY or (ptent & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:
            pm.set_flag(head, F_DIRTY)  # folio_mark_dirty()
            delay_rmap = True  # tlb_delay_rmap(): the rmap goes after the flush
            force_flush = True
        if ptent & PTE_AF:
            folio_mark_accessed(ctx, head)
    else:
        arch.clear_full_ptes(mm, addr, nr, int(tlb.fullmm))
    # tlb_remove_tlb_entries(): widen the gather's range
    if addr < tlb.start:
        tlb.start = addr
    end = addr + nr * ctx.ps
    if end > tlb.end:
        tlb.end = end
    tlb.cleared_ptes = True
    if delay_rmap:
        tlb.delayed.append((head, pfn, nr, addr))
    else:
        folio_remove_rmap_ptes(ctx, head, pfn, nr, addr)
    full = tlb.remove_folio_pages(head, nr, delay_rmap)
    return nr, force_flush or full, full


def _zap_nonpresent_ptes(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, addr: int, pte: int,
                         max_nr: int) -> int:
    lay = ctx.layout
    nr = 1
    if lay.swp_type(pte) == SWP_TYPE:
        nr = swap_pte_batch(ctx, proc.mm, addr, max_nr, pte)
        ctx.swap.put(lay.swp_offset(pte), nr)  # swap_put_entries_direct()
        ctx.mm_event("swap_free", lay.swp_offset(pte), nr)
        maybe_free_swap_cache(ctx, lay.swp_offset(pte), nr)
    # clear_not_present_full_ptes()
    for k in range(nr):
        ctx.arch.pte_clear(proc.mm, addr + k * ctx.ps)
    return nr


def maybe_free_swap_cache(ctx: MmContext, slot: int, nr: int) -> None:
    """free_swap_and_cache_nr(): a swap-cache folio nobody refers to goes."""
    seen = set()
    for s in range(slot, slot + nr):
        head = swap_cache_lookup(ctx, s)
        if head >= 0 and head not in seen:
            seen.add(head)
            if swap_unreferenced(ctx, head) and not ctx.pm.lmap[head - ctx.pm.base]:
                delete_from_swap_cache(ctx, head)


# --- over a range of VMAs ---------------------------------------------------------
def zap_vma_range(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, start: int, end: int) -> None:
    """unmap_single_vma() -> zap_pmd_range() over [start, end) of vma."""
    mm = proc.mm
    pmd_size = ctx.pmd_size
    addr = start
    while addr < end:
        nxt = min((addr | (pmd_size - 1)) + 1, end)
        if mm.pt.get_pmd(addr):
            if nxt - addr != pmd_size:
                split_huge_pmd(ctx, proc, vma, addr)
            else:
                zap_huge_pmd(ctx, tlb, proc, vma, addr)
                addr = nxt
                continue
        if mm.pt.tables.get(addr >> ctx.g.pmd_shift) is not None:
            zap_pte_range(ctx, tlb, proc, vma, addr, nxt)
        addr = nxt


@kfn("zap_huge_pmd")
def zap_huge_pmd(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, addr: int) -> None:
    mm = proc.mm
    old = pmdp_huge_get_and_clear(ctx, mm, addr)
    tlb.remove_pmd_tlb_entry(addr)
    if not ctx.layout.pte_present(old):
        return
    head = ctx.pte_pfn(old)
    if head == ctx.pm.huge_zero_pfn:
        return
    if not folio_is_anon(ctx, head):
        if old & PTE_DIRTY or (old & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:
            ctx.pm.set_flag(head, F_DIRTY)
    folio_remove_rmap_pmd(ctx, head, addr)
    tlb.remove_folio_pages(head, 1)


def free_pgtables(ctx: MmContext, tlb: MMUGather, proc: Process, start: int, end: int) -> None:
    """free_pgd_range(): free the PTE tables no remaining VMA uses."""
    pmd_size = ctx.pmd_size
    pt = proc.mm.pt
    shift = ctx.g.pmd_shift
    for key in sorted(k for k in pt.tables if start >> shift <= k <= (end - 1) >> shift):
        base = key << shift
        if proc.vmas_in(base, base + pmd_size):
            continue  # still needed by a neighbour VMA
        t = pt.tables[key]
        if any(t):
            continue
        pt.drop_table(key)
        tlb.free_table(base)
        ctx.mm_event("pte_table_free", base, 0)


@kfn("unmap_region")
def unmap_region(ctx: MmContext, proc: Process, start: int, end: int) -> None:
    """do_vmi_munmap(): split the VMAs at the edges, zap, free page tables,
    flush the TLB, then remove the VMAs."""
    vmas = split_vmas(ctx, proc, start, end)
    tlb = MMUGather(ctx, proc.mm, fullmm=False)
    for v in vmas:
        zap_vma_range(ctx, tlb, proc, v, v.start, v.end)
    for v in vmas:
        proc.remove(v)
    ctx.vmas_changed()
    free_pgtables(ctx, tlb, proc, start, end)
    tlb.finish()


@kfn("exit_mmap")
def exit_mmap(ctx: MmContext, proc: Process) -> None:
    tlb = MMUGather(ctx, proc.mm, fullmm=True)
    for v in list(proc.vmas):
        zap_vma_range(ctx, tlb, proc, v, v.start, v.end)
    proc.vmas = []
    ctx.vmas_changed()
    free_pgtables(ctx, tlb, proc, 0, 1 << 48)
    tlb.finish()
    proc.alive = False
