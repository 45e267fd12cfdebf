# SPDX-License-Identifier: GPL-2.0-only
"""Building engine state from a capture: batch sizes, descriptors, granules."""

from array import array
from collections import Counter

import pytest
from capture_fakes import FakeProc, FakeReader
from crafted_process import A, B, C, D, crafted

from engine.capture.build import build, plan_mappings, vma_prot
from engine.capture.live import capture_process
from engine.capture.model import KPF_ANON, KPF_DIRTY, PM_MMAP_EXCLUSIVE, PM_PRESENT, Capture, CapturedVMA
from engine.pte import LAYOUT_V69, LAYOUT_V618, PAGE_EXECONLY, PAGE_READONLY, PAGE_SHARED, PTE_CONT


@pytest.fixture(scope="module")
def cap():
    return capture_process(4242, reader=FakeReader(crafted()))


def test_whole_folios_are_one_set_ptes_the_rest_one_by_one(cap):
    plan = plan_mappings(cap, "4K")
    batches = {a: n for a, _, n in plan.actions() if n != 1}
    # folio 1 (aligned), folio 2 (unaligned VA: still one batch), the 16K folio, the file folio,
    # and the PMD-mapped THP as a PMD entry (nr 0)
    assert batches == {A: 16, A + 0x18000: 16, A + 0xC0000: 4, B: 4, A + 0x200000: 0}
    assert plan.stats() == {"set_ptes_calls": 58, "set_ptes_batched": 4, "pmd_entries": 1,
                            "entries": 54 + 16 + 16 + 4 + 4, "folios": 7, "host_pages_unmapped": 0}
    singles = [a for a, _, n in plan.actions() if n == 1]
    assert singles == sorted(singles)  # lowest address first
    assert sum(1 for a in singles if A + 0x40000 <= a < A + 0x58000) == 24  # the partial folio
    assert sum(1 for a in singles if A + 0x80000 <= a < A + 0x90000) == 16  # mixed permissions


def test_mapping_goes_through_the_ptep_api(cap):
    built = build(cap, "4K", record_events=True)
    calls = Counter(ev.name for ev in built.sim.events if ev.kind == "call")
    assert calls["set_ptes"] == 58
    assert calls["contpte_set_ptes"] == 4
    # contpte_try_fold() on the last entry of the partial folio's first block (folds) and of
    # the mixed-permission folio (__contpte_try_fold finds the write bit differs)
    assert calls["__contpte_try_fold"] == 2
    assert [ev.addr for ev in built.sim.events if ev.kind == "fold"] == [A + 0x40000]
    # the PMD entry is a pmd_write with every field of FIELDS, the mm too
    assert [(ev.addr, ev.mm) for ev in built.sim.events if ev.kind == "pmd_write"] == [
        (A + 0x200000, built.sim.mm.name)]


def test_descriptors(cap):
    sim = build(cap, "4K").sim
    assert sim.raw(A) == 0x00F8000001000F43  # exclusive anon, rw-p: dirty, writable, CONT
    assert sim.raw(A + 0x18000) == 0x00E8000001010F43  # same, not CONT (VA and PA misaligned)
    assert sim.raw(A + 0x85000) == 0x0060000001045FC3  # shared page: PAGE_READONLY
    assert sim.raw(B) == 0x0060000002000FC3  # file page, r--p
    assert sim.raw(C) == 0x0060000006000F82  # PROT_NONE, v7.0 layout
    assert sim.raw(D) == (1 << 6) | (0x100 << 12)  # swap type 1 offset 0x100
    assert sim.raw(D + 0x8000) == 0x016000007F000FC3  # zero page: special, read-only
    assert sim.mm.pt.get_pmd(A + 0x200000) == 0x00E8000040000F41  # PMD block entry (no table bit)


def test_descriptors_v69_layout(cap):
    sim = build(cap, "4K", kernel="v6.9").sim
    assert sim.raw(C) == 0x0460000006000F82  # PAGE_NONE with PTE_PROT_NONE
    assert sim.raw(D) == (1 << 3) | (0x100 << 8)
    assert sim.raw(A) == 0x00F8000001000F43


def test_vma_prot():
    assert vma_prot("rw-p", LAYOUT_V618) == PAGE_READONLY  # private writable starts read-only (CoW)
    assert vma_prot("rw-s", LAYOUT_V618) == PAGE_SHARED
    assert vma_prot("--xp", LAYOUT_V618) == PAGE_EXECONLY == 0x0020000000000F83
    assert vma_prot("---p", LAYOUT_V69) == LAYOUT_V69.page_none
    assert vma_prot("r-xp", LAYOUT_V618) == 0x0020000000000FC3


