# SPDX-License-Identifier: GPL-2.0-only
"""PMD-level mappings of PMD-sized folios (mm/huge_memory.c).

A PMD block descriptor is a PTE descriptor with the table bit clear
(pmd_mkhuge), kept in ``PageTable.pmd_leaves``; contpte is never involved.
What matters for contpte is how a PMD mapping turns into PTEs:
``__split_huge_pmd_locked`` invalidates the PMD (flush_pmd_tlb_range), then
maps the whole folio on a fresh table with one
``set_ptes(mm, haddr, ptep, entry, HPAGE_PMD_NR)`` -- every aligned block
comes out CONT without any fold. The huge zero page splits into per-PTE
special zero-page entries (set_pte_at each), which never fold.
"""

from __future__ import annotations

from engine.mm.base import VM_FAULT_FALLBACK, MmContext, kfn
from engine.mm.physmem import F_DIRTY, P_ANON_EXCLUSIVE
from engine.mm.process import Process
from engine.mm.rmap import (
    folio_add_anon_rmap_ptes,
    folio_add_file_rmap_pmd,
    folio_is_anon,
    folio_put_refs,
    folio_ref_add,
    folio_remove_rmap_pmd,
    page_anon_exclusive,
)
from engine.mm.swap import SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE
from engine.mm.vma import VM_NOHUGEPAGE, VM_WRITE, VMA
from engine.pte import PTE_AF, PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_TABLE_BIT, PTE_WRITE, pte_mkdirty
from engine.state.mmstruct import MMStruct


