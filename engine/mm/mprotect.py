# SPDX-License-Identifier: GPL-2.0-only
"""mprotect() and NUMA-hinting protection (mm/mprotect.c change_protection).

Kernels with ``batched_mprotect`` size each step with
mprotect_folio_pte_batch (FPB_RESPECT_SOFT_DIRTY | FPB_RESPECT_WRITE), clear
with ``modify_prot_start_ptes(nr)`` and write back with
``modify_prot_commit_ptes`` per anon-exclusivity sub-batch (set_ptes(nr) on
arm64, so full blocks keep CONT and PROT_NONE entries get CONT painted).
Older kernels go one entry at a time: ``ptep_modify_prot_start`` unfolds the
block on its first entry and ``ptep_modify_prot_commit`` (set_pte_at) folds
it back on its last -- two converts per block. Entries whose permissions
shrink are flushed through the mmu_gather at the end.

NUMA hinting (``change_prot_numa``) is the same walk with PAGE_NONE and
MM_CP_PROT_NUMA: protnone entries, special entries, shared CoW folios and
dirty file folios are skipped.
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.batch import FPB_RESPECT_WRITE, folio_pte_batch_flags
from engine.mm.gather import MMUGather
from engine.mm.physmem import F_ANON, F_DIRTY, P_ANON_EXCLUSIVE
from engine.mm.pmd import pmdp_invalidate, set_pmd_at, split_huge_pmd, split_vmas
from engine.mm.process import Process
from engine.mm.rmap import can_change_pte_writable, folio_is_anon, folio_mapped_in
from engine.mm.vma import VM_EXEC, VM_READ, VM_SHARED, VM_WRITE, VMA
from engine.pte import PTE_SPECIAL, PTE_SWBITS_MASK, PTE_TABLE_BIT, PTE_VALID, PTE_WRITE
from engine.state.mmstruct import MMStruct

MM_CP_TRY_CHANGE_WRITABLE = 1
MM_CP_PROT_NUMA = 2


def pte_needs_flush(old: int, new: int) -> bool:
    """__pte_flags_need_flush(): a valid entry changed outside the SW bits."""
    if not old & PTE_VALID:
        return False
    return bool((old ^ new) & ~PTE_SWBITS_MASK)


def vma_wants_manual_pte_write_upgrade(ctx: MmContext, vma: VMA) -> bool:
    if vma.flags & VM_SHARED:
        return bool(vma.flags & VM_WRITE) and bool(vma.file) and not vma.shmem  # writenotify
    return bool(vma.flags & VM_WRITE)


@kfn("change_protection")
def change_protection(ctx: MmContext, proc: Process, vma: VMA, start: int, end: int, newprot: int,
                      cp_flags: int, tlb: MMUGather | None = None) -> int:
    own = tlb is None
    if tlb is None:
        tlb = MMUGather(ctx, proc.mm)
    pages = 0
    pmd_size = ctx.pmd_size
    pt = proc.mm.pt
    addr = start
    while addr < end:
        nxt = min((addr | (pmd_size - 1)) + 1, end)
        if pt.get_pmd(addr):
            if nxt - addr != pmd_size:
                split_huge_pmd(ctx, proc, vma, addr)
            else:
                pages += change_huge_pmd(ctx, tlb, proc, vma, addr, newprot, cp_flags)
                addr = nxt
                continue
        if pt.tables.get(addr >> ctx.g.pmd_shift) is not None:
            pages += change_pte_range(ctx, tlb, proc, vma, addr, nxt, newprot, cp_flags)
        addr = nxt
    if own:
        tlb.finish()
    return pages


def _numa_skip(ctx: MmContext, proc: Process, vma: VMA, pte: int, head: int) -> bool:
    """!folio_can_map_prot_numa(): zero page, shared CoW folios, dirty file folios."""
    if pte & PTE_SPECIAL:
        return True
    pm = ctx.pm
    fl = pm.flags[head - pm.base]
    if vma.is_cow and fl & F_ANON:
        n = 1 << ctx.arch.folios.order_of(head)
        if any(p is not proc for p, *_ in folio_mapped_in(ctx, head, n)):
            return True
    return not fl & F_ANON and bool(fl & F_DIRTY)


@kfn("change_pte_range")
def change_pte_range(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, addr: int, end: int,
                     newprot: int, cp_flags: int) -> int:
    mm = proc.mm
    arch = ctx.arch
    lay = ctx.layout
    ps = ctx.ps
    prot_numa = bool(cp_flags & MM_CP_PROT_NUMA)
    batched = ctx.profile.batched_mprotect
    pages = 0
    while addr != end:
        nr = 1
        oldpte = arch.ptep_get(mm, addr)
        if oldpte and lay.pte_present(oldpte):
            max_nr = (end - addr) // ps
            if prot_numa and lay.pte_protnone(oldpte):
                addr += ps
                continue
            pfn = ctx.pte_pfn(oldpte)
            head, n = (-1, 1) if oldpte & PTE_SPECIAL else arch.folios.folio_of(pfn)
            if prot_numa and (head < 0 or _numa_skip(ctx, proc, vma, oldpte, head)):
                if batched and n > 1:
                    nr = folio_pte_batch_flags(ctx, mm, head, n, addr, oldpte, max_nr, 0)[0]
                addr += nr * ps
                continue
            if batched:
                if n > 1:
                    nr = folio_pte_batch_flags(ctx, mm, head, n, addr, oldpte, max_nr,
                                                    FPB_RESPECT_WRITE)[0]
                change_present_ptes(ctx, tlb, proc, vma, addr, nr, newprot, cp_flags, head)
            else:
                change_present_pte_old(ctx, tlb, proc, vma, addr, newprot, cp_flags)
            pages += nr
        addr += nr * ps
    return pages


def change_present_ptes(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, addr: int, nr: int,
                        newprot: int, cp_flags: int, head: int) -> None:
    mm = proc.mm
    arch = ctx.arch
    oldpte = arch.modify_prot_start_ptes(mm, addr, nr)
    ptent = ctx.pte_modify(oldpte, newprot)
    if cp_flags & MM_CP_TRY_CHANGE_WRITABLE and not ptent & PTE_WRITE:
        if vma.flags & VM_SHARED:
            w = can_change_pte_writable(ctx, vma, addr, ptent)
            prot_commit_flush_ptes(ctx, tlb, mm, addr, oldpte, ptent, nr, 0, w)
            return
        is_anon = head >= 0 and folio_is_anon(ctx, head)
        if not (vma.flags & VM_WRITE and not ctx.layout.pte_protnone(ptent) and is_anon):
            prot_commit_flush_ptes(ctx, tlb, mm, addr, oldpte, ptent, nr, 0, False)
            return
        # commit_anon_folio_batch(): sub-batches of equal PageAnonExclusive
        pm = ctx.pm
        first = ctx.pte_pfn(oldpte) - pm.base
        fl = pm.flags
        idx = 0
        while idx < nr:
            excl = bool(fl[first + idx] & P_ANON_EXCLUSIVE)
            ln = 1
            while idx + ln < nr and bool(fl[first + idx + ln] & P_ANON_EXCLUSIVE) == excl:
                ln += 1
            prot_commit_flush_ptes(ctx, tlb, mm, addr, oldpte, ptent, ln, idx, excl)
            idx += ln
        return
    prot_commit_flush_ptes(ctx, tlb, mm, addr, oldpte, ptent, nr, 0, False)


def prot_commit_flush_ptes(ctx: MmContext, tlb: MMUGather, mm: MMStruct, addr: int, oldpte: int, ptent: int,
                           nr: int, idx: int, set_write: bool) -> None:
    step = idx << ctx.pshift
    addr += idx * ctx.ps
    oldpte += step
    ptent += step
    if set_write:
        ptent = ctx.pte_mkwrite(ptent)
    ctx.arch.modify_prot_commit_ptes(mm, addr, oldpte, ptent, nr)
    if pte_needs_flush(oldpte, ptent):
        tlb.flush_pte_range(addr, nr * ctx.ps)


def change_present_pte_old(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, addr: int,
                           newprot: int, cp_flags: int) -> None:
    """The per-entry loop body before the batched helpers (v6.9 .. v6.16)."""
    mm = proc.mm
    arch = ctx.arch
    oldpte = arch.ptep_modify_prot_start(mm, addr)
    ptent = ctx.pte_modify(oldpte, newprot)
    if (cp_flags & MM_CP_TRY_CHANGE_WRITABLE and not ptent & PTE_WRITE
            and can_change_pte_writable(ctx, vma, addr, ptent)):
        ptent = ctx.pte_mkwrite(ptent)
    arch.ptep_modify_prot_commit(mm, addr, oldpte, ptent)
    if pte_needs_flush(oldpte, ptent):
        tlb.flush_pte_range(addr, ctx.ps)


@kfn("change_huge_pmd")
def change_huge_pmd(ctx: MmContext, tlb: MMUGather, proc: Process, vma: VMA, addr: int, newprot: int,
                    cp_flags: int) -> int:
    mm = proc.mm
    pmd = mm.pt.get_pmd(addr)
    lay = ctx.layout
    if cp_flags & MM_CP_PROT_NUMA:
        head = ctx.pte_pfn(pmd)
        if lay.pte_protnone(pmd) or head == ctx.pm.huge_zero_pfn:
            return 0
    old = pmdp_invalidate(ctx, proc, addr)
    new = ctx.pte_modify(old, newprot) & ~PTE_TABLE_BIT  # keep the block type (pmd_modify)
    if (cp_flags & MM_CP_TRY_CHANGE_WRITABLE and not new & PTE_WRITE and new & PTE_VALID
            and can_change_pte_writable(ctx, vma, addr, new)):
        new = ctx.pte_mkwrite(new)
    set_pmd_at(ctx, mm, addr, new)
    if pte_needs_flush(old, new):
        tlb.remove_pmd_tlb_entry(addr)
    return 1 << ctx.pmd_order


# --- the syscalls -------------------------------------------------------------------
@kfn("mprotect_fixup")
def mprotect_fixup(ctx: MmContext, proc: Process, start: int, end: int, vm_flags: int) -> int:
    rwx = VM_READ | VM_WRITE | VM_EXEC
    vmas = []
    for v in list(proc.vmas_in(start, end)):
        # mprotect_fixup(): a VMA whose flags would not change is left alone -- no
        # split, no page-table walk (found by ptlab crosscheck: mprotect rw of part of
        # an rw folded block keeps it folded on 6.12)
        if (v.flags & ~rwx) | vm_flags != v.flags:
            vmas += split_vmas(ctx, proc, max(start, v.start), min(end, v.end))
    pages = 0
    tlb = MMUGather(ctx, proc.mm)  # do_mprotect_pkey(): one gather for the whole range
    for v in vmas:
        v.flags = (v.flags & ~rwx) | vm_flags
        v.page_prot = ctx.vma_page_prot(v)
        cp = MM_CP_TRY_CHANGE_WRITABLE if vma_wants_manual_pte_write_upgrade(ctx, v) else 0
        pages += change_protection(ctx, proc, v, v.start, v.end, v.page_prot, cp, tlb)
    tlb.finish()
    proc.try_merge(ctx.pshift)
    ctx.vmas_changed()
    return pages


@kfn("change_prot_numa")
def change_prot_numa(ctx: MmContext, proc: Process, start: int, end: int) -> int:
    pages = 0
    for v in proc.vmas_in(start, end):
        if not v.accessible:
            continue
        s, e = max(start, v.start), min(end, v.end)
        pages += change_protection(ctx, proc, v, s, e, ctx.layout.page_none, MM_CP_PROT_NUMA)
    return pages
