# SPDX-License-Identifier: GPL-2.0-only
"""Processes and their address-space layout (the VMA tree of an mm).

Each process owns an MMStruct (page tables + ASID) and a sorted list of
VMAs. ``regions`` maps the scenario's mapping names to the range they were
created with, so ``NAME +OFF`` keeps meaning the same bytes after mprotect
splits a mapping into several VMAs or mremap moves it.

The VMA list is kept sorted, with a cache of the start addresses (lookups
are bisections), the bytes mapped, and a hint for the top-down search --
an address below which the search resumes, with the largest gap above it --
so 65,530 mappings (the kernel's default vm.max_map_count) take seconds, not
minutes; each cache answers exactly what a scan of the list would.

Address selection follows the kernel's top-down allocator
(arch_get_unmapped_area_topdown with randomisation off): below mmap_base,
highest gap first, and anonymous mappings whose length is a multiple of
PMD_SIZE are PMD aligned (thp_get_unmapped_area / __get_unmapped_area,
"mm, mmap: limit THP alignment of anonymous mappings to PMD-aligned sizes").
"""

from __future__ import annotations

import bisect
from typing import Any

from engine.granule import Granule
from engine.mm.vma import VMA
from engine.state.mmstruct import MMStruct

TASK_SIZE = 1 << 48  # 48-bit user VA
# mmap_base() with no randomisation: TASK_SIZE minus the clamped stack gap (MIN_GAP, 128 MiB)
MMAP_BASE = TASK_SIZE - (128 << 20)
MMAP_MIN_ADDR = 0x10000


