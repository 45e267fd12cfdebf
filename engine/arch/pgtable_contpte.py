# SPDX-License-Identifier: GPL-2.0-only
"""arch/arm64/include/asm/pgtable.h, ``#ifdef CONFIG_ARM64_CONTPTE``: the
public ptep API over contpte.c, and its inline helpers.

Each wrapper is the kernel's, for the profiles where its variant holds
(engine.arch.variants); engine.arch.layer installs it under the kernel name.
The suffix says where a version comes from:
* ``_contpte``: "arm64/mm: wire up PTE_CONT for user mappings" (4602e5757bcc,
  seed v6 12/18, merged in v6.9);
* ``_batch``: the batch overrides of seed v6 13-16/18 (wrprotect_ptes(),
  [get_and_]clear_full_ptes(), pte_batch_hint()); before them the generic
  loops of engine.arch.pgtable_generic run;
* ``_v6_10``, ``_v7_0``: clear_young_dirty_ptes() (89e86854fb0a) and the
  batched young helpers (FEATURE_HISTORY row batched_young).

Every wrapper a core-mm path calls records a call event (arch_call) even
where the kernel inlines it, so costs and the crosscheck see the API as core
mm used it; a wrapper another wrapper calls inline is called unrecorded.
"""

from __future__ import annotations

from engine.arch.base import arch_call
from engine.arch.ptlab_seams import FoldPolicySeam
from engine.arch.variants import variant
from engine.pte import PTE_CONT, PTE_SPECIAL, PTE_VALID
from engine.state.mmstruct import MMStruct

_VALID_CONT = PTE_VALID | PTE_CONT


