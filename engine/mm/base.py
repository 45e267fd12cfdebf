# SPDX-License-Identifier: GPL-2.0-only
"""What every core-mm path shares: :class:`MmContext` -- the arch layer,
the event recorder, physical memory, swap, the page cache, THP settings, the
process list and sysfs-like knobs -- and the ``kfn`` bracket that records a
kernel function as ``call``/``ret`` events exactly like ``arch_call`` does.

Core-mm paths are functions per kernel file over this explicit context,
named as in the kernel with the context first (``zap_pte_range(ctx, tlb,
proc, vma, start, end)``); a file calls another's functions directly.
:class:`engine.mm.kernel.Kernel` owns the context and keeps the system-call
level entry points.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from engine.arch import Arch
from engine.arch.base import _positional_params, make_wrapper
from engine.errors import OpInterrupted
from engine.events import EventLog
from engine.granule import Granule
from engine.mm.pagecache import PageCache
from engine.mm.physmem import F_ANON, PhysMem
from engine.mm.process import Process
from engine.mm.swap import SwapDevice
from engine.mm.thp import ThpPolicy
from engine.mm.vma import VM_SHARED, VM_WRITE, VMA, vm_get_page_prot
from engine.pte import Layout

F = TypeVar("F", bound=Callable[..., Any])

# vm_fault_t bits (include/linux/mm_types.h) used by the fault paths
VM_FAULT_OOM = 0x000001
VM_FAULT_SIGBUS = 0x000002
VM_FAULT_MAJOR = 0x000004
VM_FAULT_NOPAGE = 0x000100
VM_FAULT_RETRY = 0x000400
VM_FAULT_FALLBACK = 0x000800
VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS

# kfn calls (or touched pages) between two interrupt polls: a poll costs well under
# a microsecond; some kfn calls handle a whole PTE table (~10 ms on 4K)
POLL_EVERY = 16


# The same events in either log mode: the log's class decides what they become
# (engine.events), so the wrapper never tests the mode. kcall/kret record
# processes and VMAs by name, and only when the log keeps the events.
_KFN_TEMPLATE = """
def {name}(ctx, {params}):
    ctx.ticks -= 1  # cooperative interrupt point (see MmContext.poll_interrupt)
    if ctx.ticks < 0:
        ctx.poll_interrupt()
    log = ctx.log
    log.kcall(NAME, ({args}{comma}))
    r = fn(ctx{sep}{args})
    log.kret(NAME, r)
    return r
