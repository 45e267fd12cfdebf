# SPDX-License-Identifier: GPL-2.0-only
"""The address-space pane: processes, their VMAs (or mapped ranges) and a
minimap of mapped and folded density per range. Line API: a new step only
repaints this pane."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.grid_model import GridModel
from tui.grid_regions import fmt_size
from tui.widgets.scrolling import set_virtual_size

BARS = "·▁▂▃▄▅▆▇█"  # · = nothing in that slice
FORGET_ALL_OVER = 4096  # a step that wrote more entries than this redraws every bar
LINES_PER_REGION = 4


def slice_starts(model: GridModel, start: int, end: int, width: int) -> list[int]:
    """The first page (from start) of each of the density bar's equal slices of [start, end)."""
    pages = max(1, (end - start) // model.page_size)
    width = max(1, min(width, pages))
    return [pages * i // width for i in range(width)] + [pages]


def density_bar(model: GridModel, start: int, end: int, width: int,
                only: Iterable[int] | None = None,
                into: list[tuple[float, float]] | None = None) -> list[tuple[float, float]]:
    """(present fraction, CONT fraction of valid) for width equal slices of [start, end);
    with ``only`` (slice numbers) and ``into`` (the bar as it was), just those slices again."""
    ps = model.page_size
    edges = slice_starts(model, start, end, width)
    out = into if into is not None else [(0.0, 0.0)] * (len(edges) - 1)
    for i in range(len(edges) - 1) if only is None else only:
        s = model.count_range(start + edges[i] * ps, start + edges[i + 1] * ps)
        out[i] = (s.mapped / s.total if s.total else 0.0, s.cont / s.valid if s.valid else 0.0)
    return out


def bar_text(fracs: list[float]) -> str:
    return "".join(BARS[0] if f <= 0 else BARS[max(1, min(8, round(f * 8)))] for f in fracs)


class AddressSpace(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"addrspace--mapped", "addrspace--cont", "addrspace--name", "addrspace--dim",
                         "addrspace--selected", "addrspace--current"}
    DEFAULT_CSS = """
    AddressSpace { background: $surface; scrollbar-size-vertical: 1; padding-left: 1; }
    AddressSpace > .addrspace--mapped { color: $text-success; }
    AddressSpace > .addrspace--cont { color: $text-primary; }
    AddressSpace > .addrspace--name { color: $text-accent; text-style: bold; }
    AddressSpace > .addrspace--dim { color: $foreground 60%; }
    AddressSpace > .addrspace--selected { background: $primary-muted; }
    AddressSpace > .addrspace--current { color: $text-accent; }
    """
    BINDINGS = [
        Binding("up,k", "select(-1)", "up", show=False),
        Binding("down,j", "select(1)", "down", show=False),
        Binding("enter", "jump", "jump to range", tooltip="Show the selected range in the PTE grid"),
    ]

    selected: var[int] = var(0, init=False)

    class Jump(Message):
        def __init__(self, addr: int) -> None:
            super().__init__()
            self.addr = addr

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.model: GridModel | None = None
        self._starts: list[int] = []
        self._lines: list[list[tuple[str, str]]] = []  # (text, style name) per line
        self.summary_text = ""
        # (process, start, end, bar width) -> the density bar's slices, and those a step wrote
        # into (only they are counted again: a step writes a few entries of a 1 GiB range)
        self._bars: dict[tuple[str, int, int, int], list[tuple[float, float]]] = {}
        self._stale: dict[tuple[str, int, int, int], set[int]] = {}

    def forget(self, dirty: Any) -> None:
        """Descriptors (process, VA) whose op-boundary value changed; None: all of them."""
        if dirty is None or len(dirty) > FORGET_ALL_OVER:
            self._bars.clear()
            self._stale.clear()
            return
        model = self.model
        if model is None:
            return
        ps = model.page_size
        # a written PMD entry is named by the start of its range: count each write as
        # its whole PMD range (a PTE's is then a slice or two more than needed)
        pmd = 1 << model.pmd_shift
        for key in self._bars:
            proc, start, end, width = key
            spans = [(max(lo, start), min(lo + pmd, end))
                     for lo in {a & -pmd for p, a in dirty if p == proc} if lo < end and lo + pmd > start]
            if spans:
                edges = slice_starts(model, start, end, width)
                stale = self._stale.setdefault(key, set())
                for lo, hi in spans:
                    stale.update(range(bisect_right(edges, (lo - start) // ps) - 1,
                                       bisect_right(edges, (hi - 1 - start) // ps)))

    def _st(self, name: str) -> Style:
        if not name:
            return self.rich_style
        return self.rich_style + self.get_component_rich_style(f"addrspace--{name}", partial=True)

    def update_view(self, model: GridModel | None, current_region: int | None = None) -> None:
        self.model = model
        if not self.is_mounted:
            return
        lines: list[list[tuple[str, str]]] = []
        summary = []
        width = max(6, (self.size.width or 22) - 2)
        if model is None:
            lines.append([("no session", "dim")])
            self._starts = []
        else:
            procs: list[tuple[str, str]] = []
            for n in model.processes():
                if procs:
                    procs.append((" ", ""))
                label = n if model.alive(n) else f"{n} (exited)"
                procs.append((f"[{label}]", "name") if n == model.process else (label, "dim"))
            lines.append(procs)
            for r in model.regions:
                key = (model.process, r.start, r.end, width - 2)  # the bars' width
                dens = self._bars.get(key)
                if dens is None:
                    dens = self._bars[key] = density_bar(model, r.start, r.end, width - 2)
                elif key in self._stale:
                    density_bar(model, r.start, r.end, width - 2, self._stale.pop(key), dens)
                mapped, cont = bar_text([d[0] for d in dens]), bar_text([d[1] for d in dens])
                lines.append([(r.name[: width - 7], "name"), (f" {fmt_size(r.size)}", "dim")])
                lines.append([(f"{r.start:x} {r.detail}"[:width], "dim")])
                lines.append([("m ", "dim"), (mapped, "mapped")])
                lines.append([("c ", "dim"), (cont, "cont")])
                summary.append(f"{r.name} {r.start:x}-{r.end:x} m {mapped} c {cont}")
            self._starts = [r.start for r in model.regions]
        self._lines = lines
        self.summary_text = "\n".join(summary)
        if current_region is not None and self._starts:
            self.set_reactive(AddressSpace.selected, min(current_region, len(self._starts) - 1))
        set_virtual_size(self, Size(width, len(lines)))
        self.refresh()

    def _region_of_line(self, y: int) -> int | None:
        if y < 1 or not self._starts:
            return None
        i = (y - 1) // LINES_PER_REGION
        return i if i < len(self._starts) else None

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        base = self.rich_style
        if row >= len(self._lines):
            return Strip.blank(width, base)
        sel = self._region_of_line(row) == self.selected and self.has_focus
        extra = self.get_component_rich_style("addrspace--selected", partial=True) if sel else None
        segs = []
        for text, st in self._lines[row]:
            style = self._st(st)
            segs.append(Segment(text, style + extra if extra else style))
        return Strip(segs).crop_extend(scroll_x, scroll_x + width, base + extra if extra else base)

    def watch_selected(self) -> None:
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_select(self, delta: int) -> None:
        if self._starts:
            self.selected = max(0, min(len(self._starts) - 1, self.selected + delta))
            self.scroll_to_region_line()

    def scroll_to_region_line(self) -> None:
        y = 1 + self.selected * LINES_PER_REGION
        h = self.scrollable_content_region.height
        if h and not (self.scroll_offset.y <= y < self.scroll_offset.y + h - LINES_PER_REGION):
            self.scroll_to(y=max(0, y - 1), animate=False, immediate=True)

    def action_jump(self) -> None:
        if 0 <= self.selected < len(self._starts):
            self.post_message(self.Jump(self._starts[self.selected]))

    def on_click(self, event: events.Click) -> None:
        i = self._region_of_line(event.y + self.scroll_offset.y)
        if i is not None:
            self.selected = i
            self.action_jump()
