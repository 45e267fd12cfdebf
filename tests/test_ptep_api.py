# SPDX-License-Identifier: GPL-2.0-only
"""Every public ptep entry point on all three granules.

Expected raw values are worked out from the kernel's rules (each test names
the kernel function it checks: arch/arm64/include/asm/pgtable.h and
arch/arm64/mm/contpte.c), not read back from the implementation.
"""

import pytest

from engine import Simulator
from engine.arch import CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG, MissingEntryPoint
from engine.pte import (
    PAGE_NONE,
    PAGE_READONLY,
    PAGE_SHARED,
    PTE_AF,
    PTE_CONT,
    PTE_DIRTY,
    PTE_RDONLY,
    PTE_WRITE,
    pte_mkdirty,
    pte_mkspecial,
)

GRANULES = [4096, 16384, 65536]
BASE = 0x7F00_0000_0000  # 512 GiB aligned: fine for every granule's PMD


def mk(g, kernel="v7.0", cpu="neoverse-n1"):
    return Simulator(granule=g, kernel=kernel, cpu=cpu)


def block(sim):
    return sim.g.cont_ptes, sim.g.page_size


def rw_dirty(sim, pfn):
    """An anonymous write-fault entry: PAGE_READONLY + pte_mkdirty + pte_mkwrite."""
    return (pte_mkdirty(sim.pte.pfn_pte(pfn, PAGE_READONLY)) | PTE_WRITE) & ~PTE_RDONLY


def kinds(sim, kind):
    return [e for e in sim.events if e.kind == kind]


def fill_block_one_by_one(sim, va, pfn, prot):
    n, ps = block(sim)
    for i in range(n):
        sim.ptep.set_ptes(va + i * ps, sim.pte.pfn_pte(pfn + i, prot), 1)


# --- set_ptes / contpte_set_ptes ---------------------------------------------------------------

@pytest.mark.parametrize("g", GRANULES)
def test_contpte_set_ptes_paints_cont_on_aligned_full_blocks(g):
    sim = mk(g)
    n, ps = block(sim)
    pfn = 4 * n
    sim.add_folio(pfn, 2 * n)
    pte = rw_dirty(sim, pfn)
    sim.ptep.set_ptes(BASE, pte, 2 * n)
    for i in (0, n - 1, n, 2 * n - 1):
        assert sim.raw(BASE + i * ps) == pte + i * ps + PTE_CONT
    assert not kinds(sim, "tlbi") and not kinds(sim, "convert")
    assert len(kinds(sim, "pte_write")) == 2 * n


