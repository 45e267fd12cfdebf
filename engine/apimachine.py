# SPDX-License-Identifier: GPL-2.0-only
"""A machine whose ops are direct calls into the arm64 ptep API.

Core-mm scenarios drive the arch layer the way the kernel does; this machine
lets a user (or a conformance-vector trace) drive it call by call instead, and
still step, seek, break and save like any session. Ops:

* ``Op("add_folio", {"pfn": P, "nr": N})``
* ``Op("ptep", {"call": "set_ptes", "a0": ADDR, "a1": PTE, "a2": NR, ...})``
  (the arguments of ``sim.ptep.<call>`` in order)
* ``Op("walk", {"addr": A, "write": bool})``

It implements the Machine contract of docs/architecture.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from engine.arch import ArchError
from engine.costs import cycles
from engine.ops import Op
from engine.simulator import Simulator
from engine.state.folios import FolioRegistry
from engine.state.pagetable import PageTable


class ApiOpError(ValueError):
    pass


@dataclass
class _Proc:
    name: str
    mm: Any


def ops_from_vector_trace(trace: dict) -> list[Op]:
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
    def __init__(self, granule: Any = 4096, kernel: Any = "v7.0", cpu: Any = "neoverse-n1"):
        self.sim = Simulator(granule=granule, kernel=kernel, cpu=cpu)
        self.arch = self.sim.arch
        self.log = self.sim.log
        self.log.set_recording(False)
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

    def cycles_of(self, counters: Counter) -> float:
        return cycles(counters, self.sim.profile, self.sim.cpu)

    def state(self) -> tuple:
        return (self.sim.mm.pt.snapshot(), self.sim.folios.clone())

    def restore(self, state: tuple) -> None:
        pt, folios = state
        self.sim.mm.pt.restore(pt)
        self.sim.folios._by_head = dict(folios._by_head)
        self.sim.folios._orders = dict(folios._orders)

    def digest(self) -> str:
        return self.sim.mm.pt.digest().hex()

    def state_to_plain(self, state: tuple) -> dict:
        pt, folios = state
        tmp = PageTable(self.sim.g)
        tmp.restore(pt)
        return {"pt": tmp.to_plain(), "folios": [[h, n] for h, n in folios]}

    def state_from_plain(self, plain: dict) -> tuple:
        pt = PageTable.from_plain(self.sim.g, plain["pt"])
        reg = FolioRegistry()
        for h, n in plain["folios"]:
            reg.add(h, n)
        return (pt.snapshot(), reg)
