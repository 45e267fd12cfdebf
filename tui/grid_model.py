# SPDX-License-Identifier: GPL-2.0-only
"""What the PTE grid shows, as plain data: rows of glyphs with style tags.

No Textual here: :class:`GridModel` is given a machine (anything with
``.arch`` and ``process_list()``), the process to show and the view of the
current session position (mid-op overlay, descriptors written by the last
step), and answers "what is on row N" as a list of ``(text, tags)``
segments. The widget (``tui.widgets.pte_grid``) only maps tags to theme
styles and caches strips; tests drive this class without an app.

Geometry
--------
The address space is a list of :class:`Region` (VMAs when the process has
them, otherwise ranges derived from the page tables). Each region gets a
header row followed by data rows. At zoom 0 one cell is one descriptor and a
row is one contiguous block (CONT_PTES cells; 16K's 128-entry blocks -- or
any block when the pane is narrow -- wrap over several rows, bracketed in the
gutter). At zoom ``z >= 1`` a cell summarises ``CONT_PTES * 16**(z-1)``
descriptors and shows the most interesting state by the fixed priority of
:data:`tui.legend.PRIORITY` -- never a sample.

Cost
----
Only asked-for rows are built. Summaries (per block, per PTE table) are
computed lazily from the live tables and cached; :meth:`GridModel.set_view`
drops only the tables written between the old and the new position when the
caller knows them (one step), everything otherwise. The mid-op overlay only
ever touches a few tables, which are summarised per view.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui.legend import PRIORITY, RANK, Classifier, glyph, is_cont

if TYPE_CHECKING:
    from engine.contract import MachineContract, MachineProcess
    from engine.granule import Granule
    from engine.mm.vma import VMA

_VALID = 1
_CONT = 1 << 52
_VALID_CONT = _VALID | _CONT

# (text, tags): tags name legend states / marks; the widget turns them into styles.
Segment = tuple[str, tuple[str, ...]]

MAX_ZOOM = 4
GUTTER = 14  # breakpoint mark, 12 hex digits of VA, block bracket
TAIL = 9  # " o4  *16 ": folio order (zoom 0) or CONT share (zoom > 0), changed count


@dataclass(frozen=True)
class Region:
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


@dataclass(frozen=True)
class Summary:
    """Aggregate of a run of descriptors."""

    rank: int  # min RANK over the entries (most interesting state)
    present: int = 0  # non-zero entries (swap and migration entries included: see swapped)
    valid: int = 0
    cont: int = 0  # valid + CONT
    total: int = 0
    swapped: int = 0  # non-zero but not pte_present(): swap / migration entries

    @property
    def mapped(self) -> int:
        """Entries pte_present() says are present (valid, or PROT_NONE)."""
        return self.present - self.swapped

    def state(self) -> str:
        return PRIORITY[self.rank]

    @property
    def all_cont(self) -> bool:
        return self.valid > 0 and self.cont == self.valid

    def __add__(self, other: Summary) -> Summary:
        return Summary(min(self.rank, other.rank), self.present + other.present, self.valid + other.valid,
                       self.cont + other.cont, self.total + other.total, self.swapped + other.swapped)


_NONE_RANK = RANK["none"]
_OUT_RANK = RANK["outside"]
_CLEARED_RANK = RANK["cleared"]


def empty_summary(n: int) -> Summary:
    return Summary(_NONE_RANK, 0, 0, 0, n)


@dataclass
class Cell:
    addr: int
    span: int  # descriptors covered
    state: str
    cont: bool
    changed: bool
    raw: int | None = None  # zoom 0 only
    summary: Summary | None = None  # zoom >= 1 only
    outside: bool = False


@dataclass
class RowInfo:
    kind: str  # "header" | "data"
    region: Region
    region_index: int
    addr: int = 0  # first VA of a data row


def _fmt_size(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << (shift - 4)) == 0:
            v = n / (1 << shift)
            return f"{v:g}{unit}"
    return f"{n}B" if n < 1024 else f"{n / 1024:.1f}K"


def fmt_size(n: int) -> str:
    return _fmt_size(n)


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


def writes_of(events: Iterable[tuple]) -> Iterable[tuple[str, int]]:
    """(process, VA) of every descriptor write in events."""
    for ev in events:
        k = ev[0]
        if k == "pte_write" or k == "pmd_write":
            yield ev[5], ev[1]
        elif k == "hw_update":
            yield ev[4], ev[1]


@dataclass
class _TableSummary:
    blocks: list[Summary]
    total: Summary


@dataclass
class ViewState:
    """Session facts at one position, gathered by whoever moved the session."""

    overlay: dict[tuple[str, int], int] = field(default_factory=dict)
    changed: set[tuple[str, int]] = field(default_factory=set)


class GridModel:
    def __init__(self, machine: MachineContract, process: str | None = None, *, zoom: int = 0,
                 width: int = 80, breakpoints: Iterable[int] = ()):
        self.machine = machine
        arch = machine.arch
        self.g = arch.g
        self.layout = arch.layout
        self.cont_ptes = self.g.cont_ptes
        self.page_size = self.g.page_size
        self.page_shift = self.g.page_shift
        self.ptrs = self.g.ptrs_per_pte
        self.pmd_shift = self.g.pmd_shift
        self.addr_mask = self.g.pte_addr_low
        self.cont_mask = self.g.cont_pte_mask
        self.classify = Classifier(self.layout, self.addr_mask)
        procs = machine.process_list()
        self.process = process if process is not None else (procs[0].name if procs else "")
        self.zoom = max(0, min(MAX_ZOOM, zoom))
        self.width = width
        self.view = ViewState()
        self.exact: MachineContract | None = None  # the machine at the exact mid-op position (tui.exact)
        self._overlay: dict[int, int] = {}  # VA -> value, this process
        self._overlay_tables: set[int] = set()
        self._changed: set[int] = set()
        self._changed_cells: set[int] = set()
        self.marked: set[int] = set()  # VAs tagged "diff" (comparison screen)
        self._marked_cells: set[int] = set()
        self.block_breakpoints: set[int] = set(breakpoints)  # block start VAs
        self.empty_hint = "nothing is mapped at this step  (n: step, r: run to the end)"
        self.generation = 0  # bumped by any change of what the rows show
        self.layout_gen = 0  # bumped when rows move: geometry, zoom, process, regions
        self._tcache: dict[int, _TableSummary] = {}  # live tables
        self._ocache: dict[int, _TableSummary] = {}  # tables patched by the overlay, this view
        self.regions: list[Region] = []
        self._row_starts: list[int] = []
        self.n_rows = 0
        self._geometry()
        self.refresh_regions()

    # --- geometry ---------------------------------------------------------------------
    def _geometry(self) -> None:
        room = self.width - GUTTER - TAIL - 2
        fit = max(8, room // 2)
        p2 = 1 << (fit.bit_length() - 1)
        tight = False
        if self.zoom == 0:
            self.ptes_per_cell = 1
            self.cells_per_row = min(self.cont_ptes, p2, 64)
            want = self.cont_ptes
            if want <= 64 and self.cells_per_row < want and room >= want:
                # a narrow pane (80 columns): a whole block on one row, cells side by side
                self.cells_per_row, tight = want, True
        else:
            self.ptes_per_cell = self.cont_ptes * (16 ** (self.zoom - 1))
            self.cells_per_row = min(p2, 32)
        # wide panes: more room between cells (joiners and folio edges get longer)
        self.sep = 0 if tight else max(1, min(3, (room // self.cells_per_row) - 1))
        self.cell_bytes = self.ptes_per_cell * self.page_size
        self.row_bytes = self.cell_bytes * self.cells_per_row
        self.rows_per_block = max(1, self.cont_ptes // self.cells_per_row) if self.zoom == 0 else 1

    @property
    def cell_width(self) -> int:
        """Columns per cell: the glyph and the separator after it."""
        return 1 + self.sep

    @property
    def row_width(self) -> int:
        return GUTTER + 2 + self.cell_width * self.cells_per_row - self.sep + TAIL

    def col_at(self, x: int) -> int:
        """The cell under column x of a row."""
        return max(0, min(self.cells_per_row - 1, (x - GUTTER - 1) // self.cell_width))

    def set_width(self, width: int) -> bool:
        """The pane's width changed; True if the row layout changed."""
        old = (self.cells_per_row, self.ptes_per_cell, self.sep)
        self.width = width
        self._geometry()
        if (self.cells_per_row, self.ptes_per_cell, self.sep) != old:
            self._layout_rows()
            self._recompute_changed_cells()
            self.generation += 1
            self.layout_gen += 1
            return True
        return False

    def set_zoom(self, zoom: int) -> bool:
        zoom = max(0, min(MAX_ZOOM, zoom))
        if zoom == self.zoom:
            return False
        self.zoom = zoom
        self._geometry()
        self._layout_rows()
        self._recompute_changed_cells()
        self.generation += 1
        self.layout_gen += 1
        return True

    def zoom_label(self) -> str:
        if self.zoom == 0:
            return "1 PTE/cell"
        return f"{self.ptes_per_cell} PTEs/cell ({_fmt_size(self.cell_bytes)})"

    def refresh_regions(self) -> None:
        proc = self._proc()
        old = self.regions
        if proc is None:
            self.regions = []
        else:
            self.regions = regions_of(proc, self.g, self._overlay)
        if self.regions != old:
            self.layout_gen += 1
        self._layout_rows()

    def _layout_rows(self) -> None:
        starts = []
        n = 0
        rb = self.row_bytes
        for r in self.regions:
            starts.append(n)
            first = r.start - r.start % rb
            last = -(-r.end // rb) * rb
            n += 1 + (last - first) // rb
        self._row_starts = starts
        self.n_rows = n

    def _proc(self) -> MachineProcess | None:
        for p in self.machine.process_list():
            if p.name == self.process:
                return p
        return None

    def processes(self) -> list[str]:
        return [p.name for p in self.machine.process_list()]

    def alive(self, name: str | None = None) -> bool:
        """The process has not exited (a machine without the notion: always)."""
        name = self.process if name is None else name
        p = next((q for q in self.machine.process_list() if q.name == name), None)
        return p is not None and p.alive

    def set_process(self, name: str) -> None:
        if name == self.process:
            return
        self.process = name
        self._tcache.clear()
        self._apply_view()
        self.refresh_regions()
        self.generation += 1
        self.layout_gen += 1

    def row_info(self, row: int) -> RowInfo | None:
        if not 0 <= row < self.n_rows:
            return None
        i = bisect_right(self._row_starts, row) - 1
        r = self.regions[i]
        j = row - self._row_starts[i]
        if j == 0:
            return RowInfo("header", r, i)
        rb = self.row_bytes
        return RowInfo("data", r, i, r.start - r.start % rb + (j - 1) * rb)

    def region_at(self, addr: int) -> int | None:
        starts = [r.start for r in self.regions]
        i = bisect_right(starts, addr) - 1
        if i >= 0 and self.regions[i].contains(addr):
            return i
        return None

    def nearest_region(self, addr: int) -> int | None:
        if not self.regions:
            return None
        best = min(range(len(self.regions)), key=lambda i: 0 if self.regions[i].contains(addr) else min(
            abs(self.regions[i].start - addr), abs(self.regions[i].end - 1 - addr)))
        return best

    def locate(self, addr: int) -> tuple[int, int] | None:
        """(row, col) of the cell showing addr, or None if addr is in no region."""
        i = self.region_at(addr)
        if i is None:
            return None
        r = self.regions[i]
        rb = self.row_bytes
        first = r.start - r.start % rb
        row = self._row_starts[i] + 1 + (addr - first) // rb
        col = (addr % rb) // self.cell_bytes
        return row, col

    def cell_addr(self, row: int, col: int) -> int | None:
        info = self.row_info(row)
        if info is None or info.kind != "data":
            return None
        col = max(0, min(self.cells_per_row - 1, col))
        return info.addr + col * self.cell_bytes

    def data_row(self, row: int, direction: int = 1) -> int:
        """The nearest data row from row in direction (header rows are skipped)."""
        if self.n_rows == 0:
            return 0
        row = max(0, min(self.n_rows - 1, row))
        step = 1 if direction >= 0 else -1
        r = row
        while 0 <= r < self.n_rows:
            info = self.row_info(r)
            if info is not None and info.kind == "data":
                return r
            r += step
        # nothing that way: the other way
        r = row
        while 0 <= r < self.n_rows:
            info = self.row_info(r)
            if info is not None and info.kind == "data":
                return r
            r -= step
        return row

    # --- the view at a session position -------------------------------------------------
    def set_view(self, view: ViewState, dirty: Iterable[tuple[str, int]] | None) -> None:
        """A new session position. ``dirty``: descriptors whose *live* (op-boundary)
        value may differ from the previous view, or None if unknown (drop every
        cached summary)."""
        self.view = view
        self.exact = None  # a new position: the screen sets it again once computed
        if dirty is None:
            self._tcache.clear()
        else:
            shift = self.pmd_shift
            me = self.process
            for proc, addr in dirty:
                if proc == me:
                    self._tcache.pop(addr >> shift, None)
        self._apply_view()
        self.refresh_regions()
        self.generation += 1

    def invalidate(self) -> None:
        self._tcache.clear()
        self._ocache.clear()
        self.refresh_regions()
        self.generation += 1

    def _apply_view(self) -> None:
        me = self.process
        self._overlay = {a: v for (p, a), v in self.view.overlay.items() if p == me}
        shift = self.pmd_shift
        self._overlay_tables = {a >> shift for a in self._overlay}
        self._ocache = {}
        self._changed = {a for p, a in self.view.changed if p == me}
        self._recompute_changed_cells()

    def _recompute_changed_cells(self) -> None:
        cb = self.cell_bytes
        self._changed_cells = {a // cb for a in self._changed}
        self._marked_cells = {a // cb for a in self.marked}

    def set_marked(self, addrs: Iterable[tuple[str, int]]) -> None:
        """Entries to tag "diff" (process, VA); only this process's are shown."""
        self.marked = {a for p, a in addrs if p == self.process}
        self._recompute_changed_cells()
        self.generation += 1

    # --- reading descriptors -------------------------------------------------------------
    def live(self, addr: int) -> int:
        proc = self._proc()
        if proc is None:
            return 0
        return proc.mm.pt.get(addr) or self.pmd_leaf(addr)

    def raw(self, addr: int) -> int:
        """The descriptor as shown (mid-op overlay applied)."""
        v = self._overlay.get(addr)
        return v if v is not None else self.live(addr)

    def pmd_leaf(self, addr: int) -> int:
        """The PMD leaf (huge-page block descriptor) mapping addr, 0 if none."""
        proc = self._proc()
        if proc is None:
            return 0
        return proc.mm.pt.pmd_leaves.get(addr >> self.pmd_shift, 0)

    def entries(self, addr: int, n: int) -> list[int]:
        """n consecutive descriptors from addr (within one PTE table), overlay applied.
        Under a PMD leaf every slot holds the PMD descriptor (state "pmd")."""
        proc = self._proc()
        t = None if proc is None else proc.mm.pt.tables.get(addr >> self.pmd_shift)
        i = (addr >> self.page_shift) & (self.ptrs - 1)
        if t is None:
            leaf = self.pmd_leaf(addr)
            vals = [leaf] * n
        else:
            vals = list(t[i:i + n])
        if self._overlay and (addr >> self.pmd_shift) in self._overlay_tables:
            ps = self.page_size
            for j in range(n):
                v = self._overlay.get(addr + j * ps)
                if v is not None:
                    vals[j] = v
        return vals

    def state_of(self, addr: int, raw: int) -> str:
        if raw == 0 and addr in self._overlay and self.live(addr) != 0:
            return "cleared"
        if raw and raw == self.pmd_leaf(addr) and addr not in self._overlay:
            return "pmd"
        return self.classify(raw)

    def block_start(self, addr: int) -> int:
        return addr & self.cont_mask

    def block(self, addr: int) -> list[int]:
        return self.entries(self.block_start(addr), self.cont_ptes)

    def foldable(self, start: int) -> bool:
        """The block at start (as shown) passes every fold check but is not folded (the
        grid's ◇ mark). Cheap first: only a block of valid, non-CONT entries is explained."""
        vals = self.entries(start, self.cont_ptes)
        for v in vals:
            if not v & _VALID or v & _CONT:
                return False
        proc = self._proc()
        if proc is None or self.pmd_leaf(start):
            return False
        from engine.explain import explain_block

        try:
            return explain_block(self.detail.arch, proc.mm, start, entries=vals).foldable
        except Exception:  # noqa: BLE001 - a mark is never worth a crash
            return False

    @property
    def detail(self) -> Any:
        """Where folios are read: the machine at the exact mid-op event once known
        (``exact``, set by the screen), else the session's machine."""
        return self.exact if self.exact is not None else self.machine

    def set_exact(self, machine: MachineContract | None) -> None:
        if machine is not self.exact:
            self.exact = machine
            self.generation += 1

    def folio_of(self, pfn: int) -> tuple[int, int]:
        return self.detail.arch.folios.folio_of(pfn)

    # --- summaries ----------------------------------------------------------------------
    def _summarise(self, key: int) -> _TableSummary:
        patched = key in self._overlay_tables
        cache = self._ocache if patched else self._tcache
        ts = cache.get(key)
        if ts is not None:
            return ts
        proc = self._proc()
        t = None if proc is None else proc.mm.pt.tables.get(key)
        n = self.cont_ptes
        if t is None and not patched:
            leaf = self.pmd_leaf(key << self.pmd_shift)
            if leaf:  # a PMD leaf: every slot "pmd", valid if the block descriptor is
                v = 1 if leaf & _VALID else 0
                leaf_summary = Summary(RANK["pmd"], n, n * v, 0, n)
                ts = _TableSummary([leaf_summary] * (self.ptrs // n),
                                   Summary(RANK["pmd"], self.ptrs, self.ptrs * v, 0, self.ptrs))
            else:
                ts = _TableSummary([empty_summary(n)] * (self.ptrs // n), empty_summary(self.ptrs))
            cache[key] = ts
            return ts
        vals = [0] * self.ptrs if t is None else list(t)
        cleared: set[int] = set()
        if patched:
            base = key << self.pmd_shift
            ps_shift = self.page_shift
            for a, v in self._overlay.items():
                if a >> self.pmd_shift == key:
                    i = (a - base) >> ps_shift
                    if v == 0 and vals[i] != 0:
                        cleared.add(i)
                    vals[i] = v
        classify = self.classify
        present = self.layout.pte_present
        rank = RANK
        blocks = []
        tot = empty_summary(0)
        for b in range(0, self.ptrs, n):
            chunk = vals[b:b + n]
            zeros = chunk.count(0)
            if zeros == n and not cleared:
                s = empty_summary(n)
            else:
                r = _NONE_RANK if zeros else _OUT_RANK
                valid = cont = swapped = 0
                for v in chunk:
                    if v:
                        x = rank[classify(v)]
                        if x < r:
                            r = x
                        if v & _VALID:
                            valid += 1
                            if v & _CONT:
                                cont += 1
                        elif not present(v):
                            swapped += 1
                if cleared and any(b <= i < b + n for i in cleared):
                    r = min(r, _CLEARED_RANK)
                s = Summary(r, n - zeros, valid, cont, n, swapped)
            blocks.append(s)
            tot = tot + s
        ts = _TableSummary(blocks, tot)
        cache[key] = ts
        return ts

    def summary(self, start: int, n_ptes: int) -> Summary:
        """Aggregate of n_ptes descriptors from start (n_ptes: a power of two, a
        multiple of CONT_PTES; start aligned to it)."""
        n = self.cont_ptes
        if n_ptes < n:
            vals = self.entries(start, n_ptes)
            r = _NONE_RANK
            valid = cont = swapped = 0
            ps = self.page_size
            for j, v in enumerate(vals):
                x = RANK[self.state_of(start + j * ps, v)]
                r = min(r, x)
                if v & _VALID:
                    valid += 1
                    cont += bool(v & _CONT)
                elif v and not self.layout.pte_present(v):
                    swapped += 1
            return Summary(r, n_ptes - vals.count(0), valid, cont, n_ptes, swapped)
        shift = self.pmd_shift
        if n_ptes >= self.ptrs:
            first = start >> shift
            tot = empty_summary(0)
            for key in range(first, first + n_ptes // self.ptrs):
                tot = tot + self._summarise(key).total
            return tot
        ts = self._summarise(start >> shift)
        i = ((start >> self.page_shift) & (self.ptrs - 1)) // n
        tot = empty_summary(0)
        for s in ts.blocks[i:i + n_ptes // n]:
            tot = tot + s
        return tot

    def cell_summary(self, addr: int, region: Region | None = None) -> Summary:
        """The summary a zoomed-out cell at addr shows: only the descriptors of its own
        region (a cell straddling a region's edge never counts a neighbour's entries)."""
        cb = self.cell_bytes
        if region is None:
            i = self.region_at(addr)
            if i is None:
                i = self.region_at(addr + cb - 1)
            region = self.regions[i] if i is not None else None
        if region is None or (region.start <= addr and addr + cb <= region.end):
            return self.summary(addr, self.ptes_per_cell)
        lo, hi = max(addr, region.start), min(addr + cb, region.end)
        if hi <= lo:
            return empty_summary(0)
        return self.count_range(lo, hi)

    def count_range(self, start: int, end: int) -> Summary:
        """Aggregate of every descriptor in [start, end) (page aligned)."""
        ps = self.page_size
        tb = self.ptrs * ps
        tot = empty_summary(0)
        a = start
        while a < end:
            if a % tb == 0 and a + tb <= end:
                tot = tot + self._summarise(a >> self.pmd_shift).total
                a += tb
                continue
            bb = self.cont_ptes * ps
            if a % bb == 0 and a + bb <= end:
                ts = self._summarise(a >> self.pmd_shift)
                tot = tot + ts.blocks[((a >> self.page_shift) & (self.ptrs - 1)) // self.cont_ptes]
                a += bb
                continue
            nxt = min(end, (a // bb + 1) * bb)
            tot = tot + self.summary_small(a, (nxt - a) // ps)
            a = nxt
        return tot

    def summary_small(self, start: int, n: int) -> Summary:
        vals = self.entries(start, n)
        r = _NONE_RANK
        valid = cont = swapped = 0
        for v in vals:
            if v:
                r = min(r, RANK[self.classify(v)])
                if v & _VALID:
                    valid += 1
                    cont += bool(v & _CONT)
                elif not self.layout.pte_present(v):
                    swapped += 1
        return Summary(r, n - vals.count(0), valid, cont, n, swapped)

    # --- cells and rows ------------------------------------------------------------------------
    def cells(self, row: int) -> list[Cell]:
        info = self.row_info(row)
        if info is None or info.kind != "data":
            return []
        reg = info.region
        out = []
        cb = self.cell_bytes
        if self.zoom == 0:
            vals = self.entries(info.addr, self.cells_per_row)
            ps = self.page_size
            for j, v in enumerate(vals):
                a = info.addr + j * ps
                if not reg.contains(a):
                    out.append(Cell(a, 1, "outside", False, False, v, outside=True))
                    continue
                out.append(Cell(a, 1, self.state_of(a, v), is_cont(v, self.layout),
                                a in self._changed, v))
            return out
        for j in range(self.cells_per_row):
            a = info.addr + j * cb
            if a + cb <= reg.start or a >= reg.end:
                out.append(Cell(a, self.ptes_per_cell, "outside", False, False, outside=True))
                continue
            s = self.cell_summary(a, reg)
            out.append(Cell(a, self.ptes_per_cell, s.state(), s.all_cont, (a // cb) in self._changed_cells,
                            summary=s))
        return out

    def _pfn(self, raw: int) -> int:
        return (raw & self.addr_mask) >> self.page_shift

    def _boundaries(self, cells: list[Cell]) -> list[bool]:
        """Folio boundary between cell j and j+1 (zoom 0, both present, at least
        one of them in a large folio)."""
        out = [False] * len(cells)
        prev = None
        for j, c in enumerate(cells):
            cur = None
            if c.raw and c.raw & _VALID and not c.outside:
                pfn = self._pfn(c.raw)
                cur = self.folio_of(pfn)
            if j and prev is not None and cur is not None and prev != cur and (prev[1] > 1 or cur[1] > 1):
                out[j - 1] = True
            prev = cur
        return out

    def row_segments(self, row: int, cursor_col: int = -1) -> list[Segment]:
        """The row as (text, tags) segments; cursor_col marks the selected cell."""
        info = self.row_info(row)
        if info is None:
            return []
        if info.kind == "header":
            return self._header_segments(info)
        cells = self.cells(row)
        segs: list[Segment] = []
        # gutter: breakpoint mark, VA, block bracket
        bstart = self.block_start(info.addr)
        bps = self.block_breakpoints
        bp = bool(bps) and (bstart in bps or any(info.addr <= b < info.addr + self.row_bytes for b in bps))
        segs.append(("●" if bp else " ", ("bp",) if bp else ("gutter",)))
        segs.append((f"{info.addr:012x}", ("gutter",)))
        if self.zoom == 0 and self.rows_per_block > 1:
            k = (info.addr - bstart) // self.row_bytes
            br = "┌" if k == 0 else ("└" if k == self.rows_per_block - 1 else "│")
        else:
            br = " "
        segs.append((br, ("gutter",)))
        whole_cont = bool(cells) and all(c.cont and c.state not in ("none", "outside") for c in cells)
        segs.append(("[" if whole_cont else " ", ("cont",) if whole_cont else ("gutter",)))
        bounds = self._boundaries(cells) if self.zoom == 0 else [False] * len(cells)
        n = len(cells)
        sep = self.sep
        joins = self.zoom == 0  # zoomed out, cells are different blocks: never joined
        for j, c in enumerate(cells):
            tags: tuple[str, ...] = (c.state,)
            if c.cont and c.state != "outside":
                tags += ("cont",)
            if c.changed:
                tags += ("changed",)
            if self._marked_cells and (c.addr // self.cell_bytes) in self._marked_cells:
                tags += ("diff",)
            if j == cursor_col:
                tags += ("cursor",)
            segs.append((glyph(c.state, c.cont and c.state not in ("outside", "none")), tags))
            if j == n - 1:
                break
            if not sep:  # cells side by side (a narrow pane): no joiners, no edges
                continue
            nxt = cells[j + 1]
            if joins and c.cont and nxt.cont and c.state != "outside" and nxt.state != "outside":
                segs.append(("━" * sep, ("cont",)))
            elif bounds[j]:
                half = (sep - 1) // 2
                segs.append((" " * half + "│" + " " * (sep - 1 - half), ("boundary",)))
            else:
                segs.append((" " * sep, ("gutter",)))
        segs.append(("]" if whole_cont else " ", ("cont",) if whole_cont else ("gutter",)))
        segs.extend(self._tail(info, cells))
        return segs

    def _tail(self, info: RowInfo, cells: list[Cell]) -> list[Segment]:
        n_changed = sum(1 for c in cells if c.changed)
        text = ""
        if self.zoom == 0:
            first = next((c for c in cells if c.raw and c.raw & _VALID), None)
            if first is not None and first.raw is not None:
                _, nr = self.folio_of(self._pfn(first.raw))
                text = f"o{nr.bit_length() - 1}"
            last_row = (info.addr - self.block_start(info.addr)) // self.row_bytes == self.rows_per_block - 1
            if last_row and self.foldable(self.block_start(info.addr)):
                return [(" " + text.ljust(3)[:3], ("tail",)), ("◇", ("foldable",)),
                        (f"*{n_changed}".ljust(TAIL - 5)[:TAIL - 5] if n_changed else " " * (TAIL - 5),
                         ("changed",) if n_changed else ("tail",))]
        else:
            valid = sum(c.summary.valid for c in cells if c.summary)
            cont = sum(c.summary.cont for c in cells if c.summary)
            if valid:
                text = f"{100 * cont // valid}%"
        segs: list[Segment] = [(" " + text.ljust(4)[:4], ("tail",))]
        mark = f"*{n_changed}" if n_changed else ""
        segs.append((mark.ljust(TAIL - 5)[:TAIL - 5], ("changed",) if n_changed else ("tail",)))
        return segs

    def _header_segments(self, info: RowInfo) -> list[Segment]:
        r = info.region
        text = f"▸ {r.name}  {r.start:x}-{r.end:x}  {_fmt_size(r.size)}"
        if r.detail:
            text += f"  {r.detail}"
        return [(" ", ("gutter",)), (text, ("header",))]

    def row_signature(self, row: int, cursor_col: int = -1) -> tuple | None:
        """A cheap key that changes whenever row_segments(row) may change (zoom 0), or
        None when there is none cheaper than the segments themselves."""
        if self.zoom != 0:
            return None
        info = self.row_info(row)
        if info is None or info.kind != "data":
            return None
        folios = self.detail.arch.folios
        try:
            nfolios = len(folios)  # any folio added, split or freed changes boundaries
        except TypeError:
            return None
        a = info.addr
        n = self.cells_per_row
        ps = self.page_size
        ch = self._changed
        mk = self.marked
        ov = self._overlay
        bps = self.block_breakpoints
        return (a, cursor_col, nfolios, id(self.exact), tuple(self.entries(a, n)),
                tuple(a + j * ps in ov for j in range(n)) if ov else (),
                tuple(a + j * ps in ch for j in range(n)) if ch else (),
                tuple(a + j * ps in mk for j in range(n)) if mk else (),
                self.block_start(a) in bps if bps else False,
                tuple(sorted(b for b in bps if a <= b < a + self.row_bytes)) if bps else (),
                info.region)

    def row_text(self, row: int, cursor_col: int = -1) -> str:
        return "".join(t for t, _ in self.row_segments(row, cursor_col))