"""


def kfn(name: str) -> Callable[[F], F]:
    """Bracket a core-mm function (its first argument the MmContext) with
    ``call``/``ret`` events named after the kernel function it models.
    Arguments after the context are recorded as plain data (processes and
    VMAs by name)."""

    def deco(fn: F) -> F:
        names = _positional_params(fn, 1)
        if names is not None:
            template = _KFN_TEMPLATE.replace("{comma}", "," if len(names) == 1 else "")
            wrapper = make_wrapper(template, fn, names, {"NAME": name})
            functools.update_wrapper(wrapper, fn)
        else:
            @functools.wraps(fn)
            def wrapper(ctx: MmContext, *args: Any, **kw: Any) -> Any:
                ctx.ticks -= 1  # cooperative interrupt point (see MmContext.poll_interrupt)
                if ctx.ticks < 0:
                    ctx.poll_interrupt()
                log = ctx.log
                log.kcall(name, (*args, *kw.values()) if kw else args)
                r = fn(ctx, *args, **kw)
                log.kret(name, r)
                return r

        wrapper.kernel_name = name
        return cast(F, wrapper)  # (it takes and returns exactly what fn does)

    return deco


class MmContext:
    """The state every core-mm path reads and changes, passed explicitly as
    ``ctx``: ``arch`` (the arm64 ptep API over the page tables, folios, TLB
    flushes), ``log`` (the event recorder), ``pm`` (physical memory: folio
    flags, refcounts, mapcounts), ``swap`` (the swap device and swap cache
    maps), ``pc`` (the page cache), ``thp`` (the sysfs THP/mTHP settings),
    ``procs`` (every process, with its mm and VMAs), ``ids`` (pid, asid and
    anon_vma numbering), sysfs/debugfs knobs, the per-op flags
    ``ubc_pending``/``fault_tried``, the interrupt countdown, and the
    reverse-map index. Granule constants are cached flat for the hot paths.
    Helpers that every file uses (``mk_pte``, ``pte_pfn``, ``mm_event``,
    ``cost``, the rmap walk's VMA lookup) are methods here."""

    def __init__(self, arch: Arch, log: EventLog, pm: PhysMem, swap: SwapDevice,
                 pagecache: PageCache, thp: ThpPolicy):
        self.arch = arch
        self.log = log
        self.g: Granule = arch.g
        self.profile = arch.profile
        self.cpu = arch.cpu
        self.layout: Layout = arch.layout
        self.ps = arch.page_size
        self.pshift = arch.page_shift
        self.cont_ptes = arch.cont_ptes
        self.ptrs = self.g.ptrs_per_pte
        self.pmd_size = self.g.pmd_size
        self.addr_low = self.g.pte_addr_low  # a property on Granule: cache it for hot paths
        self.pmd_order = self.g.pmd_order
        self.pm = pm
        self.swap = swap
        self.pc = pagecache
        self.thp = thp
        self.procs: list[Process] = []
        self.ids = {"pid": 1, "asid": 1, "anon_vma": 1}
        # sysfs/debugfs knobs
        self.fault_around_pages = max(1, 65536 >> self.pshift)  # fault_around_bytes = 64K
        self.max_ptes_none = self.ptrs - 1  # khugepaged/max_ptes_none
        self.ubc_pending = False  # deferred TLB flush started (never left set after an op)
        # FAULT_FLAG_TRIED: the fault being handled is the retry after filemap_fault()
        # dropped the lock for I/O (never left set after a fault)
        self.fault_tried = False
        # Interrupts: every kfn call (and every page of a touch) counts down
        # ``ticks``; at zero, ``interrupt_poll()`` is asked whether to stop.
        self.interrupt_poll: Callable[[], bool] | None = None
        self.ticks = POLL_EVERY
        # the reverse-map index (anon_vma / file -> VMAs), rebuilt when VMAs change
        self._rmap_gen = 0
        self._rmap_built = -1
        self._anon_index: dict[int, list[tuple[Process, VMA]]] = {}
        self._file_index: dict[int, list[tuple[Process, VMA]]] = {}

    def poll_interrupt(self) -> None:
        """Raise OpInterrupted if an interrupt was requested (the op is then
        left half done: the caller restores its start state)."""
        self.ticks = POLL_EVERY
        poll = self.interrupt_poll
        if poll is not None and poll():
            raise OpInterrupted("interrupted")

    # --- ids and small helpers ----------------------------------------------------------
    def next_id(self, kind: str) -> int:
        v = self.ids[kind]
        self.ids[kind] = v + 1
        return v

    def vmas_changed(self) -> None:
        self._rmap_gen += 1

    def mm_event(self, what: str, addr: int, detail: Any = 0) -> None:
        self.log.mm(what, addr, detail)

    def cost(self, what: str, addr: int, n: int = 1) -> None:
        """A cost counter of core-mm work the arch layer does not see:
        ``mm_page``, ``mm_folio``, ``mm_zero_page`` or ``mm_copy_page``."""
        self.log.mm_cost(what, addr, n)  # log.mm() without its test of the name

    def mk_pte(self, pfn: int, prot: int) -> int:
        return ((pfn << self.pshift) & self.addr_low) | prot

    def pte_pfn(self, pte: int) -> int:
        return (pte & self.addr_low) >> self.pshift

    def pte_modify(self, pte: int, prot: int) -> int:
        return self.layout.pte_modify(pte, prot)

    def pte_mkwrite(self, pte: int) -> int:
        return self.layout.pte_mkwrite_novma(pte)

    def maybe_mkwrite(self, pte: int, vma: VMA) -> int:
        return self.pte_mkwrite(pte) if vma.flags & VM_WRITE else pte

    def vma_page_prot(self, vma: VMA) -> int:
        """vma_set_page_prot(): a shared writable file mapping wants write
        notification (page_mkwrite), so its PTEs start read-only like a
        private mapping's; shmem does not."""
        flags = vma.flags
        if flags & VM_SHARED and flags & VM_WRITE and vma.file and not vma.shmem:
            flags &= ~VM_SHARED
        return vm_get_page_prot(flags, self.layout)

    # --- processes ----------------------------------------------------------------------
    def proc(self, name: str) -> Process | None:
        for p in self.procs:
            if p.name == name and p.alive:
                return p
        return None

    def live_procs(self) -> list[Process]:
        return [p for p in self.procs if p.alive]

    # --- reverse map index ----------------------------------------------------------------
    def _build_rmap_index(self) -> None:
        anon: dict[int, list[tuple[Process, VMA]]] = {}
        files: dict[int, list[tuple[Process, VMA]]] = {}
        for p in self.procs:
            if not p.alive:
                continue
            for v in p.vmas:
                for av in v.avc:
                    anon.setdefault(av, []).append((p, v))
                if v.file:
                    files.setdefault(v.file, []).append((p, v))
        self._anon_index = anon
        self._file_index = files
        self._rmap_built = self._rmap_gen

    def rmap_vmas(self, head: int) -> list[tuple[Process, VMA]]:
        """The VMAs that may map the folio (anon_vma chain or i_mmap)."""
        if self._rmap_built != self._rmap_gen:
            self._build_rmap_index()
        i = head - self.pm.base
        mapping = self.pm.mapping[i]
        if self.pm.flags[i] & F_ANON:
            return self._anon_index.get(mapping, [])
        return self._file_index.get(mapping, [])

    def folio_addresses(self, head: int, nr: int) -> list[tuple[Process, VMA, int, int, int]]:
        """rmap_walk(): for each VMA, the (proc, vma, addr, first page, n pages)
        window where the folio's pages would be mapped (vma_address())."""
        out = []
        idx = self.pm.index[head - self.pm.base]
        ps = self.pshift
        for p, v in self.rmap_vmas(head):
            vstart_idx = v.pgoff
            vend_idx = v.pgoff + ((v.end - v.start) >> ps)
            lo = max(idx, vstart_idx)
            hi = min(idx + nr, vend_idx)
            if lo >= hi:
                continue
            out.append((p, v, v.start + ((lo - v.pgoff) << ps), lo - idx, hi - lo))
        return out
