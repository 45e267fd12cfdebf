# SPDX-License-Identifier: GPL-2.0-only
"""Arch: the arm64 arch layer of one kernel profile and one CPU.

``Arch(profile, cpu, granule, folios, log)`` makes an instance of the
profile's composed class (engine.arch.layer): its public ptep API is the
``#else`` alias table of engine.arch.pgtable_nocontpte without
CONFIG_ARM64_CONTPTE, else the arm64 wrappers of engine.arch.pgtable_contpte
over contpte.c (engine.arch.contpte), with the generic fallbacks of
engine.arch.pgtable_generic wherever that profile's pgtable.h defines none,
and arch/arm64/mm/mmu.c (engine.arch.mmu). ``type(arch).LAYER`` says which
version of each kernel function the profile runs, and from which commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.arch.layer import compose
from engine.arch.mmu import Arm64Mmu
from engine.arch.ptlab_fast import FastReads
from engine.arch.variants import Variant


class Arch(Arm64Mmu, FastReads):
    """The complete arm64 arch layer for one kernel profile and CPU profile."""

    # kernel name -> Python function, for the profile (set on the composed class)
    LAYER: Mapping[str, Variant] = {}

    def __new__(cls, profile: Any, *args: Any, **kw: Any) -> Arch:
        if not cls.LAYER:
            cls = compose(cls, profile)
        return super().__new__(cls)

    # kernel name -> method name, for the entry points whose Python name differs
    KERNEL_ALIASES = {
        "__ptep_get": "raw_ptep_get",
        "__set_pte": "raw_set_pte",
        "__set_ptes": "raw_set_ptes",
        "__pte_clear": "raw_pte_clear",
        "__ptep_get_and_clear": "raw_ptep_get_and_clear",
        "__clear_full_ptes": "raw_clear_full_ptes",
        "__get_and_clear_full_ptes": "raw_get_and_clear_full_ptes",
        "__ptep_test_and_clear_young": "raw_ptep_test_and_clear_young",
        "__ptep_clear_flush_young": "raw_ptep_clear_flush_young",
        "__ptep_set_wrprotect": "raw_ptep_set_wrprotect",
        "___ptep_set_wrprotect": "raw_ptep_set_wrprotect_seeded",
        "__wrprotect_ptes": "raw_wrprotect_ptes",
        "__clear_young_dirty_ptes": "raw_clear_young_dirty_ptes",
        "__ptep_set_access_flags": "raw_ptep_set_access_flags",
        "__flush_tlb_range": "flush_tlb_range",
        "__contpte_try_fold": "contpte_try_fold_slow",
        "__contpte_try_unfold": "contpte_try_unfold_slow",
    }

    PUBLIC_API = (
        "ptep_get", "ptep_get_lockless", "set_pte", "set_ptes", "set_pte_at", "pte_clear",
        "clear_full_ptes", "get_and_clear_full_ptes", "get_and_clear_ptes", "clear_ptes",
        "ptep_get_and_clear", "ptep_get_and_clear_full", "ptep_test_and_clear_young",
        "ptep_clear_flush_young", "test_and_clear_young_ptes", "clear_flush_young_ptes",
        "wrprotect_ptes", "ptep_set_wrprotect", "ptep_set_access_flags", "clear_young_dirty_ptes",
        "pte_batch_hint", "ptep_clear_flush", "ptep_modify_prot_start", "ptep_modify_prot_commit",
        "modify_prot_start_ptes", "modify_prot_commit_ptes", "ptep_try_set",
        "flush_tlb_fix_spurious_fault",
    )

    # every contpte.c function and pgtable.h contpte helper of any profile
    CONTPTE_FUNCTIONS = (
        "contpte_convert", "__contpte_try_fold", "__contpte_try_unfold", "contpte_try_fold",
        "contpte_try_unfold", "contpte_try_unfold_partial", "contpte_align_addr_ptep",
        "contpte_ptep_get", "contpte_ptep_get_lockless", "contpte_set_ptes",
        "contpte_clear_full_ptes", "contpte_get_and_clear_full_ptes",
        "contpte_ptep_test_and_clear_young", "contpte_ptep_clear_flush_young",
        "contpte_test_and_clear_young_ptes", "contpte_clear_flush_young_ptes",
        "contpte_wrprotect_ptes", "contpte_clear_young_dirty_ptes",
        "contpte_ptep_set_access_flags",
    )

    def resolve(self, kernel_name: str) -> Callable[..., Any]:
        """The bound method for a kernel function name (``__set_ptes`` etc.)."""
        attr = self.KERNEL_ALIASES.get(kernel_name, kernel_name)
        fn: object = getattr(self, attr, None)
        if fn is None or not callable(fn) or attr.startswith("_"):
            raise AttributeError(f"no arm64 ptep entry point named {kernel_name!r}")
        return fn
