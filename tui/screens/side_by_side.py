# SPDX-License-Identifier: GPL-2.0-only
"""Side by side: the same ops under two settings (kernel, policy, CPU profile or
granule), positioned just after the first op where their page tables differ or
the first op whose costs differ (the user's choice; the header names both);
differing entries are marked, the pair under the cursor is decoded, and ``i``
opens the inspector of both sides."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.session import Session
from tui.controller import Job, SessionController
from tui.eventfmt import fmt_cycles, op_costs
from tui.grid_model import GridModel
from tui.variants import (
    SETTINGS,
    CompareResult,
    next_differing_op,
    same_granule,
    seek_both,
    settings_of,
    step_both,
)
from tui.widgets.legend_bar import LegendBar
from tui.widgets.pte_grid import PteGrid

TOTAL_ROWS = (("pte_writes", "pte writes"), ("pte_reads", "pte reads"), ("converts", "converts"),
              ("folds", "folds"), ("unfolds", "unfolds"), ("flush_tlb_range", "flushes"), ("tlbi", "TLBIs"),
              ("dsb", "DSBs"), ("cycles", "cycles"))


def _without_history(lines: list) -> list:
    """The inspector's lines less what the comparison does not compute (the block's history
    and "since op N" belong to the main screen's session): no "…" placeholders."""
    out = []
    skip = False
    for line in lines:
        text = "".join(t for t, _ in line)
        if text.startswith("Block history"):
            skip = True
        if skip:
            skip = bool(line)
            continue
        if text.strip() == "since …":
            continue
        out.append(line)
    return out


