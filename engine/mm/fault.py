# SPDX-License-Identifier: GPL-2.0-only
"""Page faults at PTE level (mm/memory.c): handle_pte_fault and everything
it dispatches to.

* anonymous faults with mTHP order selection (alloc_anon_folio: the enabled
  orders that fit the VMA, the highest whose aligned range is entirely
  pte_none -- read with ptep_get_lockless, one per entry -- then allocation
  falling back order by order), the zero page for reads;
* file faults: fault-around through filemap_map_pages for reads, CoW
  faults, shared write faults, finish_fault mapping one page or -- with
  ``whole_folio_file_fault`` -- the whole folio;
* write-protect faults: reuse through ptep_set_access_flags, copy through
  ptep_clear_flush + set_pte_at;
* access-flag faults: ptep_set_access_flags, then the spurious-fault flush;
* swap-in and NUMA hinting faults.

PMD-level faults and THP splitting live in huge.py.
"""

from __future__ import annotations

from engine.mm.base import (
    VM_FAULT_FALLBACK,
    VM_FAULT_MAJOR,
    VM_FAULT_NOPAGE,
    VM_FAULT_OOM,
    VM_FAULT_RETRY,
    VM_FAULT_SIGBUS,
    MmContext,
    kfn,
)
from engine.mm.batch import pte_range_none, swap_pte_batch
from engine.mm.filemap import RETRY_MAJOR, RETRY_MINOR, filemap_get_folio
from engine.mm.pagecache import File
from engine.mm.physmem import F_ANON, F_DIRTY, F_LRU, F_SWAPBACKED, F_SWAPCACHE, F_UPTODATE, P_DATA
from engine.mm.pmd import do_set_pmd
from engine.mm.process import Process
from engine.mm.rmap import (
    anon_vma_prepare,
    can_change_pte_writable,
    folio_add_anon_rmap_ptes,
    folio_add_file_rmap_ptes,
    folio_add_new_anon_rmap,
    folio_mapped_in,
    folio_put_refs,
    folio_ref_add,
    folio_remove_rmap_ptes,
    page_anon_exclusive,
    set_anon_exclusive,
)
from engine.mm.swap import (  # noqa: F401 -- the migration types are re-exported
    SWP_MIGRATION_READ,
    SWP_MIGRATION_READ_EXCLUSIVE,
    SWP_MIGRATION_WRITE,
    SWP_TYPE,
)
from engine.mm.swapcache import (
    add_to_swap_cache,
    folio_free_swap,
    swap_cache_lookup,
    swap_read_data,
    swap_unreferenced,
)
from engine.mm.vma import VM_SHARED, VM_WRITE, VMA
from engine.pte import (
    PTE_AF,
    PTE_SPECIAL,
    PTE_VALID,
    PTE_WRITE,
    pte_mkdirty,
)
from engine.state.mmstruct import MMStruct


# --- entry point ------------------------------------------------------------------
@kfn("handle_pte_fault")
def handle_pte_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int, write: bool) -> int:
    mm = proc.mm
    arch = ctx.arch
    t = mm.pt.tables.get(addr >> ctx.g.pmd_shift)
    # pte_offset_map_nolock() finds no table when the PMD is none: orig_pte is none.
    orig = arch.ptep_get_lockless(mm, addr) if t is not None else 0
    if orig == 0:
        if vma.anon and not vma.shmem:
            return do_anonymous_page(ctx, proc, vma, addr, write)
        return do_fault(ctx, proc, vma, addr, write)
    lay = ctx.layout
    if not lay.pte_present(orig):
        return do_swap_page(ctx, proc, vma, addr, orig, write)
    if lay.pte_protnone(orig) and vma.accessible:
        return do_numa_page(ctx, proc, vma, addr, orig)
    if arch.ptep_get(mm, addr) != orig:
        return 0  # changed under us (update_mmu_tlb is empty on arm64)
    entry = orig
    if write:
        if not entry & PTE_WRITE:
            return do_wp_page(ctx, proc, vma, addr, orig)
        entry = pte_mkdirty(entry)
    entry |= PTE_AF
    if not arch.ptep_set_access_flags(mm, addr, entry, int(write)) and write:
        arch.flush_tlb_fix_spurious_fault(mm, addr)
    return 0


