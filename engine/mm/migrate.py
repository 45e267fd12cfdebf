# SPDX-License-Identifier: GPL-2.0-only
"""Folio migration (mm/migrate.c, try_to_migrate_one in mm/rmap.c).

Unmapping replaces every PTE of the folio, one at a time, with a migration
entry: ``ptep_clear_flush`` (synchronous migration) or ``ptep_get_and_clear``
plus a deferred TLB flush (TTU_BATCH_FLUSH: arch_tlbbatch_add_pending issues
a no-sync TLBI per page, try_to_unmap_flush the final DSB) -- so a CONT block
is unfolded by the first of its entries. Migration entries keep the
young/dirty state (migration_entry_supports_ad() holds on arm64) and whether
the mapping was writable or anon-exclusive. ``remove_migration_ptes`` then
restores each entry with ``set_pte_at``; the last entry of a block restored
into a folio covering the block folds it again (contpte_try_fold).

A PMD-mapped folio is migrated with a PMD migration entry
(set_pmd_migration_entry / remove_migration_pmd).
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.physmem import (
    F_ANON,
    F_DIRTY,
    F_LRU,
    F_PAGECACHE,
    F_SWAPCACHE,
    P_ANON_EXCLUSIVE,
    P_DATA,
)
from engine.mm.pmd import mk_pmd, pmdp_invalidate, set_pmd_at, split_huge_pmd
from engine.mm.process import Process
from engine.mm.rmap import (
    folio_add_anon_rmap_ptes,
    folio_add_file_rmap_ptes,
    folio_put_refs,
    folio_ref_add,
    folio_remove_rmap_pmd,
    folio_remove_rmap_ptes,
    page_anon_exclusive,
    set_anon_exclusive,
    unqueue_deferred,
)
from engine.mm.swap import SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE
from engine.mm.unmap import (
    TTU_BATCH_FLUSH,
    TTU_SPLIT_HUGE_PMD,
    TTU_SYNC,
    PvmwLock,
    folio_pmd_walk,
    pvmw_pte,
    set_tlb_ubc_flush_pending,
    try_to_unmap_flush,
)
from engine.mm.vma import VMA
from engine.pte import PTE_AF, PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_WRITE, pte_mkdirty


# --- migration entries ----------------------------------------------------------
def _mig_bits(ctx: MmContext) -> int:
    """SWP_PFN_BITS = MAX_PHYSMEM_BITS - PAGE_SHIFT: the young bit of a migration
    entry's offset, the dirty bit one above. With 52-bit PAs on 4K pages the young
    bit is offset bit 40, i.e. PTE bit 52 (PTE_CONT), which set_ptes() clears with
    pte_mknoncont(): the kernel restores migrated pages old (found by ptlab
    crosscheck on Debian's 6.12, see docs/fidelity.md)."""
    return ctx.profile.pa_bits - ctx.pshift


def make_migration_pte(ctx: MmContext, pfn: int, kind: int, young: bool, dirty: bool) -> int:
    off = pfn | (int(young) << _mig_bits(ctx)) | (int(dirty) << (_mig_bits(ctx) + 1))
    return ctx.layout.swp_entry_to_pte(kind, off)


def decode_migration_pte(ctx: MmContext, pte: int) -> tuple[int, int, bool, bool] | None:
    """(pfn, kind, young, dirty) of a migration entry, or None."""
    lay = ctx.layout
    if pte == 0 or lay.pte_present(pte):
        return None
    kind = lay.swp_type(pte)
    if kind not in (SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE):
        return None
    off = lay.swp_offset(pte)
    b = _mig_bits(ctx)
    return off & ((1 << b) - 1), kind, bool(off >> b & 1), bool(off >> (b + 1) & 1)


@kfn("try_to_migrate")
def try_to_migrate(ctx: MmContext, head: int, flags: int) -> int:
    nr = 1 << ctx.arch.folios.order_of(head)
    if flags & TTU_SPLIT_HUGE_PMD:
        # try_to_migrate_one(): split_huge_pmd_address(vma, address, true, folio) --
        # frozen: the PMD becomes migration entries directly
        for p, v, a in folio_pmd_walk(ctx, head):
            split_huge_pmd(ctx, p, v, a, freeze=True)
    else:
        for p, v, a in folio_pmd_walk(ctx, head):
            set_pmd_migration_entry(ctx, p, v, a, head)
    count = 0
    ps = ctx.ps
    for p, _v, a, first, cnt in ctx.folio_addresses(head, nr):
        lock = PvmwLock()
        for k in range(cnt):
            pfn = head + first + k
            if pvmw_pte(ctx, p, a + k * ps, pfn, k == 0, bool(flags & TTU_SYNC), lock):
                try_to_migrate_one(ctx, p, a + k * ps, head, pfn, flags)
                count += 1
    return count


def try_to_migrate_one(ctx: MmContext, proc: Process, addr: int, head: int, pfn: int, flags: int) -> None:
    mm = proc.mm
    arch = ctx.arch
    pm = ctx.pm
    arch.ptep_get(mm, addr)  # mm/rmap.c try_to_migrate_one(): pfn = pte_pfn(ptep_get(pvmw.pte))
    if flags & TTU_BATCH_FLUSH:
        pteval = arch.ptep_get_and_clear(mm, addr)
        set_tlb_ubc_flush_pending(ctx, proc, addr, 1)
    else:
        pteval = arch.ptep_clear_flush(mm, addr)
    dirty = bool(pteval & PTE_DIRTY) or (pteval & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE
    if dirty:
        pm.set_flag(head, F_DIRTY)  # folio_mark_dirty()
    anon_excl = bool(pm.flags[pfn - pm.base] & P_ANON_EXCLUSIVE)
    if pteval & PTE_WRITE:
        kind = SWP_MIGRATION_WRITE
    elif anon_excl:
        kind = SWP_MIGRATION_READ_EXCLUSIVE
    else:
        kind = SWP_MIGRATION_READ
    if anon_excl:
        pm.flags[pfn - pm.base] &= ~P_ANON_EXCLUSIVE  # folio_try_share_anon_rmap_pte()
    swp = make_migration_pte(ctx, pfn, kind, bool(pteval & PTE_AF), dirty)
    arch.set_ptes(mm, addr, swp, 1)
    folio_remove_rmap_ptes(ctx, head, pfn, 1, addr)
    folio_put_refs(ctx, head, 1)


# --- restoring ------------------------------------------------------------------
@kfn("remove_migration_ptes")
def remove_migration_ptes(ctx: MmContext, src: int, dst: int, nr: int, zeropage: bool = False) -> int:
    """Point every migration entry of src's pages at dst's pages.  With
    ``zeropage`` (RMP_USE_SHARED_ZEROPAGE, a split's remap_page() of an anon
    order-0 page) a zero-filled page gets the shared zero page instead."""
    count = 0
    pm = ctx.pm
    get = ctx.arch.ptep_get
    ps = ctx.ps
    for p, v, a, first, cnt in ctx.folio_addresses(dst, nr):
        mm = p.mm
        for k in range(cnt):
            va = a + k * ps
            if mm.pt.tables.get(va >> ctx.g.pmd_shift) is None:
                pmd = mm.pt.get_pmd(va)
                if pmd and k == 0 and cnt == nr:
                    remove_migration_pmd(ctx, p, v, va, src, dst)
                continue
            if k:  # PVMW_SYNC: no read in map_pte(); next_pte's pte_none(ptep_get())
                if not get(mm, va):
                    continue
            mig = decode_migration_pte(ctx, get(mm, va))  # check_pte()
            if mig is None or mig[0] != src + first + k:
                continue
            get(mm, va)  # remove_migration_pte(): old_pte = ptep_get(pvmw.pte)
            page = dst + first + k
            if zeropage and not pm.flags[page - pm.base] & P_DATA:
                # try_to_map_unused_to_zeropage(): pages_identical(page, ZERO_PAGE(0));
                # no reference or rmap is taken, so the page is freed after the split
                ctx.arch.set_ptes(mm, va, ctx.mk_pte(pm.zero_pfn, v.page_prot) | PTE_SPECIAL, 1)
                ctx.mm_event("zeropage_remap", va, page)
                continue
            remove_migration_pte(ctx, p, v, va, dst, page, mig)
            count += 1
    return count


def remove_migration_pte(ctx: MmContext, proc: Process, vma: VMA, addr: int, head: int, pfn: int,
                         mig: tuple[int, int, bool, bool]) -> None:
    _old, kind, young, dirty = mig
    pte = ctx.mk_pte(pfn, vma.page_prot)
    if not young:
        pte &= ~PTE_AF
    if dirty:
        pte = pte_mkdirty(pte)
    if kind == SWP_MIGRATION_WRITE:
        pte = ctx.pte_mkwrite(pte)
        if dirty:
            pte = pte_mkdirty(pte)
    pm = ctx.pm
    folio_ref_add(ctx, head, 1)
    if pm.flags[head - pm.base] & F_ANON:
        excl = kind != SWP_MIGRATION_READ
        folio_add_anon_rmap_ptes(ctx, head, pfn, 1, vma, addr, excl)
    else:
        folio_add_file_rmap_ptes(ctx, head, pfn, 1, addr)
    ctx.arch.set_ptes(proc.mm, addr, pte, 1)


# --- migrating one folio ------------------------------------------------------------
def move_folio_metadata(ctx: MmContext, src: int, dst: int, nr: int) -> None:
    """folio_migrate_mapping() + folio_migrate_flags(): dst takes src's place
    in its mapping, page cache or swap cache."""
    pm = ctx.pm
    si, di = src - pm.base, dst - pm.base
    keep = pm.flags[si] & ~(F_SWAPCACHE | P_ANON_EXCLUSIVE)
    pm.flags[di] = (pm.flags[di] & P_ANON_EXCLUSIVE) | keep | F_LRU
    for k in range(1, nr):  # folio_copy(): the tail pages' contents too
        if pm.flags[si + k] & P_DATA:
            pm.flags[di + k] |= P_DATA
    pm.mapping[di] = pm.mapping[si]
    pm.index[di] = pm.index[si]
    if pm.flags[si] & F_PAGECACHE:
        f = ctx.pc.files[pm.mapping[si]]
        idx = pm.index[si]
        for k in range(idx, idx + nr):
            f.cache[k] = dst + 1
        pm.ref[di] += nr
        pm.ref[si] -= nr
    if pm.flags[si] & F_SWAPCACHE:
        slot = ctx.swap.slot_of.pop(src)
        ctx.swap.cache[slot] = dst
        ctx.swap.slot_of[dst] = slot
        pm.flags[di] |= F_SWAPCACHE
        pm.flags[si] &= ~F_SWAPCACHE
        pm.ref[di] += nr
        pm.ref[si] -= nr
    if src in pm.deferred:
        unqueue_deferred(ctx, src)


@kfn("migrate_folio")
def migrate_one_folio(ctx: MmContext, head: int, batch_flush: bool) -> int:
    """Migrate one folio to freshly allocated memory; returns the new head,
    or -1 if no memory of that order is free."""
    order = ctx.arch.folios.order_of(head)
    nr = 1 << order
    pm = ctx.pm
    dst = pm.alloc_folio(order, 0)
    if dst < 0:
        return -1
    ctx.mm_event("folio_alloc", dst, order)
    ctx.cost("mm_folio", dst, 1)
    pm.mapping[dst - pm.base] = pm.mapping[head - pm.base]
    pm.index[dst - pm.base] = pm.index[head - pm.base]
    pm.flags[dst - pm.base] = pm.flags[head - pm.base] & F_ANON
    pm.ref[head - pm.base] += 1  # isolation reference
    try_to_migrate(ctx, head, TTU_BATCH_FLUSH if batch_flush else 0)
    try_to_unmap_flush(ctx)
    ctx.cost("mm_copy_page", dst, nr)
    move_folio_metadata(ctx, head, dst, nr)
    remove_migration_ptes(ctx, head, dst, nr)
    ctx.mm_event("migrated", head, dst)
    folio_put_refs(ctx, dst, 1)  # putback drops the allocation reference
    folio_put_refs(ctx, head, pm.ref[head - pm.base])  # frees the source
    return dst


# --- PMD migration entries --------------------------------------------------------
def set_pmd_migration_entry(ctx: MmContext, proc: Process, vma: VMA, haddr: int, head: int) -> None:
    mm = proc.mm
    old = pmdp_invalidate(ctx, proc, haddr)
    kind = SWP_MIGRATION_WRITE if old & PTE_WRITE else (
        SWP_MIGRATION_READ_EXCLUSIVE if page_anon_exclusive(ctx, head) else SWP_MIGRATION_READ)
    dirty = bool(old & PTE_DIRTY) or (old & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE
    if dirty:
        ctx.pm.set_flag(head, F_DIRTY)
    entry = make_migration_pte(ctx, head, kind, bool(old & PTE_AF), dirty)
    set_pmd_at(ctx, mm, haddr, entry)
    folio_remove_rmap_pmd(ctx, head, haddr)
    folio_put_refs(ctx, head, 1)


def remove_migration_pmd(ctx: MmContext, proc: Process, vma: VMA, haddr: int, src: int, dst: int) -> None:
    mig = decode_migration_pte(ctx, proc.mm.pt.get_pmd(haddr))
    if mig is None or mig[0] != src:
        return
    _p, kind, young, dirty = mig
    pmd = mk_pmd(ctx, dst, vma.page_prot)
    if not young:
        pmd &= ~PTE_AF
    if kind == SWP_MIGRATION_WRITE:
        pmd = ctx.pte_mkwrite(pmd)
    if dirty:
        pmd = pte_mkdirty(pmd)
    folio_ref_add(ctx, dst, 1)
    pm = ctx.pm
    pm.entire[dst] = pm.entire.get(dst, 0) + 1
    pm.lmap[dst - pm.base] += 1
    if kind != SWP_MIGRATION_READ and pm.flags[dst - pm.base] & F_ANON:
        set_anon_exclusive(ctx, dst, 1 << ctx.pmd_order)
    set_pmd_at(ctx, proc.mm, haddr, pmd)
