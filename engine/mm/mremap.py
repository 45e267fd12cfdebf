# SPDX-License-Identifier: GPL-2.0-only
"""mremap() of a whole VMA to a new address (mm/mremap.c move_vma,
move_page_tables, move_ptes).

A PMD-sized, PMD-aligned extent moves its page table as it is
(move_normal_pmd) or its PMD mapping (move_huge_pmd): CONT survives. Other
extents go entry by entry: before ``batched_mremap`` each entry is
``ptep_get_and_clear`` + ``set_pte_at`` (unfold at the source block's first
entry, fold at the destination block's last if it stays aligned); after,
``mremap_folio_pte_batch`` lets ``get_and_clear_ptes(nr)`` / ``set_ptes(nr)``
move CONT blocks whole. The source range is flushed once if anything
present moved.
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.batch import FPB_RESPECT_WRITE, folio_pte_batch_flags
from engine.mm.gather import MMUGather
from engine.mm.pmd import flush_pmd_tlb_range, pmdp_huge_get_and_clear, set_pmd_at, split_huge_pmd
from engine.mm.process import Process
from engine.mm.vma import VMA
from engine.mm.zap import free_pgtables
from engine.pte import PTE_SPECIAL


@kfn("move_vma")
def move_vma(ctx: MmContext, proc: Process, vma: VMA, new_addr: int) -> int:
    old_start, old_end = vma.start, vma.end
    length = old_end - old_start
    new = vma.copy()
    new.start = new_addr
    new.end = new_addr + length
    proc.insert(new)
    ctx.vmas_changed()
    move_page_tables(ctx, proc, vma, new, old_start, new_addr, length)
    proc.remove(vma)
    ctx.vmas_changed()
    # do_vmi_munmap() of the old range: its entries are gone already, only
    # the page tables nobody uses any more are freed
    tlb = MMUGather(ctx, proc.mm)
    free_pgtables(ctx, tlb, proc, old_start, old_end)
    tlb.finish()
    return new_addr


def move_page_tables(ctx: MmContext, proc: Process, old: VMA, new: VMA, old_addr: int, new_addr: int,
                     length: int) -> None:
    pmd_size = ctx.pmd_size
    pt = proc.mm.pt
    done = 0
    while done < length:
        oa = old_addr + done
        na = new_addr + done
        extent = min((oa | (pmd_size - 1)) + 1 - oa, (na | (pmd_size - 1)) + 1 - na, length - done)
        okey = oa >> ctx.g.pmd_shift
        if okey in pt.pmd_leaves:
            if extent == pmd_size:
                move_huge_pmd(ctx, proc, oa, na)
                done += extent
                continue
            split_huge_pmd(ctx, proc, old, oa)
        if okey in pt.tables:
            if extent == pmd_size and (na >> ctx.g.pmd_shift) not in pt.tables:
                move_normal_pmd(ctx, proc, oa, na)
            else:
                move_ptes(ctx, proc, old, oa, na, extent)
        done += extent


@kfn("move_normal_pmd")
def move_normal_pmd(ctx: MmContext, proc: Process, old_addr: int, new_addr: int) -> None:
    pt = proc.mm.pt
    pt.move_table(old_addr >> ctx.g.pmd_shift, new_addr >> ctx.g.pmd_shift)
    ctx.log.pmd_write(new_addr, 0, 0, "move_table", proc.mm.name)
    ctx.arch.flush_tlb_range(proc.mm, old_addr, old_addr + ctx.pmd_size, ctx.pmd_size, False, 2)


@kfn("move_huge_pmd")
def move_huge_pmd(ctx: MmContext, proc: Process, old_addr: int, new_addr: int) -> None:
    mm = proc.mm
    pmd = pmdp_huge_get_and_clear(ctx, mm, old_addr)
    set_pmd_at(ctx, mm, new_addr, pmd)
    flush_pmd_tlb_range(ctx, mm, old_addr)


@kfn("move_ptes")
def move_ptes(ctx: MmContext, proc: Process, vma: VMA, old_addr: int, new_addr: int, length: int) -> int:
    mm = proc.mm
    arch = ctx.arch
    lay = ctx.layout
    ps = ctx.ps
    batched = ctx.profile.batched_mremap
    mm.pt.table(new_addr)
    old_end = old_addr + length
    force_flush = False
    oa, na = old_addr, new_addr
    while oa < old_end:
        nr = 1
        pte = arch.ptep_get(mm, oa)
        if pte == 0:
            oa += ps
            na += ps
            continue
        if lay.pte_present(pte):
            force_flush = True
            max_nr = (old_end - oa) // ps
            if batched and max_nr > 1 and arch.pte_batch_hint(mm, oa, pte) > 1 \
                    and not pte & PTE_SPECIAL:
                head, n = arch.folios.folio_of(ctx.pte_pfn(pte))
                if n > 1:
                    nr = folio_pte_batch_flags(ctx, mm, head, n, oa, pte, max_nr,
                                                    FPB_RESPECT_WRITE)[0]
        if batched:
            pte = arch.get_and_clear_ptes(mm, oa, nr)
            arch.set_ptes(mm, na, pte, nr)
        else:
            pte = arch.ptep_get_and_clear(mm, oa)
            arch.set_ptes(mm, na, pte, 1)
        oa += nr * ps
        na += nr * ps
    if force_flush:
        arch.flush_tlb_user_range(mm, old_addr, old_end)
    return length // ps
