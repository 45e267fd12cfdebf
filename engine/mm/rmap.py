# SPDX-License-Identifier: GPL-2.0-only
"""Reverse-map and reference bookkeeping (mm/rmap.c, mm/swap.c).

Mapcounts are kept per page (``page_mapcount``) and per folio (all PTE and
PMD mappings, ``folio_mapcount``); every PTE or PMD mapping holds one folio
reference. PG_anon_exclusive is per page. A large anon folio that loses
some but not all of its mappings is queued for deferred split
(``__folio_remove_rmap`` -> ``deferred_split_folio(folio, true)``).

Each update records an ``mm`` event (what changed) and an ``mm_page`` cost
counter for the per-page work the kernel does in these helpers.
"""

from __future__ import annotations

from array import array

from engine.mm.base import MmContext
from engine.mm.physmem import (
    F_ACTIVE,
    F_ANON,
    F_DEFERRED,
    F_LRU,
    F_PARTIAL,
    F_REFERENCED,
    F_SWAPBACKED,
    F_UPTODATE,
    P_ANON_EXCLUSIVE,
)
from engine.mm.process import Process
from engine.mm.vma import VM_SHARED, VM_WRITE, VMA
from engine.pte import PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_VALID, PTE_WRITE

_NOT_EXCLUSIVE = 0xFFFFFFFF & ~P_ANON_EXCLUSIVE


# --- anon_vma -----------------------------------------------------------------
def anon_vma_prepare(ctx: MmContext, vma: VMA) -> None:
    if not vma.anon_vma:
        av = ctx.next_id("anon_vma")
        vma.anon_vma = av
        vma.avc = (*vma.avc, av)
        ctx.vmas_changed()
        ctx.mm_event("anon_vma_prepare", vma.start, av)


# --- adding mappings ------------------------------------------------------------
def folio_add_new_anon_rmap(ctx: MmContext, head: int, nr: int, vma: VMA, addr: int, exclusive: bool,
                            pmd: bool = False) -> None:
    """A freshly allocated folio becomes anonymous, mapped at addr."""
    pm = ctx.pm
    i = head - pm.base
    pm.mapping[i] = vma.anon_vma
    pm.index[i] = ((addr - vma.start) >> ctx.pshift) + vma.pgoff  # vma.linear_index(addr), inline
    fl = pm.flags
    if nr == 1 and not pmd:
        # an order-0 fault: the loops below for one page, without the loops
        fl[i] |= (F_ANON | F_SWAPBACKED | F_UPTODATE | F_LRU
                  | (P_ANON_EXCLUSIVE if exclusive else 0))
        pm.mapcount[i] = 1
        pm.lmap[i] = 1
        log = ctx.log  # ctx.mm_event() and ctx.cost() without their extra call
        log.mm("rmap_add_new_anon", addr, 1)
        log.mm_cost("mm_page", addr, 1)
        return
    fl[i] |= F_ANON | F_SWAPBACKED | F_UPTODATE | F_LRU
    mc = pm.mapcount
    if pmd:
        pm.entire[head] = 1
        pm.lmap[i] = 1
    else:
        for j in range(i, i + nr):
            mc[j] = 1
        pm.lmap[i] = nr
    if exclusive:
        for j in range(i, i + nr):
            fl[j] |= P_ANON_EXCLUSIVE
    ctx.mm_event("rmap_add_new_anon", addr, nr)
    ctx.cost("mm_page", addr, 1 if pmd else nr)


def folio_add_anon_rmap_ptes(ctx: MmContext, head: int, pfn: int, nr: int, vma: VMA, addr: int,
                             exclusive: bool) -> None:
    pm = ctx.pm
    i = pfn - pm.base
    mc = pm.mapcount
    fl = pm.flags
    for j in range(i, i + nr):
        mc[j] += 1
        if exclusive:
            fl[j] |= P_ANON_EXCLUSIVE
    pm.lmap[head - pm.base] += nr
    ctx.mm_event("rmap_add_anon", addr, nr)
    ctx.cost("mm_page", addr, nr)