class Process:
    def __init__(self, name: str, pid: int, mm: MMStruct, parent: str | None = None):
        self.name = name
        self.pid = pid
        self.mm = mm
        self.parent = parent
        self._vmas: list[VMA] = []
        self._starts_cache: list[int] | None = None
        self._mapped = 0
        # (A, G): every gap between VMAs at or above A (up to MMAP_BASE) is < G bytes
        self._area_hint: tuple[int, int] | None = None
        self._pending_area: tuple[int, int, int] | None = None  # (start, end, gap bound) to insert
        self.regions: dict[str, list[int]] = {}  # name -> [start, size]
        self.alive = True

    # --- the VMA list and its caches ---------------------------------------------------
    @property
    def vmas(self) -> list[VMA]:
        """The VMAs, sorted by address. Change them through insert / remove /
        split_vma or by assigning a new list (which resets the caches)."""
        return self._vmas

    @vmas.setter
    def vmas(self, value: list[VMA]) -> None:
        self._vmas = value
        self._starts_cache = None
        self._mapped = sum(v.end - v.start for v in value)
        self._area_hint = None
        self._pending_area = None

    def mapped_bytes(self) -> int:
        return self._mapped

    # --- lookup ---------------------------------------------------------------------
    def _starts(self) -> list[int]:
        c = self._starts_cache
        if c is None:
            c = self._starts_cache = [v.start for v in self._vmas]
        return c

    def find_vma(self, addr: int) -> VMA | None:
        i = bisect.bisect_right(self._starts(), addr) - 1
        if i >= 0 and self.vmas[i].start <= addr < self.vmas[i].end:
            return self.vmas[i]
        return None

    def vmas_in(self, start: int, end: int) -> list[VMA]:
        vmas = self._vmas
        i = bisect.bisect_left(self._starts(), end)  # vmas[:i] start below end
        j = i
        while j > 0 and vmas[j - 1].end > start:  # VMAs do not overlap: ends ascend too
            j -= 1
        return vmas[j:i]

    def covered(self, start: int, end: int) -> bool:
        """True if [start, end) is entirely mapped (no holes)."""
        pos = start
        for v in self.vmas_in(start, end):
            if v.start > pos:
                return False
            pos = max(pos, v.end)
        return pos >= end

    # --- layout -----------------------------------------------------------------------
    def insert(self, vma: VMA) -> None:
        starts = self._starts()
        i = bisect.bisect_left(starts, vma.start)
        self._vmas.insert(i, vma)
        starts.insert(i, vma.start)
        self._mapped += vma.end - vma.start
        pend = self._pending_area
        self._pending_area = None
        if pend is not None and (vma.start, vma.end) == pend[:2]:
            # the area get_unmapped_area() chose: the gaps above it are all < pend[2]
            self._area_hint = (vma.start, pend[2])
        # any other insertion only shrinks gaps: the hint stays an upper bound

    def remove(self, vma: VMA) -> None:
        starts = self._starts()
        i = bisect.bisect_left(starts, vma.start)
        if i >= len(self._vmas) or self._vmas[i] is not vma:
            raise ValueError(f"{vma!r} is not a VMA of process {self.name}")
        del self._vmas[i]
        del starts[i]
        self._mapped -= vma.end - vma.start
        self._area_hint = None  # a gap grew

    def overlaps(self, start: int, end: int) -> bool:
        return bool(self.vmas_in(start, end))

    def get_unmapped_area(self, length: int, g: Granule, thp_align: bool) -> int:
        """Highest free gap below MMAP_BASE that fits length (top-down).

        A gap smaller than ``length`` never fits, so when the hint says every
        gap above A is smaller, the scan starts at A: the same answer as a
        scan from the top."""
        align = g.pmd_size if thp_align and length % g.pmd_size == 0 else g.page_size
        mask = ~(align - 1)
        vmas = self._vmas
        high = MMAP_BASE
        i = len(vmas) - 1
        bound = 0  # the largest gap scanned (or known) above `high`
        hint = self._area_hint
        if hint is not None and hint[1] < length and hint[0] < high:
            high, bound = hint
            i = bisect.bisect_left(self._starts(), high) - 1
        while i >= 0:
            v = vmas[i]
            i -= 1
            if v.start >= high:
                continue
            cand = (high - length) & mask
            if cand >= v.end:
                self._pending_area = (cand, cand + length, max(bound, high - cand - length))
                return cand
            if high > v.end:
                bound = max(bound, high - v.end)
            high = v.start
        cand = (high - length) & mask
        if cand < MMAP_MIN_ADDR:
            return -1
        self._pending_area = (cand, cand + length, max(bound, high - cand - length))
        return cand

    def split_vma(self, vma: VMA, addr: int, page_shift: int) -> VMA:
        """__split_vma(): vma keeps [start, addr); returns the new [addr, end)."""
        new = vma.copy()
        new.start = addr
        new.pgoff = vma.pgoff + ((addr - vma.start) >> page_shift)
        self._mapped -= vma.end - addr  # insert() adds it back with the new VMA
        vma.end = addr
        self._pending_area = None
        self.insert(new)
        return new

    def split_range(self, start: int, end: int, page_shift: int) -> list[VMA]:
        """Split VMAs so that [start, end) is made of whole VMAs; return them."""
        for v in list(self.vmas_in(start, end)):
            if v.start < start < v.end:
                v = self.split_vma(v, start, page_shift)
            if v.start < end < v.end:
                self.split_vma(v, end, page_shift)
        return self.vmas_in(start, end)

    @staticmethod
    def mergeable(p: VMA, v: VMA, page_shift: int) -> bool:
        """Can ``v`` (starting where ``p`` ends) join ``p``?  mm/vma.c
        is_mergeable_vma() + is_mergeable_anon_vma(): same flags and file,
        contiguous vm_pgoff, and anon_vmas that agree (or one absent while the
        other's chain is a single anon_vma).  Separately mmap()ed *private
        anonymous* mappings merge like any others (their vm_pgoff is the
        address), so two scenario mappings can become one VMA as in
        /proc/PID/maps; a file or a shmem object is one ``struct file`` per
        mapping here, so those only re-join pieces of their own mapping."""
        if p.end != v.start or p.flags != v.flags or p.page_prot != v.page_prot:
            return False
        if p.region != v.region and (p.file or v.file or p.shmem or v.shmem):
            return False
        return (p.file == v.file and p.shmem == v.shmem
                and p.pgoff + ((p.end - p.start) >> page_shift) == v.pgoff
                and (p.anon_vma == v.anon_vma or not v.anon_vma or not p.anon_vma)
                and (p.avc == v.avc or not v.avc or not p.avc))

    @staticmethod
    def _absorb(p: VMA, v: VMA) -> None:
        p.end = v.end
        if not p.anon_vma:
            p.anon_vma = v.anon_vma
            p.avc = v.avc

    def try_merge(self, page_shift: int) -> None:
        """vma_merge(): join neighbours that are indistinguishable."""
        out: list[VMA] = []
        for v in self.vmas:
            if out and self.mergeable(out[-1], v, page_shift):
                self._absorb(out[-1], v)
                continue
            out.append(v)
        if len(out) != len(self._vmas):  # merging joins neighbours: no gap and no size changes
            self._vmas = out
            self._starts_cache = None

    def merge_new(self, vma: VMA, page_shift: int) -> VMA:
        """vma_merge_new_range() at mmap(): the new VMA joins the one before it
        and/or the one after it; returns the VMA that now holds its range.  Only
        the neighbours are looked at, so mapping N areas stays O(N log N)."""
        starts = self._starts()
        i = bisect.bisect_left(starts, vma.start)
        assert self._vmas[i] is vma
        nxt = self._vmas[i + 1] if i + 1 < len(self._vmas) else None
        prev = self._vmas[i - 1] if i > 0 else None
        left = prev if prev is not None and self.mergeable(prev, vma, page_shift) else None
        right = nxt if nxt is not None and self.mergeable(vma, nxt, page_shift) else None
        if left and right and left.anon_vma and right.anon_vma and left.anon_vma != right.anon_vma:
            right = None  # both sides have their own anon_vma: the left merge wins
        if right is not None:
            self._absorb(vma, right)
            del self._vmas[i + 1]
            del starts[i + 1]
        if left is not None:
            self._absorb(left, vma)
            del self._vmas[i]
            del starts[i]
            vma = left
        return vma

    # --- state --------------------------------------------------------------------------
    def clone(self) -> Process:
        other = Process(self.name, self.pid, MMStruct(self.mm.g, self.mm.asid, self.mm.is_user,
                                                      self.mm.name), self.parent)
        other.mm.pt = self.mm.pt.cow_copy()
        other.vmas = [v.copy() for v in self.vmas]
        other.regions = {k: list(v) for k, v in self.regions.items()}
        other.alive = self.alive
        return other

    def to_plain(self) -> dict[str, Any]:
        pt = self.mm.pt
        return {"name": self.name, "pid": self.pid, "parent": self.parent, "asid": self.mm.asid,
                "alive": self.alive, "vmas": [v.to_plain() for v in self.vmas],
                "regions": [[k, v[0], v[1]] for k, v in self.regions.items()],
                "tables": [[k, t.tobytes()] for k, t in sorted(pt.tables.items())],
                "pmds": [[k, v] for k, v in sorted(pt.pmd_leaves.items())]}

    @classmethod
    def from_plain(cls, d: dict[str, Any], g: Granule) -> Process:
        from array import array

        mm = MMStruct(g, int(d["asid"]), True, str(d["name"]))
        p = cls(str(d["name"]), int(d["pid"]), mm, d["parent"])
        p.alive = bool(d["alive"])
        p.vmas = [VMA.from_plain(r) for r in d["vmas"]]
        p.regions = {str(k): [int(s), int(n)] for k, s, n in d["regions"]}
        for k, b in d["tables"]:
            t = array("Q")
            t.frombytes(b)
            if len(t) != g.ptrs_per_pte:
                raise ValueError("page table of the wrong size")
            mm.pt.tables[int(k)] = t
        mm.pt.pmd_leaves = {int(k): int(v) for k, v in d["pmds"]}
        return p
