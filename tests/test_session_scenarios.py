# SPDX-License-Identifier: GPL-2.0-only
"""The stepping session over the core-mm machine: stepping back from any
point gives exactly the state forward execution had there (random scenario
programs, all three grains); every breakpoint kind; an unknown policy in a
snapshot loads with a clear message."""

from __future__ import annotations

import random

import pytest
from mm_program import to_op

from engine.errors import ScenarioError
from engine.scenario_machine import Machine, MachineConfig
from engine.session import Position, Session
from snapshots.sessions import open_session, save_session
from tui.targets import scenario_session

CFG = dict(memory=64 << 20, swap=16 << 20, mthp={"64K": "always", "16K": "always"}, check="op")


def random_program(seed: int, n: int = 40) -> list:
    rng = random.Random(seed)
    m = Machine(MachineConfig(**CFG, record=False))
    ops = []
    while len(ops) < n:
        op = to_op(m, tuple(rng.randrange(1 << 16) for _ in range(4)))
        if op is None:
            continue
        try:
            m.apply(op)
        except ScenarioError:
            continue
        ops.append(op)
    return ops


def shown(s: Session) -> dict:
    """Every non-zero descriptor of every process as shown at the position."""
    out = {}
    for p in s.machine.process_list():
        for key, t in p.mm.pt.tables.items():
            base = key << s.machine.arch.g.pmd_shift
            for i, v in enumerate(t):
                if v:
                    out[(p.name, base + i * s.machine.arch.g.page_size)] = v
        for key, v in p.mm.pt.pmd_leaves.items():
            out[(p.name, "pmd", key)] = v
    for (proc, addr), v in s.overlay().items():
        if v:
            out[(proc, addr)] = v
        else:
            out.pop((proc, addr), None)
    return out


@pytest.mark.parametrize("grain, seed, limit", [("op", 1, 10_000), ("call", 2, 400), ("event", 3, 400)])
def test_back_reproduces_forward_on_random_programs(grain, seed, limit):
    ops = random_program(seed)
    s = Session(lambda: Machine(MachineConfig(**CFG, record=False)), ops, checkpoint_ops=7)
    seen = []
    while not s.at_end and len(seen) < limit:
        seen.append((s.position, shown(s), s.machine.digest() if not s.e else None))
        s.step(grain)
    for pos, state, digest in reversed(seen):
        s.back(grain)
        assert s.position == pos
        assert shown(s) == state, f"state differs at {pos}"
        if digest is not None:
            assert s.machine.digest() == digest
    rng = random.Random(seed)
    for _ in range(10):
        pos, state, _ = rng.choice(seen)
        s.seek(pos)
        assert shown(s) == state


@pytest.fixture(scope="module")
def demo():
    s = scenario_session("demo")
    s.run()
    return s


def _hit(s, text):
    s.breakpoints.clear()
    s.seek(Position(0))
    bp = s.add_breakpoint(text)
    return s.continue_(), bp


def test_op_breakpoint_stops_before_the_op(demo):
    hit, _ = _hit(demo, "op:fork")
    assert hit and hit.event is None and demo.ops[hit.op].verb == "fork"
    assert demo.position == Position(hit.op)


def test_address_and_block_breakpoints(demo):
    from engine.breakpoints import _event_span

    hit, _ = _hit(demo, "op:mprotect")
    addr = next(e[1] for e in demo.events_of(hit.op) if e[0] == "pte_write")
    hit2, _ = _hit(demo, f"addr:{addr:#x}-{addr + 4096:#x}")
    assert hit2 is not None
    lo, hi = _event_span(hit2.event)
    assert lo < addr + 4096 and addr < hi
    hit3, _ = _hit(demo, f"block:{addr:#x}")  # the block changes (a read or a TLB hit does not stop)
    assert hit3 is not None
    ev = hit3.event
    block = addr & ~0xFFFF
    assert block <= ev[1] < block + 0x10000
    assert ev[0] in ("convert", "fold", "unfold") or (ev[0] in ("pte_write", "hw_update") and ev[2] != ev[3])


def test_alternatives_and_combined_conditions(demo):
    a, _ = _hit(demo, "event:fold")
    b, _ = _hit(demo, "event:unfold")
    either, _ = _hit(demo, "event:fold|event:unfold")
    assert either.position == min(a.position, b.position)
    both, _ = _hit(demo, "event:unfold&op:mprotect")
    assert both and demo.ops[both.op].verb == "mprotect" and both.event[0] == "unfold"
    none, _ = _hit(demo, "event:unfold&op:mmap")
    assert none is None and demo.at_end


def test_whole_asid_flush_and_call_breakpoints_and_reverse(demo):
    demo.breakpoints.clear()
    demo.seek(Position(len(demo.ops)))
    demo.add_breakpoint("call:contpte_convert")
    last = demo.reverse_continue()
    assert last is not None and last.event[1] == "contpte_convert"
    prev = demo.reverse_continue()
    assert prev is not None and prev.position < last.position


def test_invariant_violation_breakpoint_on_a_broken_block(tmp_path):
    """An invariant violation is an event a breakpoint can stop on: break a
    folded block by hand; the next op writes the block without unfolding it
    (MADV_COLD clears young bits over whole blocks) and its check reports it."""
    p = tmp_path / "two.pts"
    p.write_text("mthp 64K=always\ncheck op\nmmap a 64K\ntouch a write\nmadvise a +0 64K cold\n")
    s = scenario_session(str(p))
    s.seek(Position(2))
    proc = s.machine.process_list()[0]
    va = next(v.start for v in proc.vmas if v.name == "a")
    pt = proc.mm.pt
    pt.set(va + 5 * 4096, pt.get(va + 5 * 4096) & ~(1 << 52))  # entry 5 loses PTE_CONT
    s.add_breakpoint("event:invariant_violation")
    hit = s.continue_()
    assert hit is not None and hit.op == 2
    assert hit.event[1] == "cont-shape" and hit.event[2] == va


def test_snapshot_with_a_user_policy_loads_with_a_clear_message(tmp_path):
    pol = tmp_path / "p.py"
    pol.write_text("class P:\n    name = 'mine'\n    def should_try_fold(self, arch, mm, addr, pte):\n"
                   "        return False\n")
    s = scenario_session("check-08-mprotect-one-page", policy=f"{pol}:P")
    s.run()
    path = tmp_path / "u.ptsnap"
    save_session(s, str(path))
    pol.unlink()  # the code is gone: loading must not need it
    loaded = open_session(str(path))
    try:
        assert any("not built in" in w and "--policy" in w for w in loaded.warnings)
        t = loaded.session
        assert t.executed == s.executed
        t.seek(Position(4))  # stepping works (with mainline, as the warning says)
    finally:
        loaded.snapshot.close()
