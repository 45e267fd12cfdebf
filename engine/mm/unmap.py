# SPDX-License-Identifier: GPL-2.0-only
"""Unmapping a folio from every page table that maps it (mm/rmap.c
try_to_unmap / try_to_unmap_one) and the deferred TLB flush batch.

The rmap walk (page_vma_mapped_walk) reads each candidate entry with
``ptep_get``. try_to_unmap_one clears with ``get_and_clear_ptes(nr)`` where
the kernel has it (v6.17+), ``ptep_get_and_clear`` before; nr > 1 only for
lazyfree anon folios (``batched_unmap_lazyfree``) and file folios
(``batched_unmap_file``), bounded by the PMD and the VMA
(folio_unmap_pte_batch). Swap-backed anon entries are replaced one by one
with swap entries. With TTU_BATCH_FLUSH the TLBIs go out immediately without
their DSB (arch_tlbbatch_add_pending) and try_to_unmap_flush() adds the DSB.
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.batch import folio_pte_batch
from engine.mm.physmem import F_ANON, F_DIRTY, F_SWAPBACKED, P_ANON_EXCLUSIVE
from engine.mm.pmd import split_huge_pmd
from engine.mm.process import Process
from engine.mm.rmap import folio_put_refs, folio_remove_rmap_ptes
from engine.mm.swap import SWP_TYPE
from engine.mm.vma import VMA
from engine.pte import PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_WRITE

TTU_BATCH_FLUSH = 1
TTU_SPLIT_HUGE_PMD = 2
TTU_SYNC = 4  # PVMW_SYNC: take the PTE lock at once, without reading the entry first


# --- deferred TLB flush batch (arch_tlbbatch_*) --------------------------------------
def set_tlb_ubc_flush_pending(ctx: MmContext, proc: Process, addr: int, nr: int) -> None:
    """arch_tlbbatch_add_pending(): the TLBIs go out now, without their DSB."""
    ctx.arch.flush_tlb_range(proc.mm, addr, addr + nr * ctx.ps, ctx.ps, True, 3, sync=False)
    ctx.ubc_pending = True


def try_to_unmap_flush(ctx: MmContext) -> None:
    """try_to_unmap_flush() -> arch_tlbbatch_flush(): the DSB that completes them."""
    if ctx.ubc_pending:
        log = ctx.log
        log.call("arch_tlbbatch_flush", ())
        log.dsb("ish")
        log.ret("arch_tlbbatch_flush", None)
        ctx.ubc_pending = False


# --- the rmap walk ------------------------------------------------------------------
class PvmwLock:
    """Whether a page_vma_mapped_walk() holds the page-table lock when it reaches next_pte:
    map_pte() takes it when it finds a present entry (or at once with PVMW_SYNC); otherwise
    the walk steps on unlocked, and since v7.x (row pvmw_lockless) reads those entries with
    ptep_get_lockless(). One per walk of one mapping of a folio."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held = False


def pvmw_pte(ctx: MmContext, proc: Process, va: int, pfn: int, first: bool, sync: bool,
             lock: PvmwLock) -> int:
    """page_vma_mapped_walk()'s step to one entry (mm/page_vma_mapped.c): the
    entry if it is a present, normal mapping of pfn, else 0. ``first``: the
    walk's first entry (and an entry that starts a page table: the walk
    restarts there), which map_pte() reads -- with ptep_get(), or
    ptep_get_lockless() since v7.x -- unless PVMW_SYNC (then it only takes the
    lock); later entries are reached by next_pte's ``pte_none()`` loop, which
    reads with ptep_get_lockless() while ``lock`` is not held (v7.x) and
    ptep_get() otherwise. Then check_pte() reads the entry again with ptep_get()."""
    pt = proc.mm.pt
    if pt.tables.get(va >> ctx.g.pmd_shift) is None:
        return 0
    mm = proc.mm
    arch = ctx.arch
    get = arch.ptep_get
    lockless = ctx.profile.pvmw_lockless
    if first or not va & (ctx.pmd_size - 1):  # map_pte(), after `restart`
        if not sync:
            ent = arch.ptep_get_lockless(mm, va) if lockless else get(mm, va)
            if not ctx.layout.pte_present(ent):
                lock.held = False
                return 0
    elif not (arch.ptep_get_lockless if lockless and not lock.held else get)(mm, va):  # next_pte
        return 0
    lock.held = True
    pte = get(mm, va)  # check_pte()
    if ctx.layout.pte_present(pte) and not pte & PTE_SPECIAL and ctx.pte_pfn(pte) == pfn:
        return pte
    return 0


