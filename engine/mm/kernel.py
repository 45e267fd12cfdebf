# SPDX-License-Identifier: GPL-2.0-only
"""The system-call level entry points the machine drives (mmap, munmap,
mprotect, madvise, fork, exit, mremap, reclaim, migrate, NUMA scan, split,
collapse, read) over one explicit :class:`MmContext`.

Core mm is functions per kernel file, each taking the context first
(fault.py ``handle_pte_fault(ctx, ...)``, zap.py ``zap_pte_range(ctx, tlb,
...)``, ...). The functions below are the top of each system call, named
after the kernel function its ``kfn`` event is; :class:`Kernel` owns the
context and is the machine's handle on them.

Arguments are assumed valid: the machine checks them (and raises
ScenarioError) before anything changes.
"""

from __future__ import annotations

from engine.arch import Arch
from engine.events import EventLog
from engine.mm.base import MmContext, kfn
from engine.mm.filemap import file_read
from engine.mm.fork import dup_mmap
from engine.mm.gather import MMUGather
from engine.mm.huge import collapse_huge_page, split_folio
from engine.mm.madvise import madvise_cold_range, madvise_free_range
from engine.mm.migrate import migrate_one_folio
from engine.mm.mprotect import change_prot_numa, mprotect_fixup
from engine.mm.mremap import move_vma
from engine.mm.pagecache import PageCache
from engine.mm.physmem import PhysMem
from engine.mm.pmd import split_huge_pmd, split_vmas
from engine.mm.process import Process
from engine.mm.reclaim import lru_folios, reclaim_pass
from engine.mm.swap import SwapDevice
from engine.mm.thp import ThpPolicy
from engine.mm.vma import VM_HUGEPAGE, VM_NOHUGEPAGE, VM_SHARED, VMA
from engine.mm.zap import exit_mmap, unmap_region, zap_vma_range
from engine.pte import PTE_SPECIAL
from engine.state.mmstruct import MMStruct


# --- processes ------------------------------------------------------------------------
def new_process(ctx: MmContext, name: str, parent: str | None = None) -> Process:
    """A process with a new, empty mm (the mm_alloc() of copy_process(); the
    machine's first process, "p0", is made this way too)."""
    pid = ctx.next_id("pid")
    asid = ctx.next_id("asid")
    p = Process(name, pid, MMStruct(ctx.g, asid, True, name), parent)
    ctx.procs.append(p)
    ctx.vmas_changed()
    return p


@kfn("kernel_clone")
def kernel_clone(ctx: MmContext, parent: Process, child_name: str) -> Process:
    """kernel/fork.c kernel_clone() -> copy_process() -> dup_mm() -> dup_mmap()."""
    child = new_process(ctx, child_name, parent.name)
    dup_mmap(ctx, parent, child)
    return child


@kfn("do_exit")
def do_exit(ctx: MmContext, proc: Process) -> None:
    """kernel/exit.c do_exit() -> exit_mm() -> mmput() -> exit_mmap()."""
    exit_mmap(ctx, proc)


# --- mappings -------------------------------------------------------------------------
@kfn("do_mmap")
def do_mmap(ctx: MmContext, proc: Process, name: str, addr: int, length: int, vm_flags: int, file: int,
            shmem: bool) -> int:
    """mm/mmap.c do_mmap() -> mmap_region() (the VMA merged with its neighbours
    where vma_merge_new_range() would)."""
    pgoff = 0 if file else addr >> ctx.pshift
    v = VMA(name, addr, addr + length, vm_flags, 0, pgoff, file, shmem)
    v.page_prot = ctx.vma_page_prot(v)
    proc.insert(v)
    proc.merge_new(v, ctx.pshift)
    proc.regions[name] = [addr, length]
    ctx.vmas_changed()
    ctx.mm_event("mmap", addr, length)
    return addr


@kfn("madvise")
def do_madvise(ctx: MmContext, proc: Process, start: int, end: int, advice: str) -> int:
    if advice in ("hugepage", "nohugepage"):
        for v in split_vmas(ctx, proc, start, end):
            if advice == "hugepage":
                v.flags = (v.flags | VM_HUGEPAGE) & ~VM_NOHUGEPAGE
            else:
                v.flags = (v.flags | VM_NOHUGEPAGE) & ~VM_HUGEPAGE
        proc.try_merge(ctx.pshift)
        ctx.vmas_changed()
        return 0
    done = 0
    for v in proc.vmas_in(start, end):
        s, e = max(start, v.start), min(end, v.end)
        if advice == "dontneed":
            tlb = MMUGather(ctx, proc.mm)
            zap_vma_range(ctx, tlb, proc, v, s, e)
            tlb.finish()
        elif advice == "free":
            if v.anon and not v.flags & VM_SHARED:
                done += madvise_free_range(ctx, proc, v, s, e)
        elif advice in ("cold", "pageout"):
            done += madvise_cold_range(ctx, proc, v, s, e, advice == "pageout")
    return done


