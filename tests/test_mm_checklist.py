# SPDX-License-Identifier: GPL-2.0-only
"""The 15-item checklist of reference/coremm-and-benchmarks.md, one built-in
scenario each: the ptep calls core mm makes (with batch sizes) and the
converts / folds / unfolds / flushes they cost, for the profiles where they
differ."""

import pytest
from mmhelp import run

ALL = ("seed-basic", "seed-batch", "v6.9", "v6.10", "v6.17", "v6.19", "v7.0")


@pytest.mark.parametrize("kernel", ALL)
def test_01_anon_64k_fault_paints_cont(kernel):
    r = run("check-01-anon-64k-fault", kernel)
    assert r.nrs("set_ptes") == [16]
    assert r.calls("contpte_set_ptes")
    t = r.totals
    assert (t["converts"], t["tlbi"], t["flush_tlb_range"], t["cont_blocks"]) == (0, 0, 0, 1)


def test_01_baseline_has_no_cont():
    r = run("check-01-anon-64k-fault", "baseline")
    assert r.nrs("set_ptes") == [16]
    assert r.totals["cont_blocks"] == 0


@pytest.mark.parametrize("kernel", ("v6.9", "v7.0"))
def test_02_two_32k_folios_never_cont(kernel):
    r = run("check-02-anon-32k-twice", kernel)
    assert r.nrs("set_ptes") == [8, 8]
    t = r.totals
    assert (t["converts"], t["cont_blocks"]) == (0, 0)
    assert not r.calls("__contpte_try_fold")  # set_ptes(nr > 1) never tries to fold


@pytest.mark.parametrize("kernel", ("seed-batch", "v6.9", "v7.0"))
def test_03_fork_pte_mapped_thp_batched(kernel):
    r = run("check-03-fork-pte-mapped-2m", kernel)
    assert r.nrs("wrprotect_ptes") == [512]
    # the PMD split maps the THP with set_ptes(512); the child gets set_ptes(512)
    assert r.nrs("set_ptes") == [512, 512]
    fork = r.op_counts(3)
    assert (fork["converts"], fork["flush_tlb_range"]) == (0, 0)
    assert fork["call:flush_tlb_mm"] == 1  # dup_mmap flushes the parent once, at the end
    assert r.totals["cont_blocks"] == 64  # 32 blocks each in parent and child


def test_03_fork_pte_mapped_thp_seed_basic_unfolds_every_block():
    r = run("check-03-fork-pte-mapped-2m", "seed-basic")
    fork = r.op_counts(3)
    assert r.nrs("wrprotect_ptes") == [512]  # the generic loop behind it goes pte by pte
    assert fork["call:ptep_set_wrprotect"] == 512
    assert (fork["converts"], fork["unfolds"]) == (32, 32)
    # without pte_batch_hint every entry of the batch is read with ptep_get,
    # and each ptep_get of a CONT entry gathers all 16
    assert fork["call:ptep_get"] >= 512
    assert fork["call:contpte_ptep_get"] == 512  # copy_pte_range's read + 511 in the batch
    assert r.totals["cont_blocks"] == 32  # the child's only


def test_04_reuse_after_child_exit_unfolds_with_set_access_flags():
    r = run("check-04-fork-write-reuse", "v7.0")
    w1 = r.op_counts(4)
    assert w1["call:ptep_set_access_flags"] == 1 and w1["call:wp_page_reuse"] == 1
    assert w1["call:wp_page_copy"] == 0
    assert (w1["converts"], w1["unfolds"]) == (1, 1)
    w2 = r.op_counts(5)
    assert w2["converts"] == 0 and w2["call:wp_page_reuse"] == 1
    assert r.totals["folds"] == 0  # ptep_set_access_flags never refolds


def test_04_before_large_reuse_the_parent_copies():
    r = run("check-04-fork-write-reuse", "v6.9")
    w1 = r.op_counts(4)
    assert w1["call:wp_page_copy"] == 1 and w1["call:ptep_clear_flush"] == 1
    assert w1["converts"] == 1


@pytest.mark.parametrize("kernel", ("v6.9", "v7.0"))
def test_05_cow_of_one_page_unfolds_and_maps_order0(kernel):
    r = run("check-05-cow-one-page", kernel)
    cow = r.op_counts(4)
    assert cow["call:ptep_clear_flush"] == 1
    assert (cow["converts"], cow["unfolds"], cow["folds"]) == (1, 1, 0)
    assert [a[-1] for a in r.calls("set_ptes")][-1] == 1  # set_pte_at of the copy
    child = r.machine.kernel.proc("child")
    assert r.machine.folio_info(r.machine.arch.pte_pfn(child.mm.pt.get(
        child.regions["buf"][0] + 16 * 1024)))["order"] == 0
    assert r.totals["cont_blocks"] == 1  # the parent's block is untouched