def test_shared_writable_is_dirty_when_the_folio_is():
    p = FakeProc()
    p.vma(0x50000000, 0x2000, perms="rw-s", path="/dev/shm/x", inode=7)
    p.map(0x50000000, 0x700, file=True)
    p.map(0x50001000, 0x701, file=True)
    p.kflags[0x700] |= KPF_DIRTY
    sim = build(capture_process(4242, reader=FakeReader(p)), "4K").sim
    assert sim.raw(0x50000000) == 0x00E8000000700F43  # pte_mkdirty(PAGE_SHARED): RDONLY cleared
    assert sim.raw(0x50001000) == 0x0068000000701FC3  # PAGE_SHARED, clean


def test_16k_granule_groups_contiguous_aligned_host_pages(cap):
    plan = plan_mappings(cap, "16K")
    assert plan.notes == Counter({"incomplete 16K page (not every host page captured)": 6,
                                  "16K page not physically contiguous": 4})
    assert plan.folios == [(0x400, 4), (0x404, 4), (0x408, 8), (0x410, 4), (0x10000, 128)]
    batches = {a: n for a, _, n in plan.actions() if n != 1}
    assert batches == {A: 4, A + 0x18000: 4, A + 0x200000: 128}
    sim = build(cap, "16K").sim
    assert sim.raw(A) >> 14 & 0xFFFFF == 0x400  # pfn 0x1000 on 4K is 0x400 on 16K
    assert sim.raw(D) == (1 << 6) | (0x40 << 12)  # 4 swap slots 0x100..0x103 -> one entry, offset 0x40
    assert all(sim.raw(A + 0x200000 + k * 0x4000) & PTE_CONT for k in range(128))


def test_granule_vma_edges_are_trimmed():
    p = FakeProc()
    p.vma(0x50001000, 0x8000)
    p.folio(0x800, 8)
    p.map(0x50001000, 0x801, 7)
    p.map(0x50008000, 0x900)
    plan = plan_mappings(capture_process(4242, reader=FakeReader(p)), "16K")
    assert [(v.start, v.end) for v in plan.vmas] == [(0x50004000, 0x50008000)]
    assert plan.notes == Counter({"host pages in a 16K page cut by the VMA edge": 4})
    assert [(a, n) for a, _, n in plan.actions()] == [(0x50004000, 1)]


def test_unmodelled_vmas_are_noted():
    p = FakeProc()
    p.vma(0x50000000, 0x1000, vm_flags=("rd", "wr", "ht"))
    p.map(0x50000000, 0x900)
    plan = plan_mappings(capture_process(4242, reader=FakeReader(p)), "4K")
    assert plan.notes == Counter({"hugetlb VMA (not modelled)": 1}) and not len(plan)


def test_host_pages_bigger_than_the_granule():
    # a 16K-page host: a 64K folio of 4 host pages becomes 16 x 4K, one CONT block
    vma = CapturedVMA(0x10000000, 0x10010000, "rw-p", smaps={"Rss": 64, "Anonymous": 64}, first=0, count=4)
    e = PM_PRESENT | PM_MMAP_EXCLUSIVE
    cap = Capture(1, "x", 16384, 32 << 20, [vma], array("Q", [(0x10000000 >> 14) + k for k in range(4)]),
                  array("Q", [e | (0x100 + k) for k in range(4)]), array("Q", [0x100 + k for k in range(4)]),
                  array("Q", [KPF_ANON] * 4), array("Q", [1] * 4), {0x100: 4})
    cap.check()
    plan = plan_mappings(cap, "4K")
    assert plan.folios == [(0x400, 16)]
    assert [(a, n) for a, _, n in plan.actions()] == [(0x10000000, 16)]
    sim = build(cap, "4K").sim
    assert all(sim.raw(0x10000000 + k * 4096) & PTE_CONT for k in range(16))


def test_a_capture_reopened_under_another_policy_runs_that_policy(cap):
    from engine.capture.session import capture_session
    from engine.machine_kinds import reopen

    s = capture_session(build(cap, "4K", "v7.0"))
    assert s.machine.policy.name == "mainline"
    r = reopen(s, policy="never")
    assert r.machine.policy.name == "never" and r.machine.arch.fold_policy is r.machine.policy
    assert r.machine.digest() == s.machine.digest()  # the same captured start
