# SPDX-License-Identifier: GPL-2.0-only
"""Export a page table: ptdump-style text, JSON and CSV.

Pure functions over a :class:`~engine.state.pagetable.PageTable`, its granule
and descriptor layout, and optionally a list of VMAs (anything with
``start``, ``end``, ``perms`` and ``name``). Output is deterministic: ascending
addresses, fixed key order, no timestamps.

**ptdump** follows arch/arm64/mm/ptdump.c: one line per run of entries,
``0xSTART-0xEND   <size> <LEVEL>`` then the kernel's attribute columns, each
a fixed-width "set" or "clear" string (``F`` for not valid, ``USR``,
``ro``/``RW``, ``NX``/``x``, ``SHD``, ``AF``, ``NG``, ``CON``, ``BLK`` for a
block (PMD) entry, ``UXN``, ``GP``, the memory type). The kernel merges
entries whose attribute bits match and prints no addresses of the output;
ptlab merges only entries whose descriptors are identical apart from the
output address *and* whose PFNs are consecutive, and appends:

* software columns: ``DBM`` (PTE_WRITE), ``DIRTY`` (the software dirty bit;
  a hardware-dirty entry is one with ``RW`` and ``DBM``), ``SPECIAL``;
* ``PROT_NONE`` for a present-but-invalid PROT_NONE entry;
* the PFN range, ``pfn 0x80000-0x8000f``.

Swap entries (not present, not none) print ``F swap type T offset A-B`` and
merge when type and flags match and offsets are consecutive. None entries
are not printed; they end a run. With VMAs, each VMA starts with a marker
line ``---[ 0xSTART-0xEND perms name ]---`` like the kernel's address
markers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from engine.decode import decode
from engine.granule import Granule
from engine.pte import (
    MT_NORMAL,
    MT_NORMAL_NC,
    MT_NORMAL_TAGGED,
    PTE_AF,
    PTE_ATTRINDX,
    PTE_ATTRINDX_MASK,
    PTE_CONT,
    PTE_DIRTY,
    PTE_GP,
    PTE_NG,
    PTE_PXN,
    PTE_RDONLY,
    PTE_SHARED,
    PTE_SPECIAL,
    PTE_TABLE_BIT,
    PTE_USER,
    PTE_UXN,
    PTE_VALID,
    PTE_WRITE,
    Layout,
    MT_DEVICE_nGnRE,
    MT_DEVICE_nGnRnE,
)
from engine.state.pagetable import PageTable

END = 1 << 64


class VMALike(Protocol):  # (read-only: a VMA's perms and name are computed properties)
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...

    @property
    def perms(self) -> str: ...

    @property
    def name(self) -> str: ...


# --- walking ---------------------------------------------------------------------------------------------
def iter_entries(pt: PageTable, start: int = 0, end: int = END) -> Iterator[tuple[int, int, str]]:
    """(va, raw, level) for every non-zero PTE and every PMD leaf in [start, end),
    ascending; level is "PTE" or "PMD"."""
    g = pt.g
    keys = sorted(set(pt.tables) | set(pt.pmd_leaves))
    for key in keys:
        base = key << g.pmd_shift
        if base + g.pmd_size <= start or base >= end:
            continue
        leaf = pt.pmd_leaves.get(key)
        if leaf:
            if start <= base < end:
                yield base, leaf, "PMD"
            continue
        t = pt.tables.get(key)
        if t is None:
            continue
        ps = g.page_shift
        for i, v in enumerate(t):
            if v:
                va = base + (i << ps)
                if start <= va < end:
                    yield va, v, "PTE"


def folded_block_starts(pt: PageTable, start: int = 0, end: int = END) -> Iterator[int]:
    """The one definition of a folded (contpte-mapped) block, for every count and
    list ptlab shows (run's counters, compare, the summaries, the exports): an
    aligned block of CONT_PTES entries that are all valid and all have PTE_CONT.
    A misprogrammed block (some entries CONT, some not) is not folded; the
    invariant checker reports it. Yields, ascending, the start of each block whose
    first entry lies in [start, end)."""
    g = pt.g
    n = g.cont_ptes
    vc = PTE_VALID | PTE_CONT
    shift = g.pmd_shift
    pshift = g.page_shift
    tables = pt.tables
    if end - start < len(tables) << shift:
        # a range (one VMA of many): only the tables it covers, not every table
        # of the process once per VMA
        keys = [k for k in range(start >> shift, ((end - 1) >> shift) + 1) if k in tables]
    else:
        keys = sorted(tables)
    for key in keys:
        t = tables[key]
        base = key << shift
        if base + (len(t) << pshift) <= start or base >= end:
            continue
        for i in range(0, len(t), n):
            if t[i] & vc == vc and start <= base + (i << pshift) < end:
                if all(v & vc == vc for v in t[i + 1:i + n]):
                    yield base + (i << pshift)


def cont_block_starts(pt: PageTable, g: Granule, start: int = 0, end: int = END) -> list[int]:
    """Start addresses of the folded blocks (folded_block_starts) in [start, end)."""
    assert g is pt.g or g.page_size == pt.g.page_size
    return list(folded_block_starts(pt, start, end))


def _kind(raw: int, layout: Layout) -> str:
    if raw & PTE_VALID:
        return "present"
    if layout.pte_present_invalid(raw):
        return "protnone" if layout.pte_protnone(raw) else "present-invalid"
    return "swap" if not raw & 3 else "invalid"


# --- ptdump ------------------------------------------------------------------------------------------------
# (mask, value, set, clear) -- arch/arm64/mm/ptdump.c pte_bits[]
_PTE_BITS: tuple[tuple[int, int, str, str | None], ...] = (
    (PTE_VALID, PTE_VALID, " ", "F"),
    (PTE_USER, PTE_USER, "USR", "   "),
    (PTE_RDONLY, PTE_RDONLY, "ro", "RW"),
    (PTE_PXN, PTE_PXN, "NX", "x "),
    (PTE_SHARED, PTE_SHARED, "SHD", "   "),
    (PTE_AF, PTE_AF, "AF", "  "),
    (PTE_NG, PTE_NG, "NG", "  "),
    (PTE_CONT, PTE_CONT, "CON", "   "),
    (PTE_TABLE_BIT, PTE_TABLE_BIT, "   ", "BLK"),
    (PTE_UXN, PTE_UXN, "UXN", "   "),
    (PTE_GP, PTE_GP, "GP", "  "),
    (PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_DEVICE_nGnRnE), "DEVICE/nGnRnE", None),
    (PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_DEVICE_nGnRE), "DEVICE/nGnRE", None),
    (PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_NORMAL_NC), "MEM/NORMAL-NC", None),
    (PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_NORMAL), "MEM/NORMAL", None),
    (PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_NORMAL_TAGGED), "MEM/NORMAL-TAGGED", None),
)
# ptlab's software columns
_SW_BITS: tuple[tuple[int, int, str, str | None], ...] = (
    (PTE_WRITE, PTE_WRITE, "DBM", "   "),
    (PTE_DIRTY, PTE_DIRTY, "DIRTY", "     "),
    (PTE_SPECIAL, PTE_SPECIAL, "SPECIAL", "       "),
)


def _attrs(raw: int, table: Iterable[tuple[int, int, str, str | None]]) -> str:
    out = []
    for mask, val, s, c in table:
        text = s if raw & mask == val else c
        if text is not None:
            out.append(" " + text)
    return "".join(out)


def format_size(nbytes: int) -> str:
    """note_page()'s size column: ``%9lu%c`` in the largest unit that divides it."""
    units = "KMGTPE"
    delta = nbytes >> 10
    u = 0
    while not delta & 1023 and u + 1 < len(units) and delta:
        delta >>= 10
        u += 1
    return f"{delta:9d}{units[u]}"


def _range(lo: int, hi: int) -> str:
    return f"{lo:#x}" if lo == hi else f"{lo:#x}-{hi:#x}"


class _Run:
    __slots__ = ("start", "end", "level", "key", "first", "last", "raw", "kind")

    def __init__(self, va: int, end: int, level: str, key: tuple[Any, ...], num: int, raw: int, kind: str):
        self.start, self.end, self.level, self.key = va, end, level, key
        self.first = self.last = num
        self.raw, self.kind = raw, kind


def _entry_key(raw: int, level: str, g: Granule, layout: Layout) -> tuple[tuple[Any, ...], int, int, str]:
    """(merge key, number that must be consecutive, its step, kind)."""
    kind = _kind(raw, layout)
    if kind == "swap":
        typ, off = layout.swp_type(raw), layout.swp_offset(raw)
        flags = raw & ~((0x1F << layout.swp_type_shift)
                        | (((1 << layout.swp_offset_bits) - 1) << layout.swp_offset_shift))
        return (level, "swap", typ, flags), off, 1, kind
    pfn = (raw & g.pte_addr_low) >> g.page_shift
    step = 1 if level == "PTE" else g.pmd_size // g.page_size
    return (level, raw & ~g.pte_addr_low, step), pfn, step, kind


def _format_run(run: _Run, layout: Layout) -> str:
    head = f"0x{run.start:016x}-0x{run.end:016x}   {format_size(run.end - run.start)} {run.level}"
    if run.kind == "swap":
        raw = run.raw
        text = f"{head} F swap type {layout.swp_type(raw)} offset {_range(run.first, run.last)}"
        if layout.swp_exclusive(raw):
            text += " exclusive"
        return text
    if run.kind == "invalid":
        return f"{head} F invalid {run.raw:#018x}"
    text = head + _attrs(run.raw, _PTE_BITS) + _attrs(run.raw, _SW_BITS)
    if run.kind == "protnone":
        text += " PROT_NONE"
    elif run.kind == "present-invalid":
        text += " PRESENT_INVALID"
    step = 1 if run.level == "PTE" else run.key[2]
    return text.rstrip() + "  pfn " + _range(run.first, run.last + step - 1)


def ptdump_lines(pt: PageTable, layout: Layout, vmas: Sequence[VMALike] | None = None,
                 start: int = 0, end: int = END) -> Iterator[str]:
    g = pt.g
    vmas = sorted(vmas or (), key=lambda v: v.start)
    vi = 0  # next VMA whose marker is still to print
    cur_vma: VMALike | None = None
    outside_marked = False
    run: _Run | None = None

    def marker(v: VMALike) -> str:
        return f"---[ 0x{v.start:016x}-0x{v.end:016x} {v.perms} {v.name} ]---"

    for va, raw, level in iter_entries(pt, start, end):
        size = g.page_size if level == "PTE" else g.pmd_size
        # VMA markers for every VMA that starts at or before this entry
        new_vma = False
        while vi < len(vmas) and vmas[vi].start <= va:
            if run is not None:
                yield _format_run(run, layout)
                run = None
            if vmas[vi].end > start and vmas[vi].start < end:
                yield marker(vmas[vi])
            cur_vma = vmas[vi]
            vi += 1
            new_vma = True
        if vmas and (cur_vma is None or va >= cur_vma.end):
            if not outside_marked or new_vma:
                if run is not None:
                    yield _format_run(run, layout)
                    run = None
                yield "---[ outside any VMA ]---"
                outside_marked = True
        else:
            outside_marked = False
        key, num, step, kind = _entry_key(raw, level, g, layout)
        if run is not None and run.end == va and run.key == key and run.last + step == num:
            run.end = va + size
            run.last = num
            continue
        if run is not None:
            yield _format_run(run, layout)
        run = _Run(va, va + size, level, key, num, raw, kind)
    if run is not None:
        yield _format_run(run, layout)
    while vi < len(vmas):  # VMAs after the last entry
        if vmas[vi].end > start and vmas[vi].start < end:
            yield marker(vmas[vi])
        vi += 1


def ptdump(pt: PageTable, layout: Layout, vmas: Sequence[VMALike] | None = None,
           start: int = 0, end: int = END) -> str:
    """The whole ptdump-style listing as one string (ends with a newline if not empty)."""
    lines = list(ptdump_lines(pt, layout, vmas, start, end))
    return "\n".join(lines) + ("\n" if lines else "")


# --- JSON ------------------------------------------------------------------------------------------
def _vma_at(vmas: Sequence[VMALike], va: int) -> VMALike | None:
    lo, hi = 0, len(vmas)
    while lo < hi:
        mid = (lo + hi) // 2
        if vmas[mid].end <= va:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(vmas) and vmas[lo].start <= va < vmas[lo].end:
        return vmas[lo]
    return None


def to_json(pt: PageTable, layout: Layout, vmas: Sequence[VMALike] | None = None,
            start: int = 0, end: int = END) -> dict[str, Any]:
    """Entries (every non-none descriptor) and blocks (every CONT_PTES-aligned
    block holding at least one entry), as a JSON-ready dict."""
    g = pt.g
    vmas = sorted(vmas or (), key=lambda v: v.start)
    entries = []
    blocks: dict[int, dict[str, Any]] = {}
    n = g.cont_ptes
    for va, raw, level in iter_entries(pt, start, end):
        d = decode(raw, g, layout)
        kind = _kind(raw, layout)
        v = _vma_at(vmas, va) if vmas else None
        e: dict[str, Any] = {"va": f"{va:#x}", "level": level, "raw": f"{raw:#018x}", "kind": kind,
                             "flags": list(d.flags)}
        if kind == "swap":
            e["swp_type"] = layout.swp_type(raw)
            e["swp_offset"] = layout.swp_offset(raw)
        else:
            e["pfn"] = (raw & g.pte_addr_low) >> g.page_shift
            e["cont"] = bool(raw & PTE_CONT)
        if vmas:
            e["vma"] = v.name if v is not None else None
        entries.append(e)
        if level != "PTE":
            continue
        b = va & g.cont_pte_mask
        blk = blocks.get(b)
        if blk is None:
            blk = blocks[b] = {"va": f"{b:#x}", "size": g.cont_pte_size, "entries": 0, "valid": 0,
                               "cont": 0}
        blk["entries"] += 1
        blk["valid"] += bool(raw & PTE_VALID)
        blk["cont"] += bool(raw & PTE_VALID and raw & PTE_CONT)
    folded = set(folded_block_starts(pt, start, end))
    for b, blk in blocks.items():
        blk["folded"] = b in folded
    return {
        "format": "ptlab-pagetable/1", "granule": g.name, "layout": layout.name,
        "cont_ptes": n,
        "summary": {"entries": len(entries), "pmd_leaves": sum(1 for e in entries if e["level"] == "PMD"),
                    "blocks": len(blocks), "cont_blocks": sum(1 for b in blocks.values() if b["folded"])},
        "vmas": [{"start": f"{v.start:#x}", "end": f"{v.end:#x}", "perms": v.perms, "name": v.name}
                 for v in vmas],
        "entries": entries,
        "blocks": [blocks[k] for k in sorted(blocks)],
    }


# --- CSV -------------------------------------------------------------------------------------------
CSV_COLUMNS = ("va", "level", "raw", "pfn", "valid", "protnone", "cont", "user", "rdonly", "write",
               "dirty", "young", "special", "uxn", "pxn", "ng", "attrindx", "vma")


def to_csv(pt: PageTable, layout: Layout, vmas: Sequence[VMALike] | None = None,
           start: int = 0, end: int = END) -> str:
    """One row per present entry (valid, or present-invalid such as PROT_NONE)."""
    g = pt.g
    vmas = sorted(vmas or (), key=lambda v: v.start)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for va, raw, level in iter_entries(pt, start, end):
        if not layout.pte_present(raw):
            continue
        v = _vma_at(vmas, va) if vmas else None
        write = bool(raw & PTE_WRITE)
        dirty = bool(raw & PTE_DIRTY) or (write and not raw & PTE_RDONLY)
        w.writerow((f"{va:#x}", level, f"{raw:#018x}", f"{(raw & g.pte_addr_low) >> g.page_shift:#x}",
                    int(bool(raw & PTE_VALID)), int(layout.pte_protnone(raw)), int(bool(raw & PTE_CONT)),
                    int(bool(raw & PTE_USER)), int(bool(raw & PTE_RDONLY)), int(write), int(dirty),
                    int(bool(raw & PTE_AF)), int(bool(raw & PTE_SPECIAL)), int(bool(raw & PTE_UXN)),
                    int(bool(raw & PTE_PXN)), int(bool(raw & PTE_NG)), (raw & PTE_ATTRINDX_MASK) >> 2,
                    v.name if v is not None else ""))
    return buf.getvalue()
