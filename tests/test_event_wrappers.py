# SPDX-License-Identifier: GPL-2.0-only
"""The call/ret brackets record arguments the same way whatever their arity:
a tuple of the mm (or process) name and the positional arguments."""

from __future__ import annotations

import pytest

from engine import Simulator
from engine.pte import PAGE_SHARED
from engine.scenario import parse
from engine.scenario_machine import Machine, MachineConfig

BASE = 0x7F0000000000


def test_arch_calls_record_a_tuple_of_arguments() -> None:
    sim = Simulator()
    sim.add_folio(0x80010, 16)
    sim.ptep.set_ptes(BASE, PAGE_SHARED | (0x80010 << 12), 16)
    sim.arch.flush_tlb_mm(sim.mm)  # no argument after the mm
    sim.arch.flush_tlb_range(sim.mm, BASE, BASE + 0x1000, 0x1000, True, 3, sync=False)
    calls = {e.raw[1]: e.raw[2] for e in sim.events if e.kind == "call"}
    assert calls["flush_tlb_mm"] == (sim.mm.name,)
    assert calls["set_ptes"] == (sim.mm.name, BASE, PAGE_SHARED | (0x80010 << 12), 16)
    assert calls["__flush_tlb_range"] == (sim.mm.name, BASE, BASE + 0x1000, 0x1000, True, 3,
                                          {"sync": False})


def test_positional_only_wrappers_refuse_keywords() -> None:
    sim = Simulator()
    with pytest.raises(TypeError):
        sim.arch.set_ptes(sim.mm, BASE, 0, nr=1)


def test_core_mm_calls_record_plain_arguments() -> None:
    m = Machine(MachineConfig(memory=64 << 20))
    for op in parse("mmap buf 64K\ntouch buf write\nfork child\n").ops:
        m.apply(op)
    calls = [e for e in m.log.buf if e[0] == "call"]
    hmf = next(e for e in calls if e[1] == "handle_mm_fault")
    assert hmf[2][0] == "p0" and isinstance(hmf[2][1], str) and hmf[2][3] is True
    dup = next(e for e in calls if e[1] == "dup_mmap")
    assert dup[2] == ("p0", "child")
    assert all(isinstance(e[2], tuple) for e in calls)
