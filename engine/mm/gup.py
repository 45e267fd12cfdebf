# SPDX-License-Identifier: GPL-2.0-only
"""GUP-fast (mm/gup.c gup_fast_pte_range): the lockless reader of page tables.

Each entry is read with ``ptep_get_lockless`` -- on a CONT block a gather
that must see a consistent block, retrying while a convert on another CPU
is in flight -- then the folio is grabbed and the entry re-read with
``ptep_get``; a changed entry makes GUP-fast give up on it. Pins are
released at once: long-term pins are not modelled.
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.process import Process
from engine.mm.rmap import folio_put_refs, folio_ref_add
from engine.pte import PTE_SPECIAL, PTE_WRITE


@kfn("gup_fast")
def gup_fast(ctx: MmContext, proc: Process, start: int, end: int, write: bool) -> int:
    mm = proc.mm
    arch = ctx.arch
    lay = ctx.layout
    got = 0
    for va in range(start, end, ctx.ps):
        if mm.pt.tables.get(va >> ctx.g.pmd_shift) is None:
            continue
        pte = arch.ptep_get_lockless(mm, va)
        if (not pte or not lay.pte_present(pte) or lay.pte_protnone(pte) or pte & PTE_SPECIAL
                or (write and not pte & PTE_WRITE)):
            continue  # the slow path would fault it in
        head, _ = arch.folios.folio_of(ctx.pte_pfn(pte))
        folio_ref_add(ctx, head, 1)  # try_grab_folio_fast()
        if arch.ptep_get(mm, va) != pte:
            folio_put_refs(ctx, head, 1)
            continue
        ctx.mm_event("gup_pin", va, head)
        folio_put_refs(ctx, head, 1)  # unpin_user_page()
        got += 1
    return got
