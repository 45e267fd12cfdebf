# SPDX-License-Identifier: GPL-2.0-only
"""Core-mm paths beyond the checklist: fork bookkeeping, file faults and
readahead, swap out / in, mremap, collapse, split, zap batching, exit."""

import pytest
from mmhelp import run

from engine.mm.audit import audit
from engine.pte import PTE_AF, PTE_CONT, PTE_SPECIAL, PTE_SWP_EXCLUSIVE, PTE_VALID

CONT = PTE_CONT | PTE_VALID


def _pte(r, name, off=0, proc=None):
    p = r.machine.kernel.proc(proc) if proc else r.machine.current
    return p.mm.pt.get(p.regions[name][0] + off)


def _folio(r, name, off=0, proc=None):
    return r.machine.folio_info(r.machine.arch.pte_pfn(_pte(r, name, off, proc)))


# --- fork ---------------------------------------------------------------------------

def test_fork_shares_folios_with_refcounts_mapcounts_and_exclusivity():
    r = run("mthp 64K=always\nmmap a 128K\nmmap s 64K shared\ntouch a write\ntouch s write\n"
            "fork c\n")
    f = _folio(r, "a")
    assert (f["order"], f["refcount"], f["mapcount"], f["page_mapcount"]) == (4, 32, 32, 2)
    assert not f["anon_exclusive"]
    # parent and child map the same pfn, both read-only now, the child's old
    parent, child = _pte(r, "a"), _pte(r, "a", proc="c")
    assert r.machine.arch.pte_pfn(parent) == r.machine.arch.pte_pfn(child)
    assert parent & child & CONT == CONT
    assert not child & PTE_AF and not parent & (1 << 51)  # PTE_WRITE gone
    # the shared mapping is not copied at fork (vma_needs_copy): the child refaults it
    assert _pte(r, "s", proc="c") == 0
    assert not audit(r.machine.kernel.ctx)


def test_cow_after_fork_both_sides_then_exclusive_again():
    r = run("mthp 64K=always\nmmap a 64K\ntouch a write\nfork c\nswitch c\ntouch a +0 4K write\n"
            "exit\ntouch a +4K 4K write\n", "v7.0")
    f = _folio(r, "a", 8192)
    # the child's copy is gone; the parent now reuses the large folio
    assert f["refcount"] == 16 and f["mapcount"] == 16
    assert _folio(r, "a", 4096)["anon_exclusive"]
    assert not audit(r.machine.kernel.ctx)


def test_fork_of_swap_entries_duplicates_them_and_drops_exclusive():
    r = run("mthp 64K=always\nmmap a 64K\ntouch a write\nmadvise a pageout\nfork c\n")
    parent, child = _pte(r, "a"), _pte(r, "a", proc="c")
    assert parent == child and parent and not parent & PTE_VALID
    assert not parent & PTE_SWP_EXCLUSIVE
    k = r.machine.kernel
    slot = r.machine.layout.swp_offset(parent)
    assert k.swap.count[slot] == 2
    assert not audit(k.ctx)


# --- file faults --------------------------------------------------------------------

def _folio_orders(r, name):
    f = r.machine.kernel.pc.by_name(name)
    orders, last = [], -1
    for i in range(f.npages):
        h = f.cache[i] - 1
        if h != last:
            last = h
            orders.append(r.machine.folios.order_of(h))
    return orders


def test_readahead_grows_folio_orders_before_v6_16():
    # page_cache_ra_order(ractl, ra, new_order) of 6.12: every call reads at the caller's order + 2
    orders = _folio_orders(run("kernel v6.12\nmmap f 2M file\nread f\n"), "f")
    assert orders[:8] == [2] * 8  # the first 128K window: order 0 + 2
    assert orders[8:10] == [4] * 2  # the next window: 64K folios
    assert set(orders[10:]) == {5}  # then capped by the 128K readahead window


