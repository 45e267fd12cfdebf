# SPDX-License-Identifier: GPL-2.0-only
"""The address-space pane: processes, their VMAs (or mapped ranges) and a
minimap of mapped and folded density per range."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.grid_model import GridModel, fmt_size

BARS = "·▁▂▃▄▅▆▇█"  # · = nothing in that slice


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
        out.append((s.present / s.total if s.total else 0.0, s.cont / s.valid if s.valid else 0.0))
    return out


def bar_text(fracs: list[float]) -> str:
    return "".join(BARS[0] if f <= 0 else BARS[max(1, min(8, round(f * 8)))] for f in fracs)


class AddressSpace(Vertical):
    COMPONENT_CLASSES = {"addrspace--mapped", "addrspace--cont", "addrspace--name", "addrspace--dim"}
    DEFAULT_CSS = """
    AddressSpace { background: $surface; }
    AddressSpace > #procs { height: auto; padding: 0 1; color: $foreground 80%; }
    AddressSpace > OptionList { height: 1fr; border: none; background: $surface; padding: 0; }
    AddressSpace > .addrspace--mapped { color: $success; }
    AddressSpace > .addrspace--cont { color: $primary; }
    AddressSpace > .addrspace--name { color: $accent; text-style: bold; }
    AddressSpace > .addrspace--dim { color: $foreground 60%; }
    """

    class Jump(Message):
        def __init__(self, addr: int) -> None:
            super().__init__()
            self.addr = addr

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.model: GridModel | None = None
        self._starts: list[int] = []
        self.summary_text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="procs")
        yield OptionList(id="regions")

    def _st(self, name: str) -> Style:
        return self.get_component_rich_style(f"addrspace--{name}", partial=True)

    def update_view(self, model: GridModel | None, current_region: int | None = None) -> None:
        self.model = model
        if not self.is_mounted:
            return
        procs = self.query_one("#procs", Static)
        ol = self.query_one("#regions", OptionList)
        if model is None:
            procs.update("no session")
            ol.clear_options()
            return
        names = model.processes()
        t = Text()
        for n in names:
            if t:
                t.append(" ")
            t.append(f"[{n}]" if n == model.process else n, self._st("name") if n == model.process else None)
        procs.update(t)
        width = max(6, (self.size.width or 24) - 3)
        options = []
        lines = []
        for r in model.regions:
            txt = Text(no_wrap=True, overflow="ellipsis")
            txt.append(r.name[: width - 6], self._st("name"))
            txt.append(f" {fmt_size(r.size)}", self._st("dim"))
            txt.append(f"\n{r.start:x}", self._st("dim"))
            if r.detail:
                txt.append(f" {r.detail}"[: max(0, width - 12)], self._st("dim"))
            dens = density_bar(model, r.start, r.end, width - 2)
            mapped = bar_text([d[0] for d in dens])
            cont = bar_text([d[1] for d in dens])
            txt.append("\nm ", self._st("dim"))
            txt.append(mapped, self._st("mapped"))
            txt.append("\nc ", self._st("dim"))
            txt.append(cont, self._st("cont"))
            options.append(Option(txt))
            lines.append(f"{r.name} {r.start:x}-{r.end:x} m {mapped} c {cont}")
        self._starts = [r.start for r in model.regions]
        self.summary_text = "\n".join(lines)
        hi = ol.highlighted
        ol.clear_options()
        ol.add_options(options)
        if current_region is not None and options:
            ol.highlighted = min(current_region, len(options) - 1)
        elif hi is not None and options:
            ol.highlighted = min(hi, len(options) - 1)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        i = event.option_index
        if 0 <= i < len(self._starts):
            self.post_message(self.Jump(self._starts[i]))
