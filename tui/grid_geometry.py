# SPDX-License-Identifier: GPL-2.0-only
"""The PTE grid's geometry: how regions become rows and rows become cells.

Each region (``tui.grid_regions``) gets a header row followed by data rows.
At zoom 0 one cell is one descriptor and a row is one contiguous block
(CONT_PTES cells; 16K's 128-entry blocks -- or any block when the pane is
narrow -- wrap over several rows, bracketed in the gutter). At zoom
``z >= 1`` a cell covers ``CONT_PTES * 16**(z-1)`` descriptors. The pane's
width decides the cells per row and the room between them.

:class:`GridGeometry` is mixed into :class:`tui.grid_model.GridModel`, which
sets the granule's sizes, the zoom, the width and the regions; this module
only computes from them (row <-> address, column <-> cell), reading no
descriptor.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from tui.grid_regions import Region, fmt_size

MAX_ZOOM = 4
GUTTER = 14  # breakpoint mark, 12 hex digits of VA, block bracket
TAIL = 9  # " o4  *16 ": folio order (zoom 0) or CONT share (zoom > 0), changed count


@dataclass
class RowInfo:
    kind: str  # "header" | "data"
    region: Region
    region_index: int
    addr: int = 0  # first VA of a data row


class GridGeometry:
    """Rows and cells of the grid, from the granule, the zoom, the width and the regions."""

    # set by the model
    cont_ptes: int
    page_size: int
    zoom: int
    width: int
    regions: list[Region]
    # computed here
    ptes_per_cell: int
    cells_per_row: int
    sep: int  # columns between two cells
    cell_bytes: int
    row_bytes: int
    rows_per_block: int
    n_rows: int
    _row_starts: list[int]  # the first row of each region

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

    def zoom_label(self) -> str:
        if self.zoom == 0:
            return "1 PTE/cell"
        return f"{self.ptes_per_cell} PTEs/cell ({fmt_size(self.cell_bytes)})"

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