class CompareScreen(Screen):
    BINDINGS = [
        Binding("n", "step(1)", "op", id="compare.step", group=Binding.Group("step both", compact=True)),
        Binding("b", "step(-1)", "back", id="compare.back", group=Binding.Group("step both", compact=True)),
        Binding("f", "first('tables')", "1st table diff", id="compare.first"),
        Binding("c", "first('costs')", "1st cost diff", id="compare.first_cost"),
        # (not [ ]: the grids use them for the previous / next range)
        Binding("greater_than_sign", "next_op(1)", "next diff op", id="compare.next_op", key_display=">",
                group=Binding.Group("diff op", compact=True)),
        Binding("less_than_sign", "next_op(-1)", "prev", id="compare.prev_op", key_display="<",
                group=Binding.Group("diff op", compact=True)),
        Binding("full_stop", "next_diff(1)", "next entry", id="compare.next_diff", key_display=".",
                group=Binding.Group("diff entry", compact=True)),
        Binding("comma", "next_diff(-1)", "prev", id="compare.prev_diff", key_display=",",
                group=Binding.Group("diff entry", compact=True)),
        Binding("i", "inspect_pair", "inspect", id="compare.inspect"),
        Binding("tab", "swap_focus", "other side", show=False),
        Binding("escape,q", "close", "close", id="compare.close"),
    ]
    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    #cmp-header { height: auto; background: $primary 30%; padding: 0 1;
                  text-wrap: nowrap; text-overflow: ellipsis; }
    #cmp-body { height: 1fr; }
    .cmp-side { width: 1fr; }
    .cmp-side > .cmp-title { height: 1; background: $panel; text-style: bold; padding: 0 1; }
    .cmp-side > .cmp-op { height: 2; color: $text-primary; padding: 0 1; }
    #cmp-pair, .cmp-title { text-wrap: nowrap; text-overflow: ellipsis; }
    #cmp-b { border-left: vkey $primary 40%; }
    #cmp-pair { height: auto; max-height: 6; border-top: hkey $primary 40%; padding: 0 1; }
    CompareScreen.-short #cmp-pair { max-height: 4; }
    CompareScreen.-short LegendBar { display: none; }
    CompareScreen.-short #cmp-totals { max-height: 4; }
    CompareScreen.-short .cmp-side > .cmp-op { height: 1; }
    #cmp-totals { height: auto; max-height: 12; border-top: hkey $primary 40%; padding: 0 1; }
    """

    def __init__(self, res: CompareResult, ctl: SessionController) -> None:
        super().__init__(id="compare")
        self.res = res
        self.ctl = ctl
        self.model_a = GridModel(res.a.machine)
        self.model_b = GridModel(res.b.machine)

    def compose(self) -> ComposeResult:
        yield Static(id="cmp-header")
        with Horizontal(id="cmp-body"):
            with Vertical(classes="cmp-side", id="cmp-a"):
                yield Static(classes="cmp-title", id="cmp-title-a")
                yield PteGrid(self.model_a, id="grid-a")
                yield Static(classes="cmp-op", id="cmp-op-a")
            with Vertical(classes="cmp-side", id="cmp-b"):
                yield Static(classes="cmp-title", id="cmp-title-b")
                yield PteGrid(self.model_b, id="grid-b")
                yield Static(classes="cmp-op", id="cmp-op-b")
        yield Static(id="cmp-pair")
        yield Static(id="cmp-totals")
        yield LegendBar()
        yield Footer(show_command_palette=False)

    def on_resize(self) -> None:
        self.set_class(self.size.height < 32, "-short")  # 80x24: the grids keep the room

    def on_mount(self) -> None:
        self.show(self.res)
        self.query_one("#grid-a", PteGrid).focus()

    # --- content ------------------------------------------------------------------------
    def header_text(self) -> str:
        """Four lines, each cut to the width rather than wrapped (at 80x24 the grids keep rows):
        what differs and where we are; the first page-table divergence; the first cost
        divergence (how the costs differ comes first: it is what the user came for)."""
        r = self.res
        a, b = r.a, r.b
        sa, sb = settings_of(a), settings_of(b)
        diffs = [k for k in SETTINGS if sa[k] != sb[k]]
        what = ", ".join(f"{k} {sa[k]} → {sb[k]}" for k in diffs) or "same settings"
        if r.first is None:
            tables = f"page tables: the same after all {a.n_ops} ops"
        else:
            why = r.reason.removeprefix("page tables differ after this op").strip(" ()")  # (no repeat)
            tables = (f"page tables (f): first differ after op {r.first + 1}: {a.ops[r.first]}"
                      + (f" — {why}" if why else ""))
        if r.first_cost is None:
            costs = f"costs: the same for all {a.n_ops} ops"
        else:
            k = r.first_cost
            costs = f"costs (c): first differ at op {k + 1}: {r.cost_reason} — {a.ops[k]}"
        if not same_granule(a, b):
            here = "entries not compared one by one across granules"
        else:
            n = len(r.diff)
            here = f"{n} entr{'y differs' if n == 1 else 'ies differ'} here (red)"
        n_ops = len(r.ops)
        return (f"Compare {a.name}: {what} · step {a.position} / {a.n_ops}: {here} · {n_ops} op"
                f"{'' if n_ops == 1 else 's'} differ (< >)\n{tables}\n{costs}")

    def show(self, res: CompareResult) -> None:
        self.res = res
        if self._ptlab_closed or self not in self.app.screen_stack:
            return  # a step that finished after Esc closed the screen (the main screen re-reads the session)
        header = Text(self.header_text(), no_wrap=True, overflow="ellipsis")
        self.query_one("#cmp-header", Static).update(header)
        for side, s, model, mv in (("a", res.a, self.model_a, res.a_move), ("b", res.b, self.model_b,
                                                                             res.b_move)):
            st = settings_of(s)
            other = settings_of(res.b if side == "a" else res.a)
            varied = [k for k in SETTINGS if st[k] != other[k] and k not in ("kernel", "policy")]
            extra = "".join(f" · {k} {st[k]}" for k in varied)  # a CPU or granule compared: name it
            self.query_one(f"#cmp-title-{side}", Static).update(Text(
                f"{side.upper()}: kernel {st['kernel']} · policy {st['policy']}{extra} · step {s.position}",
                no_wrap=True, overflow="ellipsis"))
            model.set_view(mv.view, None)
            model.set_marked(res.diff)
            grid = self.query_one(f"#grid-{side}", PteGrid)
            grid.model_changed()
            self.query_one(f"#cmp-op-{side}", Static).update(self._op_text(s, res.first))
        self.query_one("#cmp-totals", Static).update(self._totals_table())
        mine = [a for p, a in res.diff if p == self.model_a.process]
        if mine:  # both cursors on the first differing entry
            for side in ("#grid-a", "#grid-b"):
                self.query_one(side, PteGrid).go_to(min(mine))
        self.update_pair()

    def pair_text(self) -> str:
        """The entry under the cursor on both sides, decoded (the differing pair)."""
        from engine.decode import decode

        addr = self.query_one("#grid-a", PteGrid).cursor_addr
        if addr is None:
            return "no entry under the cursor"
        parts = []
        raws = []
        verdicts = []
        for side, model in (("A", self.model_a), ("B", self.model_b)):
            page = addr & ~(model.page_size - 1)  # (two granules: each side's own page)
            raw = model.raw(page)
            raws.append(raw)
            d = decode(raw, model.g, model.layout)
            verdicts.append(f"{side} {self._verdict(model, page)}")
            parts.append(f"{side} {raw:#018x} {d.kind}: {d.summary}")
        addr &= ~(self.model_a.page_size - 1)
        same = raws[0] == raws[1]
        flags = self._flag_difference(addr)
        if self.ctl.idle:
            parts.append("block: " + " · ".join(verdicts))
        return (f"{addr:#x} {'same on both sides' if same else 'differs'}{flags}  (i: both inspectors)\n"
                + "\n".join(parts))

    def _verdict(self, model: GridModel, addr: int) -> str:
        """The block's fold verdict in a few words (the explainer; read only when no job runs:
        it walks the page table the worker may be moving)."""
        if not self.ctl.idle:
            return ""
        from tui.inspect_model import explain

        ex = explain(model, addr)
        if ex is None:
            return ""
        return "folded" if ex.folded else "foldable, not folded" if ex.foldable else "not folded"

    def _flag_difference(self, addr: int) -> str:
        """The kernel bit names set on one side only (same granule)."""
        if not same_granule(self.res.a, self.res.b):
            return ""
        from engine.decode import decode

        fa = set(decode(self.model_a.raw(addr), self.model_a.g, self.model_a.layout).flags)
        fb = set(decode(self.model_b.raw(addr), self.model_b.g, self.model_b.layout).flags)
        out = []
        if fa - fb:
            out.append("only A: " + " ".join(sorted(fa - fb)))
        if fb - fa:
            out.append("only B: " + " ".join(sorted(fb - fa)))
        return ("; " + "; ".join(out)) if out else ""

    def inspector_text(self) -> Table:
        """Both sides' inspector for the entry under the cursor, side by side (tui.inspect_model)."""
        from tui.inspect_model import EXPLAIN, inspect, plain

        addr = self.query_one("#grid-a", PteGrid).cursor_addr
        t = Table(box=None, padding=(0, 2), show_edge=False, expand=True)
        for side in ("A", "B"):
            t.add_column(side, ratio=1, overflow="fold")
        cols = []
        for model in (self.model_a, self.model_b):
            page = None if addr is None else addr & ~(model.page_size - 1)
            ex = EXPLAIN if self.ctl.idle else None
            lines = inspect(model, page, explanation=ex)
            cols.append(Text(plain(_without_history(lines))))
        t.add_row(*cols)
        return t

    def action_inspect_pair(self) -> None:
        from tui.screens.dialogs import TextDialog

        if self.app.screen is not self:
            return
        addr = self.query_one("#grid-a", PteGrid).cursor_addr
        where = "no entry" if addr is None else f"{addr:#x}"
        self.app.push_screen(TextDialog(f"Inspector: {where} at step {self.res.a.position}, A | B",
                                        self.inspector_text(), dialog_id="compare-inspect"))

    def update_pair(self) -> None:
        self.query_one("#cmp-pair", Static).update(Text(self.pair_text(), no_wrap=True, overflow="ellipsis"))

    def action_next_diff(self, direction: int) -> None:
        """The cursor to the next (previous) differing entry of this process."""
        grid = self.query_one("#grid-a", PteGrid)
        cur = grid.cursor_addr
        mine = sorted(a for p, a in self.res.diff if p == self.model_a.process)
        if not mine:
            self.app.notify("no differing entry at this step", severity="information")
            return
        if cur is None:
            target = mine[0] if direction > 0 else mine[-1]
        elif direction > 0:
            target = next((a for a in mine if a > cur), mine[0])
        else:
            target = next((a for a in reversed(mine) if a < cur), mine[-1])
        for side in ("#grid-a", "#grid-b"):
            self.query_one(side, PteGrid).go_to(target)
        self.update_pair()

    def _op_text(self, s: Session, first: int | None) -> str:
        k = s.k - 1
        if k < 0:
            return "before the first op"
        rec = s.records[k] if k < len(s.records) else None
        costs = op_costs(rec.counters if rec else None, rec.cycles if rec else None)
        mark = " ≠" if first is not None and k == first else ""
        err = f"\n{s.error[1]}" if s.error is not None and s.error[0] <= k + 1 else ""
        return f"op {k + 1}{mark}: {s.ops[k]}\n  {costs}{err}"

    def _totals_table(self) -> Table:
        a, b = self.res.a, self.res.b
        ta, tb = a.totals(), b.totals()
        t = Table(box=None, padding=(0, 2), show_edge=False, title=None)
        t.add_column("totals (all ops)", style="bold")
        t.add_column("A", justify="right")
        t.add_column("B", justify="right")
        t.add_column("B − A", justify="right")
        for key, label in TOTAL_ROWS:
            va, vb = ta.get(key, 0), tb.get(key, 0)
            if key == "cycles":
                t.add_row(label, fmt_cycles(va), fmt_cycles(vb), f"{'+' if vb >= va else '−'}"
                          f"{fmt_cycles(abs(vb - va))}")
            else:
                t.add_row(label, str(int(va)), str(int(vb)), f"{int(vb - va):+d}")
        return t

    # --- actions -----------------------------------------------------------------------
    def _run(self, label: str, fn: Any) -> None:
        res = self.res
        if not self.ctl.submit(Job(label, lambda _s: fn(res), self.show)):
            self.app.notify("busy", severity="warning")

    def action_step(self, delta: int) -> None:
        self._run("compare step", lambda r: step_both(r, delta))

    def action_first(self, what: str = "tables") -> None:
        first = self.res.first if what == "tables" else self.res.first_cost
        if first is None:
            self.app.notify("the page tables never differ" if what == "tables" else "the costs never differ",
                            severity="information")
            return
        self._run(f"first {'page-table' if what == 'tables' else 'cost'} divergence",
                  lambda r: seek_both(r, first + 1))

    def action_next_op(self, direction: int) -> None:
        """Both sides to just after the next (previous) op whose tables or costs differ."""
        k = next_differing_op(self.res, direction)
        if k is None:
            self.app.notify(f"no differing op {'after' if direction > 0 else 'before'} this one",
                            severity="information")
            return
        self._run("next difference" if direction > 0 else "previous difference",
                  lambda r: seek_both(r, k + 1))

    def action_swap_focus(self) -> None:
        a = self.query_one("#grid-a", PteGrid)
        b = self.query_one("#grid-b", PteGrid)
        (b if a.has_focus else a).focus()

    _ptlab_closed = False  # (not _closed: that is Textual's MessagePump state)

    def action_close(self) -> None:
        if self.app.screen is self:  # (a second Esc queued behind the first finds it closing)
            self._ptlab_closed = True
        self.dismiss(None)

    @on(PteGrid.CursorMoved)
    def _sync(self, event: PteGrid.CursorMoved) -> None:
        """Keep both cursors on the same address (stale messages are ignored)."""
        if event.addr is None or event.addr != event.grid.cursor_addr:
            return
        other = self.query_one("#grid-b" if event.grid.id == "grid-a" else "#grid-a", PteGrid)
        if other.cursor_addr != event.addr:
            other.go_to(event.addr)
        self.update_pair()