# --- anonymous memory ---------------------------------------------------------------
def _alloc_anon_folio(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> tuple[int, int]:
    """alloc_anon_folio(): (head pfn, order), head -1 on OOM."""
    log = ctx.log
    log.call("alloc_anon_folio", (proc.name, addr))
    orders = ctx.thp.allowable_orders(vma, (1 << ctx.pmd_order) - 1)
    if orders:  # (nothing to filter otherwise: the common order-0 case)
        orders = ctx.thp.suitable_orders(vma, addr, orders)
    head = -1
    order = 0
    if orders:
        mm = proc.mm
        ps = ctx.ps
        while orders:
            order = orders.bit_length() - 1
            size = ps << order
            if pte_range_none(ctx, mm, addr & ~(size - 1), 1 << order):
                break
            orders &= ~(1 << order)
        while orders:
            order = orders.bit_length() - 1
            head = ctx.pm.alloc_folio(order, 0)
            if head >= 0:
                break
            ctx.mm_event("mthp_fallback", addr, order)  # MTHP_STAT_ANON_FAULT_FALLBACK
            orders &= ~(1 << order)
    if head < 0:
        order = 0
        head = ctx.pm.alloc_folio(0, 0)  # folio_prealloc(..., need_zero = true)
    if head >= 0:
        # ctx.mm_event() and ctx.cost() straight to the log: once per order-0 fault
        log.mm("folio_alloc", addr, order)
        log.mm_cost("mm_folio", addr, 1)
        log.mm_cost("mm_zero_page", addr, 1 << order)
    else:
        ctx.mm_event("oom", addr, 0)
    log.ret("alloc_anon_folio", order if head >= 0 else -1)
    return head, order


@kfn("do_anonymous_page")
def do_anonymous_page(ctx: MmContext, proc: Process, vma: VMA, addr: int, write: bool) -> int:
    mm = proc.mm
    arch = ctx.arch
    if vma.flags & VM_SHARED:
        return VM_FAULT_SIGBUS
    mm.pt.table(addr)  # pte_alloc()
    if not write:
        # the shared zero page, mapped read-only and special (never folded)
        entry = ctx.mk_pte(ctx.pm.zero_pfn, vma.page_prot) | PTE_SPECIAL
        if arch.ptep_get(mm, addr):  # vmf_pte_changed()
            return 0
        arch.set_ptes(mm, addr, entry, 1)
        return 0
    anon_vma_prepare(ctx, vma)
    head, order = _alloc_anon_folio(ctx, proc, vma, addr)
    if head < 0:
        return VM_FAULT_OOM
    nr = 1 << order
    addr &= ~((ctx.ps << order) - 1)
    entry = ctx.mk_pte(head, vma.page_prot)  # AF is part of the prot: pte_sw_mkyoung is a no-op
    if vma.flags & VM_WRITE:
        entry = ctx.pte_mkwrite(pte_mkdirty(entry))
    if (nr == 1 and arch.ptep_get(mm, addr)) or (nr > 1 and not pte_range_none(ctx, mm, addr, nr)):
        folio_put_refs(ctx, head, 1)
        return 0
    folio_ref_add(ctx, head, nr - 1)
    folio_add_new_anon_rmap(ctx, head, nr, vma, addr, True)
    arch.set_ptes(mm, addr, entry, nr)
    return 0


# --- file memory ----------------------------------------------------------------------
def _file(ctx: MmContext, vma: VMA) -> File:
    return ctx.pc.files[vma.file]


@kfn("do_fault")
def do_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int, write: bool) -> int:
    if not write:
        return do_read_fault(ctx, proc, vma, addr)
    if not vma.flags & VM_SHARED:
        return do_cow_fault(ctx, proc, vma, addr)
    return do_shared_fault(ctx, proc, vma, addr)


def _retry_or_oom(ctx: MmContext, head: int) -> int:
    if head == RETRY_MAJOR:
        return VM_FAULT_RETRY | VM_FAULT_MAJOR
    return VM_FAULT_RETRY if head == RETRY_MINOR else VM_FAULT_OOM