@pytest.mark.parametrize("g", GRANULES)
def test_contpte_set_ptes_leaves_partial_and_misaligned_chunks_noncont(g):
    sim = mk(g)
    n, ps = block(sim)
    # starts half-way into a block: the first chunk is partial, the second full
    sim.add_folio(2 * n, 2 * n)
    va = BASE + (n // 2) * ps
    pte = sim.pte.pfn_pte(2 * n + n // 2, PAGE_READONLY)
    sim.ptep.set_ptes(va, pte, n + n // 2)
    assert sim.raw(va) == pte  # partial chunk: no CONT
    assert sim.raw(BASE + n * ps) == pte + (n // 2) * ps + PTE_CONT
    # VA aligned but PA not congruent: never CONT
    sim2 = mk(g)
    sim2.add_folio(8 * n, 2 * n)
    pte2 = sim2.pte.pfn_pte(8 * n + 1, PAGE_READONLY)
    sim2.ptep.set_ptes(BASE, pte2, n)
    assert all(not sim2.raw(BASE + i * ps) & PTE_CONT for i in range(n))


@pytest.mark.parametrize("g", GRANULES)
def test_set_ptes_strips_cont_from_input(g):
    sim = mk(g)
    pte = sim.pte.pfn_pte(3, PAGE_READONLY) | PTE_CONT
    sim.ptep.set_ptes(BASE, pte, 1)
    assert sim.raw(BASE) == pte & ~PTE_CONT


@pytest.mark.parametrize("g", GRANULES)
def test_set_ptes_paints_prot_none_entries_cont(g):
    """contpte_set_ptes has no validity test: PAGE_NONE blocks get bit 52."""
    sim = mk(g)
    n, ps = block(sim)
    sim.add_folio(n, n)
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(n, PAGE_NONE), n)
    assert sim.raw(BASE) == sim.pte.pfn_pte(n, PAGE_NONE) | PTE_CONT
    assert sim.raw(BASE) == (n << sim.g.page_shift) | 0x0070000000000F82
    assert not sim.check_invariants()  # invalid entries: CONT is inert


def test_set_ptes_prot_none_v69_layout():
    sim = mk(4096, "v6.9")
    sim.add_folio(16, 16)
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(16, sim.pte.PAGE_NONE), 16)
    assert sim.raw(BASE) == 0x0470000000010F82


# --- fold: set_ptes(nr == 1) -> contpte_try_fold -> __contpte_try_fold -> contpte_convert -------

@pytest.mark.parametrize("g", GRANULES)
def test_contpte_try_fold_on_last_entry_folds_the_block(g):
    sim = mk(g)
    n, ps = block(sim)
    pfn = 16 * n
    sim.add_folio(pfn, n)
    fill_block_one_by_one(sim, BASE, pfn, PAGE_SHARED)
    c = sim.counters()
    assert c["converts"] == 1 and c["folds"] == 1
    assert c["call:__contpte_try_fold"] == 1  # only the last entry qualifies
    for i in range(n):
        assert sim.raw(BASE + i * ps) == sim.pte.pfn_pte(pfn + i, PAGE_SHARED) | PTE_CONT
    # contpte_convert flushed the block: one flush_tlb_range, leaf, level 3, sync, broadcast
    (fl,) = kinds(sim, "flush_tlb_range")
    assert (fl.start, fl.end, fl.stride, fl.last_level, fl.tlb_level, fl.sync, fl.broadcast) == (
        BASE, BASE + n * ps, ps, True, 3, True, True)
    # break-before-make: N xchg to 0, then the flush, then N stores
    writes = kinds(sim, "pte_write")[n:]  # skip the N set_ptes stores
    assert [w.atomic for w in writes] == ["xchg"] * n + ["store"] * n
    assert all(w.new == 0 for w in writes[:n])


@pytest.mark.parametrize("g", GRANULES)
def test_fold_smears_access_and_dirty_across_the_block(g):
    sim = mk(g)
    n, ps = block(sim)
    pfn = 32 * n
    sim.add_folio(pfn, n)
    clean_old = sim.pte.pfn_pte(pfn, PAGE_SHARED) & ~PTE_AF
    for i in range(n):
        v = clean_old + i * ps
        if i == 3:
            v |= PTE_AF
        if i == 5:
            v = (v | PTE_DIRTY) & ~PTE_RDONLY
        sim.ptep.set_ptes(BASE + i * ps, v, 1)
    expected0 = ((clean_old | PTE_AF | PTE_DIRTY) & ~PTE_RDONLY) | PTE_CONT
    for i in range(n):
        assert sim.raw(BASE + i * ps) == expected0 + i * ps
    assert not sim.check_invariants()


def _refusal(g, **kw):
    sim = mk(g, kernel=kw.get("kernel", "v7.0"))
    n, ps = block(sim)
    pfn = 64 * n
    sim.add_folio(pfn, kw.get("folio_pages", n))
    prot = PAGE_SHARED
    for i in range(n):
        v = sim.pte.pfn_pte(pfn + i, prot)
        if i == kw.get("odd_index"):
            v = kw["odd"](sim, v)
        if i == kw.get("skip"):
            continue
        sim.ptep.set_ptes(BASE + i * ps, v, 1)
    return sim


@pytest.mark.parametrize("g", GRANULES)
@pytest.mark.parametrize("case, code", [
    ("prot", "prot"), ("invalid", "none"), ("special", "special"), ("small-folio", "folio"),
])
def test_contpte_try_fold_refusals(g, case, code):
    n = {4096: 16, 16384: 128, 65536: 32}[g]
    kw: dict = {}
    if case == "prot":  # entry 2 read-only: WRITE differs
        kw = dict(odd_index=2, odd=lambda s, v: (v & ~PTE_WRITE))
    elif case == "invalid":  # entry 1 never written
        kw = dict(skip=1)
    elif case == "special":
        kw = dict(odd_index=n - 1, odd=lambda s, v: pte_mkspecial(v))
    elif case == "small-folio":
        kw = dict(folio_pages=n // 2)
    sim = _refusal(g, **kw)
    assert sim.counters()["converts"] == 0
    assert all(not sim.raw(BASE + i * sim.g.page_size) & PTE_CONT for i in range(n))
    ex = sim.explain(BASE)
    assert not ex.folded and not ex.foldable
    assert code in {r.code for r in ex.reasons}


@pytest.mark.parametrize("g", GRANULES)
def test_contpte_try_fold_needs_pfn_congruent_with_va(g):
    sim = mk(g)
    n, ps = block(sim)
    sim.add_folio(8 * n, 2 * n)
    for i in range(n):  # VA block start maps pfn 8n+1: last entry's pfn is not the last of a group
        sim.ptep.set_ptes(BASE + i * ps, sim.pte.pfn_pte(8 * n + 1 + i, PAGE_SHARED), 1)
    c = sim.counters()
    assert c["converts"] == 0 and c["call:__contpte_try_fold"] == 0
    assert "pfn-misaligned" in {r.code for r in sim.explain(BASE).reasons}


def test_contpte_try_fold_never_folds_kernel_mm():
    sim = Simulator(4096, "v7.0", user=False)
    sim.add_folio(16, 16)
    for i in range(16):
        sim.ptep.set_ptes(BASE + i * 4096, sim.pte.pfn_pte(16 + i, PAGE_SHARED), 1)
    assert sim.counters()["converts"] == 0
    assert "kernel-mm" in {r.code for r in sim.explain(BASE).reasons}


@pytest.mark.parametrize("kernel", ["baseline", "seed-basic", "seed-batch", "seed-inline"])
def test_no_automatic_fold_before_seed_fold(kernel):
    sim = mk(4096, kernel)
    sim.add_folio(16, 16)
    fill_block_one_by_one(sim, BASE, 16, PAGE_SHARED)
    assert sim.counters()["converts"] == 0
    ex = sim.explain(BASE)
    assert ex.foldable != (kernel == "baseline")


def test_baseline_never_paints_cont():
    sim = mk(4096, "baseline")
    sim.add_folio(16, 16)
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(16, PAGE_SHARED), 16)
    assert sim.raw(BASE) == sim.pte.pfn_pte(16, PAGE_SHARED)


# --- unfold ------------------------------------------------------------------------------------

def folded(sim, pfn, prot=PAGE_SHARED, va=BASE, pages=None, folio=None):
    n, ps = block(sim)
    pages = pages or n
    sim.add_folio(pfn, folio or pages)
    sim.ptep.set_ptes(va, sim.pte.pfn_pte(pfn, prot), pages)
    sim.clear_events()


@pytest.mark.parametrize("g", GRANULES)
@pytest.mark.parametrize("api", ["pte_clear", "ptep_get_and_clear", "ptep_set_wrprotect"])
def test_single_entry_change_unfolds_block(g, api):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 2 * n)
    target = BASE + 3 * ps
    getattr(sim.ptep, api)(target)
    c = sim.counters()
    assert c["converts"] == 1 and c["unfolds"] == 1 and c["flush_tlb_range"] == 1
    others = [sim.raw(BASE + i * ps) for i in range(n) if i != 3]
    assert all(not v & PTE_CONT for v in others)
    if api == "ptep_set_wrprotect":
        assert sim.raw(target) == (sim.pte.pfn_pte(2 * n + 3, PAGE_SHARED) & ~PTE_WRITE)
    else:
        assert sim.raw(target) == 0


@pytest.mark.parametrize("g", GRANULES)
def test_contpte_clear_full_ptes_unfolds_only_partial_blocks(g):
    """munmap of 1.5 blocks: clear_full_ptes(1.5N) unfolds the cut block only."""
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 4 * n, pages=2 * n)
    sim.ptep.clear_full_ptes(BASE, n + n // 2, 0)
    c = sim.counters()
    assert c["converts"] == 1 and c["unfolds"] == 1
    assert sim.raw(BASE + (n + n // 2) * ps) == sim.pte.pfn_pte(4 * n + n + n // 2, PAGE_SHARED)
    assert all(sim.raw(BASE + i * ps) == 0 for i in range(n + n // 2))


@pytest.mark.parametrize("g", GRANULES)
def test_contpte_get_and_clear_full_ptes_merges_young_dirty(g):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 4 * n, prot=PAGE_SHARED & ~PTE_AF)
    sim.walk(BASE + 7 * ps, write=True)  # HW sets AF + hw-dirty on entry 7 only
    ret = sim.ptep.get_and_clear_full_ptes(BASE, n, 1)
    expected = (sim.pte.pfn_pte(4 * n, PAGE_SHARED) | PTE_CONT) & ~PTE_RDONLY | PTE_DIRTY | PTE_AF
    assert ret == expected
    assert sim.counters()["converts"] == 0


@pytest.mark.parametrize("g", GRANULES)
def test_contpte_wrprotect_ptes_whole_and_partial(g):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 8 * n, pages=2 * n)
    sim.ptep.wrprotect_ptes(BASE, n + n // 2)  # first block whole, second partial
    c = sim.counters()
    assert c["converts"] == 1 and c["unfolds"] == 1  # only the cut block
    first = sim.raw(BASE)
    assert first & PTE_CONT and not first & PTE_WRITE and first & PTE_RDONLY
    assert not sim.raw(BASE + n * ps) & PTE_CONT
    assert not sim.raw(BASE + (n + n // 2) * ps) & PTE_CONT
    assert sim.raw(BASE + (n + n // 2) * ps) & PTE_WRITE


def test_seed_basic_wrprotect_ptes_unfolds_per_pte():
    """Without the batch API (seed-basic), the generic loop calls
    ptep_set_wrprotect per entry: the first touch of each block unfolds it."""
    sim = mk(4096, "seed-basic")
    folded(sim, 512, pages=512)
    sim.ptep.wrprotect_ptes(BASE, 512)
    assert sim.counters()["unfolds"] == 32
    sim = mk(4096, "seed-batch")
    folded(sim, 512, pages=512)
    sim.ptep.wrprotect_ptes(BASE, 512)
    assert sim.counters()["converts"] == 0


# --- getters -----------------------------------------------------------------------------------

@pytest.mark.parametrize("g", GRANULES)
def test_contpte_ptep_get_gathers_young_dirty(g):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 2 * n, prot=PAGE_SHARED & ~PTE_AF)
    sim.walk(BASE + (n - 1) * ps, write=True)
    got = sim.ptep.ptep_get(BASE)
    assert got == (sim.pte.pfn_pte(2 * n, PAGE_SHARED) | PTE_CONT | PTE_AF) & ~PTE_RDONLY | PTE_DIRTY
    assert sim.ptep.ptep_get_lockless(BASE) == got


@pytest.mark.parametrize("kernel, reads", [("v6.9", 1 + 16), ("v6.17", 1 + 2), ("v7.0", 1 + 2)])
def test_contpte_ptep_get_early_exit_from_v6_17(kernel, reads):
    sim = mk(4096, kernel)
    folded(sim, 32, prot=PAGE_SHARED)  # young; hw-dirty on entry 1
    sim.walk(BASE + 4096, write=True)
    sim.clear_events()
    sim.ptep.ptep_get(BASE)
    # v6.17+: entry 0 is young -> scan for dirty from entry 1 -> stop there
    assert len(kinds(sim, "pte_read")) == reads


def test_ptep_get_lockless_reports_a_permanently_inconsistent_block():
    from engine.arch import ArchError

    sim = mk(4096)
    folded(sim, 32)
    sim.mm.pt.set(BASE + 4096, 0)  # misprogram: no writer will ever fix it
    with pytest.raises(ArchError, match="retry forever"):
        sim.ptep.ptep_get_lockless(BASE)


@pytest.mark.parametrize("g", GRANULES)
def test_pte_batch_hint(g):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 2 * n)
    pte = sim.raw(BASE + 3 * ps)
    assert sim.ptep.pte_batch_hint(BASE + 3 * ps, pte) == n - 3
    assert sim.ptep.pte_batch_hint(BASE, pte & ~PTE_CONT) == 1


# --- young -------------------------------------------------------------------------------------

@pytest.mark.parametrize("g", GRANULES)
@pytest.mark.parametrize("kernel", ["v6.9", "v7.0"])
def test_ptep_test_and_clear_young_clears_whole_block(g, kernel):
    sim = mk(g, kernel)
    n, ps = block(sim)
    folded(sim, 2 * n)
    assert sim.ptep.ptep_test_and_clear_young(BASE + 2 * ps) is True
    assert all(not sim.raw(BASE + i * ps) & PTE_AF for i in range(n))
    assert all(sim.raw(BASE + i * ps) & PTE_CONT for i in range(n))
    assert not kinds(sim, "flush_tlb_range") and sim.counters()["converts"] == 0
    assert sim.ptep.ptep_test_and_clear_young(BASE) is False


@pytest.mark.parametrize("g", GRANULES)
def test_ptep_clear_flush_young_flushes_block_without_trailing_dsb(g):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 2 * n)
    assert sim.ptep.ptep_clear_flush_young(BASE + ps) is True
    (fl,) = kinds(sim, "flush_tlb_range")
    assert (fl.start, fl.end, fl.sync) == (BASE, BASE + n * ps, False)
    assert [d.domain for d in kinds(sim, "dsb")] == ["ishst"]


def test_clear_flush_young_ptes_widens_to_blocks_v7_0():
    sim = mk(4096, "v7.0")
    folded(sim, 64, pages=48, folio=64)  # blocks 0..2 CONT
    assert sim.ptep.clear_flush_young_ptes(BASE + 5 * 4096, 20) is True  # entries 5..24
    (fl,) = kinds(sim, "flush_tlb_range")
    assert (fl.start, fl.end) == (BASE, BASE + 32 * 4096)
    assert all(not sim.raw(BASE + i * 4096) & PTE_AF for i in range(32))
    assert sim.raw(BASE + 32 * 4096) & PTE_AF


@pytest.mark.parametrize("api", ["test_and_clear_young_ptes", "clear_flush_young_ptes"])
def test_batched_young_apis_do_not_exist_before_v7_0(api):
    sim = mk(4096, "v6.19")
    with pytest.raises(MissingEntryPoint, match="v7.0"):
        getattr(sim.ptep, api)(BASE, 1)


def test_clear_young_dirty_ptes_widens_never_unfolds():
    sim = mk(4096, "v7.0")
    folded(sim, 64, pages=32)
    sim.walk(BASE + 20 * 4096, write=True)
    sim.ptep.clear_young_dirty_ptes(BASE + 18 * 4096, 3, CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)
    for i in range(16, 32):
        v = sim.raw(BASE + i * 4096)
        assert v & PTE_CONT and not v & PTE_AF and v & PTE_RDONLY and not v & PTE_DIRTY
    assert sim.raw(BASE) & PTE_AF  # the other block is untouched
    assert sim.counters()["converts"] == 0 and not kinds(sim, "tlbi")
    with pytest.raises(MissingEntryPoint):
        mk(4096, "v6.9").ptep.clear_young_dirty_ptes(BASE, 1, CYDP_CLEAR_DIRTY)


# --- ptep_set_access_flags ---------------------------------------------------------------------

def test_ptep_set_access_flags_noop_same_write_and_write_change_v7_0():
    sim = mk(4096, "v7.0")
    folded(sim, 32, prot=PAGE_READONLY)  # young, clean, read-only, CONT
    cur = sim.raw(BASE) & ~PTE_CONT
    # no-op: every raw sub-entry already has the requested access flags
    assert sim.ptep.ptep_set_access_flags(BASE, cur, 0) == 0
    assert not kinds(sim, "pte_write")
    # same write bit, make dirty: all 16 updated, one local block flush, no unfold
    sim.clear_events()
    want = cur | PTE_DIRTY
    assert sim.ptep.ptep_set_access_flags(BASE + 4096, want, 1) == 1
    assert all(sim.raw(BASE + i * 4096) & PTE_DIRTY and sim.raw(BASE + i * 4096) & PTE_CONT
               for i in range(16))
    (fl,) = kinds(sim, "flush_tlb_range")
    assert (fl.start, fl.end, fl.broadcast, fl.sync) == (BASE, BASE + 0x10000, False, True)
    assert sim.counters()["converts"] == 0
    # write bit changes (reuse of an exclusive page): unfold, update one entry, flush one page
    sim.clear_events()
    target = BASE + 5 * 4096
    entry = (sim.pte.pfn_pte(37, PAGE_READONLY) | PTE_WRITE | PTE_DIRTY) & ~PTE_RDONLY
    assert sim.ptep.ptep_set_access_flags(target, entry, 1) == 1
    c = sim.counters()
    assert c["unfolds"] == 1
    assert sim.raw(target) == entry
    assert not sim.raw(BASE) & PTE_CONT and not sim.raw(BASE) & PTE_WRITE
    flushes = kinds(sim, "flush_tlb_range")
    assert [(f.start, f.end) for f in flushes] == [(BASE, BASE + 0x10000), (target, target + 4096)]
    assert flushes[1].broadcast is False  # local since v6.19


def test_ptep_set_access_flags_gathered_vs_raw_noop_check():
    """The 2026 SMMU/ATS fix: a dirty sibling made v6.9's gathered no-op test
    return 0 although the target entry itself was still read-only (hw clean)."""
    results = {}
    for kernel in ("v6.9", "v7.0"):
        sim = mk(4096, kernel)
        folded(sim, 32, prot=PAGE_SHARED)  # writable-clean, young
        sim.walk(BASE + 9 * 4096, write=True)  # sibling 9 becomes hw-dirty
        sim.clear_events()
        target = BASE + 2 * 4096
        entry = sim.ptep.ptep_get(target) & ~PTE_CONT  # gathered: young + dirty
        results[kernel] = (sim.ptep.ptep_set_access_flags(target, entry, 1), sim.raw(target))
    assert results["v6.9"][0] == 0 and results["v6.9"][1] & PTE_RDONLY  # walker would fault forever
    assert results["v7.0"][0] == 1 and not results["v7.0"][1] & PTE_RDONLY


def test_ptep_set_access_flags_flush_broadcast_before_v6_19():
    sim = mk(4096, "v6.17")
    folded(sim, 32, prot=PAGE_READONLY)
    sim.ptep.ptep_set_access_flags(BASE, (sim.raw(BASE) & ~PTE_CONT) | PTE_DIRTY, 1)
    (fl,) = kinds(sim, "flush_tlb_range")
    assert fl.broadcast is True
    assert [d.domain for d in kinds(sim, "dsb")] == ["ishst", "ish"]


def test_raw_ptep_set_access_flags_keeps_more_permissive_rdonly():
    """__ptep_set_access_flags never removes permissions (fault.c)."""
    sim = mk(4096, "v7.0")
    hw_dirty = (sim.pte.pfn_pte(5, PAGE_SHARED)) & ~PTE_RDONLY
    sim.ptep.set_ptes(BASE, hw_dirty, 1)
    ret = sim.ptep.ptep_set_access_flags(BASE, sim.pte.pfn_pte(5, PAGE_SHARED), 0)  # asks RDONLY=1
    assert ret == 1 and not sim.raw(BASE) & PTE_RDONLY


# --- BBML2_NOABORT -----------------------------------------------------------------------------

@pytest.mark.parametrize("kernel, cpu, flushes", [
    ("v6.9", "neoverse-v3", 1),  # elision only exists from v6.17
    ("v6.17", "neoverse-n1", 1),  # not on the allow-list
    ("v6.17", "neoverse-v3", 0),
    ("v7.0", "cortex-x4", 0),
])
def test_contpte_convert_skips_flush_on_bbml2_noabort(kernel, cpu, flushes):
    sim = mk(4096, kernel, cpu)
    sim.add_folio(16, 16)
    fill_block_one_by_one(sim, BASE, 16, PAGE_SHARED)
    c = sim.counters()
    assert c["folds"] == 1
    assert c["flush_tlb_range"] == flushes
    # entries still pass through zero either way (only the TLBI+DSB are elided)
    assert sum(1 for w in kinds(sim, "pte_write") if w.atomic == "xchg") == 16


# --- mprotect transactions ---------------------------------------------------------------------

def test_modify_prot_start_ptes_erratum_2645198_whole_mm_flush():
    from dataclasses import replace

    from engine.hw.cpus import CPUS

    a510 = replace(CPUS["neoverse-n1"], name="a510", erratum_2645198=True)
    sim = Simulator(4096, "v7.0", cpu=a510)
    sim.add_folio(16, 16)
    exec_prot = 0x0028000000000FC3  # PAGE_SHARED_EXEC: user-executable
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(16, exec_prot), 16)
    sim.clear_events()
    sim.ptep.modify_prot_start_ptes(BASE, 16)
    assert len(kinds(sim, "flush_tlb_mm")) == 1  # end = nr * PAGE_SIZE underflows
    (fl,) = kinds(sim, "flush_tlb_range")
    assert fl.whole_mm is True


def test_modify_prot_commit_ptes_keeps_cont_v7_0():
    sim = mk(4096, "v7.0")
    folded(sim, 32)
    old = sim.ptep.modify_prot_start_ptes(BASE, 16)
    sim.ptep.modify_prot_commit_ptes(BASE, old, (old & ~PTE_CONT & ~PTE_WRITE) | PTE_RDONLY, 16)
    assert sim.raw(BASE) & PTE_CONT and not sim.raw(BASE) & PTE_WRITE
    assert sim.counters()["converts"] == 0
    with pytest.raises(MissingEntryPoint):
        mk(4096, "v6.10").ptep.modify_prot_start_ptes(BASE, 16)


# --- per-era event sequences (audit) -----------------------------------------------------------

KERNEL_RW = 0x0068000000000F03 & ~0x40 | (1 << 54)  # valid, !USER, UXN: pte_valid_not_user()


@pytest.mark.parametrize("kernel, barriers", [("v6.9", 4), ("v6.10", 4), ("v6.17", 1), ("v7.0", 1)])
def test___set_ptes_kernel_barriers_per_entry_until_v6_16(kernel, barriers):
    """Until f89b399e8d6e "arm64/mm: Hoist barriers out of set_ptes_anysz()
    loop" ([GIT PULL] arm64 updates for 6.16) __set_ptes() called __set_pte()
    per entry, so a valid kernel PTE got DSB ISHST; ISB after every store;
    since then __set_pte_complete() runs once, for the last value."""
    sim = Simulator(4096, kernel, user=False)
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(64, KERNEL_RW), 4)  # kernel mm: plain __set_ptes
    kinds_ = [e.kind for e in sim.events if e.kind in ("pte_write", "dsb", "isb")]
    if barriers == 4:
        assert kinds_ == ["pte_write", "dsb", "isb"] * 4
    else:
        assert kinds_ == ["pte_write"] * 4 + ["dsb", "isb"]
    # user entries never get the barrier
    sim = Simulator(4096, kernel)
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(64, PAGE_SHARED), 4)
    assert not kinds(sim, "dsb") and not kinds(sim, "isb")


def _a510(kernel):
    from dataclasses import replace

    from engine.hw.cpus import CPUS

    return Simulator(4096, kernel, cpu=replace(CPUS["neoverse-n1"], name="a510",
                                                erratum_2645198=True))


def test_ptep_modify_prot_start_v6_9_erratum_2645198_clears_and_flushes_one_page():
    """v6.9 arch/arm64/mm/mmu.c: with ARM64_WORKAROUND_2645198 and a
    user-executable entry (read through ptep_get()), ptep_clear_flush():
    ptep_get_and_clear() then a broadcast flush_tlb_page() of that page."""
    sim = _a510("v6.9")
    exec_prot = 0x0028000000000FC3  # PAGE_SHARED_EXEC
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(3, exec_prot), 1)
    sim.clear_events()
    old = sim.ptep.ptep_modify_prot_start(BASE)
    assert old == sim.pte.pfn_pte(3, exec_prot) and sim.raw(BASE) == 0
    (fl,) = kinds(sim, "flush_tlb_range")
    assert (fl.start, fl.end, fl.broadcast, fl.sync, fl.tlb_level) == (BASE, BASE + 4096, True, True, 0)
    assert [d.domain for d in kinds(sim, "dsb")] == ["ishst", "ish"]
    # a non-executable entry is just cleared
    sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(3, PAGE_SHARED), 1)
    sim.clear_events()
    sim.ptep.ptep_modify_prot_start(BASE)
    assert not kinds(sim, "flush_tlb_range")


