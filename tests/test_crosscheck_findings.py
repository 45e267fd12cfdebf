# SPDX-License-Identifier: GPL-2.0-only
"""Regression tests for what `ptlab crosscheck` found against Debian's real
kernels (docs/fidelity.md, "Checked against the real kernel"), engine-only so
they run without QEMU. Each names the kernel function it follows."""

from __future__ import annotations

from dataclasses import replace

from mmhelp import run

from engine.arch.profiles import get_profile
from engine.pte import PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_VALID

BUF = 0xFFFFF7FF0000  # the first 64K mapping's address (top-down below mmap_base)


def _pte(r, addr: int) -> int:
    return r.machine.kernel.procs[0].mm.pt.get(addr)


def test_do_wp_page_reads_the_entry_for_userfaultfd_pte_wp():
    """mm/memory.c do_wp_page(): userfaultfd_pte_wp(vma, ptep_get(vmf->pte)) -- a CoW
    write fault on a folded block reads the entry three times before unfolding it
    (handle_pte_fault, do_wp_page, wp_page_copy), as the 6.12 trace showed."""
    r = run("mthp 64K=always\nmmap buf 64K\ntouch buf write\nfork child\nswitch child\n"
            "touch buf +16K 4K write\n", "v6.12")
    last = r.per_op[-1]
    assert last["call:contpte_ptep_get_lockless"] == 1 and last["call:contpte_ptep_get"] == 3


def test_a_migrated_page_comes_back_old_with_52_bit_physical_addresses():
    """include/linux/swapops.h: SWP_MIG_YOUNG_BIT = SWP_PFN_BITS = PA bits - PAGE_SHIFT,
    i.e. PTE bit 52 (PTE_CONT) with 52-bit PAs on 4K pages, which set_ptes() clears
    with pte_mknoncont(): Debian's 6.12 restores migrated pages old."""
    src = "mthp 64K=always\nmmap buf 64K\ntouch buf write\nmigrate buf\n"
    old = run(src, replace(get_profile("v6.12"), pa_bits=52))
    young = run(src, replace(get_profile("v6.12"), pa_bits=48))
    assert not _pte(old, BUF) & PTE_AF and _pte(young, BUF) & PTE_AF
    assert _pte(old, BUF) & PTE_CONT  # refolded all the same


def test_no_thp_swap_without_4k_pages_and_tails_reclaimed_last_first():
    """arch/arm64/Kconfig: ARCH_WANTS_THP_SWAP if ARM64_4K_PAGES; a split folio's tails
    go to folio_list and are reclaimed right after the head, last page first
    (Debian's 7.3 16K build: swap slots 1, 4, 3, 2)."""
    r = run("granule 16K\nmthp 64K=always\nmmap buf 64K\ntouch buf write\nmadvise buf pageout\n", "v7.3")
    m = r.machine
    lay = m.layout
    base = m.kernel.procs[0].regions["buf"][0]
    slots = [lay.swp_offset(_pte(r, base + i * 16384)) for i in range(4)]
    assert slots == [slots[0], slots[0] + 3, slots[0] + 2, slots[0] + 1]


def test_mprotect_to_the_same_protection_leaves_the_block_alone():
    """mm/mprotect.c mprotect_fixup(): newflags == oldflags returns at once -- no split,
    no walk, the folded block stays folded."""
    r = run("mthp 64K=always\nmmap buf 64K\ntouch buf write\nmprotect buf +0 40K rw\n", "v6.12")
    assert r.per_op[-1]["pte_writes"] == 0 and r.per_op[-1]["converts"] == 0
    assert _pte(r, BUF) & PTE_CONT and len(r.machine.kernel.procs[0].vmas) == 1


def test_pageout_leaves_a_folio_mapped_by_another_process_alone():
    """mm/madvise.c madvise_cold_or_pageout_pte_range(): a folio whose mapcount is not
    its page count is mapped elsewhere too (here: the fork's child) and is skipped."""
    r = run("mthp 64K=always\nmmap buf 64K\ntouch buf write\nfork child\nmadvise buf pageout\n", "v6.12")
    assert _pte(r, BUF) & PTE_VALID and r.per_op[-1]["pte_writes"] == 0