def retry_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int, write: bool, ret: int) -> int:
    """arch/arm64/mm/fault.c do_page_fault(): a fault that returned
    VM_FAULT_RETRY (filemap_fault() dropped the lock for I/O) is taken again
    under the mmap lock, with FAULT_FLAG_TRIED if it was a major fault, and
    again with it for as long as it asks."""
    # imported here: huge.py (the PMD level of the fault) builds on this file
    from engine.mm.huge import handle_mm_fault

    tried = bool(ret & VM_FAULT_MAJOR)  # the VMA-lock attempt read the page in
    while True:
        ctx.fault_tried = tried
        try:
            ret = handle_mm_fault(ctx, proc, vma, addr, write)
        finally:
            ctx.fault_tried = False
        if not ret & VM_FAULT_RETRY or tried:
            return ret  # with FAULT_FLAG_TRIED filemap_fault() keeps the lock
        tried = True


@kfn("do_read_fault")
def do_read_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> int:
    if ctx.fault_around_pages > 1:
        if do_fault_around(ctx, proc, vma, addr) == VM_FAULT_NOPAGE:
            return 0
    f = _file(ctx, vma)
    head = filemap_get_folio(ctx, f, vma, vma.linear_index(addr, ctx.pshift))
    if head < 0:
        return _retry_or_oom(ctx, head)
    folio_ref_add(ctx, head, 1)  # __do_fault() returns the folio with a reference
    ret = finish_fault(ctx, proc, vma, addr, False, head, -1)
    if ret:
        folio_put_refs(ctx, head, 1)
    return ret