def folio_add_file_rmap_ptes(ctx: MmContext, head: int, pfn: int, nr: int, addr: int) -> None:
    pm = ctx.pm
    i = pfn - pm.base
    mc = pm.mapcount
    for j in range(i, i + nr):
        mc[j] += 1
    pm.lmap[head - pm.base] += nr
    ctx.mm_event("rmap_add_file", addr, nr)
    ctx.cost("mm_page", addr, nr)


def folio_add_file_rmap_pmd(ctx: MmContext, head: int, addr: int) -> None:
    pm = ctx.pm
    pm.entire[head] = pm.entire.get(head, 0) + 1
    pm.lmap[head - pm.base] += 1
    ctx.mm_event("rmap_add_file_pmd", addr, 1)
    ctx.cost("mm_page", addr, 1)


def folio_try_dup_anon_rmap_ptes(ctx: MmContext, head: int, pfn: int, nr: int, addr: int) -> int:
    """fork: the child maps the same pages, which stop being exclusive.
    (Pinned pages would make this fail with -EBUSY; pins are not modelled.)"""
    pm = ctx.pm
    i = pfn - pm.base
    mc = pm.mapcount
    fl = pm.flags
    if nr == 1:
        fl[i] &= _NOT_EXCLUSIVE
        mc[i] += 1
    elif nr < 16:
        for j in range(i, i + nr):
            fl[j] &= ~P_ANON_EXCLUSIVE
            mc[j] += 1
    else:  # the same, a slice at a time
        fl[i:i + nr] = array("I", map(_NOT_EXCLUSIVE.__and__, fl[i:i + nr]))
        mc[i:i + nr] = array("i", map((1).__add__, mc[i:i + nr]))
    pm.lmap[head - pm.base] += nr
    log = ctx.log  # ctx.mm_event() and ctx.cost() without their extra call: once per fork batch
    log.mm("rmap_dup_anon", addr, nr)
    log.mm_cost("mm_page", addr, nr)
    return 0


def folio_dup_pmd(ctx: MmContext, head: int, addr: int) -> None:
    """folio_try_dup_anon_rmap_pmd / folio_dup_file_rmap_pmd."""
    pm = ctx.pm
    i = head - pm.base
    pm.entire[head] = pm.entire.get(head, 0) + 1
    pm.lmap[i] += 1
    if pm.flags[i] & F_ANON:
        n = 1 << ctx.arch.folios.order_of(head)
        fl = pm.flags
        for j in range(i, i + n):
            fl[j] &= ~P_ANON_EXCLUSIVE
    ctx.mm_event("rmap_dup_pmd", addr, 1)
    ctx.cost("mm_page", addr, 1)


# --- removing mappings ----------------------------------------------------------
def folio_remove_rmap_ptes(ctx: MmContext, head: int, pfn: int, nr: int, addr: int) -> None:
    pm = ctx.pm
    i = pfn - pm.base
    mc = pm.mapcount
    if nr == 1:
        mc[i] -= 1
    elif nr < 16:
        for j in range(i, i + nr):
            mc[j] -= 1
    else:
        mc[i:i + nr] = array("i", map((-1).__add__, mc[i:i + nr]))
    h = head - pm.base
    pm.lmap[h] -= nr
    log = ctx.log  # ctx.mm_event() and ctx.cost() without their extra call: once per zap batch
    log.mm("rmap_remove", addr, nr)
    log.mm_cost("mm_page", addr, nr)
    if pm.flags[h] & F_ANON and pm.lmap[h] and ctx.arch.folios.order_of(head) >= 2:
        maybe_deferred_split(ctx, head)


def folio_remove_rmap_pmd(ctx: MmContext, head: int, addr: int) -> None:
    pm = ctx.pm
    c = pm.entire.get(head, 0) - 1
    if c > 0:
        pm.entire[head] = c
    else:
        pm.entire.pop(head, None)
    pm.lmap[head - pm.base] -= 1
    ctx.mm_event("rmap_remove_pmd", addr, 1)
    ctx.cost("mm_page", addr, 1)
    maybe_deferred_split(ctx, head)


def maybe_deferred_split(ctx: MmContext, head: int) -> None:
    pm = ctx.pm
    h = head - pm.base
    fl = pm.flags[h]
    if not fl & F_ANON or fl & F_PARTIAL:
        return
    order = ctx.arch.folios.order_of(head)
    if order < 2 or not pm.lmap[h] or pm.entire.get(head):
        return
    n = 1 << order
    if 0 in pm.mapcount[h:h + n]:
        deferred_split_folio(ctx, head)


