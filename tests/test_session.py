# SPDX-License-Identifier: GPL-2.0-only
"""The stepping session over a machine driven by direct ptep calls
(conformance-vector traces): stepping back from any point gives exactly the
state forward execution had there, at all three grains; breakpoints."""

import json
import random
from pathlib import Path

import pytest

from engine.ptep_machine import ApiMachine, ops_from_vector_trace
from engine.session import Position, Session, SessionError

DATA = Path(__file__).resolve().parent / "data" / "ptep-vectors.json"


@pytest.fixture(scope="module")
def traces():
    return json.loads(DATA.read_text())["traces"]


def session_for(trace, **kw):
    ops = ops_from_vector_trace(trace)
    return Session(lambda: ApiMachine(trace["granule"], trace["kernel"], trace["cpu"]), ops, **kw)


def snapshot_state(s: Session):
    """Every descriptor as shown at the current position (mid-op overlay included)."""
    m = s.machine
    pt = m.sim.mm.pt
    shown = {}
    for key, t in pt.tables.items():
        base = key << m.sim.g.pmd_shift
        for i, v in enumerate(t):
            if v:
                shown[base + i * m.sim.g.page_size] = v
    for (_, addr), v in s.overlay().items():
        if v:
            shown[addr] = v
        else:
            shown.pop(addr, None)
    return shown


def test_forward_run_matches_the_plain_simulator(traces):
    t = traces[1]
    s = session_for(t, checkpoint_ops=7)
    s.run()
    assert s.executed == len(s.ops) and s.at_end
    # the machine's final tables equal a straight replay
    from engine.ptep_machine import ApiMachine as M

    m = M(t["granule"], t["kernel"], t["cpu"])
    for op in s.ops:
        m.apply(op)
    assert m.digest() == s.machine.digest()
    assert s.totals()["converts"] == sum(r.counters.get("converts", 0) for r in s.records)


@pytest.mark.parametrize("grain", ["op", "call", "event"])
def test_stepping_back_reproduces_forward_states(traces, grain):
    rng = random.Random(7)
    for t in (traces[0], traces[4], traces[8]):  # 4K v6.9, 16K v6.9, 64K v6.9
        s = session_for(t, checkpoint_ops=5)
        limit = min(len(s.ops), 40)
        seen = []
        while s.k < limit:
            seen.append((s.position, snapshot_state(s)))
            s.step(grain)
        # walk back over the same stops
        for pos, state in reversed(seen):
            s.back(grain)
            assert s.position == pos
            assert snapshot_state(s) == state
        # random seeks land on identical states too
        for _ in range(15):
            pos, state = rng.choice(seen)
            s.seek(pos)
            assert snapshot_state(s) == state


def test_mid_convert_state_shows_transient_zero_entries(traces):
    t = traces[1]  # 4K v7.0: has folds
    s = session_for(t)
    s.add_breakpoint("event:convert")
    hit = s.continue_()
    assert hit is not None
    events = s.events_of(hit.op)
    # step over the 16 xchg-to-zero writes of the convert
    for _ in range(20):
        s.step("event")
        ev = events[s.e - 1] if s.e else None
        if ev and ev[0] == "pte_write" and ev[4] == "xchg":
            assert s.pte("mm", ev[1]) == 0
            break
    else:
        pytest.fail("no xchg inside the convert")


def test_breakpoint_kinds_and_reverse_continue(traces):
    t = traces[1]
    s = session_for(t)
    bp = s.add_breakpoint("event:fold")
    first = s.continue_()
    assert first and first.event[0] == "fold" and first.breakpoint is bp
    second = s.continue_()
    assert second is None or second.position > first.position
    back = s.reverse_continue()
    assert back is not None and back.position == first.position
    s.remove_breakpoint(bp.id)
    s.seek(0)
    s.add_breakpoint("call:contpte_convert&proc:mm")
    hit = s.continue_()
    assert hit and hit.event[0] == "call" and hit.event[1] == "contpte_convert"
    assert s.call_stack()[-1][1] != "contpte_convert"  # stopped *before* the call


def test_op_level_and_cost_breakpoints(traces):
    t = traces[1]
    s = session_for(t)
    s.run()
    costly = max(range(len(s.records)), key=lambda i: s.records[i].cycles)
    s.seek(0)
    s.add_breakpoint(f"cost:>{s.records[costly].cycles - 1}")
    hit = s.continue_()
    assert hit is not None and s.records[hit.op].cycles > s.records[costly].cycles - 1
    assert hit.position == Position(hit.op, 0)


def test_watchpoint_on_a_block(traces):
    t = traces[1]
    s = session_for(t)
    s.run(until=5)
    s.seek(0)
    base = t["base_va"]
    s.add_breakpoint(f"watch-block:{base:#x}")
    hit = s.continue_()
    assert hit is not None
    ev = hit.event
    assert ev[0] in ("pte_write", "hw_update") and ev[2] != ev[3]
    assert base <= ev[1] < base + 0x10000
    assert hit.position.event == hit.event_index + 1  # stopped after the write
    assert s.pte("mm", ev[1]) == ev[3]
    again = s.continue_()
    assert again is not None and again.position > hit.position
    assert s.reverse_continue().position == hit.position


def test_seek_beyond_frontier_runs_and_bad_grain_rejected(traces):
    s = session_for(traces[2])
    s.seek(30)
    assert s.k == 30 and s.executed >= 30
    with pytest.raises(SessionError):
        s.step("instruction")