@kfn("do_fault_around")
def do_fault_around(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> int:
    nr_pages = ctx.fault_around_pages
    ps = ctx.pshift
    pte_off = (addr >> ps) & (ctx.ptrs - 1)
    vma_off = (addr - vma.start) >> ps
    from_pte = max(pte_off & ~(nr_pages - 1), pte_off - min(pte_off, vma_off))
    vma_pages = (vma.end - vma.start) >> ps
    to_pte = min(from_pte + nr_pages, ctx.ptrs, pte_off + vma_pages - vma_off) - 1
    pgoff = vma.linear_index(addr, ps)
    return filemap_map_pages(ctx, proc, vma, addr, pgoff + from_pte - pte_off,
                                  pgoff + to_pte - pte_off)


@kfn("filemap_map_pages")
def filemap_map_pages(ctx: MmContext, proc: Process, vma: VMA, fault_addr: int, start: int,
                      end: int) -> int:
    """Map the cached, up-to-date folios in [start, end] (page indices)."""
    f = _file(ctx, vma)
    mm = proc.mm
    arch = ctx.arch
    ps = ctx.pshift
    ret = 0
    mapped = 0
    index = start
    whole = ctx.profile.whole_folio_file_fault
    pmd_mask = ~(ctx.pmd_size - 1)
    first = True
    while index <= end and index < f.npages:
        head = f.lookup(index)
        if head < 0:
            index += 1
            continue
        pm = ctx.pm
        fidx = pm.index[head - pm.base]
        n = 1 << ctx.arch.folios.order_of(head)
        if fidx in f.readahead or not pm.flags[head - pm.base] & F_UPTODATE:
            index = fidx + n  # leave PG_readahead folios to filemap_fault()
            continue
        if first:
            # the first up-to-date folio: filemap_map_pmd() may map it whole with a PMD
            # (never across i_size, except shmem); otherwise it installs the PTE table
            # do_fault_around() preallocated
            first = False
            if ((fidx + n <= f.npages or f.shmem)
                    and filemap_map_pmd(ctx, proc, vma, fault_addr, head, n)):
                return VM_FAULT_NOPAGE
        lo, hi = index, min(end, fidx + n - 1)
        if whole and n > 1:
            # 357b92761d94: map the entire folio if it lies inside the VMA, one
            # page table and i_size
            fa = vma.addr_of_index(fidx, ps)
            la = fa + ((n - 1) << ps)
            if (fa >= vma.start and la < vma.end and fa & pmd_mask == fault_addr & pmd_mask
                    and fidx + n <= f.npages):
                lo, hi = fidx, fidx + n - 1
        # filemap_map_folio_range(): runs of none entries, one set_pte_range each
        run = 0
        run_start = lo
        k = lo
        while k <= hi + 1:
            a = vma.addr_of_index(k, ps) if k <= hi else 0
            if k <= hi and arch.ptep_get(mm, a) == 0:
                if not run:
                    run_start = k
                run += 1
            elif run:
                ra = vma.addr_of_index(run_start, ps)
                folio_ref_add(ctx, head, run)
                prefault = not ra <= fault_addr < ra + (run << ps)
                set_pte_range(ctx, proc, vma, head, head + run_start - fidx, run, ra, False,
                                   prefault)
                mapped += run
                if not prefault:
                    ret = VM_FAULT_NOPAGE
                run = 0
            k += 1
        index = fidx + n
    if mapped:
        f.mmap_miss = max(0, f.mmap_miss - mapped)
    return ret


def filemap_map_pmd(ctx: MmContext, proc: Process, vma: VMA, fault_addr: int, head: int,
                    nr: int) -> bool:
    """mm/filemap.c filemap_map_pmd(): True when the fault is handled at the PMD level --
    a PMD mapping is already there, or do_set_pmd() maps this PMD-sized folio (taking
    over the reference next_uptodate_folio() took). Otherwise the PTE table is installed
    (pmd_install()), so a later finish_fault() finds it and maps PTEs."""
    pt = proc.mm.pt
    if pt.get_pmd(fault_addr):
        return True
    if pt.tables.get(fault_addr >> ctx.g.pmd_shift) is None:
        if nr == 1 << ctx.pmd_order and do_set_pmd(ctx, proc, vma, fault_addr, head, False) == 0:
            folio_ref_add(ctx, head, 1)
            return True
        pt.table(fault_addr)
    return False


def set_pte_range(ctx: MmContext, proc: Process, vma: VMA, head: int, pfn: int, nr: int, addr: int,
                  write: bool, prefault: bool) -> None:
    """set_pte_range(): build the entry, add the rmap, set_ptes(nr)."""
    ctx.log.call("set_pte_range", (proc.name, addr, nr, write))
    entry = ctx.mk_pte(pfn, vma.page_prot)
    if prefault and ctx.cpu.hw_af:
        entry &= ~PTE_AF  # arch_wants_old_prefaulted_pte()
    if write:
        entry = ctx.maybe_mkwrite(pte_mkdirty(entry), vma)
    elif (ctx.profile.read_fault_dirty and entry & PTE_WRITE
          and ctx.pm.flags[head - ctx.pm.base] & F_DIRTY):
        entry = pte_mkdirty(entry)  # not in v6.12's set_pte_range()
    if write and not vma.flags & VM_SHARED:
        folio_add_new_anon_rmap(ctx, head, 1, vma, addr, True)
    else:
        folio_add_file_rmap_ptes(ctx, head, pfn, nr, addr)
    ctx.arch.set_ptes(proc.mm, addr, entry, nr)
    ctx.log.ret("set_pte_range", None)


@kfn("finish_fault")
def finish_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int, write: bool, head: int,
                 cow_head: int) -> int:
    """Map the faulting page (or, with whole_folio_file_fault, its whole
    folio). cow_head >= 0 is the private copy made by do_cow_fault."""
    mm = proc.mm
    arch = ctx.arch
    ps = ctx.pshift
    f = _file(ctx, vma)
    index = vma.linear_index(addr, ps)
    if cow_head >= 0:
        map_head, pfn, nr_folio = cow_head, cow_head, 1
    else:
        pm = ctx.pm
        fidx = pm.index[head - pm.base]
        map_head, pfn = head, head + index - fidx
        nr_folio = 1 << ctx.arch.folios.order_of(head)
    # no PTEs beyond i_size (SIGBUS semantics), except for shmem
    needs_fallback = (cow_head < 0 and not f.shmem
                      and f.npages < ctx.pm.index[head - ctx.pm.base] + nr_folio)
    if cow_head < 0 and mm.pt.tables.get(addr >> ctx.g.pmd_shift) is None:
        if not needs_fallback and nr_folio == 1 << ctx.pmd_order:
            if do_set_pmd(ctx, proc, vma, addr, head, write) != VM_FAULT_FALLBACK:
                return 0
    mm.pt.table(addr)
    nr = nr_folio
    start = addr
    if cow_head >= 0 or needs_fallback or not ctx.profile.whole_folio_file_fault:
        nr = 1
    elif nr > 1:
        idx = pfn - map_head
        vma_off = (addr - vma.start) >> ps
        pte_off = (addr >> ps) & (ctx.ptrs - 1)
        if (vma_off < idx or vma_off + (nr - idx) > (vma.end - vma.start) >> ps
                or pte_off < idx or pte_off + (nr - idx) > ctx.ptrs):
            nr = 1
        else:
            start = addr - (idx << ps)
            pfn = map_head
    if nr == 1:
        start = addr
        pfn = map_head if cow_head >= 0 else pfn
        if arch.ptep_get(mm, addr):
            return VM_FAULT_NOPAGE
    elif not pte_range_none(ctx, mm, start, nr):
        nr = 1
        start = addr
        pfn = head + index - ctx.pm.index[head - ctx.pm.base]
        if arch.ptep_get(mm, addr):
            return VM_FAULT_NOPAGE
    if cow_head < 0:
        folio_ref_add(ctx, map_head, nr - 1)
    set_pte_range(ctx, proc, vma, map_head, pfn, nr, start, write, False)
    return 0


