# SPDX-License-Identifier: GPL-2.0-only
"""The inspector: everything about the selected entry (tui.inspect_model).

A Line-API ScrollView over pre-rendered strips: new content never triggers
a layout pass of the screen (which would repaint every pane), it only
repaints this pane.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui import legend
from tui.inspect_model import EXPLAIN, Line, inspect, plain
from tui.widgets.scrolling import set_virtual_size

if TYPE_CHECKING:
    from engine.contract import MachineContract
    from tui.grid_model import GridModel

_OWN = ("label", "section", "dim", "value", "on")


def _is_row(line: Any) -> bool:
    return bool(line) and line[0][1] == ("label",)


def _hangs(line: Any) -> bool:
    """A first segment that is a prefix (blank or short, then text): "  • ", "  note: "."""
    if len(line) < 2:
        return False
    head = line[0][0]
    return 0 < len(head) <= 12 and (not head.strip() or head.endswith(" ")) and head.startswith(" ")


class Inspector(ScrollView, can_focus=True):
    COMPONENT_CLASSES = legend.component_classes("ptegrid") | {f"insp--{n}" for n in _OWN}
    DEFAULT_CSS = """
    Inspector { background: $surface; scrollbar-size-vertical: 1; }
    Inspector > .insp--label { color: $foreground 60%; }
    Inspector > .insp--section { color: $text-accent; text-style: bold; }
    Inspector > .insp--dim { color: $foreground 55%; }
    Inspector > .insp--value { color: $text-primary; text-style: bold; }
    Inspector > .insp--on { color: $foreground; text-style: bold; }
    """ + legend.tcss("Inspector", "ptegrid")
    BINDINGS = [
        Binding("up,k", "scroll_up", "up", show=False),
        Binding("down,j", "scroll_down", "down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
    ]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.lines: list[Line] = []
        self.addr: int | None = None
        self._strips: list[Strip] = []
        self._width = 0
        # (line, width) -> its strips: a step usually changes a few of the inspector's lines
        self._cache: dict[tuple, list[Strip]] = {}

    @property
    def text(self) -> str:
        """Plain text of what is shown (tests, screen readers)."""
        return plain(self.lines)

    def _style(self, tags: tuple[str, ...]) -> Style:
        st = Style()
        for t in tags:
            name = f"insp--{t}" if t in _OWN else f"ptegrid--{t}"
            with contextlib.suppress(KeyError):
                st += self.get_component_rich_style(name, partial=True)
        return st

    def show(self, model: GridModel | None, addr: int | None, *, since: str | None = None,
             history: Any = None, mid_op: bool = False,
             header_row: Any = None, explanation: Any = EXPLAIN, machine: MachineContract | None = None,
             region: Any = None) -> None:
        self.addr = addr
        lines: list[Line]
        if model is None:
            lines = [[("no session", ("dim",))]]
        else:
            lines = inspect(model, addr, since=since, mid_op=mid_op, header_row=header_row,
                            explanation=explanation, machine=machine, region=region, history=history)
        if lines == self.lines and self._strips and self._width == self._content_width():
            return  # nothing new to show (a step elsewhere, the same entry)
        self.lines = lines
        self._rerender()

    def _text(self, segs: list) -> Text:
        text = Text(no_wrap=False, overflow="fold")
        for t, tags in segs:
            text.append(t, self._style(tags) if tags else None)
        return text

    def _parts(self) -> list[tuple[int, tuple]]:
        """(width of the first column, segments) per line, hashable (the render cache's keys).

        A key/value line is a row whose first column fits the longest key of the whole
        inspection (so "swp_offset" is not cut to "swp_offse"); a line that opens with a short
        prefix ("  • ", "  note: ", an indent) hangs its text after the prefix, so it wraps
        under itself; 0: a plain line."""
        keys = [len(line[0][0].rstrip()) for line in self.lines if _is_row(line)]
        label_w = max([9, *keys]) + 1
        out = []
        for line in self.lines:
            if _is_row(line):
                out.append((label_w, tuple(line)))
            elif _hangs(line):  # (an indent as wide as a key lines up with the values)
                n = len(line[0][0])
                out.append((label_w if 9 <= n <= label_w else n, tuple(line)))
            else:
                out.append((0, tuple(line)))
        return out

    def _render_part(self, part: tuple[int, tuple], width: int) -> list[Strip]:
        """One line's strips. A row is one row of a two-column table (the value wraps under
        itself, at spaces between tokens; a token wider than the column is folded); the
        columns' widths do not depend on the other rows, so rendering row by row gives the
        lines the whole table gives."""
        strips = self._cache.get((part, width))
        if strips is not None:
            return strips
        first, segs = part
        if first and first < width - 8:
            table = Table(box=None, show_header=False, padding=0, expand=True)
            table.add_column(width=first, no_wrap=True)
            table.add_column(ratio=1, overflow="fold")
            table.add_row(self._text([segs[0]]), self._text(list(segs[1:])))
            renderable: Any = table
        else:
            renderable = self._text(list(segs))
        console = self.app.console
        base = self.rich_style
        pad = Segment(" ", base)
        strips = [Strip([pad, *line, pad]).simplify()
                  for line in console.render_lines(renderable, console.options.update_width(width),
                                                   style=base, pad=True)]
        if len(self._cache) >= 512:
            self._cache.clear()
        self._cache[(part, width)] = strips
        return strips

    def _content_width(self) -> int:
        return max(10, self.size.width - 1 - 2)  # scrollbar, one column of padding each side

    def _rerender(self) -> None:
        if not self.is_mounted or not self.size.width:
            return
        width = self._content_width()
        self._width = width
        self._strips = [strip for part in self._parts() for strip in self._render_part(part, width)]
        set_virtual_size(self, Size(width + 2, len(self._strips)))
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self.lines:
            self._rerender()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        if self.lines and self.is_mounted:
            self.call_later(self._rerender)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        i = scroll_y + y
        if i >= len(self._strips):
            return Strip.blank(width, self.rich_style)
        return self._strips[i].crop_extend(scroll_x, scroll_x + width, self.rich_style)