def deferred_split_folio(ctx: MmContext, head: int) -> None:
    pm = ctx.pm
    pm.flags[head - pm.base] |= F_PARTIAL | F_DEFERRED
    pm.deferred[head] = None
    ctx.mm_event("deferred_split_queue", head, ctx.arch.folios.order_of(head))


# --- references ---------------------------------------------------------------------
def folio_ref_add(ctx: MmContext, head: int, n: int) -> None:
    ctx.pm.ref[head - ctx.pm.base] += n


def folio_put_refs(ctx: MmContext, head: int, n: int) -> None:
    pm = ctx.pm
    i = head - pm.base
    r = pm.ref[i] - n
    pm.ref[i] = r
    if r == 0:
        free_folio(ctx, head)
    elif r < 0:
        ctx.log.invariant_violation("refcount", head, f"folio {head:#x} refcount {r}")


def free_folio(ctx: MmContext, head: int) -> None:
    """__folio_put(): the folio goes back to the buddy allocator."""
    order = ctx.arch.folios.order_of(head)
    if head in ctx.pm.deferred:
        ctx.mm_event("deferred_split_unqueue", head, order)
    ctx.pm.free_folio(head)
    ctx.mm_event("folio_free", head, order)
    ctx.cost("mm_folio", head, 1)


# --- LRU hints ----------------------------------------------------------------------
def folio_mark_accessed(ctx: MmContext, head: int) -> None:
    pm = ctx.pm
    i = head - pm.base
    if pm.flags[i] & F_REFERENCED:
        pm.flags[i] |= F_ACTIVE
    pm.flags[i] |= F_REFERENCED


def folio_is_anon(ctx: MmContext, head: int) -> bool:
    return bool(ctx.pm.flags[head - ctx.pm.base] & F_ANON)


def folio_mapcount(ctx: MmContext, head: int) -> int:
    return ctx.pm.lmap[head - ctx.pm.base]


def unqueue_deferred(ctx: MmContext, head: int) -> None:
    pm = ctx.pm
    if head in pm.deferred:
        del pm.deferred[head]
        pm.flags[head - pm.base] &= ~(F_DEFERRED | F_PARTIAL)
        ctx.mm_event("deferred_split_unqueue", head, ctx.arch.folios.order_of(head))


def page_anon_exclusive(ctx: MmContext, pfn: int) -> bool:
    return bool(ctx.pm.flags[pfn - ctx.pm.base] & P_ANON_EXCLUSIVE)


def set_anon_exclusive(ctx: MmContext, pfn: int, nr: int = 1) -> None:
    fl = ctx.pm.flags
    i = pfn - ctx.pm.base
    for j in range(i, i + nr):
        fl[j] |= P_ANON_EXCLUSIVE


# --- rmap queries -------------------------------------------------------------
def folio_mapped_in(ctx: MmContext, head: int, nr: int) -> list[tuple[Process, VMA, int, int, int]]:
    """rmap windows of the folio that actually hold a present entry of it."""
    out = []
    for p, v, a, first, cnt in ctx.folio_addresses(head, nr):
        pt = p.mm.pt
        for k in range(cnt):
            pte = pt.get(a + k * ctx.ps)
            if pte & PTE_VALID or ctx.layout.pte_present(pte):
                if ctx.pte_pfn(pte) == head + first + k:
                    out.append((p, v, a, first, cnt))
                    break
    return out


def can_change_pte_writable(ctx: MmContext, vma: VMA, addr: int, pte: int) -> bool:
    """can_change_pte_writable() (mm/mprotect.c)."""
    if not vma.flags & VM_WRITE or ctx.layout.pte_protnone(pte):
        return False
    if not vma.flags & VM_SHARED:
        if pte & PTE_SPECIAL:
            return False
        pfn = ctx.pte_pfn(pte)
        head, _ = ctx.arch.folios.folio_of(pfn)
        return folio_is_anon(ctx, head) and page_anon_exclusive(ctx, pfn)
    return bool(pte & PTE_DIRTY) or (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE
