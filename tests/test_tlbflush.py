# SPDX-License-Identifier: GPL-2.0-only
"""TLBI decomposition of __flush_tlb_range (arch/arm64/include/asm/tlbflush.h):
per-page vs FEAT_TLBIRANGE range operations, operand encodings, the limit that
turns a range into flush_tlb_mm, DSB/ISB, local vs broadcast, sync vs nosync."""

from dataclasses import replace

import pytest

from engine import Simulator
from engine.arch.tlbflush import tlbi_range_num, tlbi_range_pages
from engine.hw.cpus import CPUS
from engine.pte import PAGE_SHARED

BASE = 0x7F00_0000_0000


def cpu(range_: bool, ttl: bool = False, kpti: bool = False, repeat: bool = False):
    return replace(CPUS["neoverse-n1"], name="t", tlb_range=range_, ttl=ttl, kpti=kpti, repeat_tlbi=repeat)


def flush(sim, start, end, **kw):
    sim.clear_events()
    sim.arch.flush_tlb_range(sim.mm, start, end, sim.g.page_size, kw.pop("last_level", True),
                             kw.pop("level", 3), **kw)
    return [e for e in sim.events if e.kind in ("tlbi", "dsb", "isb", "mmu_notifier", "flush_tlb_mm")]


@pytest.mark.parametrize("g, n", [(4096, 16), (16384, 128), (65536, 32)])
def test_block_flush_without_tlbirange_is_one_vale1is_per_page(g, n):
    sim = Simulator(g, "v7.0", cpu=cpu(False))
    ev = flush(sim, BASE, BASE + n * g)
    tlbis = [e for e in ev if e.kind == "tlbi"]
    assert len(tlbis) == n and {t.op for t in tlbis} == {"vale1is"}
    assert [e.kind for e in ev][0] == "dsb" and ev[0].domain == "ishst"
    assert [(e.kind, getattr(e, "domain", None)) for e in ev[-2:]] == [("mmu_notifier", None), ("dsb", "ish")]
    # operand: VA >> 12 in bits 43:0, ASID in 63:48 (the shift is 12 whatever the granule)
    assert tlbis[1].operand == ((BASE + g) >> 12) | (1 << 48)


@pytest.mark.parametrize("g, n, scale, num", [(4096, 16, 0, 7), (16384, 128, 1, 1), (65536, 32, 0, 15)])
def test_block_flush_with_tlbirange_is_one_range_op(g, n, scale, num):
    sim = Simulator(g, "v7.0", cpu=cpu(True, ttl=True))
    ev = flush(sim, BASE, BASE + n * g)
    (t,) = [e for e in ev if e.kind == "tlbi"]
    assert t.op == "rvale1is" and t.pages == n
    tg = {4096: 1, 16384: 2, 65536: 3}[g]
    baddr = BASE >> (g.bit_length() - 1)
    expected = baddr | (3 << 37) | (num << 39) | (scale << 44) | (tg << 46) | (1 << 48)
    assert t.operand == expected


def test_range_walk_uses_largest_scale_first_then_a_single_page():
    sim = Simulator(4096, "v7.0", cpu=cpu(True))
    # 35 pages: scale 0 covers 34 (num 16), then one page by VA
    ev = [e for e in flush(sim, BASE, BASE + 35 * 4096) if e.kind == "tlbi"]
    assert [(e.op, e.pages) for e in ev] == [("rvale1is", 34), ("vale1is", 1)]
    assert tlbi_range_num(35, 0) == 16 and tlbi_range_pages(16, 0) == 34


def test_ttl_hint_only_with_feat_ttl():
    sim = Simulator(4096, "v7.0", cpu=cpu(False, ttl=True))
    (t, *_) = [e for e in flush(sim, BASE, BASE + 4096) if e.kind == "tlbi"]
    assert t.operand >> 44 & 0xF == (1 << 2) | 3  # TG=4K, level 3
    sim = Simulator(4096, "v7.0", cpu=cpu(False, ttl=False))
    (t, *_) = [e for e in flush(sim, BASE, BASE + 4096) if e.kind == "tlbi"]
    assert t.operand >> 44 & 0xF == 0


@pytest.mark.parametrize("kernel", ["v6.9", "v7.0"])
def test_whole_table_young_flush_without_tlbirange_becomes_flush_tlb_mm(kernel):
    """512 pages on 4K reach MAX_DVM_OPS: a synchronous ASIDE1IS instead."""
    sim = Simulator(4096, kernel, cpu=cpu(False))
    ev = flush(sim, BASE, BASE + 512 * 4096, sync=False)
    assert [e.kind for e in ev] == ["flush_tlb_mm", "dsb", "tlbi", "dsb", "mmu_notifier"]
    assert ev[2].op == "aside1is" and ev[3].domain == "ish"  # sync even though nosync was asked
    assert [e for e in sim.events if e.kind == "flush_tlb_range"][0].whole_mm is True
    # 511 pages is still a per-page flush
    ev = flush(sim, BASE, BASE + 511 * 4096, sync=False)
    assert sum(e.kind == "tlbi" for e in ev) == 511


def test_whole_table_flush_with_tlbirange_stays_ranged():
    sim = Simulator(4096, "v7.0", cpu=cpu(True))
    ev = [e for e in flush(sim, BASE, BASE + 512 * 4096) if e.kind == "tlbi"]
    assert [(e.op, e.pages) for e in ev] == [("rvale1is", 512)]


def test_local_flush_uses_non_shareable_barriers_and_vale1():
    sim = Simulator(4096, "v7.0", cpu=cpu(False))
    ev = flush(sim, BASE, BASE + 16 * 4096, broadcast=False)
    assert ev[0].domain == "nshst" and ev[-1].domain == "nsh"
    assert {e.op for e in ev if e.kind == "tlbi"} == {"vale1"}


def test_kpti_issues_every_user_tlbi_twice():
    sim = Simulator(4096, "v7.0", cpu=cpu(False, kpti=True))
    tl = [e for e in flush(sim, BASE, BASE + 2 * 4096) if e.kind == "tlbi"]
    assert len(tl) == 4 and tl[1].asid == tl[0].asid | 1


def test_repeat_tlbi_erratum_adds_a_dummy_tlbi_and_dsb():
    sim = Simulator(4096, "v7.0", cpu=cpu(False, repeat=True))
    ev = flush(sim, BASE, BASE + 4096)
    assert [e.kind for e in ev] == ["dsb", "tlbi", "mmu_notifier", "dsb", "tlbi", "dsb"]


def test_all_levels_flush_uses_vae1is():
    sim = Simulator(4096, "v7.0", cpu=cpu(False))
    ev = flush(sim, BASE, BASE + 4096, last_level=False, level=0)
    assert [e.op for e in ev if e.kind == "tlbi"] == ["vae1is"]


def test_v6_9_single_page_flush_has_no_level_hint():
    """flush_tlb_page() before the tlbf_t API used __TLBI_VADDR without TTL."""
    for kernel, level in (("v6.9", 0), ("v7.0", 0), ("v7.3", 3)):
        sim = Simulator(4096, kernel, cpu=cpu(False))
        sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(9, PAGE_SHARED), 1)
        sim.clear_events()
        sim.ptep.ptep_clear_flush_young(BASE)
        (f,) = [e for e in sim.events if e.kind == "flush_tlb_range"]
        assert f.tlb_level == level and f.sync is False


# --- per-era details (audit against the kernel sources named in each test) -----------------------

def _tlb_events(sim):
    return [(e.kind, getattr(e, "domain", None) or getattr(e, "op", None))
            for e in sim.events if e.kind in ("tlbi", "dsb", "mmu_notifier")]


