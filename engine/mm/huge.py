# SPDX-License-Identifier: GPL-2.0-only
"""PMD-level faults, folio splitting and khugepaged collapse
(mm/memory.c __handle_mm_fault, mm/huge_memory.c, mm/khugepaged.c).

* ``handle_mm_fault``: a none PMD in a VMA allowed PMD THP goes to
  do_huge_pmd_anonymous_page (the huge zero page for reads); a PMD mapping
  takes write-protect, access and NUMA faults at PMD level; everything else
  is handle_pte_fault.
* ``split_folio`` (split_huge_page_to_list_to_order): unmap the folio --
  splitting PMD mappings with set_ptes(HPAGE_PMD_NR) first, then one
  migration entry per PTE (each block unfolds on its first entry) -- carve
  the folio, and remap each new folio with per-PTE set_pte_at, which folds
  any block a new folio still covers. Pages nobody maps are freed.
* ``collapse_huge_page``: detach the PTE table with a TLB flush, copy into a
  new PMD folio, clear the old entries (``clear_ptes(nr)`` per large-folio
  batch where it exists, ptep_clear per entry before), map the PMD.
"""

from __future__ import annotations

from errno import EINVAL, ENOMEM

from engine.mm.base import VM_FAULT_FALLBACK, MmContext, kfn
from engine.mm.batch import folio_pte_batch
from engine.mm.fault import do_swap_page, handle_pte_fault
from engine.mm.migrate import remove_migration_ptes, try_to_migrate
from engine.mm.physmem import F_ANON, F_PAGECACHE, F_SWAPCACHE, P_DATA
from engine.mm.pmd import flush_pmd_tlb_range, mk_pmd, pmdp_huge_get_and_clear, set_pmd_at, split_huge_pmd
from engine.mm.process import Process
from engine.mm.rmap import (
    anon_vma_prepare,
    can_change_pte_writable,
    folio_add_new_anon_rmap,
    folio_is_anon,
    folio_put_refs,
    folio_remove_rmap_ptes,
    maybe_deferred_split,
    page_anon_exclusive,
    set_anon_exclusive,
)
from engine.mm.unmap import TTU_BATCH_FLUSH, TTU_SPLIT_HUGE_PMD, TTU_SYNC, try_to_unmap, try_to_unmap_flush
from engine.mm.vma import VM_WRITE, VMA
from engine.pte import PTE_AF, PTE_SPECIAL, PTE_TABLE_BIT, PTE_WRITE, pte_mkdirty


# --- the fault entry --------------------------------------------------------------
@kfn("handle_mm_fault")
def handle_mm_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int, write: bool) -> int:
    pt = proc.mm.pt
    key = addr >> ctx.g.pmd_shift
    pmd = pt.pmd_leaves.get(key, 0)
    if not pmd and key not in pt.tables:
        if (vma.anon and not vma.shmem
                and ctx.thp.allowable_orders(vma, 1 << ctx.pmd_order)
                and ctx.thp.suitable_orders(vma, addr, 1 << ctx.pmd_order)):
            ret = do_huge_pmd_anonymous_page(ctx, proc, vma, addr, write)
            if ret != VM_FAULT_FALLBACK:
                return ret
    elif pmd:
        lay = ctx.layout
        if not lay.pte_present(pmd):
            return 0  # PMD migration entry: wait for it
        if lay.pte_protnone(pmd) and vma.accessible:
            return do_huge_pmd_numa_page(ctx, proc, vma, addr)
        if write and not pmd & PTE_WRITE:
            ret = do_huge_pmd_wp_page(ctx, proc, vma, addr)
            if ret != VM_FAULT_FALLBACK:
                return ret
        else:
            huge_pmd_set_accessed(ctx, proc, addr, write)
            return 0
    return handle_pte_fault(ctx, proc, vma, addr, write)


@kfn("do_huge_pmd_anonymous_page")
def do_huge_pmd_anonymous_page(ctx: MmContext, proc: Process, vma: VMA, addr: int, write: bool) -> int:
    haddr = addr & ~(ctx.pmd_size - 1)
    anon_vma_prepare(ctx, vma)
    if not write:
        zero = ctx.pm.get_huge_zero_pfn()
        if zero < 0:
            return VM_FAULT_FALLBACK
        set_pmd_at(ctx, proc.mm, haddr, mk_pmd(ctx, zero, vma.page_prot) | PTE_SPECIAL)
        return 0
    head = vma_alloc_anon_folio_pmd(ctx, addr)
    if head < 0:
        return VM_FAULT_FALLBACK
    map_anon_folio_pmd(ctx, proc, vma, haddr, head)
    return 0