class PgtableContpte(FoldPolicySeam):
    # --- inline helpers ---------------------------------------------------------------
    # (contpte_try_unfold() is in engine.arch.contpte, which calls it too.)
    @variant("contpte_try_fold", since="auto_fold")
    def contpte_try_fold_v6_9(self, mm: MMStruct, addr: int, pte: int) -> None:
        """contpte_try_fold() (f0c2264958e1, seed v6 18/18): try only at the last
        entry of a block, virtually and physically aligned, and never for
        special mappings (no folio)."""
        contmask = self.cont_ptes - 1
        if ((addr >> self.page_shift) & contmask) == contmask:  # valign
            if ((self.pte_pfn(pte) & contmask) == contmask  # palign
                    and pte & PTE_VALID and not pte & (PTE_CONT | PTE_SPECIAL)):
                self.contpte_try_fold_slow(mm, addr, pte)

    # ptlab-only: seed v6 12/18 .. 17/18 have no contpte_try_fold(), and their
    # set_ptes(nr == 1) does not fold. This empty stand-in lets one set_ptes()
    # serve every contpte profile, and is what a fold policy (ptlab_seams)
    # replaces on those profiles too.
    @variant("contpte_try_fold", until="auto_fold")
    def contpte_try_fold_none(self, mm: MMStruct, addr: int, pte: int) -> None:
        return None

    @variant("pte_batch_hint", since="batch_apis", requires=("contpte",))
    def pte_batch_hint_batch(self, mm: MMStruct, addr: int, pte: int) -> int:
        if (pte & _VALID_CONT) != _VALID_CONT:
            return 1
        return self.cont_ptes - ((addr >> self.page_shift) & (self.cont_ptes - 1))

    # --- getters ----------------------------------------------------------------------
    @variant("ptep_get", since="contpte")
    @arch_call("ptep_get")
    def ptep_get_contpte(self, mm: MMStruct, addr: int) -> int:
        pte = self.raw_ptep_get(mm, addr)
        if (pte & _VALID_CONT) != _VALID_CONT:
            return pte
        return self.contpte_ptep_get(mm, addr, pte)

    @variant("ptep_get_lockless", since="contpte")
    @arch_call("ptep_get_lockless")
    def ptep_get_lockless_contpte(self, mm: MMStruct, addr: int) -> int:
        pte = self.raw_ptep_get(mm, addr)
        if (pte & _VALID_CONT) != _VALID_CONT:
            return pte
        return self.contpte_ptep_get_lockless(mm, addr)

    # --- setters ----------------------------------------------------------------------
    @variant("set_pte", since="contpte")
    @arch_call("set_pte")
    def set_pte_contpte(self, mm: MMStruct, addr: int, pte: int) -> None:
        if (self.raw_ptep_get(mm, addr) & _VALID_CONT) == _VALID_CONT:
            # WARN_ON_ONCE: no mm/addr to unfold with (set_pte is not used by core mm)
            self.log.warn(f"set_pte() over a valid contiguous entry at {addr:#x}")
        self.raw_set_pte(mm, addr, pte & ~PTE_CONT)

    @variant("set_ptes", since="contpte")
    @arch_call("set_ptes")
    def set_ptes_contpte(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        if nr < 1:
            raise ValueError("set_ptes() needs nr >= 1")  # (a caller's contract, not a kernel check)
        pte &= ~PTE_CONT
        if nr == 1:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
            self.raw_set_ptes(mm, addr, pte, 1)
            self.contpte_try_fold(mm, addr, pte)
        else:
            self.contpte_set_ptes(mm, addr, pte, nr)

    # --- clearers ---------------------------------------------------------------------
    @variant("pte_clear", since="contpte")
    @arch_call("pte_clear")
    def pte_clear_contpte(self, mm: MMStruct, addr: int) -> None:
        self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
        self.raw_pte_clear(mm, addr)

    @variant("clear_full_ptes", since="batch_apis", requires=("contpte",))
    @arch_call("clear_full_ptes")
    def clear_full_ptes_batch(self, mm: MMStruct, addr: int, nr: int, full: int) -> None:
        if nr == 1:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
            self.raw_clear_full_ptes(mm, addr, 1, full)
        else:
            self.contpte_clear_full_ptes(mm, addr, nr, full)

    @variant("get_and_clear_full_ptes", since="batch_apis", requires=("contpte",))
    @arch_call("get_and_clear_full_ptes")
    def get_and_clear_full_ptes_batch(self, mm: MMStruct, addr: int, nr: int, full: int) -> int:
        if nr == 1:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
            return self.raw_get_and_clear_full_ptes(mm, addr, 1, full)
        return self.contpte_get_and_clear_full_ptes(mm, addr, nr, full)

    @variant("ptep_get_and_clear", since="contpte")
    @arch_call("ptep_get_and_clear")
    def ptep_get_and_clear_contpte(self, mm: MMStruct, addr: int) -> int:
        self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
        return self.raw_ptep_get_and_clear(mm, addr)

    # --- young ------------------------------------------------------------------------
    @variant("ptep_test_and_clear_young", since="contpte")
    @arch_call("ptep_test_and_clear_young")
    def ptep_test_and_clear_young_contpte(self, mm: MMStruct, addr: int) -> bool:
        if (self.raw_ptep_get(mm, addr) & _VALID_CONT) != _VALID_CONT:
            return self.raw_ptep_test_and_clear_young(mm, addr)
        return self.contpte_ptep_test_and_clear_young(mm, addr)

    @variant("ptep_clear_flush_young", since="contpte")
    @arch_call("ptep_clear_flush_young")
    def ptep_clear_flush_young_contpte(self, mm: MMStruct, addr: int) -> bool:
        if (self.raw_ptep_get(mm, addr) & _VALID_CONT) != _VALID_CONT:
            return self.raw_ptep_clear_flush_young(mm, addr)
        return self.contpte_ptep_clear_flush_young(mm, addr)

    def test_and_clear_young_ptes_inline(self, mm: MMStruct, addr: int, nr: int) -> bool:
        """test_and_clear_young_ptes() (v7.0) as ptep_test_and_clear_young()
        inlines it: unrecorded, the caller's call event stands for both."""
        if nr == 1 and not self.raw_ptep_get(mm, addr) & PTE_CONT:
            return self.raw_ptep_test_and_clear_young(mm, addr)
        return self.contpte_test_and_clear_young_ptes(mm, addr, nr)

    @variant("test_and_clear_young_ptes", since="batched_young", requires=("contpte",))
    @arch_call("test_and_clear_young_ptes")
    def test_and_clear_young_ptes_v7_0(self, mm: MMStruct, addr: int, nr: int) -> bool:
        return self.test_and_clear_young_ptes_inline(mm, addr, nr)

    @variant("ptep_test_and_clear_young", since="batched_young", requires=("contpte",))
    @arch_call("ptep_test_and_clear_young")
    def ptep_test_and_clear_young_v7_0(self, mm: MMStruct, addr: int) -> bool:
        return self.test_and_clear_young_ptes_inline(mm, addr, 1)

    @variant("clear_flush_young_ptes", since="batched_young", requires=("contpte",))
    @arch_call("clear_flush_young_ptes")
    def clear_flush_young_ptes_v7_0(self, mm: MMStruct, addr: int, nr: int) -> bool:
        if nr == 1 and not self.raw_ptep_get(mm, addr) & PTE_CONT:
            return self.raw_ptep_clear_flush_young(mm, addr)
        return self.contpte_clear_flush_young_ptes(mm, addr, nr)

    @variant("ptep_clear_flush_young", since="batched_young", requires=("contpte",))
    @arch_call("ptep_clear_flush_young")
    def ptep_clear_flush_young_v7_0(self, mm: MMStruct, addr: int) -> bool:
        if (self.raw_ptep_get(mm, addr) & _VALID_CONT) != _VALID_CONT:
            return self.raw_ptep_clear_flush_young(mm, addr)
        return self.contpte_clear_flush_young_ptes(mm, addr, 1)

    # --- write protect ----------------------------------------------------------------
    @variant("wrprotect_ptes", since="batch_apis", requires=("contpte",))
    @arch_call("wrprotect_ptes")
    def wrprotect_ptes_batch(self, mm: MMStruct, addr: int, nr: int) -> None:
        if nr == 1:
            # wrprotect_ptes() is only called for present entries, so only the
            # contig bit is tested, and the value read seeds the cmpxchg loop.
            orig = self.raw_ptep_get(mm, addr)
            if orig & PTE_CONT:
                self.contpte_try_unfold_slow(mm, addr, orig)
                orig &= ~PTE_CONT
            self.raw_ptep_set_wrprotect_seeded(mm, addr, orig)
        else:
            self.contpte_wrprotect_ptes(mm, addr, nr)

    @variant("ptep_set_wrprotect", since="contpte")
    @arch_call("ptep_set_wrprotect")
    def ptep_set_wrprotect_contpte(self, mm: MMStruct, addr: int) -> None:
        """Seed v6 12/18: contpte_try_unfold() on a fresh read, then __ptep_set_wrprotect()."""
        self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
        self.raw_ptep_set_wrprotect(mm, addr)

    @variant("ptep_set_wrprotect", since="batch_apis", requires=("contpte",))
    @arch_call("ptep_set_wrprotect")
    def ptep_set_wrprotect_batch(self, mm: MMStruct, addr: int) -> None:
        self.wrprotect_ptes(mm, addr, 1)

    # --- access flags -----------------------------------------------------------------
    @variant("ptep_set_access_flags", since="contpte")
    @arch_call("ptep_set_access_flags")
    def ptep_set_access_flags_contpte(self, mm: MMStruct, addr: int, entry: int, dirty: int) -> int:
        orig = self.raw_ptep_get(mm, addr)
        entry &= ~PTE_CONT
        if (orig & _VALID_CONT) != _VALID_CONT:
            return self.raw_ptep_set_access_flags(mm, addr, entry, dirty)
        return self.contpte_ptep_set_access_flags(mm, addr, entry, dirty)

    @variant("clear_young_dirty_ptes", since="clear_young_dirty_ptes", requires=("contpte",))
    @arch_call("clear_young_dirty_ptes")
    def clear_young_dirty_ptes_v6_10(self, mm: MMStruct, addr: int, nr: int, flags: int) -> None:
        if nr == 1 and not self.raw_ptep_get(mm, addr) & PTE_CONT:
            self.raw_clear_young_dirty_ptes(mm, addr, nr, flags)
        else:
            self.contpte_clear_young_dirty_ptes(mm, addr, nr, flags)