def test_modify_prot_start_ptes_v6_17_erratum_whole_mm_then_extra_dsb():
    """v6.17 modify_prot_start_ptes() passes nr * PAGE_SIZE as the end, so the
    range underflows into flush_tlb_mm(); with the pre-tlbf_t API the
    synchronous __flush_tlb_range() then completes once more (DSB ISH)."""
    sim = _a510("v6.17")
    exec_prot = 0x0028000000000FC3
    sim.ptep.set_ptes(BASE + 3 * 4096, sim.pte.pfn_pte(19, exec_prot), 1)
    sim.clear_events()
    sim.ptep.ptep_modify_prot_start(BASE + 3 * 4096)  # = modify_prot_start_ptes(.., 1)
    assert [e.kind for e in sim.events if e.kind in ("flush_tlb_mm", "dsb", "tlbi")] == [
        "flush_tlb_mm", "dsb", "tlbi", "dsb", "dsb"]


@pytest.mark.parametrize("kernel, events", [
    ("v6.17", []),  # a no-op before v6.19
    ("v6.19", [("dsb", "nshst"), ("tlbi", "vale1"), ("dsb", "nsh")]),
    ("v7.0", [("dsb", "nshst"), ("tlbi", "vale1"), ("dsb", "nsh")]),
])
def test_flush_tlb_fix_spurious_fault_per_era(kernel, events):
    """v6.19: local_flush_tlb_page_nonotify() (cb1fa2e99955): local TLBI, no
    notifier; newest: __flush_tlb_page(TLBF_NOBROADCAST | TLBF_NONOTIFY)."""
    sim = mk(4096, kernel)
    sim.ptep.flush_tlb_fix_spurious_fault(BASE)
    got = [(e.kind, getattr(e, "domain", None) or getattr(e, "op", None)) for e in sim.events
           if e.kind in ("dsb", "tlbi", "mmu_notifier")]
    assert got == events