def test_readahead_keeps_its_order_in_file_ra_state_since_v6_16():
    # mm/readahead.c of 7.3: page_cache_sync_ra() opens an order-0 window (ra->order = 0),
    # each page_cache_async_ra() adds 2 (and page_cache_ra_order() caps it at ilog2(size))
    orders = _folio_orders(run("kernel v7.3\nmmap f 2M file\nread f\n"), "f")
    assert orders[:32] == [0] * 32  # the first 128K window: order 0
    assert orders[32:40] == [2] * 8  # the first asynchronous window: 16K folios
    assert orders[40:42] == [4] * 2  # then 64K folios
    assert set(orders[42:]) == {5}  # then capped by the 128K readahead window


@pytest.mark.parametrize("kernel,nr", [("v6.9", [16]), ("v7.0", [32])])
def test_read_fault_around_maps_cached_folios(kernel, nr):
    r = run("mmap f 1M file\nread f\nmmap m 1M r file=f\ntouch m +512K 4K read\n", kernel)
    # v6.9: the 64K fault-around window; v6.18+: the whole 128K folio
    assert r.nrs("set_ptes") == nr
    assert r.totals["cont_blocks"] == nr[0] // 16


def test_prefaulted_entries_are_old_on_cpus_with_hardware_af():
    r = run("mmap f 1M file\nread f\nmmap m 1M r file=f\ntouch m +516K 4K read\n", "v6.9")
    p = r.machine.current
    base = p.regions["m"][0] + (512 << 10)
    young = [bool(p.mm.pt.get(base + i * 4096) & PTE_AF) for i in range(16)]
    # one run containing the fault is young; fault-around made it one set_pte_range
    assert young == [True] * 16
    r2 = run("mmap f 1M file\nread f\nmmap m 1M r file=f\ntouch m +600K 4K read\n"
             "touch m +516K 4K read\n", "v6.9")
    p2 = r2.machine.current
    assert p2.mm.pt.get(p2.regions["m"][0] + (512 << 10)) & PTE_AF


def test_private_file_write_fault_copies_into_anon():
    r = run("mmap f 64K file\nread f\nmmap m 64K rw file=f private\ntouch m +0 4K write\n")
    f = _folio(r, "m")
    assert f["anon"] and f["order"] == 0 and f["anon_exclusive"]
    assert r.op_counts(3)["mm_copy_page"] == 1


def test_shared_file_zap_marks_folios_dirty_and_flushes_before_rmap():
    r = run("mmap f 256K file shared\ntouch f write\nmunmap f\n", "v7.0")
    k = r.machine.kernel
    f = k.pc.by_name("f")
    assert all(r.machine.folio_info(f.cache[i] - 1)["flags"].count("dirty") for i in range(0, 64, 16))
    unmap = r.op_counts(2)
    assert unmap["call:get_and_clear_full_ptes"] > 0 and unmap["call:clear_full_ptes"] == 0
    assert unmap["call:tlb_flush"] >= 1


# --- zap batching ---------------------------------------------------------------------

def test_mmu_gather_flushes_when_its_page_batch_fills():
    r = run("thp never\nmmap a 64M\ntouch a write\nmunmap a\n")
    unmap = r.op_counts(2)
    # 16384 order-0 pages, one batch slot each: 8 + 19 * 510 slots per flush
    assert unmap["flush_tlb_range"] == 2
    assert unmap["mm:folio_free"] == 16384


def test_exit_frees_everything_and_flushes_the_asid():
    r = run("mthp 64K=always\nmmap a 1M\ntouch a write\nfork c\nswitch c\nexit\nexit\n")
    k = r.machine.kernel
    assert k.pm.buddy.free_pages() == k.pm.npages - 1  # only the zero page
    assert r.machine.current is None
    assert r.op_counts(4)["call:flush_tlb_mm"] == 1  # page tables freed: full-mm flush


# --- swap ---------------------------------------------------------------------------

