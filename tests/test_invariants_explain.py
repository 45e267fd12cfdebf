# SPDX-License-Identifier: GPL-2.0-only
"""Each invariant rule fires on a block broken that way, and the fold
explainer names every reason a block is not folded."""

import pytest

from engine import Simulator
from engine.hw.cpus import CpuProfileError, load_cpu
from engine.invariants import check_convert_events
from engine.pte import PAGE_READONLY, PAGE_SHARED, PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_WRITE

BASE = 0x7F00_0000_0000


def folded_block(sim, pfn=32):
    sim.add_folio(pfn, 16)
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(pfn, PAGE_SHARED), 16)


def rules(sim):
    return {v.rule for v in sim.check_invariants()}


def test_well_formed_block_has_no_violation():
    sim = Simulator()
    folded_block(sim)
    assert sim.check_invariants() == []


def test_cont_shape_partial_cont():
    sim = Simulator()
    folded_block(sim)
    sim.mm.pt.set(BASE + 4096, sim.raw(BASE + 4096) & ~PTE_CONT)
    assert rules(sim) == {"cont-shape"}


def test_cont_pfn_gap():
    sim = Simulator()
    folded_block(sim)
    sim.mm.pt.set(BASE + 5 * 4096, sim.raw(BASE + 5 * 4096) + 4096)
    assert "cont-pfn" in rules(sim)


def test_cont_prot_mismatch_but_ad_differences_allowed():
    sim = Simulator()
    folded_block(sim)
    v = sim.raw(BASE + 2 * 4096)
    sim.mm.pt.set(BASE + 2 * 4096, (v & ~PTE_AF) | PTE_DIRTY)  # A/D may differ
    assert sim.check_invariants() == []
    sim.mm.pt.set(BASE + 3 * 4096, sim.raw(BASE + 3 * 4096) & ~PTE_WRITE)
    assert rules(sim) == {"cont-prot"}


def test_cont_folio_must_cover_block():
    sim = Simulator()
    sim.add_folio(32, 8)  # two 8-page folios under one block: set_ptes contract broken
    sim.add_folio(40, 8)
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(32, PAGE_SHARED), 16)
    assert rules(sim) == {"cont-folio"}


def test_kernel_mm_never_gets_cont_through_the_api():
    sim = Simulator(user=False)
    folded_block(sim)
    assert not sim.raw(BASE) & PTE_CONT and sim.check_invariants() == []
    sim.mm.pt.set(BASE, sim.raw(BASE))  # then paint CONT by hand
    for i in range(16):
        sim.mm.pt.set(BASE + i * 4096, sim.raw(BASE + i * 4096) | PTE_CONT)
    assert rules(sim) == {"kernel-cont"}


def test_ad_lost_detects_a_convert_that_drops_dirty():
    events = [("convert", BASE, True),
              ("pte_write", BASE, (PAGE_SHARED | PTE_DIRTY) & ~PTE_RDONLY, 0, "xchg", "mm"),
              ("pte_write", BASE, 0, PAGE_SHARED | PTE_CONT, "store", "mm"),
              ("fold", BASE)]
    (v,) = check_convert_events(events)
    assert v.rule == "ad-lost"


def test_explainer_lists_every_reason():
    sim = Simulator()
    sim.add_folio(64, 8)  # folio too small
    for i in range(16):
        if i == 4:
            continue  # hole
        prot = PAGE_READONLY if i == 7 else PAGE_SHARED  # one entry read-only
        sim.ptep.set_ptes(BASE + i * 4096, sim.pte.pfn_pte(64 + i, prot), 1)
    ex = sim.explain(BASE + 0x3000)
    codes = [(r.code, r.index) for r in ex.reasons]
    assert ("none", 4) in codes and ("prot", 7) in codes and ("folio", 15) in codes
    assert not ex.folded and not ex.foldable
    assert "WRITE" in next(r.message for r in ex.reasons if r.code == "prot")


def test_explainer_foldable_but_never_asked():
    """All checks pass but the last entry was written before the others:
    the kernel's heuristic never re-checks (the GC blind spot)."""
    sim = Simulator()
    sim.add_folio(16, 16)
    for i in reversed(range(16)):
        sim.ptep.set_ptes(BASE + i * 4096, sim.pte.pfn_pte(16 + i, PAGE_SHARED), 1)
    ex = sim.explain(BASE)
    assert ex.foldable and not ex.folded and ex.notes
    assert sim.counters()["converts"] == 0


def test_user_cpu_profile_toml(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\nbase = "neoverse-n1"\n[features]\ntlb_range = true\n'
                 '[weights]\ndsb_ish = 999\n')
    cpu = load_cpu(str(p))
    assert cpu.name == "mine" and cpu.tlb_range and cpu.weight("dsb_ish") == 999
    bad = tmp_path / "bad.toml"
    for text, msg in [("[features]\nwarp = true\n", "unknown feature"),
                      ("[weights]\ndsb_ish = -1\n", "non-negative"),
                      ("base = 'nope'\n", "unknown base"),
                      ("this is not toml", "invalid TOML")]:
        bad.write_text(text)
        with pytest.raises(CpuProfileError, match=msg):
            load_cpu(str(bad))
    with pytest.raises(CpuProfileError, match="unknown CPU profile"):
        load_cpu("pentium")
