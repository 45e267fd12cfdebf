# SPDX-License-Identifier: GPL-2.0-only
"""Turn a :class:`~engine.capture.model.Capture` into engine state.

The capture's pages are mapped into a fresh :class:`~engine.Simulator`
**through the ptep API**, with the batch sizes the kernel's fault paths use,
so whether a block ends up contiguous is decided by the engine's contpte code
(``contpte_set_ptes`` painting whole aligned blocks, or ``contpte_try_fold``
on the last entry of a block) -- never copied from anywhere:

* every large folio with at least one mapped page is registered first
  (``add_folio``); order-0 pages need nothing;
* a large folio whose pages are all present in one VMA, at consecutive
  addresses, with one protection, is mapped by one ``set_ptes(addr, pte, nr)``
  for the whole folio (split only at PTE-table boundaries, which the kernel
  never crosses) -- what ``do_anonymous_page`` does for an mTHP and
  ``finish_fault``/``filemap_map_pages`` do for a page-cache folio;
* a PMD-mapped THP (PAGEMAP_SCAN ``PAGE_IS_HUGE``, or smaps) becomes a PMD
  block entry when the granule's PMD is the size of the host's; on a granule
  with bigger PMDs it is a whole-folio ``set_ptes`` like any other folio;
* every other page -- order-0, or part of a folio that is partially mapped,
  spans VMAs or mixes protections -- is mapped one ``set_ptes(addr, pte, 1)`` at
  a time, lowest address first, so the kernel's fold heuristic runs on the
  last entry of each block, as it would after a fault storm or a split.

Descriptors come from the VMA's permissions and the page's pagemap bits, with
``engine.pte`` values and the chosen kernel profile's layout:

* ``---`` (PROT_NONE) with present pages: ``PAGE_NONE`` of the layout;
* private writable: ``pte_mkwrite(pte_mkdirty(PAGE_READONLY))`` (as
  do_anonymous_page / wp_page_reuse make it) when the page is present,
  exclusively mapped and anonymous; read-only (``PAGE_READONLY``) otherwise --
  a page shared with a fork, a KSM page or a page-cache page not yet CoWed;
* shared writable: ``PAGE_SHARED``, dirty when kpageflags says the folio is;
* read-only / exec-only: ``PAGE_READONLY[_EXEC]`` / ``PAGE_EXECONLY``;
* the zero page and pages of VM_PFNMAP/VM_IO VMAs: ``pte_mkspecial``;
* swapped pages: the layout's swap entry with the pagemap's type and offset.

Every entry is young (AF set): pagemap cannot tell young from old.

**Granules other than the host's page size.** Captured pages are 4K on most
machines; on a 16K or 64K granule a granule page is made from R = 4 or 16
host pages only when they are all present in the same VMA, physically
contiguous, and the first PFN is a multiple of R (so the granule page has a
real, naturally aligned PFN: ``pfn // R``); R swapped pages with consecutive,
R-aligned offsets make one swap entry. Anything else -- a partly populated or
physically scattered 16K chunk -- is left unmapped and counted in
``plan.notes``: the engine never invents contiguity the machine did not have.
A host folio of N >= R pages becomes a granule folio of N / R pages; smaller
host folios inside one granule page make an order-0 granule page. VMA edges
that are not granule-aligned are trimmed inward. (Going the other way, a host
page bigger than the granule becomes a folio of host/granule granule pages.)
The PMD of a 16K or 64K granule is 32M or 512M, so a host PMD-mapped 2M THP
is PTE-mapped there -- as one contiguous block of 128 x 16K or 32 x 64K.

:func:`plan_mappings` computes everything as plain data (:class:`MapPlan`);
:func:`apply_plan` replays it into a Simulator; :func:`build` does both and is
what a saved session will start from.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.arch.profiles import DEFAULT_KERNEL, get_profile
from engine.capture.model import (
    KPF_DIRTY,
    KPF_ZERO_PAGE,
    PM_FILE,
    PM_MMAP_EXCLUSIVE,
    PM_PRESENT,
    PM_SWAP,
    PM_SWAP_TYPE_BITS,
    Capture,
    CapturedVMA,
)
from engine.granule import Granule
from engine.granule import granule as to_granule
from engine.pte import (
    LAYOUTS,
    PAGE_EXECONLY,
    PAGE_READONLY,
    PAGE_READONLY_EXEC,
    PAGE_SHARED,
    PAGE_SHARED_EXEC,
    PTE_TABLE_BIT,
    Layout,
    pte_mkdirty,
    pte_mkspecial,
)
from engine.python_api import Simulator

MAX_VA = 1 << 48  # arm64 user VA with 48-bit VA (the engine's page tables)


@dataclass
class BuiltVMA:
    """A VMA as the engine sees it (granule-trimmed)."""

    start: int
    end: int
    perms: str
    kind: str
    path: str
    offset: int = 0

    @property
    def name(self) -> str:
        return self.path or "[anon]"

    @property
    def shared(self) -> bool:
        return self.perms[3] == "s"

    def to_plain(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "perms": self.perms, "kind": self.kind,
                "path": self.path, "offset": self.offset}


@dataclass
class MapPlan:
    """Everything :func:`apply_plan` does, as plain data.

    ``addrs``/``values``/``nrs`` are parallel columns of actions: ``nr >= 1`` is
    ``set_ptes(addr, value, nr)``; ``nr == 0`` is a PMD block entry ``value``
    written at ``addr``.
    """

    granule: Granule
    kernel: str
    layout: Layout
    vmas: list[BuiltVMA] = field(default_factory=list)
    folios: list[tuple[int, int]] = field(default_factory=list)  # (head pfn, nr) in granule pages
    addrs: array[int] = field(default_factory=lambda: array("Q"))
    values: array[int] = field(default_factory=lambda: array("Q"))
    nrs: array[int] = field(default_factory=lambda: array("Q"))
    notes: Counter[str] = field(default_factory=Counter)  # host pages not mapped, by reason
    host_pages_per_page: float = 1.0

    def actions(self) -> Iterator[tuple[int, int, int]]:
        """(address, value, nr) of each call: set_ptes(addr, value, nr), or a PMD entry when nr is 0."""
        return zip(self.addrs, self.values, self.nrs, strict=True)

    def __len__(self) -> int:
        return len(self.addrs)

    def stats(self) -> dict[str, int]:
        return {"set_ptes_calls": sum(1 for n in self.nrs if n),
                "set_ptes_batched": sum(1 for n in self.nrs if n > 1),
                "pmd_entries": sum(1 for n in self.nrs if n == 0),
                "entries": sum(int(n) for n in self.nrs),
                "folios": len(self.folios),
                "host_pages_unmapped": sum(self.notes.values())}

    def to_plain(self) -> dict[str, Any]:
        return {"granule": self.granule.name, "kernel": self.kernel, "layout": self.layout.name,
                "vmas": [v.to_plain() for v in self.vmas], "folios": [list(f) for f in self.folios],
                "addrs": self.addrs.tobytes(), "values": self.values.tobytes(),
                "nrs": self.nrs.tobytes(), "notes": dict(self.notes)}


@dataclass
class Built:
    """The engine objects built from a capture (what a saved session starts from)."""

    sim: Simulator
    plan: MapPlan
    capture: Capture

    @property
    def vmas(self) -> list[BuiltVMA]:
        return self.plan.vmas

    @property
    def granule(self) -> Granule:
        return self.plan.granule


# --- protections ----------------------------------------------------------------------------------
def vma_prot(perms: str, layout: Layout) -> int:
    """vm_get_page_prot() for the VMA's permissions (arch/arm64/mm/mmap.c)."""
    r, w, x, shared = perms[0] == "r", perms[1] == "w", perms[2] == "x", perms[3] == "s"
    if not (r or w or x):
        return layout.page_none
    if x and not (r or w):
        return PAGE_EXECONLY
    if w and shared:
        return PAGE_SHARED_EXEC if x else PAGE_SHARED
    return PAGE_READONLY_EXEC if x else PAGE_READONLY


