# SPDX-License-Identifier: GPL-2.0-only
"""Reclaim: one pass over the LRU (mm/vmscan.c shrink_folio_list, mm/rmap.c
folio_referenced_one).

Aging harvests access flags through the reverse map. Before v7.0 each PTE
gets ``ptep_clear_flush_young`` -- on a CONT entry arm64 clears the whole
block and flushes it once, so later entries of the block read old; with
``batched_reclaim_young`` one ``clear_flush_young_ptes(nr)`` covers a
folio_pte_batch. A referenced folio stays (and is activated if referenced
twice); an old one is reclaimed: anon folios go to swap (whole, on kernels
with ``mthp_swap``, when contiguous slots exist; split otherwise), lazyfree
anon folios are discarded unless written again, clean file folios are
dropped from the page cache and dirty ones written back. The swap device is
synchronous (zram-like): a swapped folio is freed in the same pass.

A global pass first runs the deferred-split shrinker: queued folios that are
partially mapped are split and their unmapped pages freed.
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.batch import folio_pte_batch
from engine.mm.filemap import filemap_remove_folio
from engine.mm.huge import split_folio
from engine.mm.physmem import (
    F_ACTIVE,
    F_ANON,
    F_DIRTY,
    F_PAGECACHE,
    F_PARTIAL,
    F_REFERENCED,
    F_RESERVED,
    F_SWAPBACKED,
    F_SWAPCACHE,
)
from engine.mm.process import Process
from engine.mm.rmap import folio_put_refs, unqueue_deferred
from engine.mm.swapcache import add_to_swap_cache, delete_from_swap_cache
from engine.mm.unmap import (
    TTU_BATCH_FLUSH,
    TTU_SPLIT_HUGE_PMD,
    TTU_SYNC,
    PvmwLock,
    folio_pmd_walk,
    pvmw_pte,
    try_to_unmap,
    try_to_unmap_flush,
)
from engine.pte import PTE_AF, PTE_SPECIAL


# --- aging -------------------------------------------------------------------------
@kfn("folio_referenced")
def folio_referenced(ctx: MmContext, head: int) -> int:
    nr = 1 << ctx.arch.folios.order_of(head)
    arch = ctx.arch
    ps = ctx.ps
    referenced = 0
    for p, _v, a in folio_pmd_walk(ctx, head):
        pmd = p.mm.pt.get_pmd(a)
        if pmd & PTE_AF:  # pmdp_clear_flush_young()
            p.mm.pt.pmd_leaves[a >> ctx.g.pmd_shift] = pmd & ~PTE_AF
            ctx.log.pmd_write(a, pmd, pmd & ~PTE_AF, "cmpxchg", p.mm.name)
            arch.flush_tlb_page(p.mm, a, sync=False)
            referenced += 1
    batched = ctx.profile.batched_reclaim_young and nr > 1
    for p, v, a, first, cnt in ctx.folio_addresses(head, nr):
        k = 0
        lock = PvmwLock()
        while k < cnt:
            va = a + k * ps
            pte = pvmw_pte(ctx, p, va, head + first + k, k == 0, False, lock)
            if not pte:
                k += 1
                continue
            n = 1
            if batched:
                end = min((va | (ctx.pmd_size - 1)) + 1, v.end)
                n = folio_pte_batch(ctx, p.mm, head, nr, va, pte, (end - va) // ps)
                young = arch.clear_flush_young_ptes(p.mm, va, n)
            else:
                young = arch.ptep_clear_flush_young(p.mm, va)
            if young:
                referenced += 1
            k += n
    return referenced


# --- shrinking one folio ------------------------------------------------------------
def add_to_swap(ctx: MmContext, head: int) -> int:
    """folio_alloc_swap(): slots for the whole folio, or -1."""
    order = ctx.arch.folios.order_of(head)
    # arch/arm64/Kconfig: ARCH_WANTS_THP_SWAP if ARM64_4K_PAGES -- with 16K and 64K
    # pages CONFIG_THP_SWAP is off and folio_alloc_swap() refuses every large folio
    # (found by ptlab crosscheck on Debian's 7.3 16K build: the folio is split and its
    # pages swapped one by one)
    if order and ctx.g.page_size != 4096:
        return -1
    if order and not (ctx.profile.mthp_swap or order == ctx.pmd_order):
        return -1  # before v6.10 only PMD-sized folios could be swapped whole
    slot = ctx.swap.alloc(order)
    if slot < 0:
        return -1
    add_to_swap_cache(ctx, head, slot, 1 << order)
    ctx.pm.set_flag(head, F_DIRTY)  # swap content must be written
    return slot


def _pmd_mapped(ctx: MmContext, head: int) -> bool:
    return bool(ctx.pm.entire.get(head))


def shrink_folio(ctx: MmContext, head: int, ignore_references: bool) -> str:
    """One folio of shrink_folio_list(): 'freed', 'kept', 'activated' or 'split'."""
    pm = ctx.pm
    i = head - pm.base
    fl = pm.flags[i]
    if fl & F_RESERVED or not pm.ref[i]:
        return "kept"
    anon = bool(fl & F_ANON)
    if not ignore_references:
        refs = folio_referenced(ctx, head)
        referenced_folio = bool(pm.flags[i] & F_REFERENCED)
        pm.flags[i] &= ~F_REFERENCED
        if refs:
            pm.flags[i] |= F_REFERENCED
            if referenced_folio or refs > 1:
                pm.flags[i] |= F_ACTIVE
                return "activated"
            return "kept"
        if referenced_folio and not anon and pm.flags[i] & F_DIRTY:
            return "kept"  # FOLIOREF_RECLAIM_CLEAN of a dirty folio
    if not anon and fl & F_SWAPBACKED:
        return "kept"  # shmem: not swapped in this model
    order = ctx.arch.folios.order_of(head)
    if anon and fl & F_SWAPBACKED and not fl & F_SWAPCACHE:
        if fl & F_PARTIAL and order:
            return _split_and_shrink(ctx, head, ignore_references)
        if add_to_swap(ctx, head) < 0:
            if order:
                return _split_and_shrink(ctx, head, ignore_references)
            return "kept"  # swap full
    pm.ref[i] += 1  # folio_isolate_lru()
    flags = TTU_BATCH_FLUSH | (TTU_SPLIT_HUGE_PMD if _pmd_mapped(ctx, head) else 0)
    if order and ctx.profile.ttu_sync_large_reclaim:
        flags |= TTU_SYNC  # mm/vmscan.c shrink_folio_list(): large folios unmap with TTU_SYNC
    if pm.lmap[i] and not try_to_unmap(ctx, head, flags):
        try_to_unmap_flush(ctx)
        folio_put_refs(ctx, head, 1)
        return "kept"
    try_to_unmap_flush(ctx)
    if pm.lmap[i]:
        folio_put_refs(ctx, head, 1)
        return "kept"
    fl = pm.flags[i]
    if fl & F_DIRTY and (not anon or fl & F_SWAPBACKED):
        # pageout(): the synchronous device completes the write at once
        pm.flags[i] &= ~F_DIRTY
        ctx.mm_event("pageout", head, 1 << order)
        if not anon:
            folio_put_refs(ctx, head, 1)
            return "kept"  # written back; reclaimable on a later pass
    # __remove_mapping()
    if fl & F_SWAPCACHE:
        delete_from_swap_cache(ctx, head)
    elif fl & F_PAGECACHE:
        filemap_remove_folio(ctx, ctx.pc.files[pm.mapping[i]], head)
    ctx.mm_event("reclaimed", head, 1 << order)
    folio_put_refs(ctx, head, 1)
    return "freed"


def _split_and_shrink(ctx: MmContext, head: int, ignore_references: bool) -> str:
    n = 1 << ctx.arch.folios.order_of(head)
    first = split_folio(ctx, head, 0)
    if first < 0:
        return "kept"
    # the head goes on as an order-0 folio; the tails are queued on folio_list and
    # reclaimed next, last page first (seen by ptlab crosscheck on Debian's 7.3 16K
    # build: a 4-page folio's swap slots come out 1, 4, 3, 2)
    for h in (first, *range(first + n - 1, first, -1)):
        if ctx.pm.ref[h - ctx.pm.base] and ctx.pm.lmap[h - ctx.pm.base]:
            shrink_folio(ctx, h, ignore_references)
    return "split"


@kfn("shrink_folio_list")
def reclaim_folios(ctx: MmContext, heads: list[int], ignore_references: bool = False) -> int:
    freed = 0
    for h in heads:
        # an earlier folio's split or free may have changed this one
        if ctx.pm.ref[h - ctx.pm.base] and ctx.arch.folios.folio_of(h)[0] == h:
            if shrink_folio(ctx, h, ignore_references) == "freed":
                freed += 1
    return freed


# --- the passes ---------------------------------------------------------------------
@kfn("deferred_split_scan")
def deferred_split_scan(ctx: MmContext) -> int:
    split = 0
    pm = ctx.pm
    for head in list(pm.deferred):
        if head not in pm.deferred:
            continue
        if pm.flags[head - pm.base] & F_PARTIAL and pm.lmap[head - pm.base]:
            if split_folio(ctx, head, 0) >= 0:
                split += 1
        else:
            unqueue_deferred(ctx, head)
    return split


def lru_folios(ctx: MmContext, procs: list[Process], start: int = 0, end: int = 1 << 64,
               include_unmapped: bool = True) -> list[int]:
    """The folios a pass visits: mapped ones in address order, then (for a
    global pass) page-cache folios nobody maps."""
    seen: dict[int, None] = {}
    folios = ctx.arch.folios
    pm = ctx.pm
    for p in procs:
        pt = p.mm.pt
        for v in p.vmas_in(start, end):
            s, e = max(start, v.start), min(end, v.end)
            for key in sorted(k for k in pt.pmd_leaves if s >> ctx.g.pmd_shift <= k
                              <= (e - 1) >> ctx.g.pmd_shift):
                pmd = pt.pmd_leaves[key]
                if ctx.layout.pte_present(pmd) and not pmd & PTE_SPECIAL:
                    seen.setdefault(ctx.pte_pfn(pmd), None)
            for _va, pte in pt.iter_present(s, e):
                if ctx.layout.pte_present(pte) and not pte & PTE_SPECIAL:
                    seen.setdefault(folios.folio_of(ctx.pte_pfn(pte))[0], None)
    if include_unmapped:
        for _fid, f in sorted(ctx.pc.files.items()):
            last = -1
            for idx in range(f.npages):
                h = f.cache[idx] - 1
                if h >= 0 and h != last:
                    last = h
                    if not pm.lmap[h - pm.base]:
                        seen.setdefault(h, None)
    return list(seen)


@kfn("reclaim")
def reclaim_pass(ctx: MmContext, procs: list[Process], start: int, end: int, global_pass: bool) -> int:
    if global_pass:
        deferred_split_scan(ctx)
    heads = lru_folios(ctx, procs, start, end, include_unmapped=global_pass)
    return reclaim_folios(ctx, heads)