def test_a_read_fault_maps_a_dirty_shmem_page_clean_in_6_12_and_dirty_later():
    """mm/memory.c set_pte_range(): 'else if (pte_write(entry) && folio_test_dirty(folio))
    entry = pte_mkdirty(entry)' is in linux-source-7.3, not in 6.12's."""
    src = "mthp 64K=always\nmmap buf 64K shared\ntouch buf write\nmadvise buf dontneed\ntouch buf read\n"
    clean, dirty = run(src, "v6.12"), run(src, "v7.3")
    assert _pte(clean, BUF) & PTE_RDONLY and not _pte(clean, BUF) & PTE_DIRTY
    assert not _pte(dirty, BUF) & PTE_RDONLY


def test_split_huge_pages_looks_every_page_up():
    """mm/huge_memory.c split_huge_pages_pid(): folio_walk_start() reads the entry at
    each address before splitting the folio found there."""
    from engine.scenario import parse
    from engine.scenario_machine import Machine

    scn = parse("mthp 64K=always\nmmap buf 64K\ntouch buf write\nsplit buf +16K\n", "s.pts")
    m = Machine(scn.config(kernel="v6.12"))
    ops = list(scn.ops)
    for op in ops[:-1]:
        m.apply(op)
    mark = len(m.log.buf)
    m.apply(ops[-1])
    calls = [ev for ev in m.log.buf[mark:] if ev[0] == "call" and ev[1].startswith(("contpte", "__contpte"))]
    assert calls[0][1] == "contpte_ptep_get" and calls[0][2][1] == BUF + 0x4000  # the lookup
    assert not m.kernel.procs[0].mm.pt.get(BUF) & PTE_CONT


def test_the_huge_zero_folio_is_the_zero_page_in_the_comparison():
    """A read fault under a PMD maps the huge zero folio; kpageflags reports its pages
    as ZERO_PAGE, so crosscheck.observe does too."""
    from crosscheck.observe import EngineObserver
    from crosscheck.translate import plan
    from engine.scenario import parse

    obs = EngineObserver()
    scn = parse("thp never\nmthp 2M=always\nmmap m0 2M r at 0x20400000\ntouch m0 +0 8K read\n", "z.pts")
    plan(scn, "v6.12", "qemu-max", collect=obs)
    pages = obs.ops[-1].pages
    assert pages and all(p.zero for p in pages.values())


def test_adjacent_anonymous_mmaps_merge_and_share_the_written_ones_anon_vma():
    """mm/vma.c vma_merge_new_range() / is_mergeable_anon_vma(): a private
    anonymous mmap() next to another becomes one VMA; a write to either part
    prepares the one anon_vma, so fork's vma_needs_copy() (mm/memory.c) copies
    the zero-page entries of the part only ever read (6.12, random-1-225)."""
    src = ("mthp 64K=never 2M=never\nmmap m0 64K\ntouch m0 read\nmmap m1 32K\n"
           "touch m1 write\nfork c\n")
    r = run(src, "v6.12")
    parent, child = r.machine.kernel.procs[0], r.machine.kernel.procs[1]
    assert len(parent.vmas) == 1 and parent.vmas[0].anon_vma
    m0 = parent.regions["m0"][0]
    # the shared zero page, copied old (__copy_present_ptes(): pte_mkold)
    assert child.mm.pt.get(m0) == parent.mm.pt.get(m0) & ~PTE_AF != 0
    # a different protection keeps them apart: then m0 has no anon_vma, nothing is copied
    r = run(src.replace("mmap m1 32K", "mmap m1 32K rw\nmprotect m0 +0 64K r"), "v6.12")
    child = r.machine.kernel.procs[1]
    assert len(r.machine.kernel.procs[0].vmas) == 2 and child.mm.pt.get(m0) == 0