@pytest.mark.parametrize("kernel,swapped_whole", [("v6.9", False), ("v7.0", True)])
def test_pageout_swaps_mthp_whole_from_v610(kernel, swapped_whole):
    r = run("mthp 64K=always\nmmap a 64K\ntouch a write\nmadvise a pageout\n", kernel)
    po = r.op_counts(2)
    assert (po["call:split_huge_page_to_list_to_order"] == 0) == swapped_whole
    assert po["mm:reclaimed"] == (1 if swapped_whole else 16)
    assert all(not _pte(r, "a", i * 4096) & PTE_VALID for i in range(16))


@pytest.mark.parametrize("kernel, order, hw", [("v6.10", 0, 0), ("v6.12", 4, 1), ("v7.3", 4, 1)])
def test_swap_in_order_and_exclusivity(kernel, order, hw):
    """Before v6.12 a swap-in reads one page; from v6.12 a synchronous device
    (zram) gives back the whole 64K run of swap entries at once
    (alloc_swap_folio(), checked by ptlab crosscheck on Debian's 6.12)."""
    r = run("mthp 64K=always\nmmap a 64K\ntouch a write\nmadvise a pageout\ntouch a +0 8K read\n"
            "touch a +0 4K write\n", kernel)
    assert _folio(r, "a")["order"] == order and _folio(r, "a")["anon_exclusive"]
    wr = r.op_counts(4)
    # an exclusive swap entry is mapped writable at once: the write needs no fault;
    # the CPU's DBM marks it dirty where pte_mkwrite() keeps it clean (v6.12.y, v6.18+)
    assert wr["page_faults"] == 0 and wr["hw_update"] == hw
    assert not audit(r.machine.kernel.ctx)


def test_lazyfree_is_discarded_unless_written_again():
    r = run("mthp 64K=always\nmmap a 128K\ntouch a write\nmadvise a free\ntouch a +64K 4K write\n"
            "madvise a pageout\n", "v7.0")
    po = r.op_counts(4)
    assert po["mm:reclaimed"] == 1  # the clean lazyfree folio is discarded
    assert _pte(r, "a", 65536) & PTE_VALID  # the redirtied one is mapped back
    assert r.nrs("set_ptes")[-1] == 16  # restored in one batch: CONT again


# --- mremap -------------------------------------------------------------------------

@pytest.mark.parametrize("kernel,converts", [("v6.9", 4), ("v7.0", 0)])
def test_mremap_moves_blocks(kernel, converts):
    r = run("mthp 64K=always\nmmap a 128K at 0x7f0000000000\ntouch a write\n"
            "mremap a 0x7f0000100000\n", kernel)
    mv = r.op_counts(2)
    assert mv["converts"] == converts  # per pte: unfold at the source, refold at the target
    assert r.totals["cont_blocks"] == 2
    assert r.machine.current.regions["a"][0] == 0x7F0000100000


def test_mremap_to_a_misaligned_address_cannot_keep_cont():
    r = run("mthp 64K=always\nmmap a 64K at 0x7f0000000000\ntouch a write\n"
            "mremap a 0x7f0000101000\n", "v7.0")
    assert r.totals["cont_blocks"] == 0
    assert not audit(r.machine.kernel.ctx)


def test_mremap_of_a_whole_pmd_moves_the_table():
    r = run("mthp 64K=always\nmmap a 2M at 0x7f0000000000\ntouch a write\n"
            "mremap a 0x7f0000400000\n", "v6.9")
    mv = r.op_counts(2)
    assert mv["call:move_normal_pmd"] == 1 and mv["pte_writes"] == 0
    assert r.totals["cont_blocks"] == 32


# --- THP: PMD mappings, split, collapse ------------------------------------------------

def test_pmd_thp_fault_read_gets_the_huge_zero_page():
    r = run("mthp 2M=always\nmmap a 4M\ntouch a +0 4K read\ntouch a +2M 4K write\n")
    k = r.machine.kernel
    p = r.machine.current
    base = p.regions["a"][0]
    assert r.machine.arch.pte_pfn(p.mm.pt.get_pmd(base)) == k.pm.huge_zero_pfn
    assert r.machine.folio_info(r.machine.arch.pte_pfn(p.mm.pt.get_pmd(base + (2 << 20))))["order"] == 9