def pmd_dirty(pmd: int) -> bool:
    return bool(pmd & PTE_DIRTY) or (pmd & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE


def mk_pmd(ctx: MmContext, pfn: int, prot: int) -> int:
    return ctx.mk_pte(pfn, prot) & ~PTE_TABLE_BIT


def set_pmd_at(ctx: MmContext, mm: MMStruct, haddr: int, value: int) -> None:
    pt = mm.pt
    key = haddr >> ctx.g.pmd_shift
    old = pt.pmd_leaves.get(key, 0)
    if value:
        pt.drop_table(key)  # the (empty or withdrawn) table is replaced
        pt.pmd_leaves[key] = value
    else:
        pt.pmd_leaves.pop(key, None)
    ctx.log.pmd_write(haddr, old, value, "store", mm.name)


def pmdp_huge_get_and_clear(ctx: MmContext, mm: MMStruct, haddr: int) -> int:
    pt = mm.pt
    old = pt.pmd_leaves.pop(haddr >> ctx.g.pmd_shift, 0)
    ctx.log.pmd_write(haddr, old, 0, "xchg", mm.name)
    return old


def flush_pmd_tlb_range(ctx: MmContext, mm: MMStruct, haddr: int) -> None:
    ctx.arch.flush_tlb_range(mm, haddr, haddr + ctx.pmd_size, ctx.pmd_size, False, 2)


def pmdp_invalidate(ctx: MmContext, proc: Process, haddr: int) -> int:
    """pmdp_invalidate(): make the PMD invalid (but present) and flush it."""
    mm = proc.mm
    pt = mm.pt
    key = haddr >> ctx.g.pmd_shift
    old = pt.pmd_leaves.get(key, 0)
    new = ctx.layout.pte_mkinvalid(old)
    pt.pmd_leaves[key] = new
    ctx.log.pmd_write(haddr, old, new, "xchg", mm.name)
    flush_pmd_tlb_range(ctx, mm, haddr)
    return old


# --- splitting a PMD mapping ------------------------------------------------------
@kfn("__split_huge_pmd")
def split_huge_pmd(ctx: MmContext, proc: Process, vma: VMA, addr: int, freeze: bool = False) -> None:
    """__split_huge_pmd_locked(). With ``freeze`` (try_to_migrate_one()'s
    split_huge_pmd_address(..., true, folio)) an anon PMD becomes migration
    entries at once, written one by one with set_pte_at(), and the folio
    keeps no PTE mapping or reference from it."""
    mm = proc.mm
    haddr = addr & ~(ctx.pmd_size - 1)
    pmd = mm.pt.get_pmd(haddr)
    if not pmd:
        return
    pfn = ctx.pte_pfn(pmd)
    if pfn == ctx.pm.huge_zero_pfn:
        _split_huge_zero_page_pmd(ctx, proc, vma, haddr)
        return
    head = pfn
    if not folio_is_anon(ctx, head):
        # file THP: zap the PMD, later faults map PTEs from the page cache
        old = pmdp_huge_get_and_clear(ctx, mm, haddr)
        flush_pmd_tlb_range(ctx, mm, haddr)
        if pmd_dirty(old):
            ctx.pm.set_flag(head, F_DIRTY)
        folio_remove_rmap_pmd(ctx, head, haddr)
        folio_put_refs(ctx, head, 1)
        return
    old = pmdp_invalidate(ctx, proc, haddr)
    nr = 1 << ctx.pmd_order
    write = bool(old & PTE_WRITE)
    young = bool(old & PTE_AF)
    dirty = pmd_dirty(old)
    exclusive = page_anon_exclusive(ctx, head)
    if freeze:
        _freeze_huge_pmd(ctx, proc, haddr, head, old, exclusive)
        return
    folio_ref_add(ctx, head, nr - 1)
    folio_add_anon_rmap_ptes(ctx, head, head, nr, vma, haddr, exclusive)
    entry = ctx.mk_pte(head, vma.page_prot)
    if write:
        entry = ctx.pte_mkwrite(entry)
    if not young:
        entry &= ~PTE_AF
    if dirty:
        entry = pte_mkdirty(entry)
    # the new table is filled before pmd_populate() installs it
    key = haddr >> ctx.g.pmd_shift
    mm.pt.pmd_leaves.pop(key, None)
    mm.pt.table(haddr)
    ctx.arch.set_ptes(mm, haddr, entry, nr)
    folio_remove_rmap_pmd(ctx, head, haddr)  # its reference went to the PTEs above
    ctx.log.pmd_write(haddr, old, 0, "pmd_populate", mm.name)


def _freeze_huge_pmd(ctx: MmContext, proc: Process, haddr: int, head: int, old: int, exclusive: bool) -> None:
    mm = proc.mm
    nr = 1 << ctx.pmd_order
    pm = ctx.pm
    if exclusive:  # folio_try_share_anon_rmap_pmd(): every page loses AnonExclusive
        for j in range(head - pm.base, head - pm.base + nr):
            pm.flags[j] &= ~P_ANON_EXCLUSIVE
    if old & PTE_WRITE:
        kind = SWP_MIGRATION_WRITE
    elif exclusive:
        kind = SWP_MIGRATION_READ_EXCLUSIVE
    else:
        kind = SWP_MIGRATION_READ
    young = bool(old & PTE_AF)
    dirty = pmd_dirty(old)
    if dirty:
        pm.set_flag(head, F_DIRTY)
    key = haddr >> ctx.g.pmd_shift
    mm.pt.pmd_leaves.pop(key, None)
    mm.pt.table(haddr)
    ps = ctx.ps
    # imported here: migrate.py builds on this file (split_huge_pmd, set_pmd_at)
    from engine.mm.migrate import make_migration_pte

    for k in range(nr):
        ctx.arch.set_ptes(mm, haddr + k * ps, make_migration_pte(ctx, head + k, kind, young, dirty), 1)
    folio_remove_rmap_pmd(ctx, head, haddr)
    folio_put_refs(ctx, head, 1)  # if (freeze) put_page(page): the PMD's reference
    ctx.log.pmd_write(haddr, old, 0, "pmd_populate", mm.name)


def _split_huge_zero_page_pmd(ctx: MmContext, proc: Process, vma: VMA, haddr: int) -> None:
    mm = proc.mm
    pmdp_huge_get_and_clear(ctx, mm, haddr)
    flush_pmd_tlb_range(ctx, mm, haddr)
    mm.pt.table(haddr)
    entry = ctx.mk_pte(ctx.pm.zero_pfn, vma.page_prot) | PTE_SPECIAL
    ps = ctx.ps
    for k in range(1 << ctx.pmd_order):
        ctx.arch.set_ptes(mm, haddr + k * ps, entry, 1)


def split_vmas(ctx: MmContext, proc: Process, start: int, end: int) -> list[VMA]:
    """__split_vma() at start and end, with vma_adjust_trans_huge(): a PMD
    mapping never straddles a VMA boundary, so one that would is split."""
    pmd_mask = ctx.pmd_size - 1
    for b in (start, end):
        if b & pmd_mask and proc.mm.pt.get_pmd(b):
            v = proc.find_vma(b)
            if v is not None and v.start < b:
                split_huge_pmd(ctx, proc, v, b)
    return proc.split_range(start, end, ctx.pshift)


# --- mapping a PMD-sized page-cache folio ------------------------------------------------
@kfn("do_set_pmd")
def do_set_pmd(ctx: MmContext, proc: Process, vma: VMA, addr: int, head: int, write: bool) -> int:
    """mm/memory.c do_set_pmd(): map a PMD-sized page-cache folio with one PMD. Only
    a VMA with THP disabled refuses (set_pmd_vma_thp_disabled, 2b0f922323cc): the
    sysfs "enabled" setting is not consulted -- the large folio already exists."""
    haddr = addr & ~(ctx.pmd_size - 1)
    if ctx.profile.set_pmd_vma_thp_disabled and vma.flags & VM_NOHUGEPAGE:
        return VM_FAULT_FALLBACK  # vma_thp_disabled()
    if not ctx.thp.suitable_orders(vma, haddr, 1 << ctx.pmd_order):
        return VM_FAULT_FALLBACK  # thp_vma_suitable_order()
    if ctx.arch.folios.order_of(head) != ctx.pmd_order:
        return VM_FAULT_FALLBACK
    entry = mk_pmd(ctx, head, vma.page_prot)
    if write and vma.flags & VM_WRITE:
        entry = ctx.pte_mkwrite(pte_mkdirty(entry))
    folio_add_file_rmap_pmd(ctx, head, haddr)
    set_pmd_at(ctx, proc.mm, haddr, entry)
    return 0
