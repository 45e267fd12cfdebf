# SPDX-License-Identifier: GPL-2.0-only
"""The PTE grid: one virtual, line-rendered widget (Textual's Line API).

Rows come from :class:`tui.grid_model.GridModel` as (text, tags) segments;
this widget turns tags into theme styles (component classes generated from
the legend table) and renders only the rows on screen. Strips are cached per
(row, cursor column) together with the layout key (zoom, geometry, process,
regions) and the segments they were built from. A new layout drops the cache;
a step (same layout, new content) rebuilds the segments of the visible rows
only and repaints just the rows whose segments differ -- usually one or two,
so a step costs a couple of lines of terminal output, not a screenful.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui import legend
from tui.grid_model import GridModel
from tui.widgets.scrolling import set_virtual_size

PREFIX = "ptegrid"


class PteGrid(ScrollView, can_focus=True):
    """Rows of contiguous blocks; arrows move the cursor, +/- zoom (screen keys)."""

    COMPONENT_CLASSES = legend.component_classes(PREFIX)

    DEFAULT_CSS = """
    PteGrid {
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    """ + legend.tcss("PteGrid", PREFIX)

    BINDINGS = [
        Binding("up,k", "cursor(-1, 0)", "up", show=False),
        Binding("down,j", "cursor(1, 0)", "down", show=False),
        Binding("left,h", "cursor(0, -1)", "left", show=False),
        Binding("right,l", "cursor(0, 1)", "right", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "edge(-1)", "first", show=False),
        Binding("end", "edge(1)", "last", show=False),
        Binding("[", "region(-1)", "prev region", show=False),
        Binding("]", "region(1)", "next region", show=False),
    ]

    cursor_row: var[int] = var(0, init=False)
    cursor_col: var[int] = var(0, init=False)

    class CursorMoved(Message):
        """The selected cell changed (posted on moves, zoom and steps)."""

        def __init__(self, grid: PteGrid, addr: int | None) -> None:
            super().__init__()
            self.grid = grid
            self.addr = addr

        @property
        def control(self) -> PteGrid:
            return self.grid

    def __init__(self, model: GridModel | None = None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model: GridModel | None = model
        # (row, cursor col or -1) -> (layout key, content generation, segments, strip, signature)
        self._rows: dict[tuple[int, int], tuple[tuple, int, list, Strip, tuple | None]] = {}
        self._layout: tuple = ()
        self._content_gen = 0
        self._styles: dict[tuple[str, ...], Style] = {}
        self.cursor_addr: int | None = None
        self.renders = 0  # rows built (not served from cache): for tests and benchmarks
        self._base: Style | None = None  # self.rich_style, which walks the DOM: cached

    # --- model ------------------------------------------------------------------------
    def set_model(self, model: GridModel) -> None:
        self.model = model
        self.cursor_addr = None
        self.model_changed()

    def model_changed(self, keep_addr: bool = True) -> None:
        """The model's content or geometry changed: resize, re-place the cursor, repaint."""
        m = self.model
        if m is None:
            return
        if self.size.width:
            m.set_width(self._content_width())
        set_virtual_size(self, Size(m.row_width, m.n_rows))
        full = self._layout_key() != self._layout
        self._content_gen += 1
        if full:
            self._rows.clear()
        if not (keep_addr and self.cursor_addr is not None and self._place_cursor(self.cursor_addr)):
            row = m.data_row(min(self.cursor_row, max(0, m.n_rows - 1)))
            self._set_cursor(row, min(self.cursor_col, m.cells_per_row - 1))
        if full:
            self._layout = self._layout_key()
            self.refresh()
        else:
            self._repaint_changed_rows()
        self.post_message(self.CursorMoved(self, self.cursor_addr))

    def _layout_key(self) -> tuple:
        m = self.model
        return () if m is None else (m.layout_gen, m.zoom, m.process, m.cells_per_row, m.sep, id(m))

    def _repaint_changed_rows(self) -> None:
        """Same layout, new content: rebuild the visible rows, repaint only those that differ."""
        m = self.model
        if m is None:
            return
        y0 = self.scroll_offset.y
        h = self.scrollable_content_region.height or self.size.height
        for row in range(y0, min(m.n_rows, y0 + h)):
            cur = self.cursor_col if row == self.cursor_row else -1
            old = self._rows.get((row, cur))
            sig = m.row_signature(row, cur)
            if old is not None and old[0] == self._layout and sig is not None and old[4] == sig:
                self._rows[(row, cur)] = (*old[:1], self._content_gen, *old[2:])
                continue
            segs = m.row_segments(row, cur)
            if old is not None and old[0] == self._layout and old[2] == segs:
                self._rows[(row, cur)] = (old[0], self._content_gen, segs, old[3], sig)
                continue
            self._rows[(row, cur)] = (self._layout, self._content_gen, segs, self._strip(segs), sig)
            self.refresh_line(row)
        if len(self._rows) > 4 * max(64, h):
            keep = {k: v for k, v in self._rows.items() if v[1] == self._content_gen}
            self._rows = keep

    def _content_width(self) -> int:
        # the content region less a vertical scrollbar (reserved, so the layout never oscillates)
        return max(20, self.content_region.width - max(1, self.styles.scrollbar_size_vertical))

    def _place_cursor(self, addr: int) -> bool:
        m = self.model
        if m is None:
            return False
        loc = m.locate(addr)
        if loc is None:
            return False
        self._set_cursor(*loc, addr=addr)
        return True

    def _set_cursor(self, row: int, col: int, addr: int | None = None) -> None:
        m = self.model
        old = self.cursor_row
        self.set_reactive(PteGrid.cursor_row, row)
        self.set_reactive(PteGrid.cursor_col, max(0, col))
        self.cursor_addr = addr if addr is not None else (m.cell_addr(row, col) if m else None)
        self.refresh_line(old)
        self.refresh_line(row)
        self.scroll_to_cursor()

    def go_to(self, addr: int) -> bool:
        """Move the cursor to addr; False if addr is in no region."""
        if not self._place_cursor(addr):
            return False
        self.post_message(self.CursorMoved(self, self.cursor_addr))
        return True

    def scroll_to_cursor(self, center: bool = False) -> None:
        h = self.scrollable_content_region.height
        if not h:
            return
        y = self.scroll_offset.y
        r = self.cursor_row
        if center or r < y or r >= y + h:
            target = max(0, r - h // 2) if center or abs(r - y) > h else (r if r < y else r - h + 1)
            self.scroll_to(y=target, animate=False, immediate=True)

    # --- actions ----------------------------------------------------------------------
    def action_cursor(self, drow: int, dcol: int) -> None:
        m = self.model
        if m is None or m.n_rows == 0:
            return
        row, col = self.cursor_row, self.cursor_col
        if dcol:
            col += dcol
            if col < 0:
                prev = m.data_row(row - 1, -1)
                if prev < row:
                    row, col = prev, m.cells_per_row - 1
                else:
                    col = 0
            elif col >= m.cells_per_row:
                nxt = m.data_row(row + 1, 1)
                if nxt > row:
                    row, col = nxt, 0
                else:
                    col = m.cells_per_row - 1
        if drow:
            row = m.data_row(row + drow, drow)
        self._set_cursor(row, col)
        self.post_message(self.CursorMoved(self, self.cursor_addr))

    def action_page(self, direction: int) -> None:
        h = max(1, self.scrollable_content_region.height - 1)
        self.action_cursor(direction * h, 0)

    def action_edge(self, direction: int) -> None:
        m = self.model
        if m is None or m.n_rows == 0:
            return
        row = m.data_row(0, 1) if direction < 0 else m.data_row(m.n_rows - 1, -1)
        self._set_cursor(row, 0 if direction < 0 else m.cells_per_row - 1)
        self.post_message(self.CursorMoved(self, self.cursor_addr))

    def action_region(self, direction: int) -> None:
        m = self.model
        if m is None or not m.regions:
            return
        info = m.row_info(self.cursor_row)
        i = 0 if info is None else info.region_index
        i = max(0, min(len(m.regions) - 1, i + direction))
        self.go_to(m.regions[i].start)

    # --- events -----------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        if self.model is not None and self.model.set_width(self._content_width()):
            self.model_changed()
        elif self.model is not None:
            self.virtual_size = Size(self.model.row_width, self.model.n_rows)

    def on_click(self, event: events.Click) -> None:
        m = self.model
        if m is None:
            return
        row = event.y + self.scroll_offset.y
        x = event.x + self.scroll_offset.x
        if not 0 <= row < m.n_rows:
            return
        info = m.row_info(row)
        if info is None or info.kind != "data":
            row = m.data_row(row, 1)
        col = m.col_at(x)
        self._set_cursor(row, col)
        self.post_message(self.CursorMoved(self, self.cursor_addr))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._rows.clear()
        self._base = None

    @property
    def base_style(self) -> Style:
        if self._base is None:
            self._base = self.rich_style
        return self._base

    # --- rendering --------------------------------------------------------------------
    def _style(self, tags: tuple[str, ...]) -> Style:
        st = self._styles.get(tags)
        if st is None:
            st = self.get_component_rich_style(f"{PREFIX}--{tags[0]}")
            for t in tags[1:]:
                st += self.get_component_rich_style(f"{PREFIX}--{t}", partial=True)
            self._styles[tags] = st
        return st

    def _strip(self, segs: list) -> Strip:
        self.renders += 1
        return Strip([Segment(text, self._style(tags)) for text, tags in segs])

    def row_strip(self, row: int) -> Strip:
        m = self.model
        assert m is not None
        cur = self.cursor_col if row == self.cursor_row else -1
        layout = self._layout_key()
        if layout != self._layout:
            self._rows.clear()
            self._layout = layout
        entry = self._rows.get((row, cur))
        if entry is not None and entry[1] == self._content_gen:
            return entry[3]
        segs = m.row_segments(row, cur)
        if entry is not None and entry[0] == layout and entry[2] == segs:
            strip = entry[3]
        else:
            strip = self._strip(segs)
        self._rows[(row, cur)] = (layout, self._content_gen, segs, strip, m.row_signature(row, cur))
        return strip

    def render_line(self, y: int) -> Strip:
        m = self.model
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.base_style
        if m is None:
            return Strip.blank(width, base)
        row = scroll_y + y
        if m.n_rows == 0 and y == 1:
            hint = "  " + m.empty_hint
            st = base + self.get_component_rich_style(f"{PREFIX}--gutter", partial=True)
            return Strip([Segment(hint, st)]).crop_extend(scroll_x, scroll_x + width, base)
        if row >= m.n_rows:
            return Strip.blank(width, base)
        return self.row_strip(row).crop_extend(scroll_x, scroll_x + width, base)
