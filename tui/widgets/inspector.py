# SPDX-License-Identifier: GPL-2.0-only
"""The inspector: everything about the selected entry (tui.inspect_model)."""

from __future__ import annotations

import contextlib
from typing import Any

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui import legend
from tui.inspect_model import Line, inspect, plain

_OWN = ("label", "section", "dim", "value", "on")


class Inspector(VerticalScroll, can_focus=True):
    COMPONENT_CLASSES = legend.component_classes("ptegrid") | {f"insp--{n}" for n in _OWN}
    DEFAULT_CSS = """
    Inspector { background: $surface; padding: 0 1; scrollbar-size-vertical: 1; }
    Inspector > Static { width: 1fr; }
    Inspector > .insp--label { color: $foreground 60%; }
    Inspector > .insp--section { color: $accent; text-style: bold; }
    Inspector > .insp--dim { color: $foreground 55%; }
    Inspector > .insp--value { color: $secondary; text-style: bold; }
    Inspector > .insp--on { color: $foreground; text-style: bold; }
    """ + legend.tcss("Inspector", "ptegrid")

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.lines: list[Line] = []
        self.addr: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="inspector-body")

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

    def show(self, model: Any, addr: int | None, *, since: str | None = None, mid_op: bool = False,
             header_row: Any = None) -> None:
        self.addr = addr
        if model is None:
            self.lines = [[("no session", ("dim",))]]
        else:
            width = max(20, self.scrollable_content_region.width or 38)
            self.lines = inspect(model, addr, since=since, mid_op=mid_op, header_row=header_row, width=width)
        self._render_lines()

    def _text(self, segs: list, skip_label: bool = False) -> Text:
        text = Text(no_wrap=False, overflow="fold")
        for t, tags in segs:
            text.append(t, self._style(tags) if tags else None)
        return text

    def _render_lines(self) -> None:
        """Key/value lines become a two-column table (values wrap under themselves)."""
        parts: list = []
        table: Table | None = None
        for line in self.lines:
            if line and line[0][1] == ("label",):
                if table is None:
                    table = Table(box=None, show_header=False, padding=0, expand=True)
                    table.add_column(width=10, no_wrap=True)
                    table.add_column(ratio=1, overflow="fold")
                    parts.append(table)
                table.add_row(self._text([line[0]]), self._text(line[1:]))
            else:
                table = None
                parts.append(self._text(line))
        if self.is_mounted:
            self.query_one("#inspector-body", Static).update(Group(*parts))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.lines and self.is_mounted:
            self.call_later(self._render_lines)
