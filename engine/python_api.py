# SPDX-License-Identifier: GPL-2.0-only
"""The Python API of DESIGN.md: one user address space driven call by call.

    >>> from engine import Simulator
    >>> from engine.pte import PAGE_SHARED, pte_mkdirty
    >>> sim = Simulator(granule=4096, kernel="v7.0")
    >>> sim.add_folio(0x80000, 16)
    >>> pte = sim.pte.pfn_pte(0x80000, PAGE_SHARED)
    >>> sim.ptep.set_ptes(0x7F0000000000, pte, 16)
    >>> hex(sim.raw(0x7F0000000000))
    '0x78000080000fc3'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import engine.pte as pte_module
from engine.arch import Arch
from engine.arch.profiles import DEFAULT_KERNEL, KernelProfile, get_profile
from engine.events import Event, EventLog, count_events
from engine.explain import BlockExplanation, explain_block
from engine.granule import Granule
from engine.granule import granule as to_granule
from engine.hw.cpus import CpuProfile, load_cpu
from engine.hw.walker import walk_descriptor
from engine.invariants import Violation, check_mm
from engine.pte import LAYOUTS, Layout
from engine.state.folios import FolioRegistry
from engine.state.mmstruct import MMStruct


class PteHelpers:
    """engine.pte functions bound to one granule and descriptor layout."""

    def __init__(self, g: Granule, layout: Layout):
        self.g = g
        self.layout = layout
        self.PAGE_NONE = layout.page_none

    def pfn_pte(self, pfn: int, prot: int) -> int:
        return ((pfn << self.g.page_shift) & self.g.pte_addr_low) | prot

    def pte_pfn(self, pte: int) -> int:
        return (pte & self.g.pte_addr_low) >> self.g.page_shift

    def pte_pgprot(self, pte: int) -> int:
        return pte & ~self.g.pte_addr_low

    def pte_advance_pfn(self, pte: int, nr: int) -> int:
        return self.pfn_pte(self.pte_pfn(pte) + nr, self.pte_pgprot(pte))

    def __getattr__(self, name: str) -> Any:
        # layout-dependent helpers first (pte_present, pte_mkwrite, swap entries ...)
        if name in ("pte_mkwrite", "pte_mkwrite_novma"):
            return self.layout.pte_mkwrite_novma
        if hasattr(self.layout, name):
            return getattr(self.layout, name)

        return getattr(pte_module, name)


class PtepNamespace:
    """``sim.ptep.<kernel name>(...)``: the kernel's argument order with the
    mm/vma/ptep arguments replaced by the virtual address."""

    def __init__(self, arch: Arch, mm: MMStruct):
        self._arch = arch
        self._mm = mm

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return partial(self._arch.resolve(name), self._mm)

    def __dir__(self) -> list[str]:
        return list(Arch.PUBLIC_API) + list(Arch.KERNEL_ALIASES)


class Simulator:
    def __init__(self, granule: int | str | Granule = 4096, kernel: str | KernelProfile = DEFAULT_KERNEL,
                 cpu: str | CpuProfile = "neoverse-n1", *, asid: int = 1, user: bool = True):
        self.g = to_granule(granule)
        self.profile = get_profile(kernel)
        self.cpu = load_cpu(cpu)
        self.layout: Layout = LAYOUTS[self.profile.layout]
        self.folios = FolioRegistry()
        self.log = EventLog()
        self.arch = Arch(self.profile, self.cpu, self.g, self.folios, self.log)
        self.mm = MMStruct(self.g, asid=asid, is_user=user, name="init_mm" if not user else "mm")
        self.ptep = PtepNamespace(self.arch, self.mm)
        self.pte = PteHelpers(self.g, self.layout)

    # --- state ------------------------------------------------------------------------
    def add_folio(self, pfn: int, nr_pages: int) -> None:
        """Register a naturally aligned folio; any other pfn is an order-0 folio."""
        self.folios.add(pfn, nr_pages)

    def raw(self, addr: int) -> int:
        """The raw descriptor at addr (like __ptep_get, but records no event); 0 if none."""
        return self.mm.pt.get(addr)

    def walk(self, addr: int, write: bool = False) -> bool:
        """The hardware walker for one access that misses the TLB.

        Sets AF (and clears RDONLY on a DBM write) on the descriptor at addr,
        as FEAT_HAFDBS would; returns False where the access would fault.
        """
        old = self.mm.pt.get(addr)  # reading must not create a table
        new, fault = walk_descriptor(old, write, self.cpu.hw_af, self.cpu.hw_dbm)
        if fault:
            return False
        if new != old:
            self.mm.pt.set(addr, new)
            self.log.hw_update(addr, old, new, self.mm.name)
        return True

    # --- events ------------------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        """Every event so far, oldest first."""
        return self.log.views()

    def clear_events(self) -> None:
        self.log.clear()

    def counters(self) -> Counter[str]:
        return count_events(self.log.buf)

    # --- analysis ----------------------------------------------------------------------
    def check_invariants(self, start: int = 0, end: int = 1 << 48) -> list[Violation]:
        return check_mm(self.arch, self.mm, start, end)

    def explain(self, addr: int) -> BlockExplanation:
        return explain_block(self.arch, self.mm, addr)
