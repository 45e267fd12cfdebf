# SPDX-License-Identifier: GPL-2.0-only
"""Synthetic folios for a capture whose PFNs (or page flags) are hidden.

Without CAP_SYS_ADMIN every PFN in pagemap reads as 0 and /proc/kpageflags
cannot be opened, so the physical layout is unknown. The capture keeps what
is visible (VMAs, which pages are present or swapped, exclusive, file-backed,
the zero page and PMD mappings when PAGEMAP_SCAN reports them) and invents
the rest, deterministically:

1. **PMD-mapped THPs**: every range PAGEMAP_SCAN reports as ``PAGE_IS_HUGE``
   or, without it, smaps' AnonHugePages/ShmemPmdMapped/FilePmdMapped of the
   VMA taken as that many fully present PMD-aligned ranges, lowest first.
   Each becomes one PMD-sized folio.
2. **mTHP**: in private anonymous VMAs, for each anon folio size the sysfs
   settings enable for that VMA (``hugepages-<size>kB/enabled``: always, or
   madvise with the VMA's ``hg`` flag; inherit follows the top-level setting;
   ``nh`` disables all) -- or the sizes given by the caller -- largest first,
   below the PMD size: every naturally aligned window that is fully present,
   exclusive-or-not alike but all anonymous, not swapped, not the zero page
   and not yet in a folio becomes one folio of that size. (A present, aligned
   window is what the fault path needs to allocate one; a PTE-mapped PMD-sized
   THP cannot be told from 512 small pages and is not invented.)
3. **Everything else** is order-0. Synthetic PFNs start at 4 GiB; each folio
   gets the next naturally aligned PFN range, each order-0 page the next PFN
   with a one-page gap after it, so no two order-0 pages look physically
   contiguous and nothing downstream assumes contiguity that was not seen.
   The zero page gets one PFN just below the base. Swapped pages get swap
   type 0 and offsets 1, 2, 3 ... in address order.

With ``keep_pfns`` (PFNs visible, kpageflags unreadable) the real PFNs stay
and a window only becomes a folio if its PFNs are also contiguous and
naturally aligned.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.capture.model import (
    KPF_ANON,
    KPF_COMPOUND_HEAD,
    KPF_COMPOUND_TAIL,
    KPF_THP,
    KPF_ZERO_PAGE,
    PM_FILE,
    PM_PRESENT,
    PM_SWAP,
    PM_SWAP_TYPE_BITS,
    Capture,
)
from engine.capture.procfs import MthpPolicy

SYNTHETIC_BASE_PFN_BYTES = 4 << 30  # synthetic PFNs start at this physical address


def _kb(size: int) -> str:
    return f"{size >> 20}M" if size >= 1 << 20 and not size & ((1 << 20) - 1) else f"{size >> 10}K"


def synthesize(cap: Capture, zero: set[int], mthp_sizes: Sequence[int] | None = None,
               keep_pfns: bool = False) -> None:
    """Fill ``cap.pfns`` (unless keep_pfns), ``cap.folios`` and synthetic
    ``cap.kpageflags`` as the module docstring describes."""
    ps = cap.page_size
    shift = cap.page_shift
    pmd_nr = cap.pmd_size // ps
    policy = MthpPolicy.from_info(cap.info)
    explicit = sorted({int(s) for s in mthp_sizes}, reverse=True) if mthp_sizes else None

    def usable(i: int) -> bool:
        v = cap.pagemap[i]
        return bool(v & PM_PRESENT) and not v & PM_SWAP and i not in zero

    # --- 1. PMD-mapped ranges ------------------------------------------------------------
    if cap.pmd_source != "pagemap_scan":
        from engine.capture.live import infer_pmd_mapped  # here: live imports synth (a cycle)

        infer_pmd_mapped(cap, require_folio=False)
    # windows: (first page index, nr pages)
    windows: list[tuple[int, int]] = []
    taken = bytearray(len(cap.vfns))
    index = {cap.vfns[i]: i for i in range(len(cap.vfns))}

    def window_ok(first: int | None, nr: int, vfn: int, anon_only: bool) -> bool:
        if first is None or first + nr > len(cap.vfns) or cap.vfns[first + nr - 1] != vfn + nr - 1:
            return False
        for k in range(first, first + nr):
            if taken[k] or not usable(k) or (anon_only and cap.pagemap[k] & PM_FILE):
                return False
        if keep_pfns:
            p0 = cap.pfns[first]
            if p0 % nr or any(cap.pfns[first + k] != p0 + k for k in range(nr)):
                return False
        return True

    kept_pmd = []
    for s, e in cap.pmd_mapped:
        for a in range(s, e, cap.pmd_size):
            first = index.get(a >> shift)
            if first is not None and window_ok(first, pmd_nr, a >> shift, anon_only=False):
                windows.append((first, pmd_nr))
                taken[first:first + pmd_nr] = b"\x01" * pmd_nr
                kept_pmd.append((a, a + cap.pmd_size))
    cap.pmd_mapped = kept_pmd

    # --- 2. mTHP in private anonymous VMAs ---------------------------------------------------
    used_sizes: set[int] = set()
    for vma in cap.vmas:
        if vma.kind != "anon" or vma.shared or not vma.count:
            continue
        sizes = explicit if explicit is not None else policy.sizes_for(vma)
        for size in sizes:
            nr = size // ps
            if nr < 2 or nr >= pmd_nr or nr & (nr - 1):
                continue
            seen = set()
            for i in cap.pages(vma):
                w = cap.vfns[i] & ~(nr - 1)
                if w in seen:
                    continue
                seen.add(w)
                if (w << shift) < vma.start or ((w + nr) << shift) > vma.end:
                    continue
                first = index.get(w)
                if first is not None and window_ok(first, nr, w, anon_only=True):
                    windows.append((first, nr))
                    taken[first:first + nr] = b"\x01" * nr
                    used_sizes.add(size)
    windows.sort()

    # --- 3. PFNs, folios, flags ----------------------------------------------------------------
    folios: dict[int, int] = {}
    starts = {first: nr for first, nr in windows}
    base = SYNTHETIC_BASE_PFN_BYTES >> shift
    zero_pfn = base - 1
    cursor = base
    swap_off = 1
    i = 0
    n = len(cap.vfns)
    while i < n:
        v = cap.pagemap[i]
        if i in starts:
            nr = starts[i]
            if keep_pfns:
                head = cap.pfns[i]
            else:
                head = (cursor + nr - 1) & ~(nr - 1)
                cursor = head + nr
            folios[head] = nr
            for k in range(nr):
                j = i + k
                if not keep_pfns:
                    cap.pfns[j] = head + k
                f = KPF_THP | (KPF_COMPOUND_HEAD if k == 0 else KPF_COMPOUND_TAIL)
                if not cap.pagemap[j] & PM_FILE:
                    f |= KPF_ANON
                cap.kpageflags[j] = f
                cap.kpagecount[j] = 1
            i += nr
            continue
        if v & PM_PRESENT:
            if i in zero:
                if not keep_pfns:
                    cap.pfns[i] = zero_pfn
                cap.kpageflags[i] = KPF_ZERO_PAGE
            else:
                if not keep_pfns:
                    cap.pfns[i] = cursor
                    cursor += 2
                cap.kpageflags[i] = 0 if v & PM_FILE else KPF_ANON
            cap.kpagecount[i] = 1
        elif v & PM_SWAP and not keep_pfns:
            cap.pfns[i] = swap_off << PM_SWAP_TYPE_BITS
            swap_off += 1
        i += 1
    cap.folios = folios

    pmd_src = {"pagemap_scan": "PAGEMAP_SCAN", "smaps": "smaps AnonHugePages/FilePmdMapped"}.get(
        cap.pmd_source, "nowhere")
    if explicit is not None:
        mthp = "anon mTHP of " + "/".join(_kb(s) for s in explicit) + " (as asked)"
    else:
        mthp = ("anon mTHP of " + "/".join(_kb(s) for s in sorted(used_sizes, reverse=True))
                + " where sysfs enables it") if used_sizes else "no mTHP (none enabled by sysfs)"
    pfn_note = ("real PFNs, folios only where PFNs are contiguous and aligned" if keep_pfns
                else "order-0 pages get non-adjacent PFNs")
    cap.synthesis = (f"PMD THPs from {pmd_src}, {mthp} on fully present aligned ranges, "
                     f"the rest order-0; {pfn_note}")
    cap.synthetic = not keep_pfns
    if keep_pfns:
        cap.warnings.append(f"page flags hidden: synthetic folios ({cap.synthesis})")
    else:
        cap.warnings.append("PFNs are hidden (reading them needs CAP_SYS_ADMIN): using the VMA layout "
                            f"with synthetic folios ({cap.synthesis})")
