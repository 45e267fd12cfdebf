# SPDX-License-Identifier: GPL-2.0-only
"""The MMU of the CPU running the scenario: TLB lookup, table walk with
hardware access-flag / dirty-state updates, and the device walker.

``access(mm, va, write)`` performs one hardware access and returns "" or the
fault the kernel must handle (translation / access_flag / permission), after
recording ``tlb_hit`` or ``tlb_miss``, the walk's ``hw_update`` and the
``tlb_fill``. A write that hits a TLB entry cached clean (RDONLY with DBM)
is re-walked so the hardware can mark the descriptor dirty.

A TLB hit is also checked against the page tables: an entry that still
grants more than the descriptor now does (invalid, other page, writable
where the entry is read-only) means a flush the kernel owed was missing --
an ``invariant_violation`` ("tlb-stale"). Stale access/dirty bits are
harmless and not reported.

``device_access`` is an SMMU without HTTU walking one descriptor on its own
(no TLB, no hardware AF/dirty update): the walker of the 2026
set_access_flags fix.
"""

from __future__ import annotations

from engine.events import EventLog
from engine.granule import Granule
from engine.hw.cpus import CpuProfile
from engine.hw.tlb import CONT, PAGE, PMD, TLB
from engine.hw.walker import walk_descriptor
from engine.pte import PTE_CONT, PTE_RDONLY, PTE_VALID, PTE_WRITE
from engine.state.mmstruct import MMStruct


