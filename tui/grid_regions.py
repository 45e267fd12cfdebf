# SPDX-License-Identifier: GPL-2.0-only
"""The address ranges the PTE grid shows, one group of rows each.

A process's VMAs when it has them -- cut where the scenario named parts of a
VMA that mmap() merged, so the user finds the names they wrote -- otherwise
the PMD-sized ranges that have a page table (a trace without VMAs). Plain
data; no Textual, no cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.contract import MachineProcess
    from engine.granule import Granule
    from engine.mm.vma import VMA


@dataclass(frozen=True)
class Region:
    """One group of rows: a VMA (or a named piece of one), or a range with page tables."""

    name: str
    start: int
    end: int
    detail: str = ""
    kind: str = "vma"  # "vma" | "mapped" (derived from the page tables)

    @property
    def size(self) -> int:
        return self.end - self.start

    def contains(self, addr: int) -> bool:
        return self.start <= addr < self.end


def fmt_size(n: int) -> str:
    """A size as the grid writes it: 4K, 2M, 1.5G; 512B; 1.2K when not a round unit."""
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << (shift - 4)) == 0:
            v = n / (1 << shift)
            return f"{v:g}{unit}"
    return f"{n}B" if n < 1024 else f"{n / 1024:.1f}K"


def _vma_detail(vma: VMA) -> str:
    return " ".join((vma.prot, "anon" if vma.anon else "file", "shared" if vma.shared else "private"))


def _vma_pieces(v: VMA, named: Mapping[str, list[int]]) -> list[Region]:
    """One row group per scenario mapping: mmap() merges adjacent private
    anonymous mappings into one VMA (as the kernel does), but the user still
    looks for the names they wrote; a piece of a bigger VMA says so."""
    start, end = int(v.start), int(v.end)
    own = v.name or f"vma@{start:#x}"
    detail = _vma_detail(v)
    parts = sorted((max(a, start), min(a + n, end), k) for k, (a, n) in named.items()
                   if a < end and a + n > start)
    if len(parts) <= 1 and (not parts or (parts[0][0], parts[0][1]) == (start, end)):
        return [Region(parts[0][2] if parts else own, start, end, detail)]
    out: list[Region] = []
    others = ", ".join(k for _a, _b, k in parts)
    at = start
    for a, b, k in parts:
        if a < at:
            continue  # an older region of the same name overlapping: keep the first
        if a > at:
            out.append(Region(own, at, a, f"{detail}; one VMA with {others}"))
        out.append(Region(k, a, b, f"{detail}; one VMA with {others}"))
        at = b
    if at < end:
        out.append(Region(own, at, end, f"{detail}; one VMA with {others}"))
    return out


def regions_of(proc: MachineProcess, g: Granule, extra_addrs: Iterable[int] = ()) -> list[Region]:
    """The mapped ranges of a process: its VMAs when it has them, otherwise the
    PMD-sized regions that have a PTE table (merged when adjacent)."""
    if proc.vmas is not None:
        out = []
        for v in proc.vmas:
            out.extend(_vma_pieces(v, proc.regions))
        out.sort(key=lambda r: r.start)
        return out
    pt = proc.mm.pt
    # dict.copy() is one C call: safe while a session job inserts tables in its thread
    keys = set(pt.tables.copy())
    keys.update(pt.pmd_leaves.copy())
    shift = g.pmd_shift
    keys.update(a >> shift for a in extra_addrs)
    out = []
    run_start: int | None = None
    run_end = 0
    for key in sorted(keys):
        if run_start is not None and key == run_end:
            run_end = key + 1
            continue
        if run_start is not None:
            out.append(Region("mapped", run_start << shift, run_end << shift, "from page tables", "mapped"))
        run_start, run_end = key, key + 1
    if run_start is not None:
        out.append(Region("mapped", run_start << shift, run_end << shift, "from page tables", "mapped"))
    return out