@kfn("do_cow_fault")
def do_cow_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> int:
    anon_vma_prepare(ctx, vma)
    new = ctx.pm.alloc_folio(0, 0)  # folio_prealloc(..., need_zero = false)
    if new < 0:
        ctx.mm_event("oom", addr, 0)
        return VM_FAULT_OOM
    ctx.mm_event("folio_alloc", addr, 0)
    ctx.cost("mm_folio", addr, 1)
    f = _file(ctx, vma)
    head = filemap_get_folio(ctx, f, vma, vma.linear_index(addr, ctx.pshift))
    if head < 0:
        folio_put_refs(ctx, new, 1)  # uncharge_out: folio_put(vmf->cow_page)
        return _retry_or_oom(ctx, head)
    ctx.cost("mm_copy_page", addr, 1)
    ret = finish_fault(ctx, proc, vma, addr, True, head, new)
    if ret:
        folio_put_refs(ctx, new, 1)
    return ret


@kfn("do_shared_fault")
def do_shared_fault(ctx: MmContext, proc: Process, vma: VMA, addr: int) -> int:
    f = _file(ctx, vma)
    head = filemap_get_folio(ctx, f, vma, vma.linear_index(addr, ctx.pshift))
    if head < 0:
        return _retry_or_oom(ctx, head)
    folio_ref_add(ctx, head, 1)
    ret = finish_fault(ctx, proc, vma, addr, True, head, -1)
    if ret:
        folio_put_refs(ctx, head, 1)
        return ret
    # fault_dirty_shared_page() -> folio_mark_dirty()
    ctx.pm.set_flag(head, F_DIRTY)
    return 0


# --- write-protect faults -----------------------------------------------------------
def _can_reuse_large_anon(ctx: MmContext, head: int, proc: Process) -> bool:
    """__wp_can_reuse_large_anon_folio(): every reference is a mapping, and
    every mapping is in this mm."""
    pm = ctx.pm
    i = head - pm.base
    if pm.lmap[i] <= 1 or pm.entire.get(head):
        return False
    if pm.flags[i] & F_SWAPCACHE:
        folio_free_swap(ctx, head)
    if pm.lmap[i] != pm.ref[i]:
        return False
    n = 1 << ctx.arch.folios.order_of(head)
    return all(p is proc for p, _v, _a, _first, _cnt in folio_mapped_in(ctx, head, n))


