# SPDX-License-Identifier: GPL-2.0-only
"""The counters of the kernel's ``tools/mm/thpmaps`` for a capture, and the
engine's folded blocks beside them.

``thpmaps`` (Ryan Roberts, ARM; torvalds/linux tools/mm/thpmaps) reads
smaps, pagemap and kpageflags and reports, per VMA, how THPs are mapped. The
functions here compute the same numbers from a :class:`Capture`, following
its source definition by definition, quirks included, so a user can check one
tool against the other:

* only VMAs with some permission and ``Rss > 0`` get counters;
* pages are the *present* pages whose kpageflags have ``KPF_THP``; a *range*
  is a run of them whose virtual and physical page numbers both increase by
  one;
* in each range, pages before the first ``COMPOUND_HEAD`` are
  ``thp-pte-partial``; if the page after the range's last PFN is a
  ``COMPOUND_TAIL``, the last folio of the range is partial too; every other
  folio (head to next head) is *fully and contiguously mapped* and counts in
  ``thp-pte-aligned-<size>`` when its first virtual page is a multiple of its
  size, ``thp-pte-unaligned-<size>`` otherwise (sizes from order 2; order-1
  folios are counted but, as in thpmaps, never printed);
* ``AnonHugePages`` (resp. ``ShmemPmdMapped + FilePmdMapped``) is subtracted
  from the PMD-order aligned count (clamped at 0) and printed as
  ``thp-pmd-aligned``;
* ``--cont <size>``: in each range whose first PFN and first virtual page are
  congruent modulo the block, every block-aligned run of ``size`` pages with
  no folio head after its first page is a contiguous block (anon or file by
  its first page); PMD-mapped memory is subtracted likewise and shown as
  ``cont-pmd-aligned``.
* anon/file is kpageflags' ``KPF_ANON``; percentages are of smaps
  ``Anonymous`` and ``Rss - Anonymous``.

One deviation: thpmaps reads smaps, pagemap and kpageflags at different
moments and may see them disagree; a capture is one verified picture.

:func:`compare` then builds the engine's view: the ``--cont`` blocks for the
granule's CONT_PTE_SIZE (eligible blocks), the CONT blocks actually present
in the engine's page table after :func:`engine.capture.build.build`, and for
each eligible block that did not fold, the reason the fold code would give.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.capture.model import (
    KPF_ANON,
    KPF_COMPOUND_HEAD,
    KPF_THP,
    PM_PRESENT,
    Capture,
    CapturedVMA,
)
from engine.events import COUNTER_NAMES
from engine.export import cont_block_starts
from engine.granule import Granule
from engine.pte import PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_VALID
from engine.python_api import Simulator
from engine.state.pagetable import PageTable

if TYPE_CHECKING:
    from engine.capture.build import Built

Stats = dict[str, tuple[str, int]]  # label -> (type "anon"/"file", value in kB)

HEADER = "       PID             START              END PROT   OFFSET   DEV    INODE OBJECT"


# --- the thpmaps replica ------------------------------------------------------------------------------
@dataclass
class _Ranges:
    """THP pages of one VMA (parallel lists) and their ranges [i, j)."""

    vfns: list[int]
    pfns: list[int]
    anons: list[bool]
    heads: list[bool]
    ranges: list[tuple[int, int]]


def _thp_pages(cap: Capture, vma: CapturedVMA) -> _Ranges:
    vfns: list[int] = []
    pfns: list[int] = []
    anons: list[bool] = []
    heads: list[bool] = []
    for i in cap.pages(vma):
        if not cap.pagemap[i] & PM_PRESENT:
            continue
        f = cap.kpageflags[i]
        if not f & KPF_THP:
            continue
        vfns.append(cap.vfns[i])
        pfns.append(cap.pfns[i])
        anons.append(bool(f & KPF_ANON))
        heads.append(bool(f & KPF_COMPOUND_HEAD))
    ranges = []
    s = 0
    for k in range(1, len(vfns) + 1):
        if k == len(vfns) or vfns[k] != vfns[k - 1] + 1 or pfns[k] != pfns[k - 1] + 1:
            ranges.append((s, k))
            s = k
    return _Ranges(vfns, pfns, anons, heads, ranges if vfns else [])


def _next_is_tail(cap: Capture, pfn_end: int) -> bool:
    """kpageflags(pfn_end) & KPF_COMPOUND_TAIL, from the capture's folios."""
    head, nr = cap.folio_of(pfn_end - 1)
    return nr > 1 and pfn_end < head + nr