@pytest.mark.parametrize("kernel, broadcast, level", [
    ("v6.9", True, 0), ("v6.17", True, 0), ("v6.19", False, 0), ("v7.0", False, 0), ("v7.3", False, 3)])
def test___ptep_set_access_flags_flush_per_era(kernel, broadcast, level):
    """fault.c: flush_tlb_page() (broadcast, no level hint) until v6.18;
    local_flush_tlb_page() in v6.19 (linux-mm@0176245b); the tlbf_t version
    __ptep_set_access_flags_anysz() flushes locally with level 3
    (linux-mm@80a0f259)."""
    sim = mk(4096, kernel)
    ro = sim.pte.pfn_pte(5, PAGE_READONLY)
    sim.ptep.set_ptes(BASE, ro, 1)
    sim.clear_events()
    assert sim.ptep.ptep_set_access_flags(BASE, ro | PTE_DIRTY, 1) == 1
    (fl,) = kinds(sim, "flush_tlb_range")
    assert (fl.start, fl.end, fl.broadcast, fl.sync, fl.tlb_level) == (
        BASE, BASE + 4096, broadcast, True, level)


def test_seed_basic_dispatch_v6_12_of_18():
    """[PATCH v6 12/18] (Message-Id 20240215103205.2607016-13): no fold, no
    batch overrides. ptep_set_wrprotect = contpte_try_unfold(raw read) +
    __ptep_set_wrprotect (a second, fresh read seeds the cmpxchg);
    get_and_clear_full_ptes is the generic loop over ptep_get_and_clear(), so
    the first entry of a block unfolds all of it; pte_batch_hint() is absent
    (folio_pte_batch() stepped one PTE at a time)."""
    sim = mk(4096, "seed-basic")
    folded(sim, 32)
    sim.ptep.ptep_set_wrprotect(BASE + 4096)
    assert [e.kind for e in sim.events if e.kind in ("pte_read", "convert")][:2] == [
        "pte_read", "convert"]
    writes = kinds(sim, "pte_write")
    assert writes[-1].atomic == "cmpxchg" and writes[-1].addr == BASE + 4096
    reads_after_convert = [e for e in sim.events[sim.events.index(kinds(sim, "unfold")[0]):]
                           if e.kind == "pte_read"]
    assert len(reads_after_convert) == 1  # __ptep_set_wrprotect re-reads
    sim = mk(4096, "seed-basic")
    folded(sim, 32)
    sim.ptep.get_and_clear_full_ptes(BASE, 16, 0)
    assert sim.counters()["unfolds"] == 1
    assert sim.ptep.pte_batch_hint(BASE, sim.pte.pfn_pte(32, PAGE_SHARED) | PTE_CONT) == 1


