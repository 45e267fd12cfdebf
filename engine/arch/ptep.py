# SPDX-License-Identifier: GPL-2.0-only
"""The public ptep API: arch/arm64/include/asm/pgtable.h dispatch into
contpte.c, the generic fallbacks of include/linux/pgtable.h, and the mprotect
transaction helpers of arch/arm64/mm/mmu.c.

What the dispatch looks like depends on the kernel profile:
* ``baseline`` (no CONFIG_ARM64_CONTPTE): every public name is its raw helper;
* ``seed-basic``: contpte wrappers exist but the batch APIs do not, so the
  generic per-PTE loops of include/linux/pgtable.h run (each first touch of a
  block unfolds it);
* ``seed-batch`` and later: arm64's batched overrides;
* ``v6.10``+: clear_young_dirty_ptes(); ``v6.17``+: get_and_clear_ptes(),
  clear_ptes() and the batched modify_prot_*_ptes(); ``v7.0``:
  test_and_clear_young_ptes(), clear_flush_young_ptes(), ptep_try_set().
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.arch.base import MissingEntryPoint, arch_call
from engine.arch.contpte import Contpte
from engine.pte import PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_UXN, PTE_VALID, PTE_WRITE, pte_mkdirty
from engine.state.mmstruct import MMStruct

_VALID_CONT = PTE_VALID | PTE_CONT
_U64 = (1 << 64) - 1


class Ptep(Contpte):
    def _require(self, name: str, ok: bool, since: str) -> None:
        if not ok:
            raise MissingEntryPoint(f"{name}() does not exist in kernel profile "
                                    f"{self.profile.name!r} (added in {since})")

    # --- getters ----------------------------------------------------------------------
    @arch_call("ptep_get")
    def ptep_get(self, mm: MMStruct, addr: int) -> int:
        pte = self.raw_ptep_get(mm, addr)
        if self.profile.contpte and (pte & _VALID_CONT) == _VALID_CONT:
            return self.contpte_ptep_get(mm, addr, pte)
        return pte

    @arch_call("ptep_get_lockless")
    def ptep_get_lockless(self, mm: MMStruct, addr: int) -> int:
        pte = self.raw_ptep_get(mm, addr)
        if self.profile.contpte and (pte & _VALID_CONT) == _VALID_CONT:
            return self.contpte_ptep_get_lockless(mm, addr)
        return pte

    def none_run(self, mm: MMStruct, addr: int, max_nr: int, lockless: bool = False) -> int:
        """How many entries from addr on (at most max_nr, within addr's page
        table) are none; emits exactly what calling ptep_get() -- or
        ptep_get_lockless() -- on each of them would. For loops that read
        entries one by one until one is not none: call this first, then read
        the entry that ends the run as before."""
        pt = mm.pt
        idx = (addr >> self.page_shift) & (self.g.ptrs_per_pte - 1)
        n = min(max_nr, self.g.ptrs_per_pte - idx)
        if n <= 0:
            return 0
        t = pt.tables.get(addr >> self.g.pmd_shift)
        if t is None:
            k = n
        else:
            b = t[idx:idx + n].tobytes()
            k = (len(b) - len(b.lstrip(b"\0"))) >> 3
        if not k:
            return 0
        self.log.none_reads("ptep_get_lockless" if lockless else "ptep_get", addr, k, mm.name)
        return k

    def pte_batch_hint(self, mm: MMStruct, addr: int, pte: int) -> int:
        if not (self.profile.contpte and self.profile.batch_apis):
            return 1  # generic pte_batch_hint()
        if (pte & _VALID_CONT) != _VALID_CONT:
            return 1
        return self.cont_ptes - ((addr >> self.page_shift) & (self.cont_ptes - 1))

    # --- setters ----------------------------------------------------------------------
    @arch_call("set_pte")
    def set_pte(self, mm: MMStruct, addr: int, pte: int) -> None:
        if self.profile.contpte:
            cur = self.raw_ptep_get(mm, addr)
            if (cur & _VALID_CONT) == _VALID_CONT:
                # WARN_ON_ONCE: no mm/addr to unfold with (set_pte is not used by core mm)
                self.log.warn(f"set_pte() over a valid contiguous entry at {addr:#x}")
            pte &= ~PTE_CONT
        self.raw_set_pte(mm, addr, pte)

    @arch_call("set_ptes")
    def set_ptes(self, mm: MMStruct, addr: int, pte: int, nr: int) -> None:
        if nr < 1:
            raise ValueError("set_ptes() needs nr >= 1")
        if not self.profile.contpte:
            self.raw_set_ptes(mm, addr, pte, nr)
            return
        pte &= ~PTE_CONT
        if nr == 1:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
            self.raw_set_ptes(mm, addr, pte, 1)
            self.contpte_try_fold(mm, addr, pte)
        else:
            self.contpte_set_ptes(mm, addr, pte, nr)

    def set_pte_at(self, mm: MMStruct, addr: int, pte: int) -> None:
        self.set_ptes(mm, addr, pte, 1)

    # --- clearers ---------------------------------------------------------------------
    @arch_call("pte_clear")
    def pte_clear(self, mm: MMStruct, addr: int) -> None:
        if self.profile.contpte:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
        self.raw_pte_clear(mm, addr)

    @arch_call("ptep_get_and_clear")
    def ptep_get_and_clear(self, mm: MMStruct, addr: int) -> int:
        if self.profile.contpte:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
        return self.raw_ptep_get_and_clear(mm, addr)

    def ptep_get_and_clear_full(self, mm: MMStruct, addr: int, full: int) -> int:
        # generic: arm64 does not override it
        return self.ptep_get_and_clear(mm, addr)

    @arch_call("clear_full_ptes")
    def clear_full_ptes(self, mm: MMStruct, addr: int, nr: int, full: int) -> None:
        p = self.profile
        if not p.contpte:
            self.raw_clear_full_ptes(mm, addr, nr, full)
        elif not p.batch_apis:
            for _ in range(nr):  # generic clear_full_ptes()
                self.ptep_get_and_clear_full(mm, addr, full)
                addr += self.page_size
        elif nr == 1:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
            self.raw_clear_full_ptes(mm, addr, 1, full)
        else:
            self.contpte_clear_full_ptes(mm, addr, nr, full)

    @arch_call("get_and_clear_full_ptes")
    def get_and_clear_full_ptes(self, mm: MMStruct, addr: int, nr: int, full: int) -> int:
        p = self.profile
        if not p.contpte:
            return self.raw_get_and_clear_full_ptes(mm, addr, nr, full)
        if not p.batch_apis:
            pte = self.ptep_get_and_clear_full(mm, addr, full)  # generic version
            for _ in range(nr - 1):
                addr += self.page_size
                tmp = self.ptep_get_and_clear_full(mm, addr, full)
                if tmp & PTE_DIRTY or (tmp & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:
                    pte = pte_mkdirty(pte)
                if tmp & PTE_AF:
                    pte |= PTE_AF
            return pte
        if nr == 1:
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
            return self.raw_get_and_clear_full_ptes(mm, addr, 1, full)
        return self.contpte_get_and_clear_full_ptes(mm, addr, nr, full)

    def get_and_clear_ptes(self, mm: MMStruct, addr: int, nr: int) -> int:
        self._require("get_and_clear_ptes", self.profile.batched_mprotect, "v6.17")
        return self.get_and_clear_full_ptes(mm, addr, nr, 0)

    def clear_ptes(self, mm: MMStruct, addr: int, nr: int) -> None:
        self._require("clear_ptes", self.profile.batched_mprotect, "v6.17")
        self.clear_full_ptes(mm, addr, nr, 0)

    @arch_call("ptep_clear_flush")
    def ptep_clear_flush(self, mm: MMStruct, addr: int) -> int:
        """Generic ptep_clear_flush(): get_and_clear, then flush the page if the
        old entry could be cached (pte_accessible)."""
        pte = self.ptep_get_and_clear(mm, addr)
        if pte & PTE_VALID:
            self.flush_tlb_page(mm, addr)
        return pte

    # --- young ------------------------------------------------------------------------
    @arch_call("ptep_test_and_clear_young")
    def ptep_test_and_clear_young(self, mm: MMStruct, addr: int) -> bool:
        p = self.profile
        if not p.contpte:
            return self.raw_ptep_test_and_clear_young(mm, addr)
        if p.batched_young:
            return self._test_and_clear_young_ptes(mm, addr, 1)
        if (self.raw_ptep_get(mm, addr) & _VALID_CONT) != _VALID_CONT:
            return self.raw_ptep_test_and_clear_young(mm, addr)
        return self.contpte_ptep_test_and_clear_young(mm, addr)

    @arch_call("ptep_clear_flush_young")
    def ptep_clear_flush_young(self, mm: MMStruct, addr: int) -> bool:
        p = self.profile
        if not p.contpte:
            return self.raw_ptep_clear_flush_young(mm, addr)
        if (self.raw_ptep_get(mm, addr) & _VALID_CONT) != _VALID_CONT:
            return self.raw_ptep_clear_flush_young(mm, addr)
        if p.batched_young:
            return self.contpte_clear_flush_young_ptes(mm, addr, 1)
        return self.contpte_ptep_clear_flush_young(mm, addr)

    def _test_and_clear_young_ptes(self, mm: MMStruct, addr: int, nr: int) -> bool:
        if nr == 1 and not self.raw_ptep_get(mm, addr) & PTE_CONT:
            return self.raw_ptep_test_and_clear_young(mm, addr)
        return self.contpte_test_and_clear_young_ptes(mm, addr, nr)

    @arch_call("test_and_clear_young_ptes")
    def test_and_clear_young_ptes(self, mm: MMStruct, addr: int, nr: int) -> bool:
        self._require("test_and_clear_young_ptes", self.profile.batched_young, "v7.0")
        return self._test_and_clear_young_ptes(mm, addr, nr)

    @arch_call("clear_flush_young_ptes")
    def clear_flush_young_ptes(self, mm: MMStruct, addr: int, nr: int) -> bool:
        self._require("clear_flush_young_ptes", self.profile.batched_young, "v7.0")
        if nr == 1 and not self.raw_ptep_get(mm, addr) & PTE_CONT:
            return self.raw_ptep_clear_flush_young(mm, addr)
        return self.contpte_clear_flush_young_ptes(mm, addr, nr)

    # --- write protect ----------------------------------------------------------------
    @arch_call("wrprotect_ptes")
    def wrprotect_ptes(self, mm: MMStruct, addr: int, nr: int) -> None:
        p = self.profile
        if not p.contpte:
            self.raw_wrprotect_ptes(mm, addr, nr)
        elif not p.batch_apis:
            for _ in range(nr):  # generic wrprotect_ptes()
                self.ptep_set_wrprotect(mm, addr)
                addr += self.page_size
        elif nr == 1:
            # wrprotect_ptes() is only called for present entries, so only the
            # contig bit is tested, and the value read seeds the cmpxchg loop.
            orig = self.raw_ptep_get(mm, addr)
            if orig & PTE_CONT:
                self.contpte_try_unfold_slow(mm, addr, orig)
                orig &= ~PTE_CONT
            self.raw_ptep_set_wrprotect_seeded(mm, addr, orig)
        else:
            self.contpte_wrprotect_ptes(mm, addr, nr)

    @arch_call("ptep_set_wrprotect")
    def ptep_set_wrprotect(self, mm: MMStruct, addr: int) -> None:
        p = self.profile
        if not p.contpte:
            self.raw_ptep_set_wrprotect(mm, addr)
        elif not p.batch_apis:
            # seed-basic: contpte_try_unfold() on a fresh read, then __ptep_set_wrprotect()
            self.contpte_try_unfold(mm, addr, self.raw_ptep_get(mm, addr))
            self.raw_ptep_set_wrprotect(mm, addr)
        else:
            self.wrprotect_ptes(mm, addr, 1)

    # --- access flags -----------------------------------------------------------------
    @arch_call("ptep_set_access_flags")
    def ptep_set_access_flags(self, mm: MMStruct, addr: int, entry: int, dirty: int) -> int:
        if not self.profile.contpte:
            return self.raw_ptep_set_access_flags(mm, addr, entry, dirty)
        orig = self.raw_ptep_get(mm, addr)
        entry &= ~PTE_CONT
        if (orig & _VALID_CONT) != _VALID_CONT:
            return self.raw_ptep_set_access_flags(mm, addr, entry, dirty)
        return self.contpte_ptep_set_access_flags(mm, addr, entry, dirty)

    @arch_call("clear_young_dirty_ptes")
    def clear_young_dirty_ptes(self, mm: MMStruct, addr: int, nr: int, flags: int) -> None:
        self._require("clear_young_dirty_ptes", self.profile.clear_young_dirty_ptes, "v6.10")
        if nr == 1 and not self.raw_ptep_get(mm, addr) & PTE_CONT:
            self.raw_clear_young_dirty_ptes(mm, addr, nr, flags)
        else:
            self.contpte_clear_young_dirty_ptes(mm, addr, nr, flags)

    def flush_tlb_fix_spurious_fault(self, mm: MMStruct, addr: int) -> None:
        """A no-op before v6.19; a local page flush afterwards."""
        if self.profile.spurious_fault_flush:
            self.flush_tlb_page(mm, addr, sync=True, broadcast=False, notify=False)

    # --- mprotect transactions (arch/arm64/mm/mmu.c) ----------------------------------
    @arch_call("ptep_modify_prot_start")
    def ptep_modify_prot_start(self, mm: MMStruct, addr: int) -> int:
        if self.profile.batched_mprotect:
            return self._modify_prot_start_ptes(mm, addr, 1)
        if self.cpu.erratum_2645198 and not self.ptep_get(mm, addr) & PTE_UXN:
            # break-before-make when dropping exec on Cortex-A510
            return self.ptep_clear_flush(mm, addr)
        return self.ptep_get_and_clear(mm, addr)

    @arch_call("ptep_modify_prot_commit")
    def ptep_modify_prot_commit(self, mm: MMStruct, addr: int, old_pte: int, pte: int) -> None:
        self.set_ptes(mm, addr, pte, 1)

    def _modify_prot_start_ptes(self, mm: MMStruct, addr: int, nr: int) -> int:
        pte = self.get_and_clear_full_ptes(mm, addr, nr, 0)
        if self.cpu.erratum_2645198 and pte & PTE_VALID and not pte & PTE_UXN:
            # The kernel passes nr * PAGE_SIZE as the *end* address, so the
            # range underflows and becomes a whole-mm flush (safe over-invalidation).
            self.flush_tlb_range(mm, addr, nr * self.page_size, self.page_size, True, 3)
        return pte

    @arch_call("modify_prot_start_ptes")
    def modify_prot_start_ptes(self, mm: MMStruct, addr: int, nr: int) -> int:
        self._require("modify_prot_start_ptes", self.profile.batched_mprotect, "v6.17")
        return self._modify_prot_start_ptes(mm, addr, nr)

    @arch_call("modify_prot_commit_ptes")
    def modify_prot_commit_ptes(self, mm: MMStruct, addr: int, old_pte: int, pte: int,
                                nr: int) -> None:
        self._require("modify_prot_commit_ptes", self.profile.batched_mprotect, "v6.17")
        self.set_ptes(mm, addr, pte, nr)

    @arch_call("ptep_try_set")
    def ptep_try_set(self, mm: MMStruct, addr: int, pte: int) -> bool:
        self._require("ptep_try_set", self.profile.tlbf_flags_api, "v7.3")
        t, i = mm.pt.locate(addr)
        if self._cmpxchg(mm, t, i, addr, 0, pte) != 0:
            return False
        log = self.log
        log.dsb("ishst")
        log.isb()
        return True


class Arch(Ptep):
    """The complete arm64 arch layer for one kernel profile and CPU profile."""

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
