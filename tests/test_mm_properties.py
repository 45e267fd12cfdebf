# SPDX-License-Identifier: GPL-2.0-only
"""Random programs of ops (hypothesis) against the invariants:

* contiguous blocks: CONT all-or-none over valid blocks, contiguous aligned
  pfns, same attributes modulo AF/dirty, one folio per block (the machine's
  per-op check, reported as invariant_violation events);
* the TLB never holds conflicting entries on a CPU that would abort, and
  never a translation the page tables no longer allow;
* the core-mm bookkeeping (refcounts, mapcounts, rmap, swap counts) matches
  the page tables (engine.mm.audit);
* no access or dirty information is lost by an op that must keep it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mm_program import to_op

from engine.errors import ScenarioError
from engine.mm.audit import audit
from engine.mm.physmem import F_DIRTY, F_SWAPCACHE
from engine.pte import PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_VALID, PTE_WRITE
from engine.scenario_machine import Machine, MachineConfig

CHOICE = st.tuples(*(st.integers(0, 999) for _ in range(4)))
PROGRAM = st.lists(CHOICE, min_size=5, max_size=28)
CONFIG = st.fixed_dictionaries({
    "kernel": st.sampled_from(["seed-basic", "v6.9", "v6.10", "v6.17", "v6.19", "v7.0"]),
    "cpu": st.sampled_from(["neoverse-n1", "apple-m2", "neoverse-v3", "cortex-x4"]),
    "mthp": st.sampled_from([{"64K": "always"}, {"16K": "always", "64K": "always"},
                             {"2M": "always"}, {}]),
    "thp": st.sampled_from(["always", "madvise", "never"]),
    "aged": st.sampled_from([0.0, 0.0, 0.03]),
})

# ops that must not drop what the page tables say about access / dirtiness
KEEP_DIRTY = {"touch", "fork", "switch", "mprotect", "numa", "migrate", "split", "gup", "mmap", "read",
              "collapse", "mremap"}
KEEP_YOUNG = KEEP_DIRTY


def _dirty(pte: int) -> bool:
    return bool(pte & PTE_DIRTY) or (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE


def page_state(m: Machine) -> dict:
    """(pid, va) -> (young, dirty-known) for every mapped user page."""
    k = m.kernel
    lay = m.layout
    pm = k.pm
    ps = m.g.page_size
    n = m.g.cont_ptes
    out = {}
    for p in k.procs:
        if not p.alive:
            continue
        pt = p.mm.pt
        for key, pmd in pt.pmd_leaves.items():
            if not lay.pte_present(pmd):
                continue
            head = m.arch.pte_pfn(pmd)
            dirty = _dirty(pmd) or bool(pm.flags[head - pm.base] & (F_DIRTY | F_SWAPCACHE))
            base = key << m.g.pmd_shift
            for i in range(1 << m.g.pmd_order):
                out[(p.pid, base + i * ps)] = (bool(pmd & PTE_AF), dirty)
        for va, pte in pt.iter_present():
            if not lay.pte_present(pte):
                out[(p.pid, va)] = (False, True)  # the data is in swap
                continue
            block = [pte]
            if pte & (PTE_VALID | PTE_CONT) == PTE_VALID | PTE_CONT:
                start = va & ~(n * ps - 1)
                block = [pt.get(start + i * ps) for i in range(n)]  # what ptep_get gathers
            head, _ = m.folios.folio_of(m.arch.pte_pfn(pte))
            folio_dirty = bool(pm.flags[head - pm.base] & (F_DIRTY | F_SWAPCACHE))
            out[(p.pid, va)] = (any(e & PTE_AF for e in block),
                                any(_dirty(e) for e in block) or folio_dirty)
    return out


def run_program(config: dict, program: list, check_state: bool = True) -> Machine:
    m = Machine(MachineConfig(memory=96 << 20, swap=32 << 20, check="op", **config))
    for choice in program:
        op = to_op(m, choice)
        if op is None:
            continue
        before = page_state(m) if check_state else None
        mark = len(m.log.buf)
        try:
            m.apply(op)
        except ScenarioError:
            continue
        events = m.log.buf[mark:]
        bad = [e for e in events if e[0] == "invariant_violation"]
        assert not bad, f"{op}: {bad[:3]}"
        if not m.cpu.bbml2_noabort:
            assert not [e for e in events if e[0] == "tlb_conflict"], f"{op}: TLB conflict"
        else:
            assert all(e[3] is False for e in events if e[0] == "tlb_conflict")
        if check_state:
            after = page_state(m)
            for key, (young, dirty) in before.items():
                if key not in after:
                    continue
                y2, d2 = after[key]
                if op.verb in KEEP_DIRTY and dirty:
                    assert d2, f"{op}: dirty state of {key[1]:#x} (pid {key[0]}) lost"
                if op.verb in KEEP_YOUNG and young:
                    assert y2, f"{op}: access flag of {key[1]:#x} (pid {key[0]}) lost"
        m.log.clear()
    return m


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=CONFIG, program=PROGRAM)
def test_random_programs_keep_every_invariant(config, program):
    m = run_program(config, program)
    problems = audit(m.kernel.ctx)
    assert not problems, "\n".join(problems[:10])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=PROGRAM, granule=st.sampled_from(["16K", "64K"]))
def test_random_programs_on_large_granules(program, granule):
    config = {"kernel": "v7.0", "cpu": "neoverse-n1", "mthp": {"2M": "always"}, "thp": "madvise",
              "aged": 0.0}
    m = Machine(MachineConfig(granule=granule, memory=2 << 30, swap=64 << 20, check="op", **config))
    for choice in program:
        op = to_op(m, choice)
        if op is None:
            continue
        mark = len(m.log.buf)
        try:
            m.apply(op)
        except ScenarioError:
            continue
        assert not [e for e in m.log.buf[mark:] if e[0] in ("invariant_violation", "tlb_conflict")]
        m.log.clear()
    assert not audit(m.kernel.ctx)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=PROGRAM)
def test_state_restore_is_exact_mid_program(program):
    """Restore a checkpoint and re-run: the same events, bit for bit."""
    config = {"kernel": "v7.0", "cpu": "neoverse-n1", "mthp": {"64K": "always"}, "thp": "madvise",
              "aged": 0.0}
    m = Machine(MachineConfig(memory=64 << 20, swap=16 << 20, **config))
    ops = []
    for choice in program:
        op = to_op(m, choice)
        if op is None:
            continue
        try:
            m.apply(op)
            ops.append(op)
        except ScenarioError:
            continue
    half = len(ops) // 2
    m2 = Machine(MachineConfig(memory=64 << 20, swap=16 << 20, **config))
    for op in ops[:half]:
        m2.apply(op)
    st_ = m2.state()
    mark = len(m2.log.buf)
    for op in ops[half:]:
        m2.apply(op)
    first = m2.log.buf[mark:]
    m2.restore(st_)
    mark = len(m2.log.buf)
    for op in ops[half:]:
        m2.apply(op)
    assert m2.log.buf[mark:] == first
    assert m2.digest() == m.digest()
