# SPDX-License-Identifier: GPL-2.0-only
"""Shared state of the arch layer and the decorator that records arch calls."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from engine.arch.profiles import KernelProfile
from engine.events import EventLog
from engine.granule import Granule
from engine.hw.cpus import CpuProfile
from engine.pte import LAYOUTS, Layout
from engine.state.folios import FolioRegistry

F = TypeVar("F", bound=Callable[..., Any])


class ArchError(RuntimeError):
    """A call the kernel would never make (contract violated) or cannot exist."""


class MissingEntryPoint(ArchError):
    """The entry point does not exist in the selected kernel profile."""


def arch_call(name: str) -> Callable[[F], F]:
    """Record ``call``/``ret`` events around an arch function.

    The first argument after ``self`` is always the mm; it is recorded by name
    so events stay plain data.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: ArchBase, mm: Any, *args: Any, **kw: Any) -> Any:
            emit = self.emit
            emit(("call", name, (mm.name, *args, kw) if kw else (mm.name, *args)))
            r = fn(self, mm, *args, **kw)
            emit(("ret", name, r))
            return r

        wrapper.kernel_name = name  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco


class ArchBase:
    """Constants and collaborators every arch mixin uses."""

    def __init__(self, profile: KernelProfile, cpu: CpuProfile, g: Granule,
                 folios: FolioRegistry, log: EventLog | None = None):
        self.profile = profile
        self.cpu = cpu
        self.g = g
        self.layout: Layout = LAYOUTS[profile.layout]
        self.folios = folios
        self.log = log if log is not None else EventLog()
        self.emit = self.log.emit
        self.log.subscribe(self._rebind_emit)
        # constants used on hot paths
        self.page_shift = g.page_shift
        self.page_size = g.page_size
        self.cont_ptes = g.cont_ptes
        self.cont_mask = g.cont_pte_mask
        self.cont_size = g.cont_pte_size
        self.addr_low = g.pte_addr_low
        # The fold policy decides whether set_ptes(nr == 1) tries to fold; None
        # means the profile's own heuristic (contpte_try_fold in pgtable.h).
        self.fold_policy: Any = None
        # Called with (op, asid, addr, pages) for each TLBI; the TLB model hooks in here.
        self.tlbi_listener: Callable[[str, int, int, int], None] | None = None
        # Called before each read of contpte_ptep_get_lockless (to interleave a racing CPU).
        self.lockless_hook: Callable[[], None] | None = None

    def _rebind_emit(self) -> None:
        self.emit = self.log.emit

    # pfn helpers bound to the granule
    def pte_pfn(self, pte: int) -> int:
        return (pte & self.addr_low) >> self.page_shift

    def pfn_pte(self, pfn: int, prot: int) -> int:
        return ((pfn << self.page_shift) & self.addr_low) | prot

    def pte_pgprot(self, pte: int) -> int:
        return pte & ~self.addr_low
