# SPDX-License-Identifier: GPL-2.0-only
"""What the PTE grid shows, as plain data: rows of glyphs with style tags.

No Textual here: :class:`GridModel` is given a machine (the contract of
engine.contract: it reads ``.arch`` and ``process_list()``), the process to show and the view of the
current session position (mid-op overlay, descriptors written by the last
step), and answers "what is on row N" as a list of ``(text, tags)``
segments. The widget (``tui.widgets.pte_grid``) only maps tags to theme
styles and caches strips; tests drive this class without an app.

The model reads descriptors (the overlay applied) and builds cells and rows
from them. Its parts, each in its own module: the regions it shows
(``tui.grid_regions``), how regions become rows and rows cells
(``tui.grid_geometry``), and what a zoomed-out cell or a range sums up to
(``tui.grid_summaries``).

Cost
----
Only asked-for rows are built. Summaries (per block, per PTE table) are
computed lazily from the live tables and cached; :meth:`GridModel.set_view`
drops only the tables written between the old and the new position when the
caller knows them (one step), everything otherwise. The mid-op overlay only
ever touches a few tables, which are summarised per view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.pte import PTE_CONT, PTE_VALID
from tui.grid_geometry import MAX_ZOOM, TAIL, GridGeometry, RowInfo
from tui.grid_regions import Region, fmt_size, regions_of
from tui.grid_summaries import GridSummaries, Summary
from tui.legend import Classifier, glyph, is_cont

if TYPE_CHECKING:
    from engine.contract import MachineContract, MachineProcess

# (text, tags): tags name legend states / marks; the widget turns them into styles.
Segment = tuple[str, tuple[str, ...]]


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
class ViewState:
    """Session facts at one position, gathered by whoever moved the session."""

    overlay: dict[tuple[str, int], int] = field(default_factory=dict)
    changed: set[tuple[str, int]] = field(default_factory=set)


class GridModel(GridGeometry, GridSummaries):
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
        self._tcache = {}  # summaries of live tables (tui.grid_summaries)
        self._ocache = {}  # summaries of tables patched by the overlay, this view
        self.regions: list[Region] = []
        self._row_starts: list[int] = []
        self.n_rows = 0
        self._geometry()
        self.refresh_regions()

    # --- what is shown: width, zoom, regions, process ---------------------------------
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

    def _proc(self) -> MachineProcess | None:
        for p in self.machine.process_list():
            if p.name == self.process:
                return p
        return None

    def processes(self) -> list[str]:
        return [p.name for p in self.machine.process_list()]

    def alive(self, name: str | None = None) -> bool:
        """The process has not exited."""
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
            if not v & PTE_VALID or v & PTE_CONT:
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
    def detail(self) -> MachineContract:
        """Where folios are read: the machine at the exact mid-op event once known
        (``exact``, set by the screen), else the session's machine."""
        return self.exact if self.exact is not None else self.machine

    def set_exact(self, machine: MachineContract | None) -> None:
        if machine is not self.exact:
            self.exact = machine
            self.generation += 1

    def folio_of(self, pfn: int) -> tuple[int, int]:
        return self.detail.arch.folios.folio_of(pfn)

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
            if c.raw and c.raw & PTE_VALID and not c.outside:
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
            first = next((c for c in cells if c.raw and c.raw & PTE_VALID), None)
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
        text = f"▸ {r.name}  {r.start:x}-{r.end:x}  {fmt_size(r.size)}"
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