def vma_alloc_anon_folio_pmd(ctx: MmContext, addr: int) -> int:
    """vma_alloc_anon_folio_pmd(): a zeroed PMD-sized folio, or -1 (THP_FAULT_FALLBACK)."""
    head = ctx.pm.alloc_folio(ctx.pmd_order, 0)
    if head < 0:
        ctx.mm_event("thp_fault_fallback", addr, ctx.pmd_order)
        return -1
    ctx.mm_event("folio_alloc", addr, ctx.pmd_order)
    ctx.cost("mm_folio", addr, 1)
    ctx.cost("mm_zero_page", addr, 1 << ctx.pmd_order)
    return head


def map_anon_folio_pmd(ctx: MmContext, proc: Process, vma: VMA, haddr: int, head: int) -> None:
    """map_anon_folio_pmd(): a dirty PMD, writable if the VMA is, for a new anon folio."""
    entry = ctx.maybe_mkwrite(pte_mkdirty(mk_pmd(ctx, head, vma.page_prot)), vma)
    folio_add_new_anon_rmap(ctx, head, 1 << ctx.pmd_order, vma, haddr, True, pmd=True)
    set_pmd_at(ctx, proc.mm, haddr, entry)


@kfn("do_huge_zero_wp_pmd")
def do_huge_zero_wp_pmd(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> int:
    """mm/huge_memory.c do_huge_zero_wp_pmd() (1ced09e0331f, v6.13; row huge_zero_wp_thp):
    a write fault on the huge zero page allocates a PMD-sized folio and maps it in the
    zero page's place -- pmdp_huge_clear_flush(), then map_anon_folio_pmd() -- instead of
    splitting the PMD into zero-page PTEs. Without a folio the caller falls back to the
    split."""
    haddr = addr & ~(ctx.pmd_size - 1)
    head = vma_alloc_anon_folio_pmd(ctx, addr)
    if head < 0:
        return VM_FAULT_FALLBACK
    mm = proc.mm
    pmdp_huge_get_and_clear(ctx, mm, haddr)  # pmdp_huge_clear_flush()
    flush_pmd_tlb_range(ctx, mm, haddr)
    map_anon_folio_pmd(ctx, proc, vma, haddr, head)
    return 0


@kfn("do_huge_pmd_wp_page")
def do_huge_pmd_wp_page(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> int:
    haddr = addr & ~(ctx.pmd_size - 1)
    pmd = proc.mm.pt.get_pmd(haddr)
    head = ctx.pte_pfn(pmd)
    pm = ctx.pm
    if head == pm.huge_zero_pfn and ctx.profile.huge_zero_wp_thp:
        if do_huge_zero_wp_pmd(ctx, proc, vma, addr) != VM_FAULT_FALLBACK:
            return 0
        # no THP: fall back to splitting the PMD
    elif head != pm.huge_zero_pfn and pm.flags[head - pm.base] & F_ANON:
        reuse = page_anon_exclusive(ctx, head)
        if not reuse and pm.ref[head - pm.base] == 1 and not pm.flags[head - pm.base] & F_SWAPCACHE:
            set_anon_exclusive(ctx, head, 1 << ctx.pmd_order)
            reuse = True
        if reuse:
            entry = ctx.maybe_mkwrite(pte_mkdirty(pmd | PTE_AF), vma)
            ctx.arch.pmdp_set_access_flags(proc.mm, haddr, entry, True)
            return 0
    split_huge_pmd(ctx, proc, vma, haddr)
    return VM_FAULT_FALLBACK


def huge_pmd_set_accessed(ctx: MmContext, proc: Process, addr: int, write: bool) -> None:
    haddr = addr & ~(ctx.pmd_size - 1)
    pmd = proc.mm.pt.get_pmd(haddr)
    entry = pmd | PTE_AF
    if write:
        entry = pte_mkdirty(entry)
    ctx.arch.pmdp_set_access_flags(proc.mm, haddr, entry, write)


@kfn("do_huge_pmd_numa_page")
def do_huge_pmd_numa_page(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> int:
    """One node: never misplaced, so the PMD is restored (young, writable
    if the VMA allows it and the folio is exclusive / dirty)."""
    haddr = addr & ~(ctx.pmd_size - 1)
    old = proc.mm.pt.get_pmd(haddr)
    pmd = ctx.pte_modify(old, vma.page_prot) & ~PTE_TABLE_BIT  # pmd_modify keeps the block type
    writable = bool(pmd & PTE_WRITE)
    if not writable and vma.flags & VM_WRITE and can_change_pte_writable(ctx, vma, haddr, pmd):
        writable = True
    pmd |= PTE_AF
    if writable:
        pmd = ctx.pte_mkwrite(pmd)
    set_pmd_at(ctx, proc.mm, haddr, pmd)
    return 0


# --- splitting folios --------------------------------------------------------------
@kfn("split_huge_page_to_list_to_order")
def split_folio(ctx: MmContext, head: int, new_order: int) -> int:
    """Split the folio to new_order; returns the first new head (-1 if it
    cannot be split: not large, or pinned)."""
    folios = ctx.arch.folios
    order = folios.order_of(head)
    if order <= new_order or head == ctx.pm.huge_zero_pfn:
        return -1
    pm = ctx.pm
    i = head - pm.base
    nr = 1 << order
    anon = bool(pm.flags[i] & F_ANON)
    pm.ref[i] += 1  # the splitter's reference
    # unmap_folio()
    # mm/huge_memory.c unmap_folio(): TTU_RMAP_LOCKED | TTU_SYNC | TTU_BATCH_FLUSH
    flags = TTU_BATCH_FLUSH | TTU_SYNC | (TTU_SPLIT_HUGE_PMD if order == ctx.pmd_order else 0)
    if anon:
        try_to_migrate(ctx, head, flags)
    else:
        try_to_unmap(ctx, head, flags)
    try_to_unmap_flush(ctx)
    # __split_folio_to_order(): refcounts follow the caches that hold pages
    cache_refs = pm.ref[i] - 1
    slot = ctx.swap.slot_of.pop(head, -1)
    if slot >= 0:
        del ctx.swap.cache[slot]
    f = ctx.pc.files.get(pm.mapping[i]) if pm.flags[i] & F_PAGECACHE else None
    marked = f is not None and pm.index[i] in f.readahead
    heads = pm.split_meta(head, new_order)
    step = 1 << new_order
    per_cache = cache_refs // nr * step if cache_refs else 0
    for k, h in enumerate(heads):
        j = h - pm.base
        pm.ref[j] = 1 + per_cache
        if slot >= 0:
            s = slot + k * step
            ctx.swap.cache[s] = h
            ctx.swap.slot_of[h] = s
        if f is not None:
            idx = pm.index[j]
            for p in range(idx, idx + step):
                f.cache[p] = h + 1
    if marked and f is not None:
        f.readahead[pm.index[heads[0] - pm.base]] = None
    ctx.mm_event("folio_split", head, (order << 8) | new_order)
    ctx.cost("mm_folio", head, len(heads))
    # remap_page(): each new folio gets its pages' migration entries back
    if anon:
        # __split_huge_page(): remap_page(..., RMP_USE_SHARED_ZEROPAGE) for anon
        # folios (v6.12+); try_to_map_unused_to_zeropage() skips compound pages
        zeropage = ctx.profile.split_zeropage and new_order == 0
        for h in heads:
            remove_migration_ptes(ctx, h, h, step, zeropage)
    for h in heads:
        if new_order >= 2:
            maybe_deferred_split(ctx, h)
    for h in heads:
        folio_put_refs(ctx, h, 1)
    return heads[0]


# --- khugepaged -------------------------------------------------------------------
@kfn("collapse_huge_page")
def collapse_huge_page(ctx: MmContext, proc: Process, vma: VMA, haddr: int) -> int:
    """MADV_COLLAPSE of one PMD range (mm/khugepaged.c madvise_collapse() ->
    hpage_collapse_scan_pmd() -> collapse_huge_page()); returns 0 or a
    negative errno, madvise_collapse_errno() of the scan result."""
    mm = proc.mm
    arch = ctx.arch
    lay = ctx.layout
    ps = ctx.ps
    nr = 1 << ctx.pmd_order
    pm = ctx.pm
    if mm.pt.get_pmd(haddr):
        return 0  # SCAN_PMD_MAPPED: counts as collapsed
    if mm.pt.tables.get(haddr >> ctx.g.pmd_shift) is None:
        ctx.mm_event("collapse_fail", haddr, "no PTE table")  # SCAN_PMD_NULL / SCAN_PMD_NONE
        return -EINVAL
    # hpage_collapse_scan_pmd(): ptep_get() of every entry under the PTE lock
    none = unmapped = 0
    writable = False
    for k in range(nr):
        pte = arch.ptep_get(mm, haddr + k * ps)
        if lay.is_swap_pte(pte):
            unmapped += 1  # no max_ptes_swap limit for MADV_COLLAPSE
            continue
        if pte == 0 or (pte & PTE_SPECIAL and ctx.pte_pfn(pte) == pm.zero_pfn):
            none += 1  # pte_none_or_zero(): no max_ptes_none limit for MADV_COLLAPSE
            continue
        if pte & PTE_WRITE:
            writable = True
        if pte & PTE_SPECIAL:
            ctx.mm_event("collapse_fail", haddr, "entry not suitable")  # SCAN_PAGE_NULL
            return -EINVAL
        if not folio_is_anon(ctx, ctx.arch.folios.folio_of(ctx.pte_pfn(pte))[0]):
            ctx.mm_event("collapse_fail", haddr, "not anonymous")  # SCAN_PAGE_ANON
            return -EINVAL
    if not writable and not ctx.profile.collapse_readonly:
        # SCAN_PAGE_RO, also when every entry is none or the zero page; since v7.0 (row
        # collapse_readonly: 'mm: drop all references of writable and SCAN_PAGE_RO')
        # collapse_scan_pmd() no longer looks at pte_write(), and MADV_COLLAPSE (no
        # max_ptes_none limit) collapses a read-only range, or one of zero pages only
        # if the VMA has an anon_vma (below)
        ctx.mm_event("collapse_fail", haddr, "no writable entry")
        return -EINVAL
    new = pm.alloc_folio(ctx.pmd_order, 0)  # alloc_charge_folio()
    if new < 0:
        ctx.mm_event("collapse_fail", haddr, "no PMD-sized folio free")
        return -ENOMEM  # SCAN_ALLOC_HUGE_PAGE_FAIL
    if not vma.anon_vma:
        # collapse_huge_page() -> hugepage_vma_revalidate(expect_anon = true): a VMA that
        # only ever mapped the zero page has no anon_vma -- SCAN_PAGE_ANON, EINVAL (7.3.4 4K:
        # random-1-265, a range of zero pages and none entries; 6.12 stops at SCAN_PAGE_RO)
        pm.free_folio(new)
        ctx.mm_event("collapse_fail", haddr, "no anon_vma")
        return -EINVAL
    ctx.mm_event("folio_alloc", haddr, ctx.pmd_order)
    ctx.cost("mm_folio", haddr, 1)
    if unmapped:
        # __collapse_huge_page_swapin(): ptep_get_lockless() of every entry
        for k in range(nr):
            a = haddr + k * ps
            orig = arch.ptep_get_lockless(mm, a)
            if lay.is_swap_pte(orig) and do_swap_page(ctx, proc, vma, a, orig, False):
                ctx.mm_event("collapse_fail", haddr, "swap-in failed")
                pm.free_folio(new)
                return -EINVAL  # SCAN_FAIL
    # pmdp_collapse_flush(): detach the table, flush the range
    ctx.log.pmd_write(haddr, 0, 0, "collapse_detach", mm.name)
    arch.flush_tlb_user_range(mm, haddr, haddr + ctx.pmd_size)
    for k in range(nr):
        arch.ptep_get(mm, haddr + k * ps)  # __collapse_huge_page_isolate() reads each entry
    for k in range(nr):
        arch.ptep_get(mm, haddr + k * ps)  # so does __collapse_huge_page_copy()
    ctx.cost("mm_copy_page", haddr, nr - none)
    ctx.cost("mm_zero_page", haddr, none)
    # __collapse_huge_page_copy(): each page's contents go to its new place
    fl = pm.flags
    for k in range(nr):
        pte = mm.pt.get(haddr + k * ps)
        if pte and lay.pte_present(pte) and fl[ctx.pte_pfn(pte) - pm.base] & P_DATA:
            fl[new - pm.base + k] |= P_DATA
    _collapse_copy_succeeded(ctx, proc, vma, haddr)
    mm.pt.drop_table(haddr >> ctx.g.pmd_shift)  # the old table is freed
    entry = ctx.maybe_mkwrite(pte_mkdirty(mk_pmd(ctx, new, vma.page_prot)), vma)
    folio_add_new_anon_rmap(ctx, new, nr, vma, haddr, True, pmd=True)
    set_pmd_at(ctx, mm, haddr, entry)
    return 0


def _collapse_copy_succeeded(ctx: MmContext, proc: Process, vma: VMA, haddr: int) -> None:
    mm = proc.mm
    arch = ctx.arch
    ps = ctx.ps
    pm = ctx.pm
    end = haddr + ctx.pmd_size
    addr = haddr
    batched = ctx.profile.batched_mprotect  # clear_ptes() exists
    while addr < end:
        nr = 1
        pte = arch.ptep_get(mm, addr)
        if pte == 0:
            addr += ps
            continue
        pfn = ctx.pte_pfn(pte)
        if pfn == pm.zero_pfn:
            arch.ptep_get_and_clear(mm, addr)  # ptep_clear()
            addr += ps
            continue
        head, n = arch.folios.folio_of(pfn)
        if n > 1 and batched:
            nr = folio_pte_batch(ctx, mm, head, n, addr, pte, (end - addr) // ps)
            arch.clear_ptes(mm, addr, nr)
        else:
            arch.ptep_get_and_clear(mm, addr)
        folio_remove_rmap_ptes(ctx, head, pfn, nr, addr)
        folio_put_refs(ctx, head, nr)
        addr += nr * ps