def _kbnr(cap: Capture, kb: int) -> int:
    return (kb << 10) >> cap.page_shift


def _nrkb(cap: Capture, nr: int) -> int:
    return (nr << cap.page_shift) >> 10


def _odkb(cap: Capture, order: int) -> int:
    return (cap.page_size << order) >> 10


def thp_stats(cap: Capture, vma: CapturedVMA, r: _Ranges | None = None) -> Stats:
    """thp_parse() of tools/mm/thpmaps for one VMA."""
    r = r or _thp_pages(cap, vma)
    pmd_order = cap.pmd_order
    stats: dict[str, dict[str, Any]] = {
        t: {"partial": 0, "aligned": [0] * (pmd_order + 1), "unaligned": [0] * (pmd_order + 1)}
        for t in ("file", "anon")}

    def kind(i: int) -> str:
        return "anon" if r.anons[i] else "file"

    for start, stop in r.ranges:
        index_next, index_end = start, stop
        pfn_end = r.pfns[stop - 1] + 1
        folios = [i for i in range(index_next, index_end) if r.heads[i]]
        nr = (folios[0] if folios else index_end) - index_next
        stats[kind(index_next)]["partial"] += nr
        if folios and _next_is_tail(cap, pfn_end):
            nr = index_end - folios[-1]
            folios = folios[:-1]
            index_end -= nr
            stats[kind(index_end - 1)]["partial"] += nr  # sic: thpmaps' index
        if folios:
            nrs = [b - a for a, b in zip(folios, folios[1:], strict=False)] + [index_end - folios[-1]]
            for index, n in zip(folios, nrs, strict=True):
                order = n.bit_length() - 1
                n = 1 << order
                vfn = r.vfns[index]
                align = "aligned" if vfn % n == 0 else "unaligned"
                lst = stats[kind(index)][align]
                if order >= len(lst):
                    lst.extend([0] * (order + 1 - len(lst)))
                lst[order] += n
    anon_pmd = vma.stat("AnonHugePages")
    file_pmd = vma.stat("ShmemPmdMapped") + vma.stat("FilePmdMapped")
    stats["anon"]["aligned"][pmd_order] = max(0, stats["anon"]["aligned"][pmd_order] - _kbnr(cap, anon_pmd))
    stats["file"]["aligned"][pmd_order] = max(0, stats["file"]["aligned"][pmd_order] - _kbnr(cap, file_pmd))
    pmdkb = _odkb(cap, pmd_order)
    out: Stats = {f"anon-thp-pmd-aligned-{pmdkb}kB": ("anon", anon_pmd),
                  f"file-thp-pmd-aligned-{pmdkb}kB": ("file", file_pmd)}
    for t in ("anon", "file"):
        for sub in ("aligned", "unaligned"):
            for od in range(2, pmd_order + 1):
                out[f"{t}-thp-pte-{sub}-{_odkb(cap, od)}kB"] = (t, _nrkb(cap, stats[t][sub][od]))
        out[f"{t}-thp-pte-partial"] = (t, _nrkb(cap, stats[t]["partial"]))
    return out