class MMU:
    def __init__(self, cpu: CpuProfile, g: Granule, log: EventLog):
        self.cpu = cpu
        self.g = g
        self.log = log
        log.bind_granule(g.page_size, g.cont_ptes)
        self.tlb = TLB(cpu, g.page_shift, g.cont_pte_log2, g.pmd_shift, log)
        self.ps = g.page_shift
        self.pmd_shift = g.pmd_shift
        self.addr_low = g.pte_addr_low
        self.cont_mask = g.cont_ptes - 1
        # Granule properties and CPU flags read on every access: cached flat (a
        # property call per access is measurable on an order-0 fault-in)
        self.idx_mask = g.ptrs_per_pte - 1
        self.hw_af = cpu.hw_af
        self.hw_dbm = cpu.hw_dbm

    # --- one access -------------------------------------------------------------------
    def access(self, mm: MMStruct, va: int, write: bool) -> str:
        asid = mm.asid
        log = self.log
        tlb = self.tlb
        hit = tlb.lookup(asid, va)
        if hit is not None:
            cls, desc = hit
            if not write or (desc & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:
                log.tlb_hit(va, asid, 1 << tlb.shifts[cls])
                self._check_stale(mm, va, cls, desc, write)
                return ""
            if not (desc & PTE_WRITE and self.hw_dbm):
                log.tlb_hit(va, asid, 1 << tlb.shifts[cls])
                log.page_fault(va, write, "permission")
                return "permission"
            # clean entry written with DBM: the walker must update the descriptor
        log.tlb_miss(va, asid)
        pt = mm.pt
        key = va >> self.pmd_shift
        pmd = pt.pmd_leaves.get(key)
        if pmd is not None:
            new, fault = walk_descriptor(pmd, write, self.hw_af, self.hw_dbm)
            if fault:
                log.page_fault(va, write, fault)
                return fault
            if new != pmd:
                haddr = key << self.pmd_shift
                pt.pmd_leaves[key] = new
                log.hw_update(haddr, pmd, new, mm.name)
            tlb.fill(asid, va, PMD, new)
            return ""
        t = pt.tables.get(key)
        ps = self.ps
        old = t[(va >> ps) & self.idx_mask] if t is not None else 0
        new, fault = walk_descriptor(old, write, self.hw_af, self.hw_dbm)
        if fault:
            log.page_fault(va, write, fault)
            return fault
        if new != old:
            page = (va >> ps) << ps
            pt.set(page, new)  # through the table's copy-on-write, never in place
            log.hw_update(page, old, new, mm.name)
        if new & PTE_CONT:
            # cache the block: rebase the descriptor on the block's first page
            tlb.fill(asid, va, CONT, new - (((va >> ps) & self.cont_mask) << ps))
        else:
            tlb.fill(asid, va, PAGE, new)
        return ""

    def hit_run(self, mm: MMStruct, va: int, end: int, write: bool) -> int:
        """Accesses from va (page by page, before end) that are plain TLB hits
        on one CONT or PMD entry with nothing stale: performs them -- exactly
        the events and LRU state of calling access() on each -- and returns
        how many. 0 means: use access() (a miss, a fault, a page-sized entry,
        or anything unusual)."""
        tlb = self.tlb
        e0, e1, e2 = tlb.entries
        if not e1 and not e2:
            # no CONT or PMD entry cached: nothing to run over. The lookup this
            # skips would leave the TLB as access() leaves it (a hit on a page
            # entry makes it the most recent of its set, which access() repeats).
            return 0
        asid = mm.asid
        hit = tlb.lookup(asid, va)
        if hit is None:
            return 0
        cls, desc = hit
        if cls == PAGE or (write and (desc & (PTE_WRITE | PTE_RDONLY)) != PTE_WRITE):
            return 0
        ps = self.ps
        shift = tlb.shifts[cls]
        hi = min(((va >> shift) + 1) << shift, end)
        k = (hi - va + (1 << ps) - 1) >> ps
        if k <= 1:
            return 0
        base = asid << 52
        # lookup() prefers smaller entries: none may translate a page of the run
        if e0 and any(base | v in e0 for v in range(va >> ps, (va >> ps) + k)):
            return 0
        if cls == PMD and e1:
            cs = tlb.shifts[CONT]
            if any(base | v in e1 for v in range(va >> cs, ((va + ((k - 1) << ps)) >> cs) + 1)):
                return 0
        # nothing stale (else access() reports each page in order)
        pt = mm.pt
        alow = self.addr_low
        pfn = (desc & alow) >> ps
        if cls == PMD:
            cur = pt.pmd_leaves.get(va >> self.pmd_shift, 0)
            if not cur & PTE_VALID or (cur & alow) >> ps != pfn or (write and not cur & PTE_WRITE):
                return 0
        else:
            t = pt.tables.get(va >> self.pmd_shift)
            if t is None:
                return 0
            i = (va >> ps) & self.idx_mask
            first = pfn + ((va >> ps) & self.cont_mask)
            for j, cur in enumerate(t[i:i + k]):
                if (not cur & PTE_VALID or (cur & alow) >> ps != first + j
                        or (write and not cur & PTE_WRITE)):
                    return 0
        # the lookup above made the entry the most recent of its set, as the first access would
        self.log.tlb_hits(va, k, asid, 1 << shift)
        return k

    def device_access(self, mm: MMStruct, va: int, write: bool) -> str:
        """An SMMU without HTTU: per-descriptor walk, no TLB, no hardware updates."""
        pt = mm.pt
        pmd = pt.pmd_leaves.get(va >> self.pmd_shift)
        if pmd is None:
            pmd = pt.get(va)
        _new, fault = walk_descriptor(pmd, write, False, False)
        if fault:
            self.log.page_fault(va, write, "smmu_" + fault)
        return fault

    # --- coherence check ------------------------------------------------------------------
    def _check_stale(self, mm: MMStruct, va: int, cls: int, d: int, write: bool) -> None:
        pt = mm.pt
        if cls == PMD:
            cur = pt.pmd_leaves.get(va >> self.pmd_shift, 0)
            offset = 0
        else:
            cur = pt.get(va)
            offset = (va >> self.ps) & (self.cont_mask if cls == CONT else 0)
        pfn = ((d & self.addr_low) >> self.ps) + offset
        problem = ""
        if not cur & PTE_VALID:
            problem = "the TLB still translates a VA whose descriptor is invalid"
        elif ((cur & self.addr_low) >> self.ps) != pfn:
            problem = "the TLB maps a different page than the descriptor"
        elif write and not cur & PTE_WRITE:
            problem = "a write went through a TLB entry for a read-only descriptor"
        if problem:
            self.log.invariant_violation("tlb-stale", va, problem)
