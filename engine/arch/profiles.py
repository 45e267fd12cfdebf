# SPDX-License-Identifier: GPL-2.0-only
"""Kernel profiles: which version of the arm64 contpte code (and of the core-mm
call patterns) the engine follows.

Every behavioural difference between profiles is a field of KernelProfile,
and FEATURE_HISTORY below is the one table that says which commit introduced
it. Releases marked "unsure" in ../shared/reference/contpte-arch-spec.md §5 are
marked the same way here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TypedDict


@dataclass(frozen=True)
class KernelProfile:
    name: str
    description: str
    # --- arch layer --------------------------------------------------------------------
    contpte: bool = True  # CONFIG_ARM64_CONTPTE wrappers and contpte.c
    batch_apis: bool = True  # arm64 wrprotect_ptes/[get_and_]clear_full_ptes overrides, pte_batch_hint
    always_inline: bool = True  # ptep wrappers __always_inline (cost model only)
    auto_fold: bool = True  # contpte_try_fold() from set_ptes(nr == 1)
    layout: str = "v6.9"  # descriptor layout, see engine.pte.LAYOUTS
    clear_young_dirty_ptes: bool = False  # clear_young_dirty_ptes() API exists
    bbml2_elision: bool = False  # contpte_convert() skips its flush on BBML2_NOABORT CPUs
    get_early_exit: bool = False  # contpte_ptep_get[_lockless] stop once young+dirty found
    tlb_limit: str = "v6.9"  # __flush_tlb_range limit: "v6.9" (pages >= MAX) or "v6.10" (>)
    flush_nosync_split: bool = True  # __flush_tlb_range = _nosync + DSB (v6 11/18)
    flush_notifier_fixed: bool = False  # range flushes notify [start, end), not [end, end)
    tlbi_repeat_at_sync: bool = False  # REPEAT_TLBI erratum: one dummy TLBI at completion
    tlbbatch_range: bool = False  # arch_tlbbatch_add_pending() takes a range (one range flush per batch)
    set_ptes_single_barrier: bool = False  # __set_ptes: kernel dsb+isb once, not per entry
    local_access_flush: bool = False  # set_access_flags flushes locally (no broadcast)
    spurious_fault_flush: bool = False  # flush_tlb_fix_spurious_fault() is a local TLBI
    raw_access_flags_check: bool = False  # set_access_flags no-op test on raw sub-entries
    batched_young: bool = False  # test_and_clear_young_ptes / clear_flush_young_ptes
    tlbf_flags_api: bool = False  # tlbf_t flush flags (no behavioural change)
    # --- the build's configuration (not a release difference) ----------------------------
    # CONFIG_ARM64_PA_BITS: 48, or 52 (Debian's arm64 builds). MAX_PHYSMEM_BITS sets
    # SWP_PFN_BITS, and so where a migration entry keeps its young and dirty bits
    # (include/linux/swapops.h SWP_MIG_YOUNG_BIT = SWP_PFN_BITS)
    pa_bits: int = 48
    # --- core mm -----------------------------------------------------------------------
    batched_fork_zap: bool = True  # folio_pte_batch in fork and zap (the seed's baseline)
    batched_mprotect: bool = False  # modify_prot_start_ptes / commit_ptes
    batched_mremap: bool = False  # move_ptes batches with get_and_clear_ptes / set_ptes
    whole_folio_file_fault: bool = False  # finish_fault / filemap map whole large folios
    batched_reclaim_young: bool = False  # folio_referenced_one uses clear_flush_young_ptes(nr)
    madvise_large_folios: bool = False  # MADV_FREE/COLD/PAGEOUT batch over large folios, no split
    mthp_swap: bool = False  # swap out mTHP whole; swap-in maps a whole swap-cache folio
    numa_large_rebuild: bool = False  # do_numa_page restores every PTE of a large folio
    reuse_large_anon: bool = False  # do_wp_page reuses an exclusive large anon folio
    batched_unmap_lazyfree: bool = False  # try_to_unmap_one batches lazyfree anon folios
    batched_unmap_file: bool = False  # try_to_unmap_one batches file folios
    ttu_sync_large_reclaim: bool = False  # shrink_folio_list unmaps large folios with TTU_SYNC
    mthp_swapin_sync: bool = False  # do_swap_page reads mTHP-sized runs from a synchronous device
    read_fault_dirty: bool = False  # set_pte_range dirties a read-fault PTE of a writable, dirty folio
    split_zeropage: bool = False  # splitting an anon folio maps its zero-filled pages to the zero page
    ra_order_state: bool = False  # readahead keeps its folio order in file_ra_state (+2 per async round)
    pvmw_lockless: bool = False  # page_vma_mapped_walk() reads unlocked entries with ptep_get_lockless()
    huge_zero_wp_thp: bool = False  # a write fault on the huge zero PMD maps a new THP (no split)
    collapse_readonly: bool = False  # MADV_COLLAPSE/khugepaged collapse ranges with no writable entry
    swapin_any_count: bool = False  # do_swap_page: alloc_swap_folio() on a sync device, any swap count
    set_ptes_valid_only: bool = False  # contpte_set_ptes() writes invalid (PROT_NONE) ptes without CONT
    set_pmd_vma_thp_disabled: bool = False  # do_set_pmd() refuses a VM_NOHUGEPAGE VMA (not sysfs)

    def summary(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# One row per behavioural change: (field, value it takes, first profile, commit, note).
# Releases were checked against pull requests and merge logs (docs/fidelity.md
# lists the sources); the rows still marked "unsure" say why.
FEATURE_HISTORY: tuple[tuple[str, object, str, str, str], ...] = (
    ("flush_nosync_split", True, "seed-basic", "d9d8dc2bd3fb (v6 11/18, v6.9)",
     "arm64/mm: split __flush_tlb_range() to elide trailing DSB; the DSB ISH moves "
     "after the mmu notifier call"),
    ("contpte", True, "seed-basic", "4602e5757bcc (v6 12/18, v6.9)",
     "arm64/mm: wire up PTE_CONT for user mappings"),
    ("batch_apis", True, "seed-batch", "311a6cf29690, 6b1e4efb6f54, fb5451e5f72b (v6 13-16/18)",
     "wrprotect_ptes(), [get_and_]clear_full_ptes(), pte_batch_hint()"),
    ("always_inline", True, "seed-inline", "b972fc6afba0 (v6 17/18)",
     "arm64/mm: __always_inline to improve fork() perf: set_ptes, wrprotect_ptes and "
     "contpte_try_unfold go from 'static inline' to '__always_inline'"),
    ("auto_fold", True, "seed-fold", "f0c2264958e1 (v6 18/18)",
     "arm64/mm: automatically fold contpte mappings"),
    ("layout", "v6.10", "v6.10", "f0f5863a0fb0, 55564814a838, 5b32510af77b",
     "remove PTE_PROT_NONE, PTE_PRESENT_INVALID overlays PTE_NG, uffd-wp bit 58 "
     "([GIT PULL] arm64 updates for 6.10)"),
    ("tlb_limit", "v6.10", "v6.10", "73301e464a72 ([GIT PULL] arm64 updates for 6.10)",
     "arm64: tlb: allow range operation for MAX_TLBI_RANGE_PAGES (pages > MAX, not >=); "
     "Will Deacon's later 'simplify __flush_tlb_range_limit_excess()' is behaviour-neutral"),
    ("clear_young_dirty_ptes", True, "v6.10", "89e86854fb0a (+ out-of-bounds fix, v6.10-rc)",
     "mm/arm64: override clear_young_dirty_ptes() batch helper"),
    ("layout", "v6.12", "v6.12", "6580a36dd75a (arm64 updates for 6.12); 143937ca51cc backported "
     "to 6.12.y (in Debian's 6.12.117, confirmed by ptlab crosscheck)",
     "pte_modify() also replaces PTE_PO_IDX (POE); PTE_DEVMAP (bit 57) still exists; "
     "pte_mkwrite() keeps a clean entry read-only (the v6.18 fix, as the 6.12 stable series has it)"),
    ("layout", "v6.17", "v6.17", "'mm: remove devmap related functions and page table bits' "
     "(MM updates for 6.17-rc1)", "PTE_DEVMAP (bit 57) removed"),
    ("flush_notifier_fixed", True, "v6.17", "f7edb07ad7c6 (arm64 fixes, v6.14-rc7)",
     "fix mmu notifiers for range-based invalidates: __flush_tlb_range_op() no longer "
     "advances its 'start' argument, so the notifier gets [start, end)"),
    ("set_ptes_single_barrier", True, "v6.17", "f89b399e8d6e ([GIT PULL] arm64 updates for 6.16)",
     "arm64/mm: hoist barriers out of set_ptes_anysz() loop"),
    ("bbml2_elision", True, "v6.17", "83bbd6be7d17 ([GIT PULL] arm64 updates for 6.17)",
     "arm64/mm: elide tlbi in contpte_convert() under BBML2"),
    ("get_early_exit", True, "v6.17", "093ae7a033cf ([GIT PULL] arm64 updates for 6.17)",
     "arm64/mm: optimize loop to reduce redundant operations of contpte_ptep_get"),
    ("batched_mprotect", True, "v6.17", "'Optimize mprotect() for large folios' "
     "(MM updates for 6.17-rc1, mm-stable-2025-07-30); get_and_clear_ptes()/clear_ptes() "
     "in Additional MM updates for 6.17-rc1",
     "mm: optimize mprotect() for large folios; arm64 batched modify_prot_start/commit_ptes"),
    ("batched_mremap", True, "v6.17", "'Optimize mremap() for large folios' "
     "(MM updates for 6.17-rc1)", "mm: optimize mremap() for large folios"),
    ("layout", "v6.18", "v6.19", "143937ca51cc (v6.18-rc3)",
     "arm64, mm: avoid always making PTE dirty in pte_mkwrite()"),
    ("whole_folio_file_fault", True, "v6.19", "19773df031bc, 357b92761d94 (v6.18-rc1)",
     "map the entire file folio in finish_fault() and in fault-around"),
    ("local_access_flush", True, "v6.19", "cb1fa2e99955 (v6.19; NV-Kernels PR #350 backports "
     "it 'from upstream v6.19')",
     "arm64, tlbflush: don't TLBI broadcast if page reused in write fault"),
    ("spurious_fault_flush", True, "v6.19", "cb1fa2e99955, 79301c7d605a (v6.19)",
     "same series: flush_tlb_fix_spurious_fault() becomes a local page flush"),
    ("tlbbatch_range", True, "v6.17", "2f4ab3ac10e1 (v6.15)",
     "mm: Support tlbbatch flush for a range of PTEs (Barry Song)"),
    ("tlbi_repeat_at_sync", True, "v7.0", "a8f78680ee6b (v7.0: NV-Kernels PRs #336/#337, "
     "Mark Rutland's 6.12.y backport mail 'upstream since v7.0')",
     "arm64: tlb: optimize ARM64_WORKAROUND_REPEAT_TLBI: one TLBI VALE1IS, XZR + DSB ISH "
     "after each broadcast completion instead of TLBI; DSB ISH; TLBI for every TLBI"),
    ("batched_young", True, "v7.0", "mm-new 2025-12: 12d537ad8109 / 90036944fce9 / "
     "578ad4e953db (unsure: v7.0 merge window; present in linux-mm@1ac7a0fe with the "
     "pre-tlbf_t API)",
     "arm64: mm: support batch clearing of the young flag for large folios"),
    ("batched_reclaim_young", True, "v7.0", "same series (unsure, as above)",
     "folio_referenced_one() uses clear_flush_young_ptes(nr)"),
    ("madvise_large_folios", True, "v6.10",
     "ed9f1e7f6b0a / b3ac41846e8b [hashes unsure]",
     "mm/madvise: enhance lazyfreeing with mTHP in madvise_free; mm: madvise: avoid split during "
     "MADV_PAGEOUT and MADV_COLD (Lance Yang, Barry Song)"),
    ("mthp_swap", True, "v6.10", "845982eb264b [hash unsure]",
     "mm: swap: allow storage of all mTHP orders (Ryan Roberts); swap-in of a whole swap-cache "
     "large folio (Chuanhua Han / Barry Song)"),
    ("ttu_sync_large_reclaim", True, "v6.10", "unsure release and hash (Barry Song's 'mm: vmscan: "
     "TTU_SYNC for large folios'); present in v6.12 (confirmed by ptlab crosscheck against "
     "Debian 6.12.117: two contpte_ptep_get per folio unmapped, not three)",
     "shrink_folio_list() passes TTU_SYNC for large folios: page_vma_mapped_walk() takes the "
     "PTE lock without reading the first entry"),
    ("read_fault_dirty", True, "v6.17", "unsure release: in Debian's linux-source-7.3 "
     "set_pte_range() ('else if (pte_write(entry) && folio_test_dirty(folio))'), not in 6.12's "
     "(found by ptlab crosscheck: a read fault on shmem after MADV_DONTNEED maps the page clean "
     "on 6.12)", "set_pte_range() maps a writable, already dirty folio dirty on a read fault"),
    ("mthp_swapin_sync", True, "v6.12", "'mm: support large folios swap-in for sync io devices' "
     "(Chuanhua Han, Barry Song; MM updates for 6.12, hash unsure); confirmed by ptlab crosscheck "
     "on Debian's 6.12.117 (a read after MADV_PAGEOUT maps the whole 256K folio back with "
     "contpte_set_ptes)", "do_swap_page() skips the swap cache on a synchronous device (zram) and "
     "alloc_swap_folio() reads the largest aligned mTHP run of contiguous swap entries"),
    ("set_pmd_vma_thp_disabled", True, "v6.12", "2b0f922323cc 'mm: don't install PMD mappings "
     "when THPs are disabled by the hw/process/vma' (v6.12-rc5, David Hildenbrand, Kefeng Wang; "
     "backported to the stable series); confirmed by ptlab crosscheck on Debian's 7.3.4 4K build "
     "(tests/data/crosscheck-file-faults.pts: a 2M readahead folio of an MADV_HUGEPAGE mapping "
     "is PMD-mapped, do_set_pmd() called from do_fault())",
     "do_set_pmd() refuses with VM_FAULT_FALLBACK when the VMA (VM_NOHUGEPAGE), the process "
     "(prctl) or the hardware disables THP; the sysfs 'enabled' setting is not consulted -- a "
     "PMD-sized page-cache folio is PMD-mapped whatever it says. Before it, do_set_pmd() had "
     "no such test"),
    ("split_zeropage", True, "v6.12", "'mm: remap unused subpages to shared zeropage when "
     "splitting isolated thp' (Yu Zhao, Usama Arif; MM updates for 6.12, hash unsure); confirmed "
     "by ptlab crosscheck on Debian's 6.12.117 (an untouched page of a split 256K folio comes "
     "back as the zero page)", "__split_huge_page() remaps with RMP_USE_SHARED_ZEROPAGE: "
     "remove_migration_pte() maps a zero-filled order-0 page to the shared zero page "
     "(try_to_map_unused_to_zeropage()) and the page is freed"),
    ("ra_order_state", True, "v6.17", "'mm/readahead: Store folio order in struct "
     "file_ra_state' and 'mm/filemap: Allow arch to request folio size for exec memory' (Ryan "
     "Roberts; MM updates for 6.16, hashes unsure); confirmed by ptlab crosscheck on Debian's "
     "7.3.4 16K build (page-fault3: the readahead tracepoints show order 0, 2, 3 and the "
     "window aligned to the order)", "read-around and synchronous readahead read order-0 folios "
     "(ra->order = 0), each asynchronous round adds 2 to ra->order and trims the window's end "
     "to that alignment, a VM_HUGEPAGE mapping reads 2M folios at most, an executable mapping "
     "exec_folio_order() (64K on arm64) folios"),
    ("numa_large_rebuild", True, "v6.10", "unsure hash",
     "mm: support multi-size THP numa balancing (Baolin Wang): numa_rebuild_large_mapping()"),
    ("reuse_large_anon", True, "v6.17", "unsure release (v6.15 per the series)",
     "mm: wp fault reuses exclusive large anon folios (__wp_can_reuse_large_anon_folio, "
     "David Hildenbrand)"),
    ("batched_unmap_lazyfree", True, "v6.17", "unsure release (v6.15 per the series)",
     "mm: batched unmap lazyfree large folios during reclamation (Barry Song)"),
    ("batched_unmap_file", True, "v7.0", "same series as batched_young [unsure]",
     "mm: rmap: support batched unmapping for file large folios (Baolin Wang)"),
    ("raw_access_flags_check", True, "v7.0", "97c5550b7631 (v7.0-rc, merged after "
     "io_uring-7.0-20260305; Fixes: 4602e5757bcc)",
     "arm64: contpte: fix set_access_flags() no-op check for SMMU/ATS faults"),
    ("pvmw_lockless", True, "v7.3", "between v7.0 and v7.3, commit not identified: Debian's "
     "7.0.13 reads the entry in map_pte() with ptep_get(), its 7.3.4 4K build with "
     "ptep_get_lockless() (ptlab crosscheck check-11-migrate-64k, PTLAB_XC_STACKS: "
     "page_vma_mapped_walk -> contpte_ptep_get_lockless), as linux-mm's "
     "mm/page_vma_mapped.c does",
     "page_vma_mapped_walk(): map_pte() reads the first entry of a page table with "
     "ptep_get_lockless() before taking the lock, and next_pte reads entries with "
     "ptep_get_lockless() while the lock is not held (after map_pte() found no present entry)"),
    ("huge_zero_wp_thp", True, "v6.17", "1ced09e0331f 'mm: allocate THP on hugezeropage "
     "wp-fault' (Dev Jain; v6.13 by its posting dates and its Fixes: citations, release "
     "unsure); absent from Debian's 6.12.117 (the engine agreed there), confirmed by ptlab "
     "crosscheck on 7.0.13 and 7.3.4 (random-1-215: one write fault on a read-faulted 2M "
     "mapping, a PMD-mapped THP after it)",
     "do_huge_pmd_wp_page(): a write fault on the huge zero page goes to do_huge_zero_wp_pmd(), "
     "which allocates a PMD-sized folio, clears and flushes the PMD (pmdp_huge_clear_flush()) "
     "and maps the folio (map_anon_folio_pmd()); only without a folio is the PMD split"),
    ("collapse_readonly", True, "v7.0", "release unsure, after v6.17 and by v7.0: Dev Jain's "
     "'mm: enable khugepaged anonymous collapse on non-writable regions' and 'mm: drop all "
     "references of writable and SCAN_PAGE_RO' (posted 2025-09-03, "
     "<20250903054635.19949-2-dev.jain@arm.com>); the SCAN_PAGE_RO tracepoint string "
     "'no_writable_page' is in Debian's 6.12.117 Image, not in its 7.0.13 or 7.3.4 ones; "
     "confirmed by ptlab crosscheck on 7.3.4 (random-1-141) and 7.0.13",
     "hpage_collapse_scan_pmd() (collapse_scan_pmd()) no longer fails with SCAN_PAGE_RO when "
     "no present entry is writable: MADV_COLLAPSE of a range a fork left read-only collapses"),
    ("set_ptes_valid_only", True, "v7.3", "between v7.0 and v7.3, commit not identified (not in "
     "linux-mm@28791578's arch/arm64/mm/contpte.c): Debian's 7.3.4 4K contpte_set_ptes() "
     "(0x138 bytes, 0x128 in 7.0.13) branches to __set_ptes() on 'tbz w3, #0' -- the pte's "
     "PTE_VALID bit -- right after the mm_is_user() test (its disassembly, the address from "
     "/proc/kallsyms); ptlab crosscheck random-1-92: mprotect(PROT_NONE) of 64K folios gets the "
     "same contpte_set_ptes() calls on 7.0.13 and 7.3.4, and only 7.0.13 leaves PTE_CONT set",
     "contpte_set_ptes() returns __set_ptes() for an invalid entry, as for a kernel mm: "
     "PROT_NONE (present-invalid) blocks are written without PTE_CONT"),
    ("swapin_any_count", True, "v7.3", "'mm, swap: never bypass the swap cache even for "
     "SWP_SYNCHRONOUS_IO' (Kairui Song, swap table phase II, [PATCH 03/19] posted 2025-10-29, "
     "<20251029-swap-table-p2-v1-3-3d43f3b6ec32@tencent.com>); release not identified: it may "
     "be in 7.0 already, but Debian's 7.0.13 has no zram to check it with. Its do_swap_page() "
     "is linux-mm's mm/memory.c; confirmed by ptlab crosscheck on Debian's 7.3.4 4K build "
     "(random-1-97: after a fork shares the swap entries, a read fault swaps the whole 16K "
     "folio back in with contpte_set_ptes)",
     "do_swap_page() on a SWP_SYNCHRONOUS_IO device calls alloc_swap_folio() whatever the "
     "swap count (the '__swap_count(entry) == 1' test is gone) and swapin_folio() puts the "
     "folio in the swap cache"),
    ("tlbf_flags_api", True, "v7.3", "'arm64: Refactor TLB invalidation API' was posted "
     "2026-03-02, after the v7.0 merge window (so v7.1 at the earliest, release unsure); "
     "tlbf_t is in Debian's linux-source-7.3 (arch/arm64/include/asm/tlbflush.h) and in "
     "linux-mm@28791578",
     "tlbf_t flush flags: level-3 hints on single-page flushes, no extra DSB after an "
     "over-limit flush_tlb_mm(), ptep_try_set()"),
)

class _SeedBase(TypedDict):  # (a TypedDict: each field keeps its own type through **)
    layout: str
    batched_fork_zap: bool


_SEED_BASE: _SeedBase = {"layout": "v6.9", "batched_fork_zap": True}

PROFILES: dict[str, KernelProfile] = {}


def _add(p: KernelProfile) -> KernelProfile:
    PROFILES[p.name] = p
    return p


BASELINE = _add(KernelProfile(
    name="baseline",
    description="no contpte: the seed's baseline (mm-unstable + fork/zap batching, early 2024)",
    contpte=False, batch_apis=False, always_inline=False, auto_fold=False,
    flush_nosync_split=False, **_SEED_BASE))
SEED_BASIC = _add(KernelProfile(
    name="seed-basic", description="seed v6 patches 1-12: functional contpte, no batch APIs",
    contpte=True, batch_apis=False, always_inline=False, auto_fold=False, **_SEED_BASE))
SEED_BATCH = _add(replace(SEED_BASIC, name="seed-batch",
                          description="+ patches 13-16: wrprotect_ptes, [get_and_]clear_full_ptes, "
                                      "pte_batch_hint", batch_apis=True))
SEED_INLINE = _add(replace(SEED_BATCH, name="seed-inline",
                           description="+ patch 17: __always_inline", always_inline=True))
SEED_FOLD = _add(replace(SEED_INLINE, name="seed-fold",
                         description="+ patch 18: automatic fold in set_ptes(nr == 1)",
                         auto_fold=True))
V6_9 = _add(replace(SEED_FOLD, name="v6.9", description="contpte as merged in v6.9"))
V6_10 = _add(replace(V6_9, name="v6.10",
                     description="+ clear_young_dirty_ptes, PRESENT_INVALID/uffd-wp layout",
                     layout="v6.10", clear_young_dirty_ptes=True, tlb_limit="v6.10",
                     madvise_large_folios=True, mthp_swap=True, numa_large_rebuild=True,
                     ttu_sync_large_reclaim=True))
V6_12 = _add(replace(V6_10, name="v6.12",
                     description="+ POE in pte_modify (the layout of Debian's 6.12 builds, which "
                                 "ptlab crosscheck runs)",
                     layout="v6.12", mthp_swapin_sync=True, split_zeropage=True,
                     set_pmd_vma_thp_disabled=True))
V6_17 = _add(replace(V6_12, name="v6.17",
                     description="+ BBML2_NOABORT flush elision, early-exit gather, batched "
                                 "mprotect/mremap (and v6.12-v6.16: POE, notifier-range fix, "
                                 "hoisted set_ptes barriers, devmap removal, tlbbatch ranges, "
                                 "large anon folio reuse, batched lazyfree unmap)",
                     layout="v6.17", bbml2_elision=True, get_early_exit=True,
                     flush_notifier_fixed=True, set_ptes_single_barrier=True, tlbbatch_range=True,
                     batched_mprotect=True, batched_mremap=True,
                     reuse_large_anon=True, batched_unmap_lazyfree=True, read_fault_dirty=True,
                     ra_order_state=True, huge_zero_wp_thp=True))
V6_19 = _add(replace(V6_17, name="v6.19",
                     description="+ local TLBI in set_access_flags, whole-folio file faults "
                                 "(v6.18), pte_mkwrite keeps clean entries read-only",
                     layout="v6.18", whole_folio_file_fault=True, local_access_flush=True,
                     spurious_fault_flush=True))
V7_0 = _add(replace(V6_19, name="v7.0",
                    description="+ raw-entry no-op check in set_access_flags, batched young "
                                "clearing, tlbf_t flush API",
                    raw_access_flags_check=True, batched_young=True, batched_reclaim_young=True,
                    tlbi_repeat_at_sync=True, batched_unmap_file=True, collapse_readonly=True))
V7_3 = _add(replace(V7_0, name="v7.3",
                    description="+ tlbf_t flush API, lockless page_vma_mapped_walk() reads, "
                                "contpte_set_ptes() without PTE_CONT for invalid entries, "
                                "synchronous swap-in through the swap cache whatever the swap "
                                "count (after v7.0): the newest linux-mm code, and Debian's "
                                "newest build (7.3)",
                    tlbf_flags_api=True, pvmw_lockless=True, swapin_any_count=True,
                    set_ptes_valid_only=True))

DEFAULT_KERNEL = "v7.3"


class KernelProfileError(ValueError):
    pass


def get_profile(name: str | KernelProfile | None) -> KernelProfile:
    if name is None:
        return PROFILES[DEFAULT_KERNEL]
    if isinstance(name, KernelProfile):
        return name
    key = name.strip()
    if key.startswith("contpte-"):  # the seed cover letter's own names
        key = "seed-" + key[len("contpte-"):]
    if key in PROFILES:
        return PROFILES[key]
    raise KernelProfileError(f"unknown kernel profile {name!r} (known: {', '.join(PROFILES)})")


def differences(a: KernelProfile, b: KernelProfile) -> dict[str, tuple[object, object]]:
    """Fields whose values differ between two profiles."""
    return {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in fields(a)
            if f.name not in ("name", "description") and getattr(a, f.name) != getattr(b, f.name)}
