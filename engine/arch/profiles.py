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
    tlb_limit: str = "v6.9"  # __flush_tlb_range limit check: "v6.9" or "v6.17"
    local_access_flush: bool = False  # set_access_flags flushes locally (no broadcast)
    spurious_fault_flush: bool = False  # flush_tlb_fix_spurious_fault() is a local TLBI
    raw_access_flags_check: bool = False  # set_access_flags no-op test on raw sub-entries
    batched_young: bool = False  # test_and_clear_young_ptes / clear_flush_young_ptes
    tlbf_flags_api: bool = False  # tlbf_t flush flags (no behavioural change)
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

    def summary(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# One row per behavioural change: (field, value it takes, first profile, commit, note).
FEATURE_HISTORY: tuple[tuple[str, object, str, str, str], ...] = (
    ("contpte", True, "seed-basic", "4602e5757bcc",
     "arm64/mm: wire up PTE_CONT for user mappings (v6 12/18)"),
    ("batch_apis", True, "seed-batch", "311a6cf29690, 6b1e4efb6f54, fb5451e5f72b",
     "wrprotect_ptes(), [get_and_]clear_full_ptes(), pte_batch_hint() (v6 13-16/18)"),
    ("always_inline", True, "seed-inline", "b972fc6afba0",
     "arm64/mm: __always_inline to improve fork() perf (v6 17/18)"),
    ("auto_fold", True, "seed-fold", "f0c2264958e1",
     "arm64/mm: automatically fold contpte mappings (v6 18/18)"),
    ("layout", "v6.10", "v6.10", "f0f5863a0fb0, 55564814a838, 5b32510af77b",
     "remove PTE_PROT_NONE, PTE_PRESENT_INVALID overlays PTE_NG, uffd-wp bit 58"),
    ("clear_young_dirty_ptes", True, "v6.10", "89e86854fb0a (+ out-of-bounds fix, v6.10-rc)",
     "mm/arm64: override clear_young_dirty_ptes() batch helper"),
    ("bbml2_elision", True, "v6.17", "83bbd6be7d17",
     "arm64/mm: elide tlbi in contpte_convert() under BBML2"),
    ("get_early_exit", True, "v6.17", "093ae7a033cf (arm64 for-next)",
     "arm64/mm: optimize loop to reduce redundant operations of contpte_ptep_get"),
    ("tlb_limit", "v6.17", "v6.17", "unsure release",
     "arm64: mm: simplify __flush_tlb_range_limit_excess() (Will Deacon)"),
    ("batched_mprotect", True, "v6.17", "unsure release",
     "mm: optimize mprotect() for large folios; arm64 batched modify_prot_start/commit_ptes"),
    ("batched_mremap", True, "v6.17", "unsure release", "mm: optimize mremap() for large folios"),
    ("layout", "v6.18", "v6.19", "143937ca51cc (v6.18-rc3)",
     "arm64, mm: avoid always making PTE dirty in pte_mkwrite()"),
    ("whole_folio_file_fault", True, "v6.19", "19773df031bc, 357b92761d94 (v6.18-rc1)",
     "map the entire file folio in finish_fault() and in fault-around"),
    ("local_access_flush", True, "v6.19", "unsure release",
     "arm64, tlbflush: don't TLBI broadcast if page reused in write fault"),
    ("spurious_fault_flush", True, "v6.19", "unsure release",
     "same series: flush_tlb_fix_spurious_fault() becomes a local page flush"),
    ("batched_young", True, "v7.0", "mm-new 2025-12: 12d537ad8109 / 90036944fce9 / 578ad4e953db",
     "arm64: mm: support batch clearing of the young flag for large folios"),
    ("batched_reclaim_young", True, "v7.0", "same series",
     "folio_referenced_one() uses clear_flush_young_ptes(nr)"),
    ("madvise_large_folios", True, "v6.10",
     "ed9f1e7f6b0a / b3ac41846e8b [hashes unsure]",
     "mm/madvise: enhance lazyfreeing with mTHP in madvise_free; mm: madvise: avoid split during "
     "MADV_PAGEOUT and MADV_COLD (Lance Yang, Barry Song)"),
    ("mthp_swap", True, "v6.10", "845982eb264b [hash unsure]",
     "mm: swap: allow storage of all mTHP orders (Ryan Roberts); swap-in of a whole swap-cache "
     "large folio (Chuanhua Han / Barry Song)"),
    ("numa_large_rebuild", True, "v6.10", "unsure hash",
     "mm: support multi-size THP numa balancing (Baolin Wang): numa_rebuild_large_mapping()"),
    ("reuse_large_anon", True, "v6.17", "unsure release (v6.15 per the series)",
     "mm: wp fault reuses exclusive large anon folios (__wp_can_reuse_large_anon_folio, "
     "David Hildenbrand)"),
    ("batched_unmap_lazyfree", True, "v6.17", "unsure release (v6.15 per the series)",
     "mm: batched unmap lazyfree large folios during reclamation (Barry Song)"),
    ("batched_unmap_file", True, "v7.0", "same series as batched_young [unsure]",
     "mm: rmap: support batched unmapping for file large folios (Baolin Wang)"),
    ("raw_access_flags_check", True, "v7.0", "2026-03 stable fix, Fixes: 4602e5757bcc",
     "arm64: contpte: fix set_access_flags() no-op check for SMMU/ATS faults"),
    ("tlbf_flags_api", True, "v7.0", "2026 'arm64: Refactor TLB invalidation API'",
     "tlbf_t flush flags; same invalidations"),
)

_SEED_BASE = dict(layout="v6.9", batched_fork_zap=True)

PROFILES: dict[str, KernelProfile] = {}


def _add(p: KernelProfile) -> KernelProfile:
    PROFILES[p.name] = p
    return p


BASELINE = _add(KernelProfile(
    name="baseline",
    description="no contpte: the seed's baseline (mm-unstable + fork/zap batching, early 2024)",
    contpte=False, batch_apis=False, always_inline=False, auto_fold=False, **_SEED_BASE))
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
                     layout="v6.10", clear_young_dirty_ptes=True, madvise_large_folios=True,
                     mthp_swap=True, numa_large_rebuild=True))
V6_17 = _add(replace(V6_10, name="v6.17",
                     description="+ BBML2_NOABORT flush elision, early-exit gather, batched "
                                 "mprotect/mremap", bbml2_elision=True, get_early_exit=True,
                     tlb_limit="v6.17", batched_mprotect=True, batched_mremap=True,
                     reuse_large_anon=True, batched_unmap_lazyfree=True))
V6_19 = _add(replace(V6_17, name="v6.19",
                     description="+ local TLBI in set_access_flags, whole-folio file faults "
                                 "(v6.18), pte_mkwrite keeps clean entries read-only",
                     layout="v6.18", whole_folio_file_fault=True, local_access_flush=True,
                     spurious_fault_flush=True))
V7_0 = _add(replace(V6_19, name="v7.0",
                    description="+ raw-entry no-op check in set_access_flags, batched young "
                                "clearing, tlbf_t flush API",
                    raw_access_flags_check=True, batched_young=True, batched_reclaim_young=True,
                    tlbf_flags_api=True, batched_unmap_file=True))

DEFAULT_KERNEL = "v7.0"


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