def test_06_munmap_one_and_a_half_blocks():
    r = run("check-06-munmap-1.5-blocks", "v7.0")
    assert r.nrs("clear_full_ptes") == [24]
    unmap = r.op_counts(2)
    assert (unmap["converts"], unmap["unfolds"]) == (1, 1)
    assert unmap["flush_tlb_range"] == 2  # the cut block's convert, then the mmu_gather
    assert r.totals["cont_blocks"] == 0


def test_06_seed_basic_clears_entry_by_entry():
    r = run("check-06-munmap-1.5-blocks", "seed-basic")
    unmap = r.op_counts(2)
    assert unmap["call:ptep_get_and_clear"] == 24
    assert unmap["converts"] == 2  # both blocks unfold on their first entry


@pytest.mark.parametrize("kernel,converts", [("v6.9", 2), ("v6.10", 2), ("v6.17", 0), ("v7.0", 0)])
def test_07_mprotect_whole_folio(kernel, converts):
    r = run("check-07-mprotect-whole-folio", kernel)
    ro = r.op_counts(2)
    assert ro["converts"] == converts
    if converts:
        assert ro["call:ptep_modify_prot_start"] == 16 and (ro["unfolds"], ro["folds"]) == (1, 1)
    else:
        assert r.nrs("modify_prot_start_ptes")[0] == 16
        assert r.nrs("modify_prot_commit_ptes")[0] == 16
    assert r.totals["cont_blocks"] == 1


@pytest.mark.parametrize("kernel", ("v6.9", "v7.0"))
def test_08_mprotect_middle_page_stays_unfolded_last_page_refolds(kernel):
    r = run("check-08-mprotect-one-page", kernel)
    mid_ro, mid_rw, last_ro, last_rw = (r.op_counts(i) for i in (4, 5, 6, 7))
    assert (mid_ro["converts"], mid_rw["converts"]) == (1, 0)
    assert last_ro["converts"] == 1 and last_ro["call:__contpte_try_fold"] == 1  # attempt, no fold
    assert (last_rw["folds"], last_rw["converts"]) == (1, 1)
    m = r.machine
    p = m.current
    mid = p.mm.pt.get(p.regions["mid"][0])
    assert mid & 1 and not mid & (1 << 52)
    assert p.mm.pt.get(p.regions["last"][0]) & (1 << 52)
    assert r.totals["cont_blocks"] == 1


def test_08_seed_basic_never_refolds():
    r = run("check-08-mprotect-one-page", "seed-basic")
    assert r.totals["folds"] == 0 and r.totals["cont_blocks"] == 0


@pytest.mark.parametrize("kernel", ("v6.10", "v7.0"))
def test_09_madvise_cold_and_free_never_unfold(kernel):
    r = run("check-09-madvise-free-cold", kernel)
    assert [a[-2:] for a in r.calls("clear_young_dirty_ptes")] == [(16, 1), (16, 3)]
    cold, free = r.op_counts(2), r.op_counts(3)
    for c in (cold, free):
        assert c["converts"] == 0
        assert c["flush_tlb_range"] == 1  # the mmu_gather flush; none inside the helper
    assert r.totals["cont_blocks"] == 2


def test_09_v69_splits_large_folios():
    r = run("check-09-madvise-free-cold", "v6.9")
    assert sum(c["call:split_huge_page_to_list_to_order"] for c in r.per_op) == 2
    assert r.machine.counters()["cont_blocks"] == 0
    assert not r.calls("clear_young_dirty_ptes")


@pytest.mark.parametrize("kernel", ("v6.9", "v6.19"))
def test_10_reclaim_aging_per_pte_calls_one_flush_per_block(kernel):
    r = run("check-10-reclaim-young", kernel)
    aging = r.op_counts(2)
    assert aging["call:ptep_clear_flush_young"] == 64
    assert aging["flush_tlb_range"] == 4  # the first call of each block flushes it, once
    assert all(ev[6] is False for ev in r.events if ev[0] == "flush_tlb_range")  # no-sync
    assert aging["converts"] == 0
    assert r.totals["cont_blocks"] == 4