def do_mremap(ctx: MmContext, proc: Process, name: str, start: int, end: int, new_addr: int) -> int:
    """mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of the region ``name``: a region
    inside a bigger VMA is split off first (move_vma()'s unmap of the old
    range splits in the kernel)."""
    vma = split_vmas(ctx, proc, start, end)[0]
    addr = move_vma(ctx, proc, vma, new_addr)
    region = proc.regions.get(name)
    if region is not None:
        region[0] = new_addr
    return addr


# --- memory management operations ------------------------------------------------------
def migrate_targets(ctx: MmContext, proc: Process, start: int, end: int) -> list[tuple[int, int]]:
    """(folio head, address) of each folio mapped in the range, in the order
    migrate visits them: the address is the folio's first mapped page there
    (its PMD for a PMD mapping) -- what ``move_pages()`` is given, one page
    per folio, by the crosscheck's guest."""
    heads = lru_folios(ctx, [proc], start, end, include_unmapped=False)
    first: dict[int, int] = {}
    pt = proc.mm.pt
    folios = ctx.arch.folios
    for v in proc.vmas_in(start, end):
        s, e = max(start, v.start), min(end, v.end)
        a = s & ~(ctx.pmd_size - 1)
        while a < e:
            pmd = pt.get_pmd(a) if pt.tables.get(a >> ctx.g.pmd_shift) is None else 0
            if pmd and ctx.layout.pte_present(pmd):
                first.setdefault(ctx.pte_pfn(pmd), max(a, s))
            a += ctx.pmd_size
        for va, pte in pt.iter_present(s, e):
            if ctx.layout.pte_present(pte) and not pte & PTE_SPECIAL:
                first.setdefault(folios.folio_of(ctx.pte_pfn(pte))[0], va)
    return [(h, first[h]) for h in heads if h in first]


@kfn("migrate_pages")
def migrate_pages(ctx: MmContext, proc: Process, start: int, end: int) -> int:
    """move_pages() with one page of each folio mapped in the range, then
    migrate_pages() of them (MIGRATE_SYNC: each entry is cleared with
    ptep_clear_flush). The syscall first looks every page up
    (add_page_for_migration(): folio_walk_start() reads the entry with
    ptep_get()), isolating the folios, then migrates the list. A large
    folio with no free memory of its order is split and its pieces
    migrated."""
    targets = migrate_targets(ctx, proc, start, end)
    pt = proc.mm.pt
    for _h, va in targets:
        if pt.tables.get(va >> ctx.g.pmd_shift) is not None:
            ctx.arch.ptep_get(proc.mm, va)
    heads = [h for h, _ in targets]
    moved = 0
    for h in heads:
        if not ctx.pm.ref[h - ctx.pm.base] or ctx.arch.folios.folio_of(h)[0] != h:
            continue
        if migrate_one_folio(ctx, h, False) >= 0:
            moved += 1
            continue
        n = 1 << ctx.arch.folios.order_of(h)
        first = split_folio(ctx, h, 0)
        if first < 0:
            continue
        for p in range(first, first + n):
            if ctx.pm.ref[p - ctx.pm.base] and migrate_one_folio(ctx, p, False) >= 0:
                moved += 1
    return moved


@kfn("split")
def split_range(ctx: MmContext, proc: Process, start: int, end: int, order: int, pmd_only: bool) -> int:
    """Split the PMD mappings (pmd_only) or the folios mapped in [start, end)."""
    n = 0
    for v in proc.vmas_in(start, end):
        s, e = max(start, v.start), min(end, v.end)
        if pmd_only:
            a = s & ~(ctx.pmd_size - 1)
            while a < e:
                if proc.mm.pt.get_pmd(a):
                    split_huge_pmd(ctx, proc, v, a)
                    n += 1
                a += ctx.pmd_size
            continue
        # split_huge_pages_pid() (debugfs split_huge_pages, what the crosscheck's guest
        # writes): every page address in turn is looked up with folio_walk_start(),
        # which reads the entry (ptep_get, or the PMD), and a large folio found there
        # is split
        pt = proc.mm.pt
        va = s
        while va < e:
            if pt.tables.get(va >> ctx.g.pmd_shift) is not None:
                pte = ctx.arch.ptep_get(proc.mm, va)
            else:
                pte = pt.get_pmd(va)
            if pte and ctx.layout.pte_present(pte) and not pte & PTE_SPECIAL:
                h = ctx.arch.folios.folio_of(ctx.pte_pfn(pte) + (
                    0 if pt.tables.get(va >> ctx.g.pmd_shift) is not None
                    else (va & (ctx.pmd_size - 1)) >> ctx.pshift))[0]
                if (ctx.pm.ref[h - ctx.pm.base] and ctx.arch.folios.order_of(h) > order
                        and split_folio(ctx, h, order) >= 0):
                    n += 1
            va += ctx.ps
    return n


