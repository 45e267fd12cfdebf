# SPDX-License-Identifier: GPL-2.0-only
"""The machine contract: what a Session, the snapshots and the UI may ask of a machine.

Every machine kind implements all of it -- the core-mm :class:`engine.scenario_machine.Machine`
and the direct-ptep-call :class:`engine.ptep_machine.ApiMachine` -- so callers use
each member directly and never probe for it (``getattr(machine, name, default)``).
A machine kind that cannot model a member still provides it with its own meaning,
said here (``folio_info`` of a machine without refcounts, ``set_interrupt_poll`` of
a machine whose ops are all short).

The machines satisfy these Protocols structurally; mypy checks it where
``engine.machine_kinds`` registers their factories. docs/architecture.md describes the
rules every machine also keeps (determinism, bad input, self-contained ops).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from engine.arch import Arch
from engine.events import EventLog
from engine.mm.vma import VMA
from engine.ops import Op
from engine.policy import FoldPolicy
from engine.state.mmstruct import MMStruct

# A checkpoint is opaque outside the machine that took it (a dict of the core-mm
# machine's parts, a (page tables, folios) pair of ApiMachine): callers only hand it
# back to restore() / state_to_plain() of a machine of the same kind.
MachineState: TypeAlias = Any

# A checkpoint's msgpack-able form (bytes, ints, strs, lists, dicts only).
PlainState: TypeAlias = dict[str, Any]


class MachineProcess(Protocol):
    """One address space of a machine, as the session and the UI read it."""

    @property
    def name(self) -> str: ...

    @property
    def mm(self) -> MMStruct: ...

    @property
    def alive(self) -> bool:
        """False once the process has exited (its tables stay readable)."""
        ...

    @property
    def vmas(self) -> Sequence[VMA] | None:
        """Its VMAs, sorted by address; None for a machine without VMAs (direct ptep
        calls: the UI then derives regions from the page tables)."""
        ...

    @property
    def regions(self) -> Mapping[str, list[int]]:
        """The scenario's mapping names -> [start, size] as created (empty without VMAs)."""
        ...


class MachineContract(Protocol):
    """The machine a Session drives (``Session.machine``)."""

    @property
    def OP_VERBS(self) -> Sequence[str]:
        """The op verbs apply() knows (breakpoints check ``op:VERB`` against them)."""
        ...

    @property
    def arch(self) -> Arch:
        """The arch layer: granule, kernel profile, CPU profile, folios, fold policy."""
        ...

    @property
    def log(self) -> EventLog:
        """The event log every part of the machine emits into (shared with arch)."""
        ...

    @property
    def policy(self) -> FoldPolicy:
        """The fold policy in force (MainlinePolicy when the arch's own heuristic runs)."""
        ...

    @property
    def current(self) -> MachineProcess | None:
        """The process later ops act on (None once every process has exited)."""
        ...

    def apply(self, op: Op) -> Counter[str] | None:
        """Run one op; its events go to ``log``. A machine that counts (and costs) the
        op itself returns its counters, with "cycles"; None: the session counts the log."""
        ...

    def cycles_of(self, counters: Mapping[str, int]) -> float:
        """The cycles an op with these counters costs under this machine's cost model."""
        ...

    def set_interrupt_poll(self, poll: Callable[[], bool] | None) -> None:
        """Long ops call ``poll()`` every few milliseconds and stop with OpInterrupted
        when it returns True. A machine whose ops are all short never calls it."""
        ...

    def process_list(self) -> Sequence[MachineProcess]:
        """The processes, in creation order (exited ones included)."""
        ...

    def folio_info(self, pfn: int) -> dict[str, Any]:
        """pfn's folio: "head", "order" and "nr_pages" always; the core-mm machine adds
        refcount, mapcount, anon/file and flags. ValueError for a pfn it cannot know."""
        ...

    def state(self) -> MachineState:
        """A full checkpoint of every mutable part."""
        ...

    def restore(self, state: MachineState) -> None:
        """Exactly back to that checkpoint: the same ops then give the same events."""
        ...

    def state_to_plain(self, state: MachineState) -> PlainState: ...

    def state_from_plain(self, plain: PlainState) -> MachineState: ...

    def digest(self) -> str:
        """A hash of the canonical state, equal iff the states are equal."""
        ...


MachineFactory: TypeAlias = Callable[[], MachineContract]