def cont_blocks(cap: Capture, vma: CapturedVMA, order: int,
                r: _Ranges | None = None) -> list[tuple[int, bool]]:
    """The blocks cont_parse() counts, before the PMD subtraction:
    (first virtual page number, anon)."""
    r = r or _thp_pages(cap, vma)
    nr_cont = 1 << order
    out: list[tuple[int, bool]] = []
    for start, stop in r.ranges:
        vfn_start = r.vfns[start]
        pfn_start = r.pfns[start]
        if pfn_start % nr_cont != vfn_start % nr_cont:
            continue
        index_next = start + ((vfn_start + nr_cont - 1) & ~(nr_cont - 1)) - vfn_start
        while index_next + nr_cont <= stop:
            if not any(r.heads[index_next + 1:index_next + nr_cont]):
                out.append((r.vfns[index_next], r.anons[index_next]))
            index_next += nr_cont
    return out


def cont_stats(cap: Capture, vma: CapturedVMA, order: int, r: _Ranges | None = None) -> Stats:
    """cont_parse() of tools/mm/thpmaps for one VMA and block order."""
    blocks = cont_blocks(cap, vma, order, r)
    nr_cont = 1 << order
    nr_anon = sum(nr_cont for _, anon in blocks if anon)
    nr_file = sum(nr_cont for _, anon in blocks if not anon)
    anon_pmd = vma.stat("AnonHugePages")
    file_pmd = vma.stat("ShmemPmdMapped") + vma.stat("FilePmdMapped")
    nr_anon = max(0, nr_anon - _kbnr(cap, anon_pmd))
    nr_file = max(0, nr_file - _kbnr(cap, file_pmd))
    kb = _nrkb(cap, nr_cont)
    return {f"anon-cont-pmd-aligned-{kb}kB": ("anon", anon_pmd),
            f"file-cont-pmd-aligned-{kb}kB": ("file", file_pmd),
            f"anon-cont-pte-aligned-{kb}kB": ("anon", _nrkb(cap, nr_anon)),
            f"file-cont-pte-aligned-{kb}kB": ("file", _nrkb(cap, nr_file))}


def counted(vma: CapturedVMA) -> bool:
    """thpmaps only parses VMAs with some permission and resident memory."""
    return (vma.read or vma.write or vma.exec) and vma.stat("Rss") > 0


def vma_stats(cap: Capture, vma: CapturedVMA, cont_orders: tuple[int, ...] = ()) -> tuple[Stats, int, int]:
    """vma_parse(): (stats, total anon kB, total file kB); empty for VMAs thpmaps skips."""
    if not counted(vma):
        return {}, 0, 0
    r = _thp_pages(cap, vma)
    stats = thp_stats(cap, vma, r)
    for order in cont_orders:
        stats.update(cont_stats(cap, vma, order, r))
    tot_anon = vma.stat("Anonymous")
    return stats, tot_anon, vma.stat("Rss") - tot_anon