@dataclass
class _GPage:
    va: int
    present: bool
    pfn: int  # granule pfn, or swap offset for a swap entry
    swp_type: int
    exclusive: bool
    anon: bool
    dirty: bool
    zero: bool
    folio: tuple[int, int]  # (head, nr) in granule pages


def _granule_pages(cap: Capture, vma: CapturedVMA, g: Granule, notes: Counter[str]) -> list[_GPage]:
    """The VMA's captured pages regrouped into granule pages."""
    hp = cap.page_size
    gp = g.page_size
    out: list[_GPage] = []
    idx = list(cap.pages(vma))
    if gp == hp:
        for i in idx:
            out.append(_page(cap, i, cap.vfns[i] << cap.page_shift, 1, 0))
        return out
    if gp < hp:
        s = hp // gp
        for i in idx:
            base = cap.vfns[i] << cap.page_shift
            for k in range(s):
                out.append(_page(cap, i, base + k * gp, s, k))
        return out
    r = gp // hp
    start = (vma.start + gp - 1) & ~(gp - 1)
    end = vma.end & ~(gp - 1)
    gname = g.name
    j = 0
    n = len(idx)
    while j < n:
        i = idx[j]
        va = cap.vfns[i] << cap.page_shift
        chunk = va & ~(gp - 1)
        # pages of this chunk
        k = j
        while k < n and (cap.vfns[idx[k]] << cap.page_shift) < chunk + gp:
            k += 1
        members = idx[j:k]
        j = k
        if chunk < start or chunk + gp > end:
            notes[f"host pages in a {gname} page cut by the VMA edge"] += len(members)
            continue
        if len(members) < r:
            notes[f"incomplete {gname} page (not every host page captured)"] += len(members)
            continue
        pm = [cap.pagemap[i] for i in members]
        if all(v & PM_PRESENT for v in pm):
            pfns = [cap.pfns[i] for i in members]
            zero = all(cap.kpageflags[i] & KPF_ZERO_PAGE for i in members)
            if not zero:
                if any(pfns[q] != pfns[0] + q for q in range(r)):
                    notes[f"{gname} page not physically contiguous"] += r
                    continue
                if pfns[0] % r:
                    notes[f"{gname} page not physically aligned"] += r
                    continue
            first = _page(cap, members[0], chunk, 1, 0)
            first.pfn = pfns[0] // r
            first.exclusive = all(v & PM_MMAP_EXCLUSIVE for v in pm)
            first.anon = not any(v & PM_FILE for v in pm)
            first.dirty = any(cap.kpageflags[i] & KPF_DIRTY for i in members)
            head, nr = cap.folio_of(pfns[0])
            first.folio = (head // r, nr // r) if nr >= r else (first.pfn, 1)
            out.append(first)
        elif all(v & PM_SWAP for v in pm):
            ents = [_swap(cap, i) for i in members]
            t0, o0 = ents[0]
            if any(t != t0 or o != o0 + q for q, (t, o) in enumerate(ents)) or o0 % r:
                notes[f"swap entries that do not form one {gname} entry"] += r
                continue
            first = _page(cap, members[0], chunk, 1, 0)
            first.pfn = o0 // r
            out.append(first)
        else:
            notes[f"{gname} page mixing present and swapped host pages"] += r
    return out


def _swap(cap: Capture, i: int) -> tuple[int, int]:
    v = cap.pfns[i]
    return v & ((1 << PM_SWAP_TYPE_BITS) - 1), v >> PM_SWAP_TYPE_BITS


def _page(cap: Capture, i: int, va: int, scale: int, k: int) -> _GPage:
    """One host page (or its k-th granule-sized piece when scale > 1)."""
    v = cap.pagemap[i]
    present = bool(v & PM_PRESENT)
    flags = cap.kpageflags[i]
    if present:
        pfn = cap.pfns[i] * scale + k
        head, nr = cap.folio_of(cap.pfns[i])
        folio = (head * scale, nr * scale) if (nr > 1 or scale > 1) else (pfn, 1)
        return _GPage(va, True, pfn, 0, bool(v & PM_MMAP_EXCLUSIVE), not v & PM_FILE,
                      bool(flags & KPF_DIRTY), bool(flags & KPF_ZERO_PAGE), folio)
    t, off = _swap(cap, i)
    return _GPage(va, False, off * scale + k, t, False, not v & PM_FILE, False, False, (0, 1))


def page_pte(vma: CapturedVMA, page: _GPage, g: Granule, layout: Layout) -> int | None:
    """The descriptor the kernel would hold for this page (None: cannot encode)."""
    if not page.present:
        if page.swp_type >= 32 or page.pfn >= 1 << layout.swp_offset_bits:
            return None
        return layout.swp_entry_to_pte(page.swp_type, page.pfn)
    prot = vma_prot(vma.perms, layout)
    pte = ((page.pfn << g.page_shift) & g.pte_addr_low) | prot
    if prot == layout.page_none:
        return pte
    if page.zero or vma.pfnmap:
        return pte_mkspecial(pte)
    if vma.write and not vma.shared:
        if page.exclusive and page.anon:
            return layout.pte_mkwrite_novma(pte_mkdirty(pte))
        return pte
    if vma.write and vma.shared and page.dirty:
        return pte_mkdirty(pte)
    return pte


# --- the plan -----------------------------------------------------------------------------------------
def plan_mappings(cap: Capture, granule: int | str | Granule = "4K", kernel: str = DEFAULT_KERNEL) -> MapPlan:
    """Work out every add_folio / set_ptes / PMD entry for the capture."""
    g = to_granule(granule)
    profile = get_profile(kernel)
    layout = LAYOUTS[profile.layout]
    plan = MapPlan(g, profile.name, layout, host_pages_per_page=g.page_size / cap.page_size)
    notes = plan.notes
    folios: dict[int, int] = {}
    ps = g.page_size
    table_mask = ~(g.pmd_size - 1)
    pmd_ranges: set[int] = set()
    if g.pmd_size == cap.pmd_size:
        for s, e in cap.pmd_mapped:
            pmd_ranges.update(range(s, e, g.pmd_size))
    for vma in cap.vmas:
        start = (vma.start + ps - 1) & ~(ps - 1)
        end = vma.end & ~(ps - 1)
        if vma.end > MAX_VA:
            if vma.count:
                notes["outside the 48-bit VA range the engine models"] += vma.count
            continue
        if vma.hugetlb:
            if vma.count:
                notes["hugetlb VMA (not modelled)"] += vma.count
            continue
        if start >= end:
            if vma.count:
                notes[f"VMA smaller than one {g.name} page"] += vma.count
            continue
        plan.vmas.append(BuiltVMA(start, end, vma.perms, vma.kind, vma.path, vma.offset))
        pages = _granule_pages(cap, vma, g, notes)
        ptes: list[int | None] = []
        for p in pages:
            pte = page_pte(vma, p, g, layout)
            if pte is None:
                notes["swap entry out of the layout's range"] += 1
            ptes.append(pte)
        # large folios fully mapped in this VMA, at consecutive addresses, with one prot
        members: dict[int, list[int]] = {}
        for k, p in enumerate(pages):
            if p.present and p.folio[1] > 1:
                members.setdefault(p.folio[0], []).append(k)
        whole: dict[int, tuple[int, bool]] = {}  # page index of head -> (nr, is_pmd)
        for head, ks in members.items():
            nr = pages[ks[0]].folio[1]
            folios[head] = nr
            if len(ks) != nr:
                continue
            p0 = pages[ks[0]]
            pte0 = ptes[ks[0]]
            if pte0 is None or p0.pfn != head:
                continue
            mask = g.pte_addr_low
            ok = all(pages[ks[q]].va == p0.va + q * ps and pages[ks[q]].pfn == head + q
                     and (pq := ptes[ks[q]]) is not None and (pq & ~mask) == (pte0 & ~mask)
                     for q in range(nr))
            if ok:
                is_pmd = p0.va in pmd_ranges and nr * ps == g.pmd_size
                whole[ks[0]] = (nr, is_pmd)
        k = 0
        while k < len(pages):
            p = pages[k]
            pte = ptes[k]
            if k in whole:
                assert pte is not None  # a whole folio's entries are all there (see above)
                nr, is_pmd = whole[k]
                if is_pmd:
                    plan.addrs.append(p.va)
                    plan.values.append(pte & ~PTE_TABLE_BIT)
                    plan.nrs.append(0)
                else:
                    a = p.va
                    left = nr
                    while left:  # never across a PTE table
                        n = min(left, (((a & table_mask) + g.pmd_size) - a) // ps)
                        plan.addrs.append(a)
                        plan.values.append(layout_advance(pte, (a - p.va) // ps, g))
                        plan.nrs.append(n)
                        a += n * ps
                        left -= n
                k += nr
                continue
            if pte is not None:
                plan.addrs.append(p.va)
                plan.values.append(pte)
                plan.nrs.append(1)
            k += 1
    plan.folios = sorted(folios.items())
    return plan


def layout_advance(pte: int, nr: int, g: Granule) -> int:
    """pte_advance_pfn()."""
    if not nr:
        return pte
    pfn = ((pte & g.pte_addr_low) >> g.page_shift) + nr
    return ((pfn << g.page_shift) & g.pte_addr_low) | (pte & ~g.pte_addr_low)


# --- applying it ----------------------------------------------------------------------------------------
def apply_plan(plan: MapPlan, sim: Simulator) -> None:
    """Register the plan's folios and make its calls on ``sim`` (a Simulator)."""
    for head, nr in plan.folios:
        sim.add_folio(head, nr)
    set_ptes = sim.ptep.set_ptes
    pt = sim.mm.pt
    log = sim.log
    for addr, value, nr in plan.actions():
        if nr:
            set_ptes(addr, value, nr)
        else:
            old = pt.get_pmd(addr)
            pt.set_pmd(addr, value)
            log.pmd_write(addr, old, value, "store", sim.mm.name)


def build(cap: Capture, granule: int | str | Granule = "4K", kernel: str = DEFAULT_KERNEL,
          cpu: str = "neoverse-n1", record_events: bool = False) -> Built:
    """A Simulator holding the capture's mappings, built through the ptep API.

    Events are only counted (``sim.log`` in count mode) unless
    ``record_events``: a real process has hundreds of thousands of pages.
    """
    plan = plan_mappings(cap, granule, kernel)
    sim = Simulator(granule=plan.granule, kernel=plan.kernel, cpu=cpu)
    sim.log.set_recording(record_events)
    apply_plan(plan, sim)
    return Built(sim, plan, cap)