def test_10_reclaim_aging_batched_in_v70():
    r = run("check-10-reclaim-young", "v7.0")
    assert r.nrs("clear_flush_young_ptes") == [16, 16, 16, 16]
    aging = r.op_counts(2)
    assert aging["flush_tlb_range"] == 4 and aging["converts"] == 0
    # every entry is old afterwards, still CONT
    p = r.machine.current
    start, size = p.regions["buf"]
    assert all(not p.mm.pt.get(start + i * 4096) & (1 << 10) for i in range(size // 4096))


@pytest.mark.parametrize("kernel,cpu,tlbi", [("v6.9", "neoverse-n1", 16), ("v7.0", "neoverse-v3", 0)])
def test_11_migration_unfolds_then_refolds(kernel, cpu, tlbi):
    r = run("check-11-migrate-64k", kernel, cpu)
    mig = r.op_counts(2)
    assert mig["call:ptep_clear_flush"] == 16
    assert (mig["unfolds"], mig["folds"], mig["converts"]) == (1, 1, 2)
    restores = r.nrs("set_ptes")[-32:]
    assert restores == [1] * 32  # 16 migration entries, then 16 restores
    assert r.totals["cont_blocks"] == 1
    # the refold's break-before-make flush is elided on a BBML2_NOABORT CPU (v6.17+)
    fold_at = max(i for i, ev in enumerate(r.events) if ev[0] == "convert")
    fold_flushes = [ev for ev in r.events[fold_at:] if ev[0] == "tlbi"]
    assert len(fold_flushes) == tlbi


@pytest.mark.parametrize("kernel", ("v6.17", "v7.0"))
def test_12_numa_paints_cont_on_protnone_then_refolds(kernel):
    r = run("check-12-numa-hint", kernel)
    prot = r.op_counts(2)
    assert prot["converts"] == 0 and r.nrs("modify_prot_commit_ptes") == [16]
    m = r.machine
    # after the protection pass the entries are invalid but carry CONT
    fault = r.op_counts(3)
    assert fault["page_faults"] == 1 and fault["call:ptep_modify_prot_start"] == 16
    assert (fault["folds"], fault["converts"]) == (1, 1)
    assert m.counters()["cont_blocks"] == 1


def test_12_numa_protnone_entries_carry_cont():
    text = "mthp 64K=always\nmmap buf 64K\ntouch buf write\nnuma buf\n"
    r = run(text, "v7.0")
    p = r.machine.current
    start = p.regions["buf"][0]
    ptes = [p.mm.pt.get(start + i * 4096) for i in range(16)]
    assert all(not e & 1 and e & (1 << 52) for e in ptes)
    assert all(r.machine.layout.pte_protnone(e) for e in ptes)


def test_12_v69_one_fault_per_page_and_the_16th_refolds():
    r = run("check-12-numa-hint", "v6.9")
    prot = r.op_counts(2)
    assert prot["converts"] == 1  # ptep_modify_prot_start unfolds on the first entry
    fault = r.op_counts(3)
    assert fault["page_faults"] == 16 and fault["folds"] == 1


@pytest.mark.parametrize("kernel", ("v6.9", "v6.17"))
def test_13_file_write_faults_fold_on_the_16th(kernel):
    r = run("check-13-file-write-faults", kernel)
    w = r.op_counts(2)
    assert w["page_faults"] == 16
    assert r.nrs("set_ptes")[-16:] == [1] * 16
    assert (w["folds"], w["converts"]) == (1, 1)


def test_13_whole_folio_file_fault_never_converts():
    r = run("check-13-file-write-faults", "v7.0")
    w = r.op_counts(2)
    assert w["page_faults"] == 1 and w["converts"] == 0
    assert r.nrs("set_ptes")[-1] == 32  # the 128K folio readahead built, in one go
    assert r.totals["cont_blocks"] == 2


@pytest.mark.parametrize("kernel", ("v6.9", "v7.0"))
def test_14_lockless_reader_retries_across_a_racing_convert(kernel):
    r = run("check-14-lockless-race", kernel)
    warns = [ev for ev in r.events if ev[0] == "warn" and "retrying" in ev[1]]
    assert len(warns) == 1
    gup = r.op_counts(2)
    assert gup["call:contpte_ptep_get_lockless"] == 1 and gup["converts"] == 1
    got = [ev for ev in r.events if ev[0] == "ret" and ev[1] == "ptep_get_lockless"][-1][2]
    assert got & 1 and not got & (1 << 52)  # the consistent (unfolded) value


@pytest.mark.parametrize("kernel", ("v6.10", "v6.19"))
def test_15_smmu_fault_on_clean_sibling_loops_before_the_fix(kernel):
    r = run("check-15-smmu-no-httu", kernel)
    smmu = r.op_counts(4)
    loops = [ev for ev in r.events if ev[0] == "invariant_violation" and ev[1] == "fault-loop"]
    assert len(loops) == 1
    assert smmu["call:ptep_set_access_flags"] > 1
    assert [ev for ev in r.events if ev[0] == "ret" and ev[1] == "contpte_ptep_set_access_flags"][-1][2] == 0


def test_15_fixed_in_v70():
    r = run("check-15-smmu-no-httu", "v7.0")
    smmu = r.op_counts(4)
    assert smmu["page_faults"] == 1 and smmu["invariant_violations"] == 0
    assert smmu["call:ptep_set_access_flags"] == 1
    p = r.machine.current
    start = p.regions["buf"][0]
    # every entry of the block got the access flag and the dirty state
    assert all(p.mm.pt.get(start + i * 4096) & (1 << 10) for i in range(16))
