# SPDX-License-Identifier: GPL-2.0-only
"""Shared state of the arch layer and the decorator that records arch calls."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

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


def _positional_params(fn: Callable[..., Any], skip: int) -> list[str] | None:
    """Names of fn's parameters after the first ``skip``, or None when one of
    them has a default or is not a plain positional parameter (then the
    generic wrapper is used, which records keyword arguments as passed)."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    if any(p.kind is not p.POSITIONAL_OR_KEYWORD or p.default is not p.empty for p in params):
        return None
    return [p.name for p in params]


def make_wrapper(template: str, fn: Callable[..., Any], names: list[str], env: dict[str, Any]) -> Any:
    """Compile a wrapper with fn's exact positional signature (no ``*args``
    packing, no keyword dict): several times cheaper per call than a generic
    ``*args, **kw`` wrapper, which matters on paths run once per PTE (a plain
    ``*args`` decorator for arch_call and kfn costs 6.7% more instructions on
    an order-0 fault-in, ~5% of its time: issue #15 item 1).
    Parameters are positional-only, so a keyword call fails loudly instead of
    being recorded differently."""
    args = ", ".join(names)
    ns = dict(env, fn=fn)
    src = template.format(name=fn.__name__, params=(args + ", /") if names else "/",
                          args=args, sep=", " if names else "", targs=(" " + args) if names else "")
    exec(compile(src, f"<wrapper of {fn.__qualname__}>", "exec"), ns)  # noqa: S102 - our own source
    return ns[fn.__name__]


# The same events in either log mode: the log's class decides what they become
# (engine.events), so the wrapper never tests the mode.
_ARCH_TEMPLATE = """
def {name}(self, mm, {params}):
    log = self.log
    log.call(NAME, (mm.name,{targs}))
    r = fn(self, mm{sep}{args})
    log.ret(NAME, r)
    return r
"""


def arch_call(name: str) -> Callable[[F], F]:
    """Record ``call``/``ret`` events around an arch function.

    The first argument after ``self`` is always the mm; it is recorded by name
    so events stay plain data. The recorded arguments are the positional
    arguments as passed, then a dict of the keyword arguments if any.
    """

    def deco(fn: F) -> F:
        names = _positional_params(fn, 2)
        if names is not None:
            wrapper = make_wrapper(_ARCH_TEMPLATE, fn, names, {"NAME": name})
            functools.update_wrapper(wrapper, fn)
        else:
            @functools.wraps(fn)
            def wrapper(self: ArchBase, mm: Any, *args: Any, **kw: Any) -> Any:
                log = self.log
                log.call(name, (mm.name, *args, kw) if kw else (mm.name, *args))
                r = fn(self, mm, *args, **kw)
                log.ret(name, r)
                return r

        wrapper.kernel_name = name
        return cast(F, wrapper)  # (it takes and returns exactly what fn does)

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
        self.log.bind_granule(g.page_size, g.cont_ptes)
        # constants used on hot paths
        self.page_shift = g.page_shift
        self.page_size = g.page_size
        self.cont_ptes = g.cont_ptes
        self.cont_mask = g.cont_pte_mask
        self.cont_size = g.cont_pte_size
        self.addr_low = g.pte_addr_low
        self.pmd_shift = g.pmd_shift
        self.idx_mask = g.ptrs_per_pte - 1
        # Called with (op, asid, addr, pages) for each TLBI; the TLB model hooks in here.
        self.tlbi_listener: Callable[[str, int, int, int], None] | None = None
        # Called before each read of contpte_ptep_get_lockless (to interleave a racing CPU).
        self.lockless_hook: Callable[[], None] | None = None

    # pfn helpers bound to the granule
    def pte_pfn(self, pte: int) -> int:
        return (pte & self.addr_low) >> self.page_shift

    def pfn_pte(self, pfn: int, prot: int) -> int:
        return ((pfn << self.page_shift) & self.addr_low) | prot

    def pte_pgprot(self, pte: int) -> int:
        return pte & ~self.addr_low
