# SPDX-License-Identifier: GPL-2.0-only
"""PTE batching helpers of mm/internal.h and mm/memory.c.

``folio_pte_batch_flags`` steps through the table with ``ptep_get`` and
``pte_batch_hint``: on arm64 with the batch APIs the hint skips to the end
of a contiguous block, so one entry per block is read; without them
(seed-basic, baseline) every entry is read, and every ``ptep_get`` of a CONT
entry gathers the whole block. The CONT bit itself is compared like any
other bit, so a batch ends where a folio stops being contiguous. The loop's
iterations are a cost counter (``mm_pte_batch``): fewer of them is what the
batch hint buys (mm/internal.h folio_pte_batch()).
"""

from __future__ import annotations

from engine.mm.base import MmContext
from engine.pte import PTE_AF, PTE_DIRTY, PTE_RDONLY, PTE_WRITE, pte_mkdirty
from engine.state.mmstruct import MMStruct

FPB_RESPECT_DIRTY = 1 << 0
FPB_RESPECT_SOFT_DIRTY = 1 << 1
FPB_RESPECT_WRITE = 1 << 2
FPB_MERGE_WRITE = 1 << 3
FPB_MERGE_YOUNG_DIRTY = 1 << 4


def _clear_ignored(pte: int, flags: int) -> int:
    """__pte_batch_clear_ignored() (arm64 has no soft-dirty bit)."""
    if not flags & FPB_RESPECT_DIRTY:
        pte = (pte & ~PTE_DIRTY) | PTE_RDONLY  # pte_mkclean
    if not flags & FPB_RESPECT_WRITE:
        if (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:  # pte_wrprotect
            pte |= PTE_DIRTY
        pte = (pte & ~PTE_WRITE) | PTE_RDONLY
    return pte & ~PTE_AF  # pte_mkold


def folio_pte_batch_flags(ctx: MmContext, mm: MMStruct, head: int, nr_folio: int, addr: int, pte: int,
                          max_nr: int, flags: int = 0) -> tuple[int, int]:
    """(batch length, pte with merged bits) for consecutive entries mapping
    consecutive pages of the folio starting at addr (whose entry is pte)."""
    arch = ctx.arch
    ps = ctx.ps
    step = 1 << ctx.pshift
    max_nr = min(max_nr, head + nr_folio - ctx.pte_pfn(pte))
    nr = arch.pte_batch_hint(mm, addr, pte)
    expected = _clear_ignored(pte + nr * step, flags)
    a = addr + nr * ps
    any_w = any_y = any_d = False
    get = arch.ptep_get
    hint = arch.pte_batch_hint
    iterations = 0
    while nr < max_nr:
        p = get(mm, a)
        iterations += 1
        if _clear_ignored(p, flags) != expected:
            break
        if flags & FPB_MERGE_WRITE:
            any_w |= bool(p & PTE_WRITE)
        if flags & FPB_MERGE_YOUNG_DIRTY:
            any_y |= bool(p & PTE_AF)
            any_d |= bool(p & PTE_DIRTY) or (p & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE
        cur = hint(mm, a, p)
        expected += cur * step
        a += cur * ps
        nr += cur
    if iterations:
        # the loop's own work besides the ptep_get(): clear the ignored
        # bits, compare, the pfn bound, pte_batch_hint(), advance
        ctx.cost("mm_pte_batch", addr, iterations)
    if any_w:
        pte = ctx.pte_mkwrite(pte)
    if any_y:
        pte |= PTE_AF
    if any_d:
        pte = pte_mkdirty(pte)
    return min(nr, max_nr), pte


def folio_pte_batch(ctx: MmContext, mm: MMStruct, head: int, nr_folio: int, addr: int, pte: int,
                    max_nr: int) -> int:
    return folio_pte_batch_flags(ctx, mm, head, nr_folio, addr, pte, max_nr, 0)[0]


def pte_range_none(ctx: MmContext, mm: MMStruct, addr: int, nr: int) -> bool:
    """pte_range_none(): ptep_get_lockless() on each entry until one is not none."""
    arch = ctx.arch
    k = 0
    while k < nr:
        k += arch.none_run(mm, addr + k * ctx.ps, nr - k, lockless=True)
        if k < nr and arch.ptep_get_lockless(mm, addr + k * ctx.ps):
            return False
        k += 1
    return True


def swap_pte_batch(ctx: MmContext, mm: MMStruct, addr: int, max_nr: int, pte: int) -> int:
    """swap_pte_batch(): consecutive swap entries with consecutive offsets."""
    step = 1 << ctx.layout.swp_offset_shift
    expected = pte + step
    get = ctx.arch.ptep_get
    n = 1
    a = addr + ctx.ps
    while n < max_nr:
        if get(mm, a) != expected:
            break
        expected += step
        a += ctx.ps
        n += 1
    return n