def test_madv_collapse_of_a_range_without_a_writable_entry_fails_with_einval():
    """mm/khugepaged.c hpage_collapse_scan_pmd(): no writable present entry is
    SCAN_PAGE_RO, and no PTE table SCAN_PMD_NULL; madvise_collapse_errno() makes
    both EINVAL (6.12: random-1-103 and 5 more). One written page is enough."""
    from errno import EINVAL

    def collapse_errors(src: str) -> list[int]:
        # thp never: a read fault maps the small zero page, not the huge one
        # (MADV_COLLAPSE itself ignores the sysfs setting)
        r = run("thp never\nmmap m 2M at 0x20400000\n" + src + "collapse m +0\n", "v6.12")
        mark = [i for i, ev in enumerate(r.events) if ev[0] == "mm" and ev[1] == "mmap"][-1]
        return [ev[3] for ev in r.events[mark:] if ev[0] == "mm" and ev[1] == "syscall_error"]

    assert collapse_errors("") == [EINVAL]  # no PTE table at all
    assert collapse_errors("touch m +0 4K read\n") == [EINVAL]  # only the zero page
    assert collapse_errors("touch m +0 4K write\n") == []


def test_splitting_an_anon_folio_maps_its_untouched_pages_to_the_zero_page():
    """mm/huge_memory.c __split_huge_page(): remap_page(..., RMP_USE_SHARED_ZEROPAGE);
    mm/migrate.c try_to_map_unused_to_zeropage() maps a zero-filled page to the shared
    zero page (v6.12+; 6.12: random-1-86, random-1-14 and 7 more). Written pages keep
    their frames; before v6.12 every page is mapped back."""
    src = ("mthp 64K=always\nmmap m 64K at 0x23000000\ntouch m +0 16K write\n"
           "madvise m +60K 4K free\n")  # a part of the folio: MADV_FREE splits it
    for kernel, zero in (("v6.12", True), ("v6.9", False)):
        r = run(src, kernel)
        pm = r.machine.kernel.pm
        pt = r.machine.kernel.procs[0].mm.pt
        written = [pt.get(0x23000000 + i * 4096) for i in range(4)]
        untouched = [pt.get(0x23000000 + i * 4096) for i in range(4, 15)]
        assert all(e and not e & PTE_CONT and (e >> 12) & 0xFFFFFFFFF != pm.zero_pfn for e in written)
        assert all(((e >> 12) & 0xFFFFFFFFF == pm.zero_pfn) == zero for e in untouched), kernel


def test_migration_splits_a_pmd_frozen_without_contpte_calls():
    """mm/rmap.c try_to_migrate_one(): split_huge_pmd_address(vma, address, true, folio)
    -- __split_huge_pmd_locked() with freeze writes migration entries with set_pte_at(),
    never a contiguous PTE mapping (6.12: random-1-173, debugfs split of a PMD-mapped
    THP made no contpte call)."""
    r = run("thp always\nmmap m 2M at 0x20000000\ntouch m write\nsplit m +0\n", "v6.12")
    last = r.per_op[-1]
    assert not any(k.startswith("call:contpte_") and k != "call:contpte_ptep_get" and v
                   for k, v in last.items()), {k: v for k, v in last.items() if "contpte" in k}
    assert last.get("converts", 0) == 0


def test_an_anon_vma_moved_by_mremap_still_gets_mthp_folios():
    """include/linux/huge_mm.h thp_vma_suitable_order(): "Don't have to check pgoff
    for anonymous vma" -- after mremap() the VMA keeps its old, unaligned vm_pgoff
    and still faults 32K folios (6.12: random-1-288)."""
    r = run("mthp 32K=always\nmmap m 512K at 0x21401000\nmremap m 0x23000000\n"
            "touch m +320K 68K write\n", "v6.12")
    assert r.per_op[-1]["call:contpte_set_ptes"] >= 2


def test_madv_free_of_part_of_a_pmd_thp_splits_it_and_of_all_of_it_makes_it_lazyfree():
    """mm/huge_memory.c madvise_free_huge_pmd(): a PMD only partly in the range is split
    with split_folio() -- its untouched pages become the zero page (6.12: random-1-47) --
    and a whole one stays PMD-mapped, old and clean, its folio lazyfree."""
    from engine.mm.physmem import F_SWAPBACKED

    base = "thp always\nmmap m 2M at 0x20000000\ntouch m +64K 356K write\n"
    r = run(base + "madvise m +420K 112K free\n", "v6.12")
    pt = r.machine.kernel.procs[0].mm.pt
    pm = r.machine.kernel.pm
    assert not pt.get_pmd(0x20000000)
    assert (pt.get(0x20000000) >> 12) & 0xFFFFFFFFF == pm.zero_pfn  # never written
    assert (pt.get(0x20010000) >> 12) & 0xFFFFFFFFF != pm.zero_pfn  # written
    r = run(base + "madvise m free\n", "v6.12")
    pt = r.machine.kernel.procs[0].mm.pt
    pmd = pt.get_pmd(0x20000000)
    assert pmd and not pmd & PTE_AF and pmd & PTE_RDONLY  # old and clean (DBM keeps it writable)
    assert not r.machine.kernel.pm.test((pmd >> 12) & 0xFFFFFFFFF, F_SWAPBACKED)  # lazyfree