@kfn("do_wp_page")
def do_wp_page(ctx: MmContext, proc: Process, vma: VMA, addr: int, orig: int) -> int:
    # mm/memory.c do_wp_page(): userfaultfd_pte_wp(vma, ptep_get(vmf->pte)) reads the
    # entry again before anything else (v6.5's ptep_get() conversion; in v6.12 and v7.3)
    ctx.arch.ptep_get(proc.mm, addr)
    pfn = ctx.pte_pfn(orig)
    pm = ctx.pm
    if vma.flags & VM_SHARED:
        if orig & PTE_SPECIAL:
            return wp_page_copy(ctx, proc, vma, addr, orig, -1)
        # wp_page_shared(): page_mkwrite dirties the folio, then reuse
        head, _ = ctx.arch.folios.folio_of(pfn)
        pm.set_flag(head, F_DIRTY)
        return wp_page_reuse(ctx, proc, vma, addr, orig)
    if orig & PTE_SPECIAL or pfn == pm.zero_pfn:
        return wp_page_copy(ctx, proc, vma, addr, orig, -1)
    head, n = ctx.arch.folios.folio_of(pfn)
    i = head - pm.base
    if pm.flags[i] & F_ANON:
        reuse = page_anon_exclusive(ctx, pfn)
        if not reuse:
            if n > 1:
                reuse = ctx.profile.reuse_large_anon and _can_reuse_large_anon(ctx, head, proc)
            else:
                if pm.flags[i] & F_SWAPCACHE:
                    folio_free_swap(ctx, head)
                reuse = pm.ref[i] == 1
            if reuse:
                set_anon_exclusive(ctx, pfn)
        if reuse:
            return wp_page_reuse(ctx, proc, vma, addr, orig)
    return wp_page_copy(ctx, proc, vma, addr, orig, head)


@kfn("wp_page_reuse")
def wp_page_reuse(ctx: MmContext, proc: Process, vma: VMA, addr: int, orig: int) -> int:
    entry = ctx.maybe_mkwrite(pte_mkdirty(orig | PTE_AF), vma)
    ctx.arch.ptep_set_access_flags(proc.mm, addr, entry, 1)
    return 0


@kfn("wp_page_copy")
def wp_page_copy(ctx: MmContext, proc: Process, vma: VMA, addr: int, orig: int, old_head: int) -> int:
    mm = proc.mm
    arch = ctx.arch
    anon_vma_prepare(ctx, vma)
    new = ctx.pm.alloc_folio(0, 0)
    if new < 0:
        ctx.mm_event("oom", addr, 0)
        return VM_FAULT_OOM
    ctx.mm_event("folio_alloc", addr, 0)
    ctx.cost("mm_folio", addr, 1)
    ctx.cost("mm_zero_page" if old_head < 0 else "mm_copy_page", addr, 1)
    if arch.ptep_get(mm, addr) != orig:
        folio_put_refs(ctx, new, 1)
        return 0
    entry = ctx.maybe_mkwrite(pte_mkdirty(ctx.mk_pte(new, vma.page_prot)), vma)
    arch.ptep_clear_flush(mm, addr)
    folio_add_new_anon_rmap(ctx, new, 1, vma, addr, True)
    arch.set_ptes(mm, addr, entry, 1)
    if old_head >= 0:
        old_pfn = ctx.pte_pfn(orig)
        folio_remove_rmap_ptes(ctx, old_head, old_pfn, 1, addr)
        folio_put_refs(ctx, old_head, 1)
    return 0


# --- page contents ------------------------------------------------------------------
def user_wrote(ctx: MmContext, mm: MMStruct, start: int, end: int) -> None:
    """The user's stores reached every page of [start, end) (the guest writes
    a non-zero byte to each): their pages hold data from now on (P_DATA).
    Read from the page tables after the access, so it is the page the
    store finally went to (after a CoW fault, the new copy)."""
    pt = mm.pt
    pm = ctx.pm
    fl = pm.flags
    base = pm.base
    pshift = ctx.pshift
    mask = ctx.addr_low
    shift = ctx.g.pmd_shift
    per = 1 << (shift - pshift)
    va = start
    while va < end:
        key = va >> shift
        stop = min(end, (key + 1) << shift)
        t = pt.tables.get(key)
        if t is not None:
            i = (va >> pshift) & (per - 1)
            for raw in t[i:i + ((stop - va) >> pshift)]:
                if raw & PTE_VALID:
                    fl[((raw & mask) >> pshift) - base] |= P_DATA
        else:
            pmd = pt.pmd_leaves.get(key, 0)
            if pmd & PTE_VALID:
                first = ((pmd & mask) >> pshift) + ((va >> pshift) & (per - 1)) - base
                for j in range(first, first + ((stop - va) >> pshift)):
                    fl[j] |= P_DATA
        va = stop