def folio_pmd_walk(ctx: MmContext, head: int) -> list[tuple[Process, VMA, int]]:
    """The PMD mappings of a PMD-sized folio."""
    out = []
    for p, v, a, first, cnt in ctx.folio_addresses(head, 1 << ctx.pmd_order):
        if first == 0 and cnt == 1 << ctx.pmd_order:
            pmd = p.mm.pt.get_pmd(a)
            if pmd and ctx.pte_pfn(pmd) == head:
                out.append((p, v, a))
    return out


@kfn("try_to_unmap")
def try_to_unmap(ctx: MmContext, head: int, flags: int) -> bool:
    """True if every mapping is gone; False if a redirtied lazyfree folio
    was mapped back (the walk aborts)."""
    nr = 1 << ctx.arch.folios.order_of(head)
    if flags & TTU_SPLIT_HUGE_PMD:
        for p, v, a in folio_pmd_walk(ctx, head):
            split_huge_pmd(ctx, p, v, a)
    pm = ctx.pm
    fl = pm.flags[head - pm.base]
    batch = nr > 1 and (
        (ctx.profile.batched_unmap_lazyfree and fl & F_ANON and not fl & F_SWAPBACKED)
        or (ctx.profile.batched_unmap_file and not fl & F_ANON))
    ps = ctx.ps
    sync = bool(flags & TTU_SYNC)
    for p, v, a, first, cnt in ctx.folio_addresses(head, nr):
        k = 0
        lock = PvmwLock()
        while k < cnt:
            va = a + k * ps
            pfn = head + first + k
            pte = pvmw_pte(ctx, p, va, pfn, k == 0, sync, lock)
            if not pte:
                k += 1
                continue
            n = 1
            if batch:
                end = min((va | (ctx.pmd_size - 1)) + 1, v.end)
                n = folio_pte_batch(ctx, p.mm, head, nr, va, pte, (end - va) // ps)
            if try_to_unmap_one(ctx, p, v, va, head, pfn, n, flags) < 0:
                return False
            k += n
    return True


def try_to_unmap_one(ctx: MmContext, proc: Process, vma: VMA, addr: int, head: int, pfn: int, nr: int,
                     flags: int) -> int:
    """Returns -1 if a lazyfree folio turned out dirty and was mapped back."""
    mm = proc.mm
    arch = ctx.arch
    pm = ctx.pm
    arch.ptep_get(mm, addr)  # mm/rmap.c try_to_unmap_one(): pteval = ptep_get(pvmw.pte)
    if ctx.profile.batched_mprotect:  # get_and_clear_ptes() exists
        pteval = arch.get_and_clear_ptes(mm, addr, nr)
    else:
        pteval = arch.ptep_get_and_clear(mm, addr)
    if flags & TTU_BATCH_FLUSH:
        set_tlb_ubc_flush_pending(ctx, proc, addr, nr)
    else:
        arch.flush_tlb_user_range(mm, addr, addr + nr * ctx.ps)
    i = head - pm.base
    if pteval & PTE_DIRTY or (pteval & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:
        pm.flags[i] |= F_DIRTY  # folio_mark_dirty()
    fl = pm.flags[i]
    if fl & F_ANON:
        if not fl & F_SWAPBACKED:
            if fl & F_DIRTY:
                # a lazyfree folio written again: map it back and keep it
                arch.set_ptes(mm, addr, pteval, nr)
                pm.flags[i] |= F_SWAPBACKED
                return -1
        else:
            slot = ctx.swap.slot_of[head] + (pfn - head)
            ctx.swap.dup(slot)  # swap_duplicate()
            j = pfn - pm.base
            excl = bool(pm.flags[j] & P_ANON_EXCLUSIVE)
            pm.flags[j] &= ~P_ANON_EXCLUSIVE
            arch.set_ptes(mm, addr, ctx.layout.swp_entry_to_pte(SWP_TYPE, slot, exclusive=excl), 1)
    folio_remove_rmap_ptes(ctx, head, pfn, nr, addr)
    folio_put_refs(ctx, head, nr)
    return nr