def test_feature_history_rows_match_the_profiles():
    """Every FEATURE_HISTORY row names a real field, and the profile it names
    is the first one (in release order) to carry that value."""
    from dataclasses import fields as dc_fields

    from engine.arch.profiles import FEATURE_HISTORY, PROFILES, KernelProfile

    names = {f.name for f in dc_fields(KernelProfile)}
    order = list(PROFILES)
    for field_, value, first, commit, note in FEATURE_HISTORY:
        assert field_ in names and commit and note
        i = order.index(first)
        assert getattr(PROFILES[first], field_) == value
        if i:
            assert getattr(PROFILES[order[i - 1]], field_) != value, (field_, first)


# --- the remaining entry points, on every granule ----------------------------------------------

@pytest.mark.parametrize("g", GRANULES)
def test_set_pte_strips_cont_and_warns_over_a_cont_entry(g):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 2 * n)
    v = sim.raw(BASE + ps)
    sim.ptep.set_pte(BASE + ps, v)  # set_pte cannot unfold (no mm/addr in the kernel)
    assert sim.raw(BASE + ps) == v & ~PTE_CONT
    assert [e.message for e in sim.events if e.kind == "warn"]
    assert not kinds(sim, "convert")


@pytest.mark.parametrize("g", GRANULES)
def test_ptep_try_set_only_replaces_a_none_entry(g):
    sim = mk(g, "v7.3")  # the tlbf_t API series, after v7.0
    pte = sim.pte.pfn_pte(7, PAGE_READONLY)
    assert sim.ptep.ptep_try_set(BASE, pte) is True
    assert sim.ptep.ptep_try_set(BASE, pte + 4096) is False
    assert sim.raw(BASE) == pte
    assert [e.domain for e in kinds(sim, "dsb")] == ["ishst"] and kinds(sim, "isb")
    with pytest.raises(MissingEntryPoint):
        mk(g, "v7.0").ptep.ptep_try_set(BASE, pte)


