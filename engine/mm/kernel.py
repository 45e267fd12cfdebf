# SPDX-License-Identifier: GPL-2.0-only
"""The core-mm model in one object: every path mixin plus the system-call
level entry points the machine drives (mmap, munmap, mprotect, madvise,
fork, exit, mremap, reclaim, migrate, NUMA scan, split, collapse, read).

Arguments are assumed valid: the machine checks them (and raises
ScenarioError) before anything changes.
"""

from __future__ import annotations

from engine.mm.base import MmContext, kfn
from engine.mm.filemap import file_read
from engine.mm.fork import dup_mmap
from engine.mm.huge import collapse_huge_page, split_folio
from engine.mm.madvise import madvise_cold_range, madvise_free_range
from engine.mm.migrate import migrate_one_folio
from engine.mm.mprotect import change_prot_numa, mprotect_fixup
from engine.mm.mremap import move_vma
from engine.mm.pmd import split_huge_pmd, split_vmas
from engine.mm.process import Process
from engine.mm.reclaim import lru_folios, reclaim_pass
from engine.mm.vma import VM_HUGEPAGE, VM_NOHUGEPAGE, VM_SHARED, VMA
from engine.mm.zap import exit_mmap, unmap_region, zap_vma_range
from engine.pte import PTE_SPECIAL
from engine.state.mmstruct import MMStruct


