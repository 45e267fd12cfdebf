# SPDX-License-Identifier: GPL-2.0-only
"""Invariants the kernel maintains for contiguous blocks, checked on demand.

From contpte.c's comments and ptep_get_lockless()'s consistency test
(reference/contpte-arch-spec.md §6.1):

* ``cont-shape``   -- a valid CONT entry is one of N entries of a naturally
  aligned block, all valid and CONT (I1);
* ``cont-pfn``     -- their pfns are pfn0..pfn0+N-1 with pfn0 N-aligned (I1);
* ``cont-prot``    -- they are identical modulo AF / DIRTY / RDONLY-as-dirty (I1);
* ``cont-folio``   -- one folio backs the whole block (I2);
* ``kernel-cont``  -- this layer never paints CONT in a kernel mm (I7);
* ``ad-lost``      -- a convert never loses access or dirty state (I10):
  checked over the events of a ``contpte_convert``;
* ``tlb-conflict`` -- the TLB holds two sizes of translation for one VA on a
  CPU that would take a TLB conflict abort.

A violation is returned as data (and the machine records it as an
``invariant_violation`` event); it is never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.pte import PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_VALID, PTE_WRITE

if TYPE_CHECKING:
    from engine.arch import Arch
    from engine.state.mmstruct import MMStruct

_CLEAN_OLD = PTE_AF | PTE_DIRTY


@dataclass(frozen=True)
class Violation:
    rule: str
    addr: int
    message: str

    def event(self) -> tuple[str, str, int, str]:
        return ("invariant_violation", self.rule, self.addr, self.message)

    def __str__(self) -> str:
        return f"{self.rule} at {self.addr:#x}: {self.message}"


def _norm(pte: int) -> int:
    """pte_mkold(pte_mkclean(pte))"""
    return (pte & ~_CLEAN_OLD) | PTE_RDONLY


def _dirty(pte: int) -> bool:
    return bool(pte & PTE_DIRTY) or (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE


def check_block(arch: Arch, mm: MMStruct, table: Sequence[int], i0: int, start: int) -> list[Violation]:
    """Check one block whose first entry is table[i0] at VA start."""
    n = arch.cont_ptes
    entries = table[i0:i0 + n]
    conts = [e for e in entries if (e & (PTE_VALID | PTE_CONT)) == (PTE_VALID | PTE_CONT)]
    if not conts:
        return []
    out: list[Violation] = []
    if not mm.is_user:
        out.append(Violation("kernel-cont", start, f"kernel mm {mm.name} has contiguous entries"))
    if len(conts) != n:
        bad = [i for i, e in enumerate(entries)
               if (e & (PTE_VALID | PTE_CONT)) != (PTE_VALID | PTE_CONT)]
        def what(e: int) -> str:
            return "none" if e == 0 else "invalid" if not e & PTE_VALID else "no CONT"

        kinds = ", ".join(f"{i}: {what(entries[i])}" for i in bad[:4])
        out.append(Violation("cont-shape", start,
                             f"{len(conts)} of {n} entries are valid+CONT (others: {kinds})"))
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
    for i, e in enumerate(entries[1:], 1):
        p = arch.pte_pgprot(_norm(e))
        if p != p0:
            out.append(Violation("cont-prot", start + (i << ps),
                                 f"entry {i} attributes {p:#x} differ from entry 0 {p0:#x} "
                                 f"(bits {p ^ p0:#x})"))
            break
    head, nr = arch.folios.folio_of(pfn0)
    if not (head <= pfn0 and pfn0 + n <= head + nr):
        out.append(Violation("cont-folio", start,
                             f"pfns {pfn0:#x}..{pfn0 + n - 1:#x} are not inside one folio "
                             f"(folio at {head:#x} has {nr} pages)"))
    return out


def check_mm(arch: Arch, mm: MMStruct, start: int = 0, end: int = 1 << 64) -> list[Violation]:
    """Every block of every PTE table of mm overlapping [start, end)."""
    out: list[Violation] = []
    n = arch.cont_ptes
    ps = arch.page_shift
    pmd_shift = arch.g.pmd_shift
    vc = PTE_VALID | PTE_CONT
    for key in sorted(mm.pt.tables):
        base = key << pmd_shift
        if base >= end or base + arch.g.pmd_size <= start:
            continue
        t = mm.pt.tables[key]
        for i0 in range(0, len(t), n):
            # only a block holding a valid CONT entry can break a CONT rule
            for e in t[i0:i0 + n]:
                if e & vc == vc:
                    out.extend(check_block(arch, mm, t, i0, base + (i0 << ps)))
                    break
    return out


def check_tlb(tlb: Any) -> list[Violation]:
    """Two sizes of translation cached for one VA, on a CPU that would abort."""
    if not tlb.abort_on_conflict:
        return []
    return [Violation("tlb-conflict", va, f"ASID {asid}: entries of two sizes translate this VA")
            for asid, va in tlb.conflicts()]


def check_convert_events(events: Iterable[tuple[Any, ...]]) -> list[Violation]:
    """No access/dirty information lost across a convert (I10).

    For each ``convert`` event, the young/dirty OR of the entries it cleared
    must be present in every entry it wrote back.
    """
    out: list[Violation] = []
    pending: dict[str, Any] | None = None
    for ev in events:
        kind = ev[0]
        if kind == "convert":
            pending = {"addr": ev[1], "young": False, "dirty": False, "cleared": 0, "written": []}
        elif pending is None:
            continue
        elif kind == "pte_write" and ev[4] == "xchg" and ev[3] == 0 and not pending["written"]:
            old = ev[2]
            pending["young"] |= bool(old & PTE_AF)
            pending["dirty"] |= _dirty(old)
            pending["cleared"] += 1
        elif kind == "pte_write" and ev[4] == "store":
            pending["written"].append((ev[1], ev[3]))
        elif kind in ("fold", "unfold"):
            for addr, new in pending["written"]:
                if pending["young"] and not new & PTE_AF:
                    out.append(Violation("ad-lost", addr, "access flag lost across convert"))
                    break
                if pending["dirty"] and not _dirty(new):
                    out.append(Violation("ad-lost", addr, "dirty state lost across convert"))
                    break
            pending = None
    return out