def size_to_order(cap: Capture, size: int) -> int:
    """thpmaps' size2order() for --cont, with its checks."""
    order = (size // cap.page_size).bit_length() - 1
    if order < 1:
        raise ValueError("--cont value must be size of at least 2 pages")
    if (1 << order) * cap.page_size != size:
        raise ValueError("--cont value must be size of power-of-2 pages")
    if order > cap.pmd_order:
        raise ValueError("--cont value must be less than or equal to PMD order")
    return order


def format_vma(cap: Capture, vma: CapturedVMA) -> str:
    """vma_print(): an smaps-like header line with the PID first."""
    try:
        major, minor = (int(x, 16) for x in vma.dev.split(":"))
    except ValueError:
        major = minor = 0
    # thpmaps splits the smaps line on whitespace: a path with a space shows as ''
    name = vma.path if vma.path and len(vma.path.split()) == 1 else ""
    # ... and parses smaps' decimal inode as hex, so the decimal digits are what it prints
    inode = int(str(vma.inode), 16)
    return (f"{cap.pid:010d}: {vma.start:016x}-{vma.end:016x} {vma.perms[:3]}"
            f"{'p' if vma.perms[3] == 'p' else 's'} {vma.offset:08x} {major:02x}:{minor:02x} "
            f"{inode:08x} {name}")


def format_stats(stats: Stats, tot_anon: int, tot_file: int, inc_empty: bool = False) -> list[str]:
    """stats_print()."""
    lines = []
    for label, (typ, value) in stats.items():
        if value or inc_empty:
            pad = max(0, 32 - len(label) - 1)
            if typ == "anon" and tot_anon > 0:
                percent = f" ({value / tot_anon:3.0%})"
            elif typ == "file" and tot_file > 0:
                percent = f" ({value / tot_file:3.0%})"
            else:
                percent = ""
            lines.append(f"{label}:{' ' * pad}{value:8} kB{percent}")
    return lines


def rollup(cap: Capture, cont_orders: tuple[int, ...] = ()) -> tuple[Stats, int, int]:
    """--rollup: every VMA's counters summed."""
    total: Stats = {}
    ta = tf = 0
    for vma in cap.vmas:
        stats, a, f = vma_stats(cap, vma, cont_orders)
        for k, (t, v) in stats.items():
            total[k] = (t, total[k][1] + v) if k in total else (t, v)
        ta += a
        tf += f
    return total, ta, tf


def format_thpmaps(cap: Capture, cont_sizes: tuple[int, ...] = (), inc_empty: bool = False,
                   rollup_only: bool = False) -> str:
    """What ``thpmaps --pid PID [--cont SIZE]... [--rollup]`` would print."""
    orders = tuple(size_to_order(cap, s) for s in cont_sizes)
    if rollup_only:
        stats, a, f = rollup(cap, orders)
        return "\n".join(format_stats(stats, a, f, inc_empty)) + "\n"
    lines = [HEADER]
    for vma in cap.vmas:
        stats, a, f = vma_stats(cap, vma, orders)
        lines.append(format_vma(cap, vma))
        lines.extend(format_stats(stats, a, f, inc_empty))
    return "\n".join(lines) + "\n"


# --- the engine beside it -----------------------------------------------------------------------------------
@dataclass
class VmaComparison:
    vma: CapturedVMA
    stats: Stats
    tot_anon: int
    tot_file: int
    eligible: list[int] = field(default_factory=list)  # block start VAs
    pmd_blocks: int = 0  # --cont blocks inside PMD-mapped memory (PMD leaves on this granule)
    folded: list[int] = field(default_factory=list)  # engine CONT block start VAs inside the VMA
    pmd_leaves: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # eligible, not folded
    extra: Counter[str] = field(default_factory=Counter)  # folded, not eligible

    @property
    def folded_eligible(self) -> int:
        return len(set(self.eligible) & set(self.folded))

    def as_dict(self) -> dict[str, Any]:
        return {"start": f"{self.vma.start:#x}", "end": f"{self.vma.end:#x}", "perms": self.vma.perms,
                "name": self.vma.name, "thpmaps": {k: v for k, (_, v) in self.stats.items()},
                "eligible": len(self.eligible), "folded": len(self.folded),
                "folded_eligible": self.folded_eligible, "pmd_mapped_blocks": self.pmd_blocks,
                "pmd_leaves": self.pmd_leaves, "reasons": dict(self.reasons),
                "folded_not_eligible": dict(self.extra)}


@dataclass
class Report:
    capture: Capture
    granule: str
    kernel: str
    block_size: int
    cont_order: int | None  # host-page order of the block for --cont (None: block < 2 host pages)
    vmas: list[VmaComparison]
    crossing: list[int]  # folded blocks that cross a VMA boundary
    pmd_included: bool  # PMD-mapped THPs count as eligible (the granule has no PMD that size)
    notes: Counter[str]
    counters: dict[str, int]

    @property
    def eligible(self) -> int:
        return sum(len(v.eligible) for v in self.vmas)

    @property
    def folded_eligible(self) -> int:
        return sum(v.folded_eligible for v in self.vmas)

    @property
    def folded(self) -> int:
        return sum(len(v.folded) for v in self.vmas) + len(self.crossing)

    @property
    def pmd_leaves(self) -> int:
        return sum(v.pmd_leaves for v in self.vmas)

    def reasons(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for v in self.vmas:
            c.update(v.reasons)
        return c

    def extra(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for v in self.vmas:
            c.update(v.extra)
        if self.crossing:
            c["the block crosses a VMA boundary (thpmaps counts per VMA)"] += len(self.crossing)
        return c

    def conclusion(self) -> str:
        bs = _size(self.block_size)
        if self.eligible:
            s = (f"{self.folded_eligible} of {self.eligible} contpte-eligible {bs} blocks folded "
                 f"on the {self.granule} granule ({self.kernel})")
        else:
            s = f"no contpte-eligible {bs} blocks on the {self.granule} granule ({self.kernel})"
        reasons = self.reasons()
        if reasons:
            s += "; reasons for the others: " + "; ".join(
                f"{n} x {why}" for why, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        elif self.eligible:
            s += "; none left unfolded"
        extra = self.extra()
        if extra:
            s += "; also folded, not counted by thpmaps: " + "; ".join(
                f"{n} x {why}" for why, n in sorted(extra.items(), key=lambda kv: (-kv[1], kv[0])))
        if self.pmd_leaves == 1:
            s += "; 1 PMD-mapped THP is a PMD block entry"
        elif self.pmd_leaves:
            s += f"; {self.pmd_leaves} PMD-mapped THPs are PMD block entries"
        return s

    def as_dict(self) -> dict[str, Any]:
        return {"granule": self.granule, "kernel": self.kernel, "block_size": self.block_size,
                "eligible": self.eligible, "folded_eligible": self.folded_eligible,
                "cont_blocks": self.folded, "pmd_leaves": self.pmd_leaves,
                "pmd_mapped_counted_as_eligible": self.pmd_included,
                "reasons": dict(self.reasons()), "folded_not_eligible": dict(self.extra()),
                "unmapped_host_pages": dict(self.notes), "counters": dict(self.counters),
                "conclusion": self.conclusion(),
                "vmas": [v.as_dict() for v in self.vmas if counted(v.vma)]}


def _size(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and not n & ((1 << shift) - 1):
            return f"{n >> shift}{unit}"
    return str(n)


def engine_cont_blocks(pt: PageTable, g: Granule) -> list[int]:
    """Start VAs of the blocks whose every entry is valid and CONT."""
    return cont_block_starts(pt, g)


_DIFF_NAMES = (
    (1 << 51, "writable vs read-only"),
    (1 << 54, "executable vs not (UXN)"),
    (1 << 53, "PXN"),
    (1 << 6, "user vs kernel (PTE_USER)"),
    (PTE_SPECIAL, "special"),
    (0x1C, "memory type"),
    (3 << 8, "shareability"),
    (1 << 11, "nG"),
)


def why_not_folded(sim: Simulator, addr: int, host_page_size: int | None = None) -> str:
    """The reason the fold code (``__contpte_try_fold``) would give for the block at
    addr. ``host_page_size``: the captured machine's page size, if it differs from
    the granule (so missing entries can be blamed on granule-page formation)."""
    g = sim.g
    n = g.cont_ptes
    ps = g.page_size
    start = addr & g.cont_pte_mask
    if sim.mm.pt.get_pmd(start):
        return "mapped by a PMD block entry"
    if not sim.profile.contpte:
        return f"kernel profile {sim.profile.name} has no contpte"
    ents = [sim.raw(start + k * ps) for k in range(n)]
    missing = sum(1 for e in ents if not e)
    if missing:
        if host_page_size is not None and host_page_size != g.page_size:
            return f"some {g.name} pages could not be formed from the host pages"
        return "not every entry of the block is mapped"
    if any(not e & PTE_VALID for e in ents):
        return "an entry is not valid (PROT_NONE or swap)"
    if any(e & PTE_SPECIAL for e in ents):
        return "special entries (zero page, PFN map) are never folded"
    pfn0 = (ents[0] & g.pte_addr_low) >> g.page_shift
    if pfn0 % n or any(((e & g.pte_addr_low) >> g.page_shift) != pfn0 + k for k, e in enumerate(ents)):
        return "not physically contiguous and aligned on this granule"
    head, nr = sim.folios.folio_of(pfn0)
    if head > pfn0 or head + nr < pfn0 + n:
        return "no single folio covers the block"
    norm = [((e & ~(PTE_AF | PTE_DIRTY)) | PTE_RDONLY) & ~g.pte_addr_low for e in ents]
    for v in norm:
        diff = v ^ norm[0]
        if diff:
            what = [name for bit, name in _DIFF_NAMES if diff & bit] or [f"bits {diff:#x}"]
            return "entries differ: " + ", ".join(what)
    if all(e & PTE_CONT for e in ents):
        return "folded"
    if not sim.profile.auto_fold:
        return (f"kernel profile {sim.profile.name} never folds from set_ptes(nr == 1) "
                "and no whole-block set_ptes() covered it")
    return "every fold check passes, but no set_ptes() offered the block for folding"


def compare(built: Built, cont_orders: tuple[int, ...] | None = None) -> Report:
    """Set the thpmaps counters of the capture and the engine's CONT blocks side by side."""
    cap: Capture = built.capture
    sim = built.sim
    g = sim.g
    block = g.cont_pte_size
    order: int | None = None
    if block >= 2 * cap.page_size and block <= cap.pmd_size:
        order = (block // cap.page_size).bit_length() - 1
    orders = tuple(cont_orders) if cont_orders is not None else ((order,) if order else ())
    pmd_included = g.pmd_size != cap.pmd_size
    pmd_set: set[int] = set()
    for s, e in cap.pmd_mapped:
        pmd_set.update(range(s, e, block))
    folded = engine_cont_blocks(sim.mm.pt, g)
    folded_set = set(folded)
    pmd_leaf_vas = sorted(k << g.pmd_shift for k in sim.mm.pt.pmd_leaves)
    comps: list[VmaComparison] = []
    assigned: set[int] = set()
    for vma in cap.vmas:
        stats, ta, tf = vma_stats(cap, vma, orders)
        vc = VmaComparison(vma, stats, ta, tf)
        if order is not None and counted(vma):
            for vfn, _anon in cont_blocks(cap, vma, order):
                va = vfn << cap.page_shift
                if va in pmd_set:
                    vc.pmd_blocks += 1
                    if not pmd_included:
                        continue
                vc.eligible.append(va)
        vc.folded = [b for b in folded if vma.start <= b and b + block <= vma.end]
        assigned.update(vc.folded)
        vc.pmd_leaves = sum(1 for a in pmd_leaf_vas if vma.start <= a < vma.end)
        for va in vc.eligible:
            if va not in folded_set:
                vc.reasons[why_not_folded(sim, va, cap.page_size)] += 1
        elig = set(vc.eligible)
        for b in vc.folded:
            if b not in elig:
                vc.extra[_why_extra(cap, b, block)] += 1
        comps.append(vc)
    crossing = [b for b in folded if b not in assigned]
    totals = sim.log.totals()

    counters = {k: int(totals.get(k, 0)) for k in COUNTER_NAMES if k in totals}
    counters["cont_blocks"] = len(folded)
    return Report(cap, g.name, sim.profile.name, block, order, comps, crossing, pmd_included,
                  built.plan.notes, counters)


def _why_extra(cap: Capture, va: int, block: int) -> str:
    i0 = None
    for v in cap.vmas:
        if v.start <= va < v.end:
            for i in cap.pages(v):
                if cap.vfns[i] << cap.page_shift == va:
                    i0 = i
                    break
    if i0 is not None and not cap.kpageflags[i0] & KPF_THP:
        return "the folio is not a THP (no KPF_THP: a driver or hugetlb compound page)"
    return "not counted by thpmaps' range walk"
