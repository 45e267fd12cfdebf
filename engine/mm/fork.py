# SPDX-License-Identifier: GPL-2.0-only
"""fork(): dup_mmap and copy_page_range (kernel/fork.c / mm/mmap.c, mm/memory.c).

Only VMAs with an anon_vma are copied (vma_needs_copy); shared and
never-written private file mappings are refaulted by the child. For each
present entry of a large folio, folio_pte_batch_flags (FPB_MERGE_WRITE,
plus FPB_RESPECT_DIRTY for private mappings) sizes the batch; the parent is
write-protected with ``wrprotect_ptes(nr)`` (only blocks cut by the batch
unfold) and the child gets ``set_ptes(nr)`` of the old, write-protected
entry -- CONT wherever the batch covers aligned blocks. The parent's TLB is
flushed once at the end (flush_tlb_mm(oldmm)).
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.batch import FPB_MERGE_WRITE, FPB_RESPECT_DIRTY, folio_pte_batch_flags
from engine.mm.physmem import F_ANON
from engine.mm.pmd import set_pmd_at
from engine.mm.process import Process
from engine.mm.rmap import (
    folio_add_file_rmap_ptes,
    folio_dup_pmd,
    folio_ref_add,
    folio_try_dup_anon_rmap_ptes,
)
from engine.mm.swap import SWP_TYPE
from engine.mm.vma import VMA
from engine.pte import PTE_AF, PTE_SPECIAL, PTE_SWP_EXCLUSIVE, PTE_WRITE, pte_mkclean, pte_wrprotect
from engine.state.mmstruct import MMStruct


@kfn("dup_mmap")
def dup_mmap(ctx: MmContext, parent: Process, child: Process) -> int:
    for v in parent.vmas:
        nv = v.copy()
        if v.anon_vma:
            # anon_vma_fork(): the child joins the parent's chain and gets its own
            av = ctx.next_id("anon_vma")
            nv.anon_vma = av
            nv.avc = (*v.avc, av)
        child.insert(nv)
    child.regions = {k: list(r) for k, r in parent.regions.items()}
    ctx.vmas_changed()
    for v, nv in zip(parent.vmas, child.vmas, strict=True):
        if v.anon_vma:  # vma_needs_copy()
            copy_page_range(ctx, parent, child, v, nv)
    ctx.arch.flush_tlb_mm(parent.mm)
    return 0


def copy_page_range(ctx: MmContext, parent: Process, child: Process, src: VMA, dst: VMA) -> None:
    pmd_size = ctx.pmd_size
    spt = parent.mm.pt
    addr = src.start
    while addr < src.end:
        nxt = min((addr | (pmd_size - 1)) + 1, src.end)
        if spt.get_pmd(addr):
            copy_huge_pmd(ctx, parent, child, src, dst, addr)
        elif spt.tables.get(addr >> ctx.g.pmd_shift) is not None:
            copy_pte_range(ctx, parent, child, src, dst, addr, nxt)
        addr = nxt


@kfn("copy_pte_range")
def copy_pte_range(ctx: MmContext, parent: Process, child: Process, src: VMA, dst: VMA, addr: int,
                   end: int) -> int:
    smm = parent.mm
    dmm = child.mm
    arch = ctx.arch
    get = arch.ptep_get
    ps = ctx.ps
    lay = ctx.layout
    dmm.pt.table(addr)  # pte_alloc_map_lock()
    batched = ctx.profile.batched_fork_zap
    cow = src.is_cow
    shared = src.shared
    copied = 0
    while addr != end:
        ptent = get(smm, addr)
        nr = 1
        if ptent == 0:
            # and the rest of the run of none entries, read the same way at once
            addr += ps
            addr += arch.none_run(smm, addr, (end - addr) // ps) * ps
            continue
        if not lay.pte_present(ptent):
            copy_nonpresent_pte(ctx, smm, dmm, addr, ptent)
        else:
            max_nr = (end - addr) // ps
            nr = copy_present_ptes(ctx, smm, dmm, cow, shared, addr, ptent,
                                        max_nr if batched else 1)
        copied += nr
        addr += nr * ps
    return copied


def copy_present_ptes(ctx: MmContext, smm: MMStruct, dmm: MMStruct, cow: bool, shared: bool, addr: int,
                      pte: int, max_nr: int) -> int:
    arch = ctx.arch
    if pte & PTE_SPECIAL:
        _copy_present_ptes(ctx, smm, dmm, cow, shared, addr, pte, 1)
        return 1
    pfn = (pte & ctx.addr_low) >> ctx.pshift
    head, n = arch.folios.folio_of(pfn)
    pm = ctx.pm
    nr = 1
    if n > 1 and max_nr != 1:
        flags = FPB_MERGE_WRITE
        if not shared:
            flags |= FPB_RESPECT_DIRTY
        nr, pte = folio_pte_batch_flags(ctx, smm, head, n, addr, pte, max_nr, flags)
    pm.ref[head - pm.base] += nr  # folio_ref_add()
    # per batch: vm_normal_page(), page_folio(), the folio refcount atomic,
    # rss counters, the copy loop's own bookkeeping (mm/memory.c copy_present_ptes())
    ctx.log.mm_cost("mm_batch", addr, 1)  # ctx.cost(), without the extra call per batch
    if pm.flags[head - pm.base] & F_ANON:
        folio_try_dup_anon_rmap_ptes(ctx, head, pfn, nr, addr)
    else:
        folio_add_file_rmap_ptes(ctx, head, pfn, nr, addr)
    _copy_present_ptes(ctx, smm, dmm, cow, shared, addr, pte, nr)
    return nr


def _copy_present_ptes(ctx: MmContext, smm: MMStruct, dmm: MMStruct, cow: bool, shared: bool, addr: int,
                       pte: int, nr: int) -> None:
    """__copy_present_ptes()."""
    arch = ctx.arch
    if cow and pte & PTE_WRITE:
        arch.wrprotect_ptes(smm, addr, nr)
        pte = pte_wrprotect(pte)
    if shared:
        pte = pte_mkclean(pte)
    arch.set_ptes(dmm, addr, pte & ~PTE_AF, nr)


def copy_nonpresent_pte(ctx: MmContext, smm: MMStruct, dmm: MMStruct, addr: int, pte: int) -> None:
    lay = ctx.layout
    if lay.swp_type(pte) == SWP_TYPE:
        ctx.swap.dup(lay.swp_offset(pte))  # swap_dup_entry_direct()
        if pte & PTE_SWP_EXCLUSIVE:
            pte &= ~PTE_SWP_EXCLUSIVE
            ctx.arch.set_ptes(smm, addr, pte, 1)
    ctx.arch.set_ptes(dmm, addr, pte, 1)


@kfn("copy_huge_pmd")
def copy_huge_pmd(ctx: MmContext, parent: Process, child: Process, src: VMA, dst: VMA, addr: int) -> int:
    smm = parent.mm
    pmd = smm.pt.get_pmd(addr)
    head = ctx.pte_pfn(pmd)
    if head != ctx.pm.huge_zero_pfn:
        folio_ref_add(ctx, head, 1)
        folio_dup_pmd(ctx, head, addr)
        if src.is_cow and pmd & PTE_WRITE:
            new = pte_wrprotect(pmd)  # pmdp_set_wrprotect(): cmpxchg of the PMD
            smm.pt.pmd_leaves[addr >> ctx.g.pmd_shift] = new
            ctx.log.pmd_write(addr, pmd, new, "cmpxchg", smm.name)
            pmd = new
    set_pmd_at(ctx, child.mm, addr, pmd & ~PTE_AF)
    return 0
