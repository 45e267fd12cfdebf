# SPDX-License-Identifier: GPL-2.0-only
"""Invariants of contiguous blocks and of the TLB, checked on demand
(reference/contpte-arch-spec.md §6.1).

* ``cont-shape``  -- a valid CONT entry is one of N entries of an aligned
  block, all valid and CONT (I1);
* ``cont-pfn``    -- their pfns are pfn0 .. pfn0 + N - 1, pfn0 N-aligned (I1);
* ``cont-prot``   -- identical modulo AF / DIRTY / RDONLY-as-dirty (I1);
* ``cont-folio``  -- one folio backs the whole block (I2);
* ``kernel-cont`` -- no CONT in a kernel mm (I7);
* ``tlb-conflict`` -- the TLB holds two sizes of translation for one VA on a
  CPU that would take a TLB conflict abort.

A violation is data (the machine records it as an ``invariant_violation``
event), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.pte import PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_VALID

_VALID_CONT = PTE_VALID | PTE_CONT


@dataclass(frozen=True)
class Violation:
    rule: str
    addr: int
    message: str

    def event(self) -> tuple:
        return ("invariant_violation", self.rule, self.addr, self.message)

    def __str__(self) -> str:
        return f"{self.rule} at {self.addr:#x}: {self.message}"


def _norm(pte: int) -> int:
    """pte_mkold(pte_mkclean(pte))"""
    return (pte & ~(PTE_AF | PTE_DIRTY)) | PTE_RDONLY


def check_block(arch: Any, mm: Any, table, i0: int, start: int) -> list[Violation]:
    """The block whose first entry is table[i0], at VA start."""
    n = arch.cont_ptes
    entries = table[i0:i0 + n]
    conts = sum(1 for e in entries if (e & _VALID_CONT) == _VALID_CONT)
    if not conts:
        return []
    out: list[Violation] = []
    if not mm.is_user:
        out.append(Violation("kernel-cont", start, f"kernel mm {mm.name} has contiguous entries"))
    if conts != n:
        out.append(Violation("cont-shape", start, f"{conts} of {n} entries are valid+CONT"))
        return out
    ps = arch.page_shift
    pfn0 = arch.pte_pfn(entries[0])
    if pfn0 % n:
        out.append(Violation("cont-pfn", start, f"first pfn {pfn0:#x} is not {n}-aligned"))
    for i, e in enumerate(entries):
        if arch.pte_pfn(e) != pfn0 + i:
            out.append(Violation("cont-pfn", start + (i << ps),
                                 f"entry {i} maps pfn {arch.pte_pfn(e):#x}, expected {pfn0 + i:#x}"))
            break
    p0 = arch.pte_pgprot(_norm(entries[0]))
    for i, e in enumerate(entries):
        if arch.pte_pgprot(_norm(e)) != p0:
            out.append(Violation("cont-prot", start + (i << ps),
                                 f"entry {i} differs from entry 0 in bits "
                                 f"{arch.pte_pgprot(_norm(e)) ^ p0:#x}"))
            break
    head, nr = arch.folios.folio_of(pfn0)
    if not (head <= pfn0 and pfn0 + n <= head + nr):
        out.append(Violation("cont-folio", start, f"pfns {pfn0:#x}.. are not inside one folio "
                                                  f"(folio {head:#x} has {nr} pages)"))
    return out


def check_mm(arch: Any, mm: Any, start: int = 0, end: int = 1 << 64) -> list[Violation]:
    """Every block of every PTE table of mm overlapping [start, end)."""
    out: list[Violation] = []
    n = arch.cont_ptes
    ps = arch.page_shift
    for key in sorted(mm.pt.tables):
        base = key << arch.g.pmd_shift
        if base >= end or base + arch.g.pmd_size <= start:
            continue
        t = mm.pt.tables[key]
        for i0 in range(0, len(t), n):
            # only blocks holding a CONT entry can break a CONT rule
            for e in t[i0:i0 + n]:
                if e & PTE_CONT and e & PTE_VALID:
                    out.extend(check_block(arch, mm, t, i0, base + (i0 << ps)))
                    break
    return out


def check_tlb(tlb: Any) -> list[Violation]:
    """Two sizes of translation cached for one VA, on a CPU that would abort."""
    if not tlb.abort_on_conflict:
        return []
    return [Violation("tlb-conflict", va, f"ASID {asid}: entries of two sizes translate this VA")
            for asid, va in tlb.conflicts()]
