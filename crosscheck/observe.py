# SPDX-License-Identifier: GPL-2.0-only
"""What one side (the engine or the real kernel) did during one op.

Both sides are reduced to the same :class:`OpObservation`, in engine
addresses and scenario process indexes:

* ``calls`` -- the outermost contpte functions called, in order (the compiler
  may inline one contpte.c function into another), with the
  address for the ones that take one (``contpte_ptep_get`` and
  ``contpte_ptep_get_lockless`` take only a ptep);
* ``converts`` -- every ``contpte_convert`` with its address and direction
  (the CONT bit of the pte it paints);
* ``faults`` -- the page faults taken in the scenario's mappings;
* ``ptes`` -- after the op, for every present PTE of every live process in
  its mappings, the value ``ptep_get()`` returns (what smaps hands to
  ``vm_normal_page()`` in the guest): the raw descriptor, with access and
  dirty gathered over a contiguous block;
* ``pages`` -- after the op, per present PTE its place in its folio
  (offset, folio size, zero page) and per swap entry its swap offset:
  physical addresses compared as structure, never as numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.export import iter_entries
from engine.pte import PTE_VALID, pte_dirty, pte_mkdirty, pte_mkyoung, pte_pfn, pte_valid_cont, pte_young

NO_ADDR = frozenset({"contpte_ptep_get", "contpte_ptep_get_lockless"})


@dataclass(frozen=True)
class PageInfo:
    kind: str  # "P" present, "S" swap entry
    offset: int  # P: the page's index in its folio; S: the swap offset
    nr: int = 1  # P: pages in the folio
    zero: bool = False  # P: the shared zero page
    head: int = 0  # P: the folio's head pfn (not compared: identifies "same folio")


@dataclass
class OpObservation:
    calls: list[tuple[str, int, int | None]] = field(default_factory=list)
    converts: list[tuple[int, int, bool]] = field(default_factory=list)
    faults: list[tuple[int, int, bool]] = field(default_factory=list)
    ptes: dict[tuple[int, int], int] = field(default_factory=dict)
    pages: dict[tuple[int, int], PageInfo] = field(default_factory=dict)
    error: str = ""  # the op failed on this side


def collapse_repeats(faults: Iterable[tuple[int, int, bool]]) -> list[tuple[int, int, bool]]:
    """One fault per access: consecutive faults of one process at one address
    are one access retried (the kernel retries a fault that drops its lock:
    the per-VMA-lock attempt, then mmap_lock, then FAULT_FLAG_TRIED)."""
    out: list[tuple[int, int, bool]] = []
    for f in faults:
        if out and out[-1][:2] == f[:2]:
            out[-1] = (f[0], f[1], out[-1][2] or f[2])
            continue
        out.append(f)
    return out


def gathered(pt: Any, va: int, raw: int, cont_ptes: int, page_shift: int) -> int:
    """ptep_get(): for a valid CONT entry, contpte_ptep_get() ORs young and
    dirty over the block (arch/arm64/mm/contpte.c)."""
    if not pte_valid_cont(raw):
        return raw
    start = va & ~((cont_ptes << page_shift) - 1)
    pte = raw
    for i in range(cont_ptes):
        e = pt.get(start + (i << page_shift))
        if pte_dirty(e):
            pte = pte_mkdirty(pte)
        if pte_young(e):
            pte = pte_mkyoung(pte)
    return pte


def pfn_present(layout: Any, raw: int) -> bool:
    return bool(layout.pte_present(raw))


class EngineObserver:
    """``collect(k, machine, events)`` for :func:`crosscheck.translate.plan`:
    builds one OpObservation per op from the engine's events and state."""

    def __init__(self) -> None:
        self.ops: list[OpObservation] = []
        self.procs: list[str] = ["p0"]

    def __call__(self, k: int, m: Any, events: list[tuple]) -> None:
        procs = self.procs
        for p in m.kernel.procs:
            if p.name not in procs:
                procs.append(p.name)
        mm_proc = {p.mm.name: procs.index(p.name) for p in m.kernel.procs}
        cur = m.current
        me = procs.index(cur.name) if cur is not None else 0
        obs = OpObservation()
        conv_procs: list[int] = []
        trying: list | None = None  # [call index, folded] of an outermost fold attempt
        last_get: tuple | None = None
        inside = 0  # contpte calls in progress: only the outermost are compared
        stack: list[bool] = []
        for ev in events:
            kind = ev[0]
            if kind == "call":
                name, args = ev[1], ev[2]
                is_contpte = name.startswith(("contpte_", "__contpte_"))
                stack.append(is_contpte)
                if name == "contpte_convert":
                    conv_procs.append(mm_proc.get(args[0], me) if args else me)
                if name == "contpte_convert" and trying is not None:
                    trying[1] = True
                if is_contpte:
                    if not inside:
                        j = mm_proc.get(args[0], me) if args else me
                        addr = None if name in NO_ADDR or len(args) < 2 else args[1]
                        ident = (name, j, args[1] if len(args) > 1 else None)
                        # consecutive reads of one entry count once (crosscheck.trace REREAD)
                        if not (name in NO_ADDR and ident == last_get and obs.calls
                                and obs.calls[-1][0] == name):
                            obs.calls.append((name, j, addr))
                        if name in NO_ADDR:
                            last_get = ident
                        if name == "__contpte_try_fold":
                            trying = [len(obs.calls) - 1, False]
                    inside += 1
            elif kind == "ret":
                if stack and stack.pop():
                    inside -= 1
                    if not inside and trying is not None:
                        if not trying[1]:  # folded nothing: not compared (crosscheck.trace)
                            del obs.calls[trying[0]]
                        trying = None
            elif kind == "convert":
                obs.converts.append((me, ev[1], bool(ev[2])))
            elif kind == "page_fault":
                obs.faults.append((me, ev[1], bool(ev[2])))
            elif kind == "mm" and ev[1] == "syscall_error":
                # the guest prints strerror() of what the system call returned
                obs.error = os.strerror(ev[3])
        obs.faults = collapse_repeats(obs.faults)
        # the converts carry no mm: take the process of the enclosing contpte_convert call
        if len(conv_procs) == len(obs.converts):
            obs.converts = [(j, a, c) for j, (_, a, c) in zip(conv_procs, obs.converts, strict=True)]
        g = m.g
        layout = m.layout
        folios = m.folios
        zero = m.kernel.pm.zero_pfn
        for p in m.kernel.procs:
            if not p.alive:
                continue
            j = procs.index(p.name)
            pt = p.mm.pt
            for v in p.vmas:
                for va, raw, level in iter_entries(pt, v.start, v.end):
                    if level != "PTE":
                        # a PMD leaf: pagemap shows its pages; smaps reads it without
                        # vm_normal_page(), so it has no PTE values to compare
                        base = pte_pfn(raw, g)
                        if pfn_present(layout, raw):
                            head, nr = folios.folio_of(base)
                            huge_zero = base == m.kernel.pm.huge_zero_pfn  # kpageflags: ZERO_PAGE
                            for i in range(min(g.ptrs_per_pte, (v.end - va) >> g.page_shift)):
                                obs.pages[(j, va + (i << g.page_shift))] = (
                                    PageInfo("P", 0, 1, True, base) if huge_zero
                                    else PageInfo("P", base + i - head, nr, False, head))
                        continue
                    if layout.pte_present(raw):
                        obs.ptes[(j, va)] = gathered(pt, va, raw, g.cont_ptes, g.page_shift)
                        pfn = pte_pfn(raw, g)
                        if pfn == zero:
                            obs.pages[(j, va)] = PageInfo("P", 0, 1, True, pfn)
                        else:
                            head, nr = folios.folio_of(pfn)
                            obs.pages[(j, va)] = PageInfo("P", pfn - head, nr, False, head)
                    elif raw & ~PTE_VALID:
                        obs.pages[(j, va)] = PageInfo("S", layout.swp_offset(raw))
        self.ops.append(obs)