def test_madv_pageout_leaves_a_pmd_thp_a_fork_shares_alone():
    """mm/madvise.c madvise_cold_or_pageout_pte_range(): folio_likely_mapped_shared() of
    a PMD-mapped folio counts the child's PMD mapping too -- the range is skipped, the
    PMD stays (6.12: random-1-141, random-1-239; the engine used to see PTE mappings only)."""
    r = run("thp always\nmmap m 2M at 0x23c00000\ntouch m write\nfork c\n"
            "madvise m +1344K 176K pageout\n", "v6.12")
    assert r.machine.kernel.procs[0].mm.pt.get_pmd(0x23c00000)
    assert r.machine.kernel.procs[1].mm.pt.get_pmd(0x23c00000)


def _present(r, name: str) -> list[int]:
    """Page indices of mapping ``name`` that have a present PTE."""
    m = r.machine
    start, size = m.kernel.procs[0].regions[name][:2]
    ps = m.g.page_size
    return [i for i in range(size // ps) if _pte(r, start + i * ps) & PTE_VALID]


def test_a_read_fault_that_reads_the_file_in_is_retried_and_faults_around():
    """mm/filemap.c filemap_fault(): reading the page in drops the lock
    (maybe_unlock_mmap_for_io()) and returns VM_FAULT_RETRY; arch/arm64/mm/fault.c
    do_page_fault() retries with FAULT_FLAG_TRIED, and do_read_fault()'s fault-around
    now maps the 64K around the page -- all but the PG_readahead folio (the 6.12
    trace: handle_mm_fault twice at one address, then three contpte_set_ptes)."""
    r = run("mmap c 1M file\ntouch c +512K 4K read\n", "v6.12")
    # read-around: pages 112-143 in order-2 folios, PG_readahead on 136 (mark 112 + 32 - 8)
    assert _present(r, "c") == list(range(128, 136)) + list(range(140, 144))
    assert r.per_op[-1]["call:handle_mm_fault"] == 2


def test_a_second_smaller_mapping_of_a_file_does_not_truncate_it():
    """The guest's make_file() only grows a file (crosscheck/runtime.c); the engine's
    files only grow: mapping 2M of a 4M file leaves the first mapping's pages."""
    r = run("mmap a 4M file\ntouch a +3M 64K write\nmmap b 2M file=a shared\n", "v6.12")
    assert len(_present(r, "a")) == 16


def test_readahead_since_v6_16_starts_order_0_and_adds_2_per_asynchronous_round():
    """mm/readahead.c (7.3) page_cache_async_ra(): ra->order += 2, the window's end
    trimmed to that order; page_cache_ra_order() caps it at ilog2(size): the 7.3
    16K build's readahead tracepoints on page-fault3 show order 0, 2, then 3."""
    r = run("granule 16K\nmmap f 16M file shared\ntouch f write\n", "v7.3")
    f = r.machine.kernel.pc.by_name("f")
    orders = []
    i = 0
    while i < f.npages:
        o = r.machine.folios.order_of(f.cache[i] - 1)
        orders.append(o)
        i += 1 << o
    assert orders[:8] == [0] * 8 and orders[8:10] == [2, 2] and set(orders[10:]) == {3}
    assert len(orders) == 136  # the kernel's 136 faults: one per folio (whole-folio finish_fault)
    v612 = run("granule 16K\nmmap f 16M file shared\ntouch f write\n", "v6.12")
    g = v612.machine.kernel.pc.by_name("f")
    assert v612.machine.folios.order_of(g.cache[0] - 1) == 2  # before v6.16: order 0 + 2 at once


def test_the_guest_reads_ahead_through_the_engines_window():
    """block/blk-settings.c blk_apply_bdi_limits() (7.x): a rotational device without
    io_opt (QEMU's virtio-blk) reads ahead twice max_sectors (8 MiB on the 16K build);
    the crosscheck writes the engine's read_ahead_kb into the guest instead."""
    from crosscheck.translate import plan
    from engine.scenario import parse

    p = plan(parse("mmap f 1M file\ntouch f read\n", "t"), "v7.3", "qemu-max", "16K")
    assert ("/sys/block/vda/queue/read_ahead_kb", "128") in p.defaults
    q = plan(parse("readahead 512K\nmmap f 1M file\ntouch f read\n", "t"), "v7.3", "qemu-max", "16K")
    assert ("/sys/block/vda/queue/read_ahead_kb", "512") in q.defaults
    anon = plan(parse("mmap a 1M\ntouch a write\n", "t"), "v7.3", "qemu-max", "16K")
    assert not any("read_ahead_kb" in k for k, _ in anon.defaults)


def test_page_vma_mapped_walk_reads_unlocked_entries_locklessly_since_v7():
    """mm/page_vma_mapped.c map_pte(): ptent = ptep_get_lockless(pvmw->pte) before the lock is
    taken, and next_pte reads with ptep_get_lockless() while !pvmw->ptl. Debian's 7.3.4 4K build
    shows contpte_ptep_get_lockless() from page_vma_mapped_walk() in a migration (check-11);
    its 7.0.13 build reads with ptep_get() there, as 6.12 does."""
    folded = "mthp 64K=always\nmmap buf 64K\ntouch buf write\nmigrate buf\n"
    old, new = run(folded, "v7.0").per_op[-1], run(folded, "v7.3").per_op[-1]
    assert old["call:contpte_ptep_get_lockless"] == 0 and old["call:contpte_ptep_get"] == 4
    assert new["call:contpte_ptep_get_lockless"] == 1 and new["call:contpte_ptep_get"] == 3
    # the folio's first entry zapped: map_pte() finds none and takes no lock, so the next entry
    # is read locklessly too; from there on the lock is held and ptep_get() reads
    hole = "mthp 64K=always\nmmap buf 64K\ntouch buf write\nmadvise buf +0 4K dontneed\nmigrate buf\n"
    assert run(hole, "v7.3").per_op[-1]["call:ptep_get_lockless"] == 2
    assert run(hole, "v7.0").per_op[-1]["call:ptep_get_lockless"] == 0


def test_madv_collapse_of_a_range_a_fork_left_read_only_collapses_since_v7():
    """mm/khugepaged.c hpage_collapse_scan_pmd() (collapse_scan_pmd()): the SCAN_PAGE_RO test is
    gone ('mm: drop all references of writable and SCAN_PAGE_RO'; its tracepoint string is in
    Debian's 6.12.117 Image, not in 7.0.13's or 7.3.4's). After fork and exit the parent's
    entries stay read-only: 6.12 fails with EINVAL, 7.0 and 7.3 collapse (random-1-141)."""
    from errno import EINVAL

    from engine.pte import PTE_WRITE

    src = ("thp never\nmthp 16K=never\nmmap m 2M at 0x20400000\ntouch m +404K 88K write\n"
           "fork c\nexit c\ncollapse m +0\n")
    for kernel, errors in (("v6.12", [EINVAL]), ("v7.0", []), ("v7.3", [])):
        r = run(src, kernel)
        assert [ev[3] for ev in r.events if ev[0] == "mm" and ev[1] == "syscall_error"] == errors
        pmd = r.machine.kernel.procs[0].mm.pt.get_pmd(0x20400000)
        assert (pmd & PTE_WRITE != 0) == (not errors) and (pmd != 0) == (not errors)


def test_a_write_fault_on_the_huge_zero_page_maps_a_new_thp_since_v6_13():
    """mm/huge_memory.c do_huge_pmd_wp_page() -> do_huge_zero_wp_pmd() (1ced09e0331f, v6.13): a
    write fault on the huge zero PMD allocates a PMD-sized folio and maps it in its place
    (pmdp_huge_clear_flush(), map_anon_folio_pmd()); 6.12 splits the PMD into zero-page PTEs
    and then copies on write page by page (random-1-215: 1 fault on 7.0.13 and 7.3.4)."""
    from engine.pte import PTE_WRITE

    src = "mthp 16K=always 64K=always 2M=always\nmmap m0 2M\ntouch m0 +0 2M read\ntouch m0 +768K 860K write\n"
    old, new = run(src, "v6.12"), run(src, "v7.0")
    assert old.per_op[-1]["page_faults"] == 215 and new.per_op[-1]["page_faults"] == 1
    base = new.machine.kernel.procs[0].regions["m0"][0]
    pmd = new.machine.kernel.procs[0].mm.pt.get_pmd(base)
    ctx = new.machine.kernel.ctx
    assert pmd & PTE_WRITE and ctx.pte_pfn(pmd) != ctx.pm.huge_zero_pfn
    assert ctx.arch.folios.order_of(ctx.pte_pfn(pmd)) == 9
    assert old.machine.kernel.procs[0].mm.pt.get_pmd(base) == 0
    assert new.calls("do_huge_zero_wp_pmd") and not old.calls("do_huge_zero_wp_pmd")


def test_a_swap_in_reads_a_whole_mthp_run_a_fork_shares_since_v7():
    """mm/memory.c do_swap_page(): 'mm, swap: never bypass the swap cache even for
    SWP_SYNCHRONOUS_IO' dropped the `__swap_count(entry) == 1` test, so on zram
    alloc_swap_folio() reads the aligned run of swap entries as one mTHP folio even when a
    fork shares them (swapin_folio() keeps it in the swap cache for the child). Debian's
    7.3.4 4K build maps the 16K folio back with one contpte_set_ptes() (random-1-97); 6.12
    swaps in one page at a time there."""
    src = ("mthp 16K=always\nmmap buf 32K\ntouch buf +0 4K write\nmadvise buf +0 16K pageout\n"
           "fork child\ntouch buf +0 4K read\n")
    base = 0xFFFFF7FF8000  # the 32K mapping's address
    new, old = run(src, "v7.3"), run(src, "v6.12")
    for r, pages in ((new, 4), (old, 1)):
        m = r.machine
        assert m.folio_info(m.arch.pte_pfn(_pte(r, base)))["order"] == pages.bit_length() - 1
        valid = [bool(_pte(r, base + i * 4096) & PTE_VALID) for i in range(4)]
        assert valid == [True] * pages + [False] * (4 - pages)
    assert new.per_op[-1]["call:contpte_set_ptes"] == 1 and old.per_op[-1]["call:contpte_set_ptes"] == 0
    # the child still references the slots: the folio stays in the swap cache, read-only
    assert _pte(new, base) & PTE_RDONLY


def test_contpte_set_ptes_leaves_prot_none_entries_without_the_contiguous_bit_since_v7():
    """arch/arm64/mm/contpte.c contpte_set_ptes(): Debian's 7.3.4 build returns __set_ptes()
    for an invalid pte, as for a kernel mm ('tbz w3, #0' after the mm_is_user() test in its
    disassembly), so mprotect(PROT_NONE) of a 64K folio -- modify_prot_commit_ptes() ->
    set_ptes(nr = 16) -> contpte_set_ptes() -- writes the entries without PTE_CONT;
    7.0.13 sets it (random-1-92). Going back to read/write sets it again."""
    src = "mthp 64K=always\nmmap buf 64K\ntouch buf write\nmprotect buf +0 64K none\n"
    for kernel, cont in (("v7.3", 0), ("v7.0", PTE_CONT)):
        r = run(src, kernel)
        ptes = [_pte(r, BUF + i * 4096) for i in range(16)]
        assert all(p and not p & PTE_VALID and p & PTE_CONT == cont for p in ptes), kernel
        assert r.per_op[-1]["call:contpte_set_ptes"] == 1, kernel
    back = run(src + "mprotect buf +0 64K rw\n", "v7.3")
    assert all(_pte(back, BUF + i * 4096) & (PTE_VALID | PTE_CONT) == PTE_VALID | PTE_CONT for i in range(16))


def _pmd_and_ptes(r, proc: int, addr: int) -> tuple[int, int]:
    pt = r.machine.kernel.procs[proc].mm.pt
    return pt.get_pmd(addr), sum(1 for i in range(512) if pt.get(addr + i * 4096))


def test_a_2m_page_cache_folio_is_pmd_mapped_by_fault_around_whatever_thp_enabled_says():
    """mm/filemap.c filemap_map_pages() -> filemap_map_pmd() -> mm/memory.c do_set_pmd():
    the first up-to-date folio fault-around finds is mapped with one PMD when it is
    PMD-sized and no PTE table is there yet; do_set_pmd() tests the VMA's THP state, not the
    sysfs 'enabled' knob (2b0f922323cc). Debian's 7.3.4 4K build PMD-maps both 2M readahead
    folios of an MADV_HUGEPAGE file mapping (tests/data/crosscheck-file-faults.pts,
    do_set_pmd() from do_fault()); the engine used to PTE-map them, CONT."""
    src = "mmap g 8M file\nmadvise g hugepage\ntouch g +1M 2M read\n"
    g = 0xFFFFF7800000  # the 8M mapping's address
    for thp in ("", "thp never\n"):
        r = run(thp + src, "v7.3")
        for half in (g, g + 0x200000):
            pmd, ptes = _pmd_and_ptes(r, 0, half)
            assert pmd and ptes == 0, (thp, hex(half))
            ctx = r.machine.kernel.ctx
            assert ctx.arch.folios.order_of(ctx.pte_pfn(pmd)) == 9
        assert r.calls("do_set_pmd") and not r.per_op[-1]["call:contpte_set_ptes"]
        assert _pmd_and_ptes(r, 0, g + 0x400000) == (0, 0)  # not touched, not read ahead


def test_do_set_pmd_refuses_a_nohugepage_vma_since_v6_12():
    """mm/memory.c do_set_pmd(): 'if (thp_disabled_by_hw() || vma_thp_disabled(vma,
    vma->vm_flags)) return ret;' (2b0f922323cc, v6.12-rc5): a second, MADV_NOHUGEPAGE mapping
    of a file whose 2M folios are in the page cache maps them with PTEs (whole-folio
    set_ptes, so CONT); before it, do_set_pmd() PMD-mapped them there too."""
    src = ("mmap g 4M file\nmadvise g hugepage\ntouch g +0 4K read\n"
           "mmap h 4M file=g\nmadvise h nohugepage\ntouch h +0 4K read\n")
    h = 0xFFFFF7800000  # the second mapping lies below the first
    new, old = run(src, "v6.12"), run(src, "v6.10")
    assert _pmd_and_ptes(new, 0, h)[0] == 0 and _pmd_and_ptes(new, 0, h)[1] > 0
    assert _pmd_and_ptes(old, 0, h)[0] != 0 and _pmd_and_ptes(old, 0, h)[1] == 0


def test_madvise_collapse_needs_an_anon_vma_even_without_the_writable_test():
    """mm/khugepaged.c collapse_huge_page() -> hugepage_vma_revalidate(expect_anon = true):
    a VMA with no anon_vma gives SCAN_PAGE_ANON, so MADV_COLLAPSE of a range that only
    ever read-faulted (zero pages and none entries) fails with EINVAL even where the
    SCAN_PAGE_RO test is gone (collapse_readonly): Debian's 7.3.4 4K build, random-1-265.
    The folio it allocated first (alloc_charge_folio()) goes back."""
    src = ("mmap m1 2M at 0x21c00000\ntouch m1 +1548K 476K read\ncollapse m1 +0\n")
    r = run(src, "v7.3")
    assert r.calls("collapse_huge_page") and r.machine.kernel.procs[0].mm.pt.get_pmd(0x21C00000) == 0
    assert ("mm", "collapse_fail", 0x21C00000, "no anon_vma") in r.events
    assert ("mm", "syscall_error", 0x21C00000, 22) in r.events
    before = run(src.rsplit("collapse", 1)[0], "v7.3")
    assert r.machine.kernel.pm.stats() == before.machine.kernel.pm.stats()
    # with an anon_vma (a write fault elsewhere in the VMA) the zero pages collapse
    ok = run("mmap m1 4M at 0x21c00000\ntouch m1 +2M 4K write\ntouch m1 +1548K 476K read\n"
             "collapse m1 +0 2M\n", "v7.3")
    assert ok.machine.kernel.procs[0].mm.pt.get_pmd(0x21C00000)