@pytest.mark.parametrize("g", GRANULES)
def test_ptep_clear_flush_unfolds_then_flushes_the_page(g):
    sim = mk(g)
    n, ps = block(sim)
    folded(sim, 2 * n)
    old = sim.ptep.ptep_clear_flush(BASE + 2 * ps)
    assert old == sim.pte.pfn_pte(2 * n + 2, PAGE_SHARED)  # the unfolded value, without CONT
    flushes = [(f.start, f.end) for f in kinds(sim, "flush_tlb_range")]
    assert flushes == [(BASE, BASE + n * ps), (BASE + 2 * ps, BASE + 3 * ps)]
    assert sim.raw(BASE + 2 * ps) == 0 and not sim.raw(BASE) & PTE_CONT


@pytest.mark.parametrize("g", GRANULES)
def test_get_and_clear_ptes_and_clear_ptes_v6_17(g):
    sim = mk(g, "v6.17")
    n, ps = block(sim)
    folded(sim, 4 * n, pages=2 * n)
    ret = sim.ptep.get_and_clear_ptes(BASE, n)  # a whole block: no unfold
    assert ret & PTE_CONT and sim.counters()["converts"] == 0
    sim.ptep.clear_ptes(BASE + n * ps, n // 2)  # half a block: unfold
    assert sim.counters()["unfolds"] == 1
    with pytest.raises(MissingEntryPoint):
        mk(g, "v6.10").ptep.get_and_clear_ptes(BASE, 1)


@pytest.mark.parametrize("g", GRANULES)
def test_ptep_modify_prot_start_commit_per_pte_unfold_and_refold_v6_9(g):
    """Before batched mprotect, a whole-block mprotect is per-pte start/commit:
    the first start unfolds, the last commit refolds (2 converts)."""
    sim = mk(g, "v6.9")
    n, ps = block(sim)
    folded(sim, 2 * n)
    for i in range(n):
        old = sim.ptep.ptep_modify_prot_start(BASE + i * ps)
        sim.ptep.ptep_modify_prot_commit(BASE + i * ps, old, sim.pte.pte_modify(old, PAGE_READONLY))
    c = sim.counters()
    assert (c["converts"], c["unfolds"], c["folds"]) == (2, 1, 1)
    assert sim.raw(BASE) & PTE_CONT and not sim.raw(BASE) & PTE_WRITE


@pytest.mark.parametrize("g", GRANULES)
@pytest.mark.parametrize("kernel", ["v6.9", "v7.0"])
def test_ptep_set_access_flags_dirty_same_write_every_granule(g, kernel):
    sim = mk(g, kernel)
    n, ps = block(sim)
    folded(sim, 2 * n, prot=PAGE_READONLY)
    entry = (sim.raw(BASE) & ~PTE_CONT) | PTE_DIRTY
    assert sim.ptep.ptep_set_access_flags(BASE + 3 * ps, entry, 1) == 1
    assert all(sim.raw(BASE + i * ps) & PTE_DIRTY and sim.raw(BASE + i * ps) & PTE_CONT for i in range(n))
    (fl,) = kinds(sim, "flush_tlb_range")
    assert (fl.start, fl.end, fl.broadcast) == (BASE, BASE + n * ps, kernel == "v6.9")


@pytest.mark.parametrize("g", GRANULES)
def test_clear_young_dirty_ptes_every_granule(g):
    sim = mk(g, "v6.10")
    n, ps = block(sim)
    folded(sim, 4 * n, pages=2 * n)
    sim.ptep.clear_young_dirty_ptes(BASE + ps, 2, CYDP_CLEAR_YOUNG)
    assert all(not sim.raw(BASE + i * ps) & PTE_AF for i in range(n))  # widened to the block
    assert sim.raw(BASE + n * ps) & PTE_AF  # the next block is untouched
    assert sim.counters()["converts"] == 0


@pytest.mark.parametrize("g", GRANULES)
def test_batched_young_v7_0_every_granule(g):
    sim = mk(g, "v7.0")
    n, ps = block(sim)
    folded(sim, 4 * n, pages=2 * n)
    assert sim.ptep.test_and_clear_young_ptes(BASE + ps, n) is True  # spans two blocks: both widened
    assert all(not sim.raw(BASE + i * ps) & PTE_AF for i in range(2 * n))
    assert not kinds(sim, "flush_tlb_range")
    assert sim.ptep.clear_flush_young_ptes(BASE, 2 * n) is False  # nothing young: no flush
    assert not kinds(sim, "flush_tlb_range")
