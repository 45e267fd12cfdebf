# SPDX-License-Identifier: GPL-2.0-only
"""The help screen: keys (from the action registry, as rebound by the keymap),
the legend (from the legend table) and the breakpoint syntax."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui import legend
from tui.actions import MAIN_ACTIONS, key_label

GRID_KEYS = (
    ("↑↓←→ / hjkl", "move the cursor in the PTE grid (PgUp/PgDn, Home/End)"),
    ("[ ]", "previous / next region"),
    ("Tab", "next pane: grid, op log, inspector, address space"),
    ("Enter (op log)", "expand an op into its arch calls and events"),
    ("Space (op log)", "move the session to the selected op / event"),
    ("Enter (address space)", "jump to that range"),
    ("ctrl+p", "command palette: every action, break-on-event, jump to region ..."),
)

BREAKPOINT_SYNTAX = """\
op:VERB            the op is a VERB (set_ptes, fork, mprotect ...)
call:NAME          an arch / core-mm function is called (contpte_convert ...)
event:KIND         fold, unfold, convert, tlb_conflict, invariant_violation, page_fault, tlbi ...
addr:A[-B]         an event touches a VA in [A, B)
block:A            the same, for the contiguous block containing A  (B on a cell)
watch:A[-B]        a descriptor in [A, B) changes value
watch-block:A      a descriptor of A's block changes value
proc:NAME          the event concerns process NAME
cost:>N            the op costs more than N cycles
&  all at the same point     |  any of them"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 60%; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 95%; height: 90%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    HelpScreen Static { margin-bottom: 1; }
    """ + legend.tcss("HelpScreen", "ptegrid")
    COMPONENT_CLASSES = legend.component_classes("ptegrid")
    BINDINGS = [Binding("escape,q,question_mark", "close", "close")]

    def __init__(self, keymap: dict[str, str] | None = None) -> None:
        super().__init__(id="help")
        self.keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("ptlab — keys", style="bold"))
            t = Table(box=None, show_header=False, padding=(0, 2))
            t.add_column(style="bold")
            t.add_column()
            for a in MAIN_ACTIONS:
                t.add_row(key_label(a, self.keymap), a.help)
            for k, h in GRID_KEYS:
                t.add_row(k, h)
            yield Static(t)
            yield Static(Text("Legend (glyphs carry the meaning; colours follow the theme)", style="bold"))
            yield Static(id="help-legend")
            yield Static(Text("Breakpoint syntax (B on a cell, ctrl+b for the dialog)", style="bold"))
            yield Static(Text(BREAKPOINT_SYNTAX))
            yield Static(Text("Keys can be rebound in ~/.config/ptlab/keymap.toml ($PTLAB_KEYMAP):\n"
                              "[keys]\nstep = \"n,space\"   # ids: " + ", ".join(a.id for a in MAIN_ACTIONS)))

    def on_mount(self) -> None:
        t = Table(box=None, show_header=False, padding=(0, 2))
        t.add_column()
        t.add_column(style="bold")
        t.add_column()
        for s in legend.STATES:
            st = self.get_component_rich_style(f"ptegrid--{s.name}", partial=True)
            sample = Text(s.glyph if s.glyph == s.cont_glyph else f"{s.glyph} {s.cont_glyph}", st)
            t.add_row(sample, s.label, s.help)
        for m in legend.MARKS:
            if m.label:
                st = self.get_component_rich_style(f"ptegrid--{m.name}", partial=True)
                t.add_row(Text(m.sample, st), m.label, m.help)
        self.query_one("#help-legend", Static).update(t)

    def action_close(self) -> None:
        self.dismiss(None)
