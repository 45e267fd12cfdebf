# SPDX-License-Identifier: GPL-2.0-only
"""The address-space pane: processes, their VMAs (or mapped ranges) and a
minimap of mapped and folded density per range. Line API: a new step only
repaints this pane."""

from __future__ import annotations

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
LINES_PER_REGION = 4


def density_bar(model: GridModel, start: int, end: int, width: int) -> list[tuple[float, float]]:
    """(present fraction, CONT fraction of valid) for width equal slices of [start, end)."""
    ps = model.page_size
    pages = max(1, (end - start) // ps)
    width = max(1, min(width, pages))
    out = []
    for i in range(width):
        a = start + (pages * i // width) * ps
        b = start + (pages * (i + 1) // width) * ps
        s = model.count_range(a, b)
        out.append((s.mapped / s.total if s.total else 0.0, s.cont / s.valid if s.valid else 0.0))
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
        # (process, start, end, width) -> (mapped bar, CONT bar); dropped for ranges a step wrote
        self._bars: dict[tuple[str, int, int, int], tuple[str, str]] = {}

    def forget(self, dirty: Any) -> None:
        """Descriptors (process, VA) whose op-boundary value changed; None: all of them."""
        if dirty is None:
            self._bars.clear()
            return
        for key in [k for k in self._bars if any(p == k[0] and k[1] <= a < k[2] for p, a in dirty)]:
            del self._bars[key]

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
                key = (model.process, r.start, r.end, width)
                bars = self._bars.get(key)
                if bars is None:
                    dens = density_bar(model, r.start, r.end, width - 2)
                    bars = (bar_text([d[0] for d in dens]), bar_text([d[1] for d in dens]))
                    self._bars[key] = bars
                mapped, cont = bars
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