def test_write_after_huge_zero_read_splits_to_zero_ptes():
    # before v6.13; from then on do_huge_zero_wp_pmd() maps a new THP instead (row
    # huge_zero_wp_thp, tests/test_crosscheck_findings.py)
    src = "mthp 2M=always\nmmap a 2M\ntouch a +0 4K read\ntouch a +4K 4K write\n"
    r = run(src, "v6.12")
    p = r.machine.current
    base = p.regions["a"][0]
    assert p.mm.pt.get(base) & PTE_SPECIAL
    assert not p.mm.pt.get(base + 4096) & PTE_SPECIAL
    assert r.nrs("set_ptes").count(1) >= 512
    r = run(src, "v7.3")
    assert not r.nrs("set_ptes") and r.machine.current.mm.pt.get_pmd(base)


@pytest.mark.parametrize("order,cont", [(4, 32), (2, 0)])
def test_split_to_order_refolds_only_what_a_new_folio_covers(order, cont):
    r = run(f"mthp 2M=always\nmmap a 2M\ntouch a write\nsplit a pmd\nsplit a +0 {order}\n", "v7.0")
    sp = r.op_counts(3)
    assert sp["unfolds"] == 32  # every block unfolds on its first migration entry
    assert sp["folds"] == cont
    assert _folio(r, "a")["order"] == order
    assert not audit(r.machine.kernel.ctx)


def test_partial_munmap_queues_deferred_split_and_reclaim_splits():
    r = run("mthp 64K=always\nmmap a 64K\ntouch a write\nmunmap a +0 16K\nreclaim\n")
    k = r.machine.kernel
    assert r.op_counts(2)["mm:deferred_split_queue"] == 1
    assert r.op_counts(3)["call:deferred_split_scan"] == 1
    assert r.op_counts(3)["call:split_huge_page_to_list_to_order"] == 1
    assert not k.pm.deferred
    assert not audit(k.ctx)


@pytest.mark.parametrize("kernel", ["v6.9", "v7.0"])
def test_collapse_maps_a_pmd(kernel):
    r = run("mthp 64K=always\nmmap a 2M\ntouch a +0 1M write\ncollapse a +0\n", kernel)
    co = r.op_counts(2)
    p = r.machine.current
    assert p.mm.pt.get_pmd(p.regions["a"][0])
    assert co["mm_copy_page"] == 256 and co["mm_zero_page"] == 256
    if kernel == "v7.0":
        assert r.nrs("clear_full_ptes") == [16] * 16  # clear_ptes(): one call per 64K folio
    else:
        assert co["call:ptep_get_and_clear"] == 256
    assert not audit(r.machine.kernel.ctx)


def test_huge_pmd_cow_after_fork_splits_and_falls_back():
    r = run("mthp 2M=always\nmmap a 2M\ntouch a write\nfork c\ntouch a +0 4K write\n")
    w = r.op_counts(3)
    assert w["call:__split_huge_pmd"] == 1 and w["call:wp_page_copy"] == 1
    assert r.nrs("set_ptes")[0] == 512
    assert not audit(r.machine.kernel.ctx)


def test_splitting_a_vma_inside_a_pmd_mapping_splits_the_pmd():
    """vma_adjust_trans_huge(): otherwise fork would copy the PMD twice."""
    r = run("mthp 2M=always\nmmap a 2M\ntouch a write\nmadvise a +4K 4K hugepage\nfork c\n")
    p = r.machine.current
    assert not p.mm.pt.get_pmd(p.regions["a"][0])
    assert r.op_counts(2)["call:__split_huge_pmd"] == 1
    f = _folio(r, "a")
    assert f["mapcount"] == 1024 and f["refcount"] == 1024
    assert not audit(r.machine.kernel.ctx)