@pytest.mark.parametrize("kernel", ["v6.9", "v6.19"])
def test___tlbi_repeat_tlbi_v6_9_to_v6_19_repeats_every_tlbi(kernel):
    """Up to v6.19 ARM64_WORKAROUND_REPEAT_TLBI lives in the __TLBI_0/__TLBI_1
    asm alternatives (tlbflush.h, NVIDIA/NV-Kernels@00300658:
    arch/arm64/include/asm/tlbflush.h): every TLBI, the KPTI user copy
    included, becomes TLBI; DSB ISH; TLBI, and the completing DSB is plain.
    a8f78680ee6b (v7.0) moved the repeat into __tlbi_sync_s1ish()."""
    sim = Simulator(4096, kernel, cpu=cpu(False, kpti=True, repeat=True))
    ev = flush(sim, BASE, BASE + 4096)
    assert [(e.kind, getattr(e, "domain", None)) for e in ev] == [
        ("dsb", "ishst"),
        ("tlbi", None), ("dsb", "ish"), ("tlbi", None),  # kernel ASID, repeated
        ("tlbi", None), ("dsb", "ish"), ("tlbi", None),  # user ASID, repeated
        ("mmu_notifier", None), ("dsb", "ish")]
    tl = [e for e in ev if e.kind == "tlbi"]
    assert tl[0].operand == tl[1].operand and tl[2].operand == tl[3].operand
    assert tl[2].operand == tl[0].operand | (1 << 48)


def test___tlbi_repeat_tlbi_v6_19_applies_to_local_and_nosync_flushes():
    """Before v7.0 the repeat is in every __tlbi(), so local (VALE1) and
    nosync flushes get it too (v6.19 local_flush_tlb_contpte(), Huang Ying
    cb1fa2e99955; __ptep_clear_flush_young's flush_tlb_page_nosync())."""
    sim = Simulator(4096, "v6.19", cpu=cpu(False, repeat=True))
    ev = flush(sim, BASE, BASE + 4096, broadcast=False)
    assert [(e.kind, getattr(e, "domain", None)) for e in ev] == [
        ("dsb", "nshst"), ("tlbi", None), ("dsb", "ish"), ("tlbi", None),
        ("mmu_notifier", None), ("dsb", "nsh")]
    ev = flush(sim, BASE, BASE + 4096, sync=False)
    assert [e.kind for e in ev] == ["dsb", "tlbi", "dsb", "tlbi", "mmu_notifier"]


def test___tlbi_sync_s1ish_v7_0_dummy_tlbi_has_no_kpti_copy_and_skips_local():
    """v7.0 __tlbi_sync_s1ish() (linux-mm@3c9e86d8:arch/arm64/include/asm/
    tlbflush.h): DSB ISH, then one TLBI VALE1IS of operand 0 issued with plain
    __tlbi() (no __tlbi_user copy) and a second DSB ISH; local (DSB NSH) and
    nosync completions get nothing."""
    sim = Simulator(4096, "v7.0", cpu=cpu(False, kpti=True, repeat=True))
    ev = flush(sim, BASE, BASE + 4096)
    tl = [e for e in ev if e.kind == "tlbi"]
    assert [(e.op, e.operand) for e in tl[2:]] == [("vale1is", 0)]
    assert len(tl) == 3  # kernel + user copy of the real TLBI, one dummy
    ev = flush(sim, BASE, BASE + 4096, broadcast=False)
    assert [e.kind for e in ev].count("tlbi") == 2 and ev[-1].domain == "nsh"
    ev = flush(sim, BASE, BASE + 4096, sync=False)
    assert [e.kind for e in ev] == ["dsb", "tlbi", "tlbi", "mmu_notifier"]


@pytest.mark.parametrize("kernel, notified", [
    ("baseline", "end"), ("seed-basic", "end"), ("v6.9", "end"), ("v6.10", "end"),
    ("v6.17", "range"), ("v7.0", "range")])
def test___flush_tlb_range_nosync_notifier_range_per_era(kernel, notified):
    """__flush_tlb_range_op() advanced its 'start' argument, so until
    f7edb07ad7c6 "Fix mmu notifiers for range-based invalidates" (arm64 fixes,
    v6.14-rc7) the secondary-TLB notifier saw [end, end); single-page flushes
    (__flush_tlb_page_nosync) were never affected."""
    sim = Simulator(4096, kernel, cpu=cpu(False))
    ev = flush(sim, BASE, BASE + 16 * 4096)
    (n,) = [e for e in ev if e.kind == "mmu_notifier"]
    end = BASE + 16 * 4096
    assert (n.start, n.end) == ((end, end) if notified == "end" else (BASE, end))
    sim.clear_events()
    sim.arch.flush_tlb_page(sim.mm, BASE + 5 * 4096)
    (n,) = [e for e in sim.events if e.kind == "mmu_notifier"]
    assert (n.start, n.end) == (BASE + 5 * 4096, BASE + 6 * 4096)


