# SPDX-License-Identifier: GPL-2.0-only
"""A machine whose ops are direct calls into the arm64 ptep API.

Core-mm scenarios drive the arch layer the way the kernel does; this machine
lets a user (or a conformance-vector trace) drive it call by call instead, and
still step, seek, break and save like any session. Ops:

* ``Op("add_folio", {"pfn": P, "nr": N})``
* ``Op("ptep", {"call": "set_ptes", "a0": ADDR, "a1": PTE, "a2": NR, ...})``
  (the arguments of ``sim.ptep.<call>`` in order)
* ``Op("walk", {"addr": A, "write": bool})``

It implements the machine contract (engine.contract, docs/architecture.md) with
what a ptep-call machine has: one process without VMAs, folios that are only a
geometry (no refcounts or mapcounts), ops that are one call each (none long enough
to poll for an interrupt).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from engine.arch import ArchError
from engine.arch.profiles import KernelProfile
from engine.cycles import cycles
from engine.granule import Granule
from engine.hw.cpus import CpuProfile
from engine.mm.vma import VMA
from engine.ops import Op
from engine.policy import FoldPolicy, MainlinePolicy, load_policy
from engine.python_api import Simulator
from engine.state.folios import FolioRegistry
from engine.state.mmstruct import MMStruct
from engine.state.pagetable import PageTable, PageTableSnapshot


class ApiOpError(ValueError):
    pass


# A checkpoint: the page tables (sharing every table with the live ones) and the folios.
ApiState: TypeAlias = tuple[PageTableSnapshot, FolioRegistry]


@dataclass
class _Proc:
    """The machine's one address space (engine.contract.MachineProcess)."""

    name: str
    mm: MMStruct
    alive: bool = True  # it never exits
    vmas: Sequence[VMA] | None = None  # ptep calls map no VMAs: the UI derives regions from the tables
    regions: dict[str, list[int]] = field(default_factory=dict)


def ops_from_vector_trace(trace: dict[str, Any]) -> list[Op]:
    """A ``ptlab-ptep-vectors/1`` trace as ops (expected results are dropped)."""
    out = []
    for i, call in enumerate(trace["calls"], 1):
        name, args = call["call"], call["args"]
        if name == "add_folio":
            out.append(Op("add_folio", {"pfn": args[0], "nr": args[1]}, i,
                          f"add_folio {args[0]:#x} {args[1]}"))
        elif name == "walk":
            out.append(Op("walk", {"addr": args[0], "write": bool(args[1])}, i,
                          f"walk {args[0]:#x} {'write' if args[1] else 'read'}"))
        else:
            d: dict[str, Any] = {"call": name}
            for j, a in enumerate(args):
                d[f"a{j}"] = a
            text = f"{name}(" + ", ".join(hex(a) if isinstance(a, int) and a > 9 else str(a)
                                          for a in args) + ")"
            out.append(Op("ptep", d, i, text))
    return out


class ApiMachine:
    def __init__(self, granule: int | str | Granule = 4096, kernel: str | KernelProfile = "v7.0",
                 cpu: str | CpuProfile = "neoverse-n1", policy: str | FoldPolicy | None = None):
        """``policy``: a built-in name, FILE.py:CLASS or an instance (None: the arch's own
        heuristic, as "mainline")."""
        self.sim = Simulator(granule=granule, kernel=kernel, cpu=cpu)
        self.arch = self.sim.arch
        self.log = self.sim.log
        self.log.set_recording(False)
        self.policy = load_policy(policy)
        # as Machine: the arch's own heuristic is MainlinePolicy exactly, and None skips a call per set_ptes
        self.arch.fold_policy = None if type(self.policy) is MainlinePolicy else self.policy
        self.current = _Proc("mm", self.sim.mm)
        self.procs = [self.current]

    def process_list(self) -> list[_Proc]:
        return list(self.procs)

    OP_VERBS = ("add_folio", "ptep", "walk")  # what apply() knows (breakpoints check op:VERB)

    def apply(self, op: Op) -> None:
        a = op.args
        if op.verb == "add_folio":
            try:
                self.sim.add_folio(int(a["pfn"]), int(a["nr"]))
            except (KeyError, ValueError) as e:
                raise ApiOpError(f"add_folio: {e}") from None
        elif op.verb == "walk":
            self.sim.walk(int(a["addr"]), bool(a.get("write", False)))
        elif op.verb == "ptep":
            args = [a[f"a{i}"] for i in range(len(a) - 1) if f"a{i}" in a]
            try:
                fn = getattr(self.sim.ptep, a["call"])
            except (KeyError, AttributeError) as e:
                raise ApiOpError(f"unknown ptep call {a.get('call')!r}") from e
            try:
                fn(*args)
            except ArchError:
                raise
            except TypeError as e:
                raise ApiOpError(f"{a['call']}: bad arguments: {e}") from None
        else:
            raise ApiOpError(f"unknown op {op.verb!r}")

    def cycles_of(self, counters: Mapping[str, int]) -> float:
        return cycles(counters, self.sim.profile, self.sim.cpu)

    def set_interrupt_poll(self, poll: Callable[[], bool] | None) -> None:
        """Every op is one ptep call, short enough that none polls: nothing to hand on."""

    def folio_info(self, pfn: int) -> dict[str, Any]:
        """pfn's folio as this machine knows it: registered folios are a geometry only
        (the ptep API has no refcounts, mapcounts or page flags)."""
        head, nr = self.sim.folios.folio_of(pfn)
        return {"head": head, "order": nr.bit_length() - 1, "nr_pages": nr}

    def state(self) -> ApiState:
        return (self.sim.mm.pt.snapshot(), self.sim.folios.clone())

    def restore(self, state: ApiState) -> None:
        pt, folios = state
        self.sim.mm.pt.restore(pt)
        self.sim.folios._by_head = dict(folios._by_head)
        self.sim.folios._orders = dict(folios._orders)

    def digest(self) -> str:
        return self.sim.mm.pt.digest().hex()

    def state_to_plain(self, state: ApiState) -> dict[str, Any]:
        pt, folios = state
        tmp = PageTable(self.sim.g)
        tmp.restore(pt)
        return {"pt": tmp.to_plain(), "folios": [[h, n] for h, n in folios]}

    def state_from_plain(self, plain: dict[str, Any]) -> ApiState:
        pt = PageTable.from_plain(self.sim.g, plain["pt"])
        reg = FolioRegistry()
        for h, n in plain["folios"]:
            reg.add(h, n)
        return (pt.snapshot(), reg)