def madvise_collapse(ctx: MmContext, proc: Process, vma: VMA, haddr: int) -> int:
    """madvise(MADV_COLLAPSE) of one PMD range (mm/khugepaged.c madvise_collapse())."""
    r = collapse_huge_page(ctx, proc, vma, haddr)
    if r < 0:
        # what madvise(MADV_COLLAPSE) returns: the crosscheck compares it with the kernel's
        ctx.mm_event("syscall_error", haddr, -r)
    return r


@kfn("ksys_read")
def ksys_read(ctx: MmContext, fid: int, first: int, last: int) -> int:
    return file_read(ctx, ctx.pc.files[fid], first, last)


class Kernel:
    """The machine's handle on core mm: it owns the :class:`MmContext` (``ctx``)
    and has one method per system call, each calling the kernel function
    above (or the path's own file) with the context."""

    def __init__(self, arch: Arch, log: EventLog, pm: PhysMem, swap: SwapDevice,
                 pagecache: PageCache, thp: ThpPolicy):
        self.ctx = MmContext(arch, log, pm, swap, pagecache, thp)

    # --- what callers outside core mm read (the context's: Machine.restore() replaces them there)
    @property
    def procs(self) -> list[Process]:
        return self.ctx.procs

    @property
    def pm(self) -> PhysMem:
        return self.ctx.pm

    @property
    def pc(self) -> PageCache:
        return self.ctx.pc

    @property
    def swap(self) -> SwapDevice:
        return self.ctx.swap

    @property
    def thp(self) -> ThpPolicy:
        return self.ctx.thp

    def proc(self, name: str) -> Process | None:
        return self.ctx.proc(name)

    def live_procs(self) -> list[Process]:
        return self.ctx.live_procs()

    # --- system calls ---------------------------------------------------------------------
    def new_process(self, name: str, parent: str | None = None) -> Process:
        return new_process(self.ctx, name, parent)

    def fork(self, parent: Process, child_name: str) -> Process:
        return kernel_clone(self.ctx, parent, child_name)

    def exit(self, proc: Process) -> None:
        do_exit(self.ctx, proc)

    def mmap(self, proc: Process, name: str, addr: int, length: int, vm_flags: int, file: int,
             shmem: bool) -> int:
        return do_mmap(self.ctx, proc, name, addr, length, vm_flags, file, shmem)

    def munmap(self, proc: Process, start: int, end: int) -> None:
        unmap_region(self.ctx, proc, start, end)  # do_vmi_munmap()

    def mprotect(self, proc: Process, start: int, end: int, vm_flags: int) -> int:
        return mprotect_fixup(self.ctx, proc, start, end, vm_flags)

    def madvise(self, proc: Process, start: int, end: int, advice: str) -> int:
        return do_madvise(self.ctx, proc, start, end, advice)

    def mremap(self, proc: Process, name: str, start: int, end: int, new_addr: int) -> int:
        return do_mremap(self.ctx, proc, name, start, end, new_addr)

    def reclaim(self, procs: list[Process], start: int, end: int, global_pass: bool) -> int:
        return reclaim_pass(self.ctx, procs, start, end, global_pass)

    def migrate_targets(self, proc: Process, start: int, end: int) -> list[tuple[int, int]]:
        return migrate_targets(self.ctx, proc, start, end)

    def migrate(self, proc: Process, start: int, end: int) -> int:
        return migrate_pages(self.ctx, proc, start, end)

    def numa_scan(self, proc: Process, start: int, end: int) -> int:
        return change_prot_numa(self.ctx, proc, start, end)

    def split_range(self, proc: Process, start: int, end: int, order: int, pmd_only: bool) -> int:
        return split_range(self.ctx, proc, start, end, order, pmd_only)

    def collapse(self, proc: Process, vma: VMA, haddr: int) -> int:
        return madvise_collapse(self.ctx, proc, vma, haddr)

    def read_file(self, fid: int, first: int, last: int) -> int:
        return ksys_read(self.ctx, fid, first, last)