# --- swap-in ----------------------------------------------------------------------
@kfn("do_swap_page")
def _swapin_orders(ctx: MmContext, proc: Process, vma: VMA, addr: int, orig: int, slot: int) -> int:
    """mm/memory.c alloc_swap_folio() (v6.12+): the highest mTHP order whose
    aligned range at addr holds only swap entries with contiguous offsets,
    none in the swap cache, the first offset aligned like the address
    (thp_swap_suitable_orders, can_swapin_thp); 0 if none."""
    orders = ctx.thp.allowable_orders(vma, (1 << ctx.pmd_order) - 1)
    orders = ctx.thp.suitable_orders(vma, addr, orders)
    page = addr >> ctx.pshift
    while orders:  # thp_swap_suitable_orders(): from the first aligned order down
        order = orders.bit_length() - 1
        if page % (1 << order) == slot % (1 << order):
            break
        orders &= ~(1 << order)
    mm = proc.mm
    lay = ctx.layout
    while orders:
        order = orders.bit_length() - 1
        n = 1 << order
        idx = page & (n - 1)
        start = addr - idx * ctx.ps
        first = orig - (idx << lay.swp_offset_shift)
        if (ctx.arch.ptep_get(mm, start) == first and swap_pte_batch(ctx, mm, start, n, first) == n
                and all(swap_cache_lookup(ctx, s) < 0 for s in range(slot - idx, slot - idx + n))):
            return order
        orders &= ~(1 << order)
    return 0


def do_swap_page(ctx: MmContext, proc: Process, vma: VMA, addr: int, orig: int, write: bool) -> int:
    lay = ctx.layout
    mm = proc.mm
    arch = ctx.arch
    if lay.swp_type(orig) != SWP_TYPE:
        return 0  # migration entry: would wait for migration to finish
    slot = lay.swp_offset(orig)
    pm = ctx.pm
    head = swap_cache_lookup(ctx, slot)
    if head >= 0:
        folio_ref_add(ctx, head, 1)  # the lookup's reference
    else:
        # swapin_readahead() of the one page: a fresh order-0 folio, added to
        # the swap cache; its allocation reference becomes the mapping's. On a
        # synchronous device (zram) with one reference to the slot, v6.12+ reads
        # the largest mTHP-sized, aligned run of swap entries at once
        # (alloc_swap_folio()); the folio is then mapped whole below. Since
        # "mm, swap: never bypass the swap cache even for SWP_SYNCHRONOUS_IO"
        # (row swapin_any_count) the `__swap_count(entry) == 1` test is gone:
        # do_swap_page() calls alloc_swap_folio() on such a device whatever the
        # swap count (a slot a fork shares too), then swapin_folio() adds the
        # folio to the swap cache.
        order = 0
        if ctx.profile.mthp_swapin_sync and (ctx.profile.swapin_any_count or ctx.swap.count[slot] == 1):
            order = _swapin_orders(ctx, proc, vma, addr, orig, slot)
        head = -1
        while head < 0:
            head = pm.alloc_folio(order, F_SWAPBACKED | F_UPTODATE | F_LRU)
            if head >= 0 or not order:
                break
            order = 0  # vma_alloc_folio() failed: fall back to one page
        if head < 0:
            ctx.mm_event("oom", addr, 0)
            return VM_FAULT_OOM
        ctx.mm_event("swapin", addr, slot)
        ctx.cost("mm_folio", addr, 1)
        nr_in = 1 << order
        first = slot - ((addr >> ctx.pshift) & (nr_in - 1))
        add_to_swap_cache(ctx, head, first, nr_in)
        swap_read_data(ctx, head, first, nr_in)
    if arch.ptep_get(mm, addr) != orig:
        folio_put_refs(ctx, head, 1)
        return 0
    i = head - pm.base
    n = 1 << ctx.arch.folios.order_of(head)
    first_slot = ctx.swap.slot_of[head]
    idx = slot - first_slot
    nr = 1
    start = addr
    pfn = head + idx
    if n > 1 and ctx.profile.mthp_swap:
        fstart = addr - idx * ctx.ps
        first_pte = orig - (idx << lay.swp_offset_shift)
        if (fstart >= max(addr & ~(ctx.pmd_size - 1), vma.start)
                and fstart + n * ctx.ps <= min((addr | (ctx.pmd_size - 1)) + 1, vma.end)
                and arch.ptep_get(mm, fstart) == first_pte
                and swap_pte_batch(ctx, mm, fstart, n, first_pte) == n):
            nr, start, pfn = n, fstart, head
            slot = first_slot
    exclusive = lay.swp_exclusive(orig)
    entry = ctx.mk_pte(pfn, vma.page_prot)
    if exclusive and vma.flags & VM_WRITE:
        entry = ctx.pte_mkwrite(entry)
        if write:
            entry = pte_mkdirty(entry)
            write = False
    folio_ref_add(ctx, head, nr - 1)
    if not pm.flags[i] & F_ANON:
        # a fresh folio: __folio_set_anon(), with the oldest anon_vma unless exclusive
        anon_vma_prepare(ctx, vma)
        pm.flags[i] |= F_ANON | F_SWAPBACKED
        pm.mapping[i] = vma.anon_vma if exclusive else vma.avc[0]
        pm.index[i] = vma.linear_index(start, ctx.pshift) - (pfn - head)
    folio_add_anon_rmap_ptes(ctx, head, pfn, nr, vma, start, exclusive)
    arch.set_ptes(mm, start, entry, nr)
    ctx.swap.put(slot, nr)  # folio_put_swap(): the PTEs no longer reference the slots
    ctx.mm_event("swap_free", slot, nr)
    if write or swap_unreferenced(ctx, head):
        folio_free_swap(ctx, head)  # should_try_to_free_swap()
    if write:
        return do_wp_page(ctx, proc, vma, addr, arch.ptep_get(mm, addr))
    return 0