class Kernel(MmContext):
    # --- processes ------------------------------------------------------------------------
    def new_process(self, name: str, parent: str | None = None) -> Process:
        pid = self.next_id("pid")
        asid = self.next_id("asid")
        p = Process(name, pid, MMStruct(self.g, asid, True, name), parent)
        self.procs.append(p)
        self.vmas_changed()
        return p

    @kfn("kernel_clone")
    def fork(self, parent: Process, child_name: str) -> Process:
        child = self.new_process(child_name, parent.name)
        dup_mmap(self, parent, child)
        return child

    @kfn("do_exit")
    def exit(self, proc: Process) -> None:
        exit_mmap(self, proc)

    # --- mappings -------------------------------------------------------------------------
    @kfn("do_mmap")
    def mmap(self, proc: Process, name: str, addr: int, length: int, vm_flags: int, file: int,
             shmem: bool) -> int:
        pgoff = 0 if file else addr >> self.pshift
        v = VMA(name, addr, addr + length, vm_flags, 0, pgoff, file, shmem)
        v.page_prot = self.vma_page_prot(v)
        proc.insert(v)
        proc.merge_new(v, self.pshift)
        proc.regions[name] = [addr, length]
        self.vmas_changed()
        self.mm_event("mmap", addr, length)
        return addr

    def munmap(self, proc: Process, start: int, end: int) -> None:
        unmap_region(self, proc, start, end)

    def mprotect(self, proc: Process, start: int, end: int, vm_flags: int) -> int:
        return mprotect_fixup(self, proc, start, end, vm_flags)

    @kfn("madvise")
    def madvise(self, proc: Process, start: int, end: int, advice: str) -> int:
        if advice in ("hugepage", "nohugepage"):
            for v in split_vmas(self, proc, start, end):
                if advice == "hugepage":
                    v.flags = (v.flags | VM_HUGEPAGE) & ~VM_NOHUGEPAGE
                else:
                    v.flags = (v.flags | VM_NOHUGEPAGE) & ~VM_HUGEPAGE
            proc.try_merge(self.pshift)
            self.vmas_changed()
            return 0
        done = 0
        for v in proc.vmas_in(start, end):
            s, e = max(start, v.start), min(end, v.end)
            if advice == "dontneed":
                from engine.mm.gather import MMUGather

                tlb = MMUGather(self, proc.mm)
                zap_vma_range(self, tlb, proc, v, s, e)
                tlb.finish()
            elif advice == "free":
                if v.anon and not v.flags & VM_SHARED:
                    done += madvise_free_range(self, proc, v, s, e)
            elif advice in ("cold", "pageout"):
                done += madvise_cold_range(self, proc, v, s, e, advice == "pageout")
        return done

    def mremap(self, proc: Process, name: str, start: int, end: int, new_addr: int) -> int:
        """mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of the region ``name``: a region
        inside a bigger VMA is split off first (move_vma()'s unmap of the old
        range splits in the kernel)."""
        vma = split_vmas(self, proc, start, end)[0]
        addr = move_vma(self, proc, vma, new_addr)
        region = proc.regions.get(name)
        if region is not None:
            region[0] = new_addr
        return addr

    # --- memory management operations ------------------------------------------------------
    def reclaim(self, procs: list[Process], start: int, end: int, global_pass: bool) -> int:
        return reclaim_pass(self, procs, start, end, global_pass)

    def migrate_targets(self, proc: Process, start: int, end: int) -> list[tuple[int, int]]:
        """(folio head, address) of each folio mapped in the range, in the order
        migrate visits them: the address is the folio's first mapped page there
        (its PMD for a PMD mapping) -- what ``move_pages()`` is given, one page
        per folio, by the crosscheck's guest."""
        heads = lru_folios(self, [proc], start, end, include_unmapped=False)
        first: dict[int, int] = {}
        pt = proc.mm.pt
        folios = self.arch.folios
        for v in proc.vmas_in(start, end):
            s, e = max(start, v.start), min(end, v.end)
            a = s & ~(self.pmd_size - 1)
            while a < e:
                pmd = pt.get_pmd(a) if pt.tables.get(a >> self.g.pmd_shift) is None else 0
                if pmd and self.layout.pte_present(pmd):
                    first.setdefault(self.pte_pfn(pmd), max(a, s))
                a += self.pmd_size
            for va, pte in pt.iter_present(s, e):
                if self.layout.pte_present(pte) and not pte & PTE_SPECIAL:
                    first.setdefault(folios.folio_of(self.pte_pfn(pte))[0], va)
        return [(h, first[h]) for h in heads if h in first]

    @kfn("migrate_pages")
    def migrate(self, proc: Process, start: int, end: int) -> int:
        """move_pages() with one page of each folio mapped in the range, then
        migrate_pages() of them (MIGRATE_SYNC: each entry is cleared with
        ptep_clear_flush). The syscall first looks every page up
        (add_page_for_migration(): folio_walk_start() reads the entry with
        ptep_get()), isolating the folios, then migrates the list. A large
        folio with no free memory of its order is split and its pieces
        migrated."""
        targets = self.migrate_targets(proc, start, end)
        pt = proc.mm.pt
        for _h, va in targets:
            if pt.tables.get(va >> self.g.pmd_shift) is not None:
                self.arch.ptep_get(proc.mm, va)
        heads = [h for h, _ in targets]
        moved = 0
        for h in heads:
            if not self.pm.ref[h - self.pm.base] or self.arch.folios.folio_of(h)[0] != h:
                continue
            if migrate_one_folio(self, h, False) >= 0:
                moved += 1
                continue
            n = 1 << self.arch.folios.order_of(h)
            first = split_folio(self, h, 0)
            if first < 0:
                continue
            for p in range(first, first + n):
                if self.pm.ref[p - self.pm.base] and migrate_one_folio(self, p, False) >= 0:
                    moved += 1
        return moved

    def numa_scan(self, proc: Process, start: int, end: int) -> int:
        return change_prot_numa(self, proc, start, end)

    @kfn("split")
    def split_range(self, proc: Process, start: int, end: int, order: int, pmd_only: bool) -> int:
        """Split the PMD mappings (pmd_only) or the folios mapped in [start, end)."""
        n = 0
        for v in proc.vmas_in(start, end):
            s, e = max(start, v.start), min(end, v.end)
            if pmd_only:
                a = s & ~(self.pmd_size - 1)
                while a < e:
                    if proc.mm.pt.get_pmd(a):
                        split_huge_pmd(self, proc, v, a)
                        n += 1
                    a += self.pmd_size
                continue
            # split_huge_pages_pid() (debugfs split_huge_pages, what the crosscheck's guest
            # writes): every page address in turn is looked up with folio_walk_start(),
            # which reads the entry (ptep_get, or the PMD), and a large folio found there
            # is split
            pt = proc.mm.pt
            va = s
            while va < e:
                if pt.tables.get(va >> self.g.pmd_shift) is not None:
                    pte = self.arch.ptep_get(proc.mm, va)
                else:
                    pte = pt.get_pmd(va)
                if pte and self.layout.pte_present(pte) and not pte & PTE_SPECIAL:
                    h = self.arch.folios.folio_of(self.pte_pfn(pte) + (
                        0 if pt.tables.get(va >> self.g.pmd_shift) is not None
                        else (va & (self.pmd_size - 1)) >> self.pshift))[0]
                    if (self.pm.ref[h - self.pm.base] and self.arch.folios.order_of(h) > order
                            and split_folio(self, h, order) >= 0):
                        n += 1
                va += self.ps
        return n

    def collapse(self, proc: Process, vma: VMA, haddr: int) -> int:
        r = collapse_huge_page(self, proc, vma, haddr)
        if r < 0:
            # what madvise(MADV_COLLAPSE) returns: the crosscheck compares it with the kernel's
            self.mm_event("syscall_error", haddr, -r)
        return r

    @kfn("ksys_read")
    def read_file(self, fid: int, first: int, last: int) -> int:
        return file_read(self, self.pc.files[fid], first, last)
