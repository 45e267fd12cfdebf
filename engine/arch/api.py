# SPDX-License-Identifier: GPL-2.0-only
"""The public ptep API core mm calls on an Arch, as declarations.

Which function implements each name depends on the kernel profile:
engine.arch.layer installs one per name when the Arch is made (the
pgtable.h ``#else`` aliases of engine.arch.pgtable_nocontpte, the generic
fallbacks of engine.arch.pgtable_generic, the arm64 contpte wrappers of
engine.arch.pgtable_contpte, arm64's mmu.c in engine.arch.mmu). A name the
profile's kernel lacks is not installed; calling it raises MissingEntryPoint.
The arguments are the kernel's, with ``vma``/``ptep`` replaced by the mm and
the virtual address.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.arch.contpte import Contpte
from engine.state.mmstruct import MMStruct


class PtepApi(Contpte):
    # pgtable.h inline helper (contpte_try_fold() or ptlab's stand-ins)
    contpte_try_fold: Callable[[MMStruct, int, int], None]
    pte_batch_hint: Callable[[MMStruct, int, int], int]
    # getters
    ptep_get: Callable[[MMStruct, int], int]
    ptep_get_lockless: Callable[[MMStruct, int], int]
    # setters
    set_pte: Callable[[MMStruct, int, int], None]
    set_ptes: Callable[[MMStruct, int, int, int], None]
    set_pte_at: Callable[[MMStruct, int, int], None]
    # clearers
    pte_clear: Callable[[MMStruct, int], None]
    ptep_get_and_clear: Callable[[MMStruct, int], int]
    ptep_get_and_clear_full: Callable[[MMStruct, int, int], int]
    clear_full_ptes: Callable[[MMStruct, int, int, int], None]
    get_and_clear_full_ptes: Callable[[MMStruct, int, int, int], int]
    get_and_clear_ptes: Callable[[MMStruct, int, int], int]
    clear_ptes: Callable[[MMStruct, int, int], None]
    ptep_clear_flush: Callable[[MMStruct, int], int]
    # young
    ptep_test_and_clear_young: Callable[[MMStruct, int], bool]
    ptep_clear_flush_young: Callable[[MMStruct, int], bool]
    test_and_clear_young_ptes: Callable[[MMStruct, int, int], bool]
    clear_flush_young_ptes: Callable[[MMStruct, int, int], bool]
    # write protect, access flags
    wrprotect_ptes: Callable[[MMStruct, int, int], None]
    ptep_set_wrprotect: Callable[[MMStruct, int], None]
    ptep_set_access_flags: Callable[[MMStruct, int, int, int], int]
    clear_young_dirty_ptes: Callable[[MMStruct, int, int, int], None]
    flush_tlb_fix_spurious_fault: Callable[[MMStruct, int], None]
    # mprotect transactions (arch/arm64/mm/mmu.c), ptep_try_set (tlbf_t series)
    ptep_modify_prot_start: Callable[[MMStruct, int], int]
    ptep_modify_prot_commit: Callable[[MMStruct, int, int, int], None]
    modify_prot_start_ptes: Callable[[MMStruct, int, int], int]
    modify_prot_commit_ptes: Callable[[MMStruct, int, int, int, int], None]
    ptep_try_set: Callable[[MMStruct, int, int], bool]