# --- NUMA hinting --------------------------------------------------------------------
@kfn("do_numa_page")
def do_numa_page(ctx: MmContext, proc: Process, vma: VMA, addr: int, orig: int) -> int:
    """One node: the folio is never misplaced, so the mapping is rebuilt."""
    mm = proc.mm
    arch = ctx.arch
    if arch.ptep_get(mm, addr) != orig:
        return 0
    pte = ctx.pte_modify(orig, vma.page_prot)
    writable = bool(pte & PTE_WRITE)
    upgrade = bool(vma.flags & VM_WRITE)
    if not writable and upgrade and can_change_pte_writable(ctx, vma, addr, pte):
        writable = True
    pfn = ctx.pte_pfn(orig)
    head, n = ctx.arch.folios.folio_of(pfn)
    if n > 1 and ctx.profile.numa_large_rebuild:
        numa_rebuild_large_mapping(ctx, proc, vma, addr, head, n, pfn, upgrade)
    else:
        numa_rebuild_single_mapping(ctx, proc, vma, addr, writable)
    return 0


def numa_rebuild_single_mapping(ctx: MmContext, proc: Process, vma: VMA, addr: int, writable: bool) -> None:
    mm = proc.mm
    arch = ctx.arch
    old = arch.ptep_modify_prot_start(mm, addr)
    pte = ctx.pte_modify(old, vma.page_prot) | PTE_AF
    if writable:
        pte = ctx.pte_mkwrite(pte)
    arch.ptep_modify_prot_commit(mm, addr, old, pte)


def numa_rebuild_large_mapping(ctx: MmContext, proc: Process, vma: VMA, addr: int, head: int, n: int,
                               pfn: int, upgrade: bool) -> None:
    ctx.log.call("numa_rebuild_large_mapping", (proc.name, addr, n))
    mm = proc.mm
    arch = ctx.arch
    ps = ctx.ps
    addr_start = addr - ((pfn - head) << ctx.pshift)
    pt_start = addr & ~(ctx.pmd_size - 1)
    start = max(addr_start, pt_start, vma.start)
    end = min(addr_start + n * ps, pt_start + ctx.pmd_size, vma.end)
    lay = ctx.layout
    a = start
    while a != end:
        ptent = arch.ptep_get(mm, a)
        if lay.pte_present(ptent) and lay.pte_protnone(ptent):
            p = ctx.pte_pfn(ptent)
            if head <= p < head + n:
                ptent = ctx.pte_modify(ptent, vma.page_prot)
                writable = bool(ptent & PTE_WRITE)
                if not writable and upgrade and can_change_pte_writable(ctx, vma, a, ptent):
                    writable = True
                numa_rebuild_single_mapping(ctx, proc, vma, a, writable)
        a += ps
    ctx.log.ret("numa_rebuild_large_mapping", None)