def test___flush_tlb_range_baseline_completes_before_notifier():
    """Before v6 patch 11/18 ("arm64/mm: Split __flush_tlb_range() to elide
    trailing DSB", d9d8dc2bd3fb) the DSB ISH came before the notifier call."""
    sim = Simulator(4096, "baseline", cpu=cpu(False))
    ev = flush(sim, BASE, BASE + 2 * 4096)
    assert [e.kind for e in ev] == ["dsb", "tlbi", "tlbi", "dsb", "mmu_notifier"]
    sim = Simulator(4096, "seed-basic", cpu=cpu(False))
    ev = flush(sim, BASE, BASE + 2 * 4096)
    assert [e.kind for e in ev] == ["dsb", "tlbi", "tlbi", "mmu_notifier", "dsb"]


@pytest.mark.parametrize("kernel, whole_mm", [("v6.9", True), ("v6.10", False), ("v7.0", False)])
def test___flush_tlb_range_limit_max_tlbi_range_pages_per_era(kernel, whole_mm):
    """v6.9: pages >= MAX_TLBI_RANGE_PAGES falls back to flush_tlb_mm();
    73301e464a72 "arm64: tlb: Allow range operation for MAX_TLBI_RANGE_PAGES"
    ([GIT PULL] arm64 updates for 6.10) made it '>'."""
    sim = Simulator(4096, kernel, cpu=cpu(True))
    pages = 32 << 16
    ev = flush(sim, BASE, BASE + pages * 4096, last_level=False, level=0)
    assert any(e.kind == "flush_tlb_mm" for e in ev) is whole_mm
    if not whole_mm:
        assert [(e.op, e.pages) for e in ev if e.kind == "tlbi"] == [("rvae1is", pages)]


@pytest.mark.parametrize("kernel, extra", [("baseline", False), ("v6.9", True), ("v6.19", True),
                                           ("v7.0", True), ("v7.3", False)])
def test___flush_tlb_range_excess_completion_per_api(kernel, extra):
    """Old API: __flush_tlb_range() = __flush_tlb_range_nosync() + DSB ISH, and
    the nosync half returns early after flush_tlb_mm(), so a synchronous flush
    over the limit issues one more DSB ISH (NV-Kernels@00300658 tlbflush.h).
    The tlbf_t API returns straight after flush_tlb_mm()
    (linux-mm@3c9e86d8 __do_flush_tlb_range); before the split (baseline)
    the early return skipped the only DSB ISH."""
    sim = Simulator(4096, kernel, cpu=cpu(False))
    ev = flush(sim, BASE, BASE + 512 * 4096)
    base = ["flush_tlb_mm", "dsb", "tlbi", "dsb", "mmu_notifier"]
    assert [e.kind for e in ev] == base + (["dsb"] if extra else [])
    ev = flush(sim, BASE, BASE + 512 * 4096, sync=False)
    assert [e.kind for e in ev] == base


def test_arch_tlbbatch_add_pending_per_page_before_v6_15_range_after():
    """try_to_unmap's deferred flush: v6.9 issues one nosync page flush per
    address (no level hint); v6.15+ one leaf-only level-3 range flush."""
    for kernel, expected in (("v6.9", [(BASE + i * 4096, BASE + (i + 1) * 4096, 0) for i in range(4)]),
                             ("v6.17", [(BASE, BASE + 4 * 4096, 3)])):
        sim = Simulator(4096, kernel, cpu=cpu(False))
        sim.arch.arch_tlbbatch_add_pending(sim.mm, BASE, BASE + 4 * 4096)
        fl = [e for e in sim.events if e.kind == "flush_tlb_range"]
        assert [(f.start, f.end, f.tlb_level) for f in fl] == expected
        assert all(f.sync is False for f in fl)
        assert [e.domain for e in sim.events if e.kind == "dsb"] == ["ishst"] * len(expected)
        sim.clear_events()
        sim.arch.arch_tlbbatch_flush(sim.mm)
        assert [e.domain for e in sim.events if e.kind == "dsb"] == ["ish"]
