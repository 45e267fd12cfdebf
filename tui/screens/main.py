# SPDX-License-Identifier: GPL-2.0-only
"""The main screen: header, address space, PTE grid, op log, inspector, costs.

Attributes down, messages up: the screen owns the session controller and
the grid model, hands them to the widgets, and reacts to their messages
(cursor moved, op expanded, region chosen). Every session command goes
through the controller (a thread worker); ``apply`` spreads its result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, ProgressBar, Static

from engine.breakpoints import AddrRange, BlockChange, BreakpointError, Watch
from engine.session import Position, Session
from tui import actions, snapshot_io
from tui.controller import (
    Job,
    MoveResult,
    SessionController,
    do_back,
    do_continue,
    do_run_to_end,
    do_seek,
    do_step,
    gather,
)
from tui.exact import machine_at_event
from tui.grid_model import GridModel, ViewState
from tui.history import BlockHistory, block_history, since_op
from tui.inspect_model import HISTORY_SHOWN, explain
from tui.widgets.addrspace import AddressSpace
from tui.widgets.costpanel import CostPanel
from tui.widgets.inspector import Inspector
from tui.widgets.legend_bar import LegendBar
from tui.widgets.oplog import OpLog
from tui.widgets.pte_grid import PteGrid

if TYPE_CHECKING:
    from engine.contract import MachineContract

SINCE_MAX_OPS = 5000
HISTORY_MAX = 50  # folds/unfolds of the block listed (newest first)
SINCE_DELAY = 0.3
PROGRESS_DELAY = 0.25
HEADER_DELAY = 0.1  # the progress timer's interval: the header names a running job from then on


def parse_position(text: str) -> Position:
    """``N`` (op boundary after N ops) or ``N.E`` (E events into op N+1)."""
    t = text.strip()
    if not t:
        raise ValueError("type a step number, e.g. 12 or 12.5")
    op, _, ev = t.partition(".")
    try:
        p = Position(int(op, 0), int(ev, 0) if ev else 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a step (use N or N.E, e.g. 12 or 12.5)") from None
    if p.op < 0 or p.event < 0:
        raise ValueError("steps are not negative")
    return p


def parse_address(text: str) -> int:
    t = text.strip().lower().replace("_", "")
    if not t:
        raise ValueError("type an address, e.g. 0x7f0000010000")
    try:
        v = int(t, 16) if not t.startswith("0x") else int(t, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a hexadecimal address") from None
    if not 0 <= v < 1 << 64:
        raise ValueError(f"{text!r} does not fit in 64 bits")
    return v


def block_breakpoints(session: Session) -> set[int]:
    out = set()
    for b in session.breakpoints:
        c = b.condition
        if isinstance(c, (AddrRange, Watch, BlockChange)) and c.label in ("block", "watch-block"):
            out.add(c.start)
    return out


class MainScreen(Screen):
    BINDINGS = actions.bindings()  # type: ignore[assignment]  # Bindings only: Screen's list also allows tuples

    DEFAULT_CSS = """
    MainScreen { layout: vertical; }
    #header { height: 1; background: $primary 30%; color: $foreground; padding: 0 1; }
    #body { height: 1fr; }
    #left { width: 22; border-right: vkey $primary 40%; }
    #center { width: 1fr; }
    #right { width: 38; border-left: vkey $primary 40%; }
    #grid { height: 1fr; }
    #story { height: auto; max-height: 3; color: $text-secondary; text-style: italic; padding: 0 1;
             background: $panel 40%; }
    #story.-empty { display: none; }
    MainScreen.-short #story { max-height: 2; }
    #oplog { height: 12; border-top: hkey $primary 40%; }
    #inspector { height: 1fr; }
    #costs { border-top: hkey $primary 40%; height: 11; }
    #progress { height: 1; display: none; background: $warning 25%; padding: 0 1; }
    #progress.-busy { display: block; }
    #progress Label { width: auto; margin-right: 2; }
    #progress ProgressBar { width: 1fr; }
    .pane-title { height: 1; background: $panel; color: $foreground 80%; padding: 0 1; text-style: bold; }
    .pane-title.-focused { background: $accent 55%; color: $foreground; }
    #oplog:focus { border-top: hkey $accent; }
    MainScreen.-narrow #left { display: none; }
    MainScreen.-narrow #right { width: 36; }
    MainScreen.-short #oplog { height: 6; }
    MainScreen.-short #costs { height: 6; }
    MainScreen.-short #legend { display: none; }
    MainScreen.-wide #left { width: 30; }
    MainScreen.-wide #right { width: 54; }
    MainScreen.-wide #oplog { height: 18; }
    """

    def __init__(self, session: Session, keymap: dict[str, str] | None = None) -> None:
        super().__init__(id="main")
        self.session = session
        self.keymap = keymap or {}
        self.ctl = SessionController(self.app, session, on_state=self._on_busy_change)
        self.model = GridModel(session.machine, breakpoints=block_breakpoints(session))
        self.snapshot_path: str | None = None  # the .ptsnap this session came from or was saved to
        self._since: dict[tuple, str] = {}
        self._history: dict[tuple, BlockHistory] = {}
        self._explained: dict[tuple, Any] = {}
        self._since_timer: Timer | None = None
        self._exact: tuple[Position, Any] | None = None  # (mid-op position, machine exactly there)
        self._exact_pending: Position | None = None
        self._since_after_exact = False
        self.since_pending = False  # a history lookup is scheduled (tests fire it at once)
        self._panels_pending = False
        self._panels_deferred = False
        self._inspector_pending = False
        self._auto_expanded: int | None = None
        self._progress_timer: Timer | None = None
        self.last_result: MoveResult | None = None
        self.messages: list[str] = []  # every notification text (tests)
        self._lines_shown: dict[str, str] = {}  # the header's and the grid title's text

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Static("Address space", classes="pane-title", id="addrspace-title")
                yield AddressSpace(id="addrspace")
            with Vertical(id="center"):
                yield Static("PTE grid", classes="pane-title", id="grid-title")
                yield Static("", id="story")
                yield PteGrid(self.model, id="grid")
                yield OpLog(self.session, id="oplog")
            with Vertical(id="right"):
                yield Static("Inspector", classes="pane-title", id="inspector-title")
                yield Inspector(id="inspector")
                yield CostPanel(id="costs")
        with Horizontal(id="progress"):
            yield Label("", id="progress-label")
            yield ProgressBar(total=100, show_eta=False, id="progress-bar")
        yield LegendBar(id="legend")
        yield Footer(show_command_palette=False)

    @property
    def grid(self) -> PteGrid:
        return self.query_one("#grid", PteGrid)

    @property
    def oplog(self) -> OpLog:
        return self.query_one("#oplog", OpLog)

    @property
    def inspector(self) -> Inspector:
        return self.query_one("#inspector", Inspector)

    def on_mount(self) -> None:
        self.ctl.app = self.app
        self.query_one("#costs", CostPanel).set_session(self.session)
        self.oplog.update_position(self.session.position)
        self.grid.focus()
        self._refresh_all(ViewState(), None)
        # the view of the starting position (mid-op sessions, events of op 0)
        self.ctl.submit(Job("view", lambda s: gather(s, s.position), self.apply))

    _TITLES = {"grid": "#grid-title", "addrspace": "#addrspace-title", "inspector": "#inspector-title"}

    def on_descendant_focus(self, event: Any) -> None:
        """The focused pane is marked: its title lit (the op log: its top rule)."""
        wid = getattr(event.widget, "id", None)
        for name, sel in self._TITLES.items():
            self.query_one(sel, Static).set_class(name == wid, "-focused")

    def focused_pane(self) -> str | None:
        return next((name for name, sel in self._TITLES.items()
                     if self.query_one(sel, Static).has_class("-focused")), None)

    def on_resize(self) -> None:
        w, h = self.size
        self.set_class(w >= 170, "-wide")
        # 80x24: the address space folds away (the grid's range rows and [ ] still navigate),
        # the legend (also in ?) and the lower panes shrink, so one 16-entry block fits a row
        self.set_class(w < 110, "-narrow")
        self.set_class(h < 32, "-short")

    # --- spreading a new position ----------------------------------------------------
    def apply(self, r: MoveResult) -> None:
        self.last_result = r
        self._refresh_all(r.view, r.dirty)
        if r.message:
            self.say(r.message, "error" if r.severity == "error" else (
                "warning" if r.interrupted else "information"))

    def _refresh_all(self, view: ViewState, dirty: Any) -> None:
        """The grid and the header now; the other panes right after the grid has painted."""
        names = self.model.processes()
        if names and self.model.process not in names:  # it exited (or does not exist yet here)
            gone = self.model.process
            self.model.set_process(names[0])
            self.say(f"process {gone} does not exist at this step: showing {names[0]}", "warning")
        self.model.block_breakpoints = block_breakpoints(self.session)
        self.model.set_view(view, dirty)
        self._empty_hint()
        self.query_one("#addrspace", AddressSpace).forget(dirty)
        self.grid.model_changed()
        self.update_header()
        if not self._panels_pending:
            self._panels_pending = True
            self.call_after_refresh(self._refresh_panels)

    def _refresh_panels(self) -> None:
        self._panels_pending = False
        if self.ctl.running is not None:
            # a job is moving the shared session (a save runs ahead to the end and
            # back, a history lookup seeks): where it is now is not the step to show.
            # The panels follow when the session is idle again (_on_busy_change).
            self._panels_deferred = True
            return
        self._panels_deferred = False
        self._auto_expand()
        self._request_exact()
        self.oplog.update_position(self.session.position)
        self.query_one("#costs", CostPanel).update_view()
        self._update_addrspace()
        self._update_story()
        self.show_inspector()

    def story_text(self) -> str:
        """The scenario's comment above the op at the position (the next op, or the op in progress)."""
        s = self.session
        k = min(s.position.op, s.n_ops - 1)
        if k < 0 or not s.source:
            return ""
        line = s.ops[k].line
        if not line:
            return ""
        from tui.story import comment_for

        text = " ".join(comment_for(s.source, line))
        return f"op {k + 1}: {text}" if text else ""

    def _update_story(self) -> None:
        text = self.story_text()
        if self._lines_shown.get("#story") == text:
            return
        self._lines_shown["#story"] = text
        w = self.query_one("#story", Static)
        w.set_class(not text, "-empty")
        w.update(text)

    def _auto_expand(self) -> None:
        """Inside an op, its events are shown in the op log (collapsed again on leaving it,
        unless the user expanded it)."""
        r = self.last_result
        pos = self.session.position
        auto = self._auto_expanded
        if auto is not None and (auto != pos.op or not pos.event):
            self.oplog.set_expanded(auto, None)
            self._auto_expanded = None
        if r is not None and r.op_events and r.after == pos and pos.op not in self.oplog.expanded:
            self.oplog.set_expanded(pos.op, r.op_events)
            self._auto_expanded = pos.op

    def _empty_hint(self) -> None:
        """What the empty grid says: the truth about the process and what keys can change it."""
        s = self.session
        if not self.model.alive():
            hint = f"process {self.model.process} has exited: nothing is mapped  (p: next process)"
        elif s.at_end:
            hint = "nothing is mapped at the end of the session  (b: step back, p: next process)"
        elif s.k == 0 and not s.e:
            hint = "nothing is mapped yet  (n: step, r: run to the end)"
        else:
            hint = "nothing is mapped at this step  (n: step, b: back, r: run to the end)"
        if hint != self.model.empty_hint:
            self.model.empty_hint = hint
            self.grid.refresh()

    def _update_addrspace(self) -> None:
        info = self.model.row_info(self.grid.cursor_row)
        self.query_one("#addrspace", AddressSpace).update_view(
            self.model, info.region_index if info is not None else None)

    def settings(self) -> dict[str, str]:
        from tui.compare import settings_of

        return settings_of(self.session)

    def header_text(self) -> str:
        s = self.session
        st = self.settings()
        # most wanted first: a narrow terminal cuts the end
        name = s.name or "session"
        if self.snapshot_path:
            name = f"{self.snapshot_path.rsplit('/', 1)[-1]} ({name})"
        parts = [name, f"step {s.position} / {s.n_ops}",
                 f"proc {self.model.process}" + ("" if self.model.alive() else " (exited)"),
                 f"kernel {st['kernel']}", f"policy {st['policy']}", st["granule"], f"cpu {st['cpu']}",
                 f"zoom ×{self.model.ptes_per_cell}"]
        if s.breakpoints:
            parts.append(f"● {len(s.breakpoints)} bp")
        if s.error is not None and s.error[0] >= s.executed:
            parts.append(f"✗ op {s.error[0] + 1} failed")
        if self.ctl.running is not None and not self.ctl.running.low:
            parts.append(f"running: {self.ctl.running.label}")
        return " │ ".join(parts)

    def call_stack_text(self, limit: int = 0) -> str:
        """The calls open at the position, outermost first ("…" for dropped outer ones)."""
        r = self.last_result
        if r is None or not r.stack or r.after != self.session.position:
            return ""
        names = list(r.stack)
        text = " › ".join(names)
        while limit and len(text) > limit and len(names) > 1:
            names.pop(0)
            text = "… › " + " › ".join(names)
        return text

    def update_header(self) -> None:
        # (an unchanged line is not repainted: a dirty header widens the next frame to the full width)
        self._set_line("#header", self.header_text())
        width = self.query_one("#grid-title", Static).size.width or 60
        stack = self.call_stack_text(limit=max(20, width - 22 - len(self.model.process)))
        if stack:
            title = f"PTE grid — {self.model.process} — in {stack}"
        else:
            n = len(self.model.regions)
            title = f"PTE grid — {self.model.process} — {n} range{'s' if n != 1 else ''}"
            if self.model.zoom:
                title += f" — {self.model.zoom_label()}"
        self._set_line("#grid-title", title)

    def _set_line(self, selector: str, text: str) -> None:
        if self._lines_shown.get(selector) != text:
            self._lines_shown[selector] = text
            self.query_one(selector, Static).update(Text(text, no_wrap=True, overflow="ellipsis"),
                                                    layout=False)

    def say(self, message: str, severity: str = "information") -> None:
        from engine.text import escape_controls

        message = escape_controls(message)  # names from files: no terminal escapes, and no markup below
        self.messages.append(message)
        self.app.notify(message, severity=severity, timeout=6 if severity != "error" else 10,  # type: ignore[arg-type]
                        markup=False)

    # --- busy state and progress -------------------------------------------------------
    def _on_busy_change(self) -> None:
        """A job started or ended. The header names a running job from the progress timer's
        first tick (HEADER_DELAY): a quick step then repaints once, with its result, instead
        of first taking a frame (and the next 1/60 s frame slot) to say "running: step"."""
        if not self.is_mounted:
            return
        job = self.ctl.running
        if job is None and self._panels_deferred and not self._panels_pending:
            self._panels_pending = True
            self.call_after_refresh(self._refresh_panels)
        bar = self.query_one("#progress", Horizontal)
        if job is None or job.low or "running: " in self._lines_shown.get("#header", ""):
            self.update_header()
        if job is None or job.low:
            bar.remove_class("-busy")
            if self._progress_timer is not None:
                self._progress_timer.stop()
                self._progress_timer = None
            return
        if self._progress_timer is None:
            self._progress_timer = self.set_interval(HEADER_DELAY, self._tick_progress)

    def _tick_progress(self) -> None:
        job = self.ctl.running
        if job is None or job.low:
            return
        import time

        self.update_header()  # names the running job (unchanged text is not repainted)
        if time.monotonic() - job.started < PROGRESS_DELAY:
            return
        bar = self.query_one("#progress", Horizontal)
        bar.add_class("-busy")
        s = self.session
        done, total = self.ctl.progress or (s.k, s.n_ops)
        label = f"{job.label}: step {done} / {total}"
        op = self.ctl.op_progress
        if op is not None and time.monotonic() - op.since >= PROGRESS_DELAY:
            # one op has run a while: its own progress, not a bar held at the op's start
            text = str(s.ops[op.op]) if 0 <= op.op < s.n_ops else ""
            label += " · " + op.text(text if len(text) <= 30 else text[:29] + "…")
            if op.total:
                done, total = op.done, op.total
        self.query_one("#progress-label", Label).update(f"{label}   (Esc interrupts)", layout=False)
        self.query_one("#progress-bar", ProgressBar).update(total=max(1, total), progress=min(done, total))

    # --- actions: moving the session ------------------------------------------------------
    def _submit(self, label: str, fn: Any) -> None:
        if not self.ctl.submit(Job(label, fn, self.apply)):
            self.say("busy: too many queued commands (Esc interrupts)", "warning")

    def action_step(self, grain: str) -> None:
        self._submit(f"step {grain}", lambda s: do_step(s, grain))

    def action_back(self, grain: str) -> None:
        self._submit(f"back {grain}", lambda s: do_back(s, grain))

    def action_continue_run(self) -> None:
        self._submit("continue", lambda s: do_continue(s))

    def action_reverse_continue(self) -> None:
        self._submit("reverse-continue", lambda s: do_continue(s, reverse=True))

    def action_run_to_end(self) -> None:
        self._submit("run to end", lambda s: do_run_to_end(s, self.ctl.report))

    def seek(self, pos: Position) -> None:
        self._submit(f"go to step {pos}", lambda s: do_seek(s, pos, self.ctl.report))

    def action_goto_step(self) -> None:
        from tui.screens.dialogs import InputDialog

        def check(text: str) -> str | None:
            try:
                parse_position(text)
            except ValueError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self.seek(parse_position(text))

        self._dialog(InputDialog(
            f"Go to step (0 .. {self.session.n_ops}; N.E = E events into op N+1)",
            placeholder="e.g. 12 or 12.5", value=str(self.session.position), validate=check,
            dialog_id="goto-step"), done)

    def action_interrupt(self) -> None:
        if self.ctl.interrupt():
            self.say("interrupting …", "warning")

    # --- actions: the view ------------------------------------------------------------------
    def action_goto_addr(self) -> None:
        from tui.screens.dialogs import InputDialog

        def check(text: str) -> str | None:
            try:
                parse_address(text)
            except ValueError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self.go_to_address(parse_address(text))

        cur = self.grid.cursor_addr
        self._dialog(InputDialog("Go to virtual address", placeholder="hex, e.g. 7f0000010000",
                                         value=f"{cur:#x}" if cur is not None else "", validate=check,
                                         dialog_id="goto-addr"), done)

    def go_to_address(self, addr: int) -> bool:
        page = addr & ~(self.model.page_size - 1)
        if self.grid.go_to(page):
            self.grid.scroll_to_cursor(center=True)
            return True
        i = self.model.nearest_region(page)
        if i is None:
            self.say(f"{addr:#x} is not mapped (nothing is mapped)", "warning")
            return False
        r = self.model.regions[i]
        target = r.start if page < r.start else r.end - self.model.page_size
        self.grid.go_to(target)
        self.grid.scroll_to_cursor(center=True)
        self.say(f"{addr:#x} is not mapped; nearest range {r.name} {r.start:#x}-{r.end:#x}", "warning")
        return False

    def action_zoom(self, delta: int) -> None:
        if self.model.set_zoom(self.model.zoom + delta):
            self.grid.model_changed()
            self.update_header()
        else:
            self.say("already at the " + ("closest" if delta < 0 else "widest") + " zoom", "information")

    def action_next_process(self) -> None:
        """The next live process (exited ones keep their name in the list, not their tables)."""
        names = self.model.processes()
        live = [n for n in names if self.model.alive(n)]
        others = [n for n in live if n != self.model.process]
        if not others:
            gone = [n for n in names if n not in live]
            self.say(f"only one live process: {live[0] if live else self.model.process}"
                     + (f" ({', '.join(gone)} exited)" if gone else ""))
            return
        i = names.index(self.model.process) if self.model.process in names else -1
        order = names[i + 1:] + names[:i + 1]
        self.model.set_process(next(n for n in order if n in others))
        self._empty_hint()
        self.grid.cursor_addr = None
        self.grid.model_changed(keep_addr=False)
        self.update_header()
        self._update_addrspace()

    _last_query = ""

    def action_copy(self, address: bool) -> None:
        """The descriptor (or the address) under the cursor to the clipboard (OSC 52)."""
        addr = self.inspected_addr()
        if addr is None:
            self.say("no entry selected", "warning")
            return
        if address:
            text = f"{addr:#x}"
        elif self.model.zoom > 0:
            self.say("zoomed out a cell is many entries: zoom in (+) to copy one", "warning")
            return
        else:
            text = f"{self.model.raw(addr):#018x}"
        self.app.copy_to_clipboard(text)
        self.say(f"copied {text} ({'address' if address else 'descriptor at ' + format(addr, '#x')})")

    def action_search(self) -> None:
        from tui.screens.dialogs import InputDialog

        def done(text: str | None) -> None:
            if text:
                self.search(text)

        self._dialog(InputDialog(
            "Find (forward from this step)", placeholder="text of an op, fold, 0x7f0000010000, call:NAME",
            value=self._last_query,
            hint="An event kind (fold, unfold, convert, tlb_conflict ...) finds the next such event; a hex "
                 "address the next event touching its page; KIND:VALUE any breakpoint condition; anything "
                 "else the next op whose text contains it.", dialog_id="search"), done)

    def search(self, query: str, reverse: bool = False) -> None:
        from engine.breakpoints import BreakpointError
        from tui.search import describe_hit, event_query, find

        self._last_query = query
        cond = event_query(self.session, query)
        if cond is not None:
            try:  # a bad condition is said now, not from the worker
                from engine.breakpoints import parse_condition

                g = self.session.machine.arch.g
                parse_condition(cond, g.page_size, g.cont_pte_size, self.session.op_verbs())
            except BreakpointError as e:
                self.say(str(e), "error")
                return

        def fn(s: Session) -> MoveResult:
            before = s.position
            hit, what = find(s, query, reverse)
            msg = f"{what}: {describe_hit(hit)}" if hit is not None else (
                f"{what}: no match {'before' if reverse else 'after'} step {before}")
            return gather(s, before, message=msg)

        self._submit(f"find {query}", fn)

    def action_jump_fold(self, reverse: bool) -> None:
        from tui.search import describe_hit, jump_fold

        def fn(s: Session) -> MoveResult:
            before = s.position
            hit = jump_fold(s, reverse)
            return gather(s, before, message=(f"{'previous' if reverse else 'next'} fold/unfold: "
                                              f"{describe_hit(hit)}" if hit is not None else
                                              f"no fold or unfold {'before' if reverse else 'after'} "
                                              f"step {before}"))

        self._submit("previous fold" if reverse else "next fold", fn)

    def action_jump_event(self, kind: str, reverse: bool) -> None:
        """The session to the next (previous) fold, unfold or convert of any block."""
        from tui.search import describe_hit, jump_event

        def fn(s: Session) -> MoveResult:
            before = s.position
            hit = jump_event(s, kind, reverse)
            which = "previous" if reverse else "next"
            return gather(s, before, message=(f"{which} {kind}: {describe_hit(hit)}" if hit is not None else
                                              f"no {kind} {'before' if reverse else 'after'} step {before}"))

        self._submit(f"{'previous' if reverse else 'next'} {kind}", fn)

    def action_jump_foldable(self, reverse: bool) -> None:
        """The cursor to the next (previous) block that could fold but is not folded (◇)."""
        from tui.search import next_foldable

        if not self._require_idle("look for a foldable block"):  # (the explainer reads the tables)
            return
        if self.model.zoom > 0:
            self.say("zoom in (+) to find single blocks", "warning")
            return
        b = next_foldable(self.model, self.grid.cursor_addr, reverse)
        if b is None:
            self.say(f"no block of {self.model.process} could fold and is unfolded at step "
                     f"{self.session.position}")
            return
        self.go_to_address(b)
        self.say(f"block {b:#x}: passes every fold check, not folded (◇)")

    _last_pfn = ""

    def action_goto_pfn(self) -> None:
        from tui.screens.dialogs import InputDialog
        from tui.search import parse_pfn_query

        def check(text: str) -> str | None:
            try:
                parse_pfn_query(text)
            except ValueError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self._last_pfn = text
                self.go_to_pfn(*parse_pfn_query(text))

        self._dialog(InputDialog(
            "Go to the entry mapping a pfn or a folio", placeholder="pfn 0x80010 or folio 0x80000",
            value=self._last_pfn, validate=check,
            hint="pfn N: the next entry mapping that page; folio N: the next entry mapping any page of N's "
                 "folio (hex). Again from there: the next mapping, in this process then the others.",
            dialog_id="goto-pfn"), done)

    def go_to_pfn(self, what: str, pfn: int) -> bool:
        from tui.search import find_pfn

        if not self._require_idle("find a pfn"):
            return False
        here = self.grid.cursor_addr if self.model.zoom == 0 else None
        found = find_pfn(self.model, pfn, folio=what == "folio", after=here)
        if found is None:
            self.say(f"{what} {pfn:#x}: not mapped by any process at step {self.session.position}", "warning")
            return False
        proc, va, got = found
        names = self.model.processes()
        while self.model.process != proc and proc in names:  # the mapping is in another process
            self.action_next_process()
        self.go_to_address(va)
        self.say(f"{what} {pfn:#x}: pfn {got:#x} mapped at {va:#x} in {proc}")
        return True

    def action_block_history(self) -> None:
        """Every fold and unfold of the block under the cursor; choosing one goes there."""
        addr = self.inspected_addr()
        if addr is None or self.model.zoom > 0:
            self.say("select one entry (zoom in with +) to see its block's history", "warning")
            return
        key = self._since_key(addr)
        hist = self._history.get(key)
        if hist is None or (not hist.complete and len(hist.entries) < HISTORY_MAX):
            if not self._require_idle("show the block's history"):
                return
            proc = self.model.process
            self.ctl.submit(Job("block history", lambda s: block_history(s, proc, addr, limit=HISTORY_MAX,
                                                                         max_ops=SINCE_MAX_OPS),
                                lambda h: self._show_history(key, h)))
            return
        self._show_history(key, hist)

    def _show_history(self, key: tuple, hist: BlockHistory) -> None:
        from tui.screens.dialogs import ChoiceDialog

        self._history[key] = hist
        block = key[1]
        if not hist.entries:
            more = "" if hist.complete else f" in the last {hist.scanned} ops"
            self.say(f"block {block:#x} of {key[0]}: never folded or unfolded{more} up to step "
                     f"{self.session.position}")
            return
        choices = [(f"{e.op}.{e.event + 1}",
                    f"{e.kind:<6} step {e.position}  op {e.op + 1} {e.op_text}  │  {e.chain_text()}  │  "
                    f"{e.decision}") for e in hist.entries]

        def done(pos: str | None) -> None:
            if pos:
                self.seek(parse_position(pos))

        older = "" if hist.complete else f" (the last {hist.scanned} ops; older ones not searched)"
        self._dialog(ChoiceDialog(f"Block {block:#x} of {key[0]}: folds and unfolds, newest first{older}",
                                  choices, hint="Enter goes to the step just after it.",
                                  dialog_id="history"), done)

    # --- breakpoints ---------------------------------------------------------------------
    def _dialog(self, screen: Screen, callback: Any = None) -> None:
        """Open a dialog (or the help screen) over this screen -- unless something is
        already over it: two keys faster than a redraw both reach this screen, and a
        second dialog with the same id ended the app (DuplicateIds, found by the monkey)."""
        if self.app.screen is not self:
            return
        self.app.push_screen(screen, callback)

    def _require_idle(self, what: str) -> bool:
        if not self.ctl.idle:
            self.say(f"busy: {what} when the current run ends (Esc interrupts)", "warning")
            return False
        return True

    def action_toggle_block_breakpoint(self) -> None:
        if not self._require_idle("set breakpoints"):
            return
        addr = self.grid.cursor_addr
        if addr is None:
            self.say("no cell selected", "warning")
            return
        block = self.model.block_start(addr)
        for b in self.session.breakpoints:
            c = b.condition
            if isinstance(c, BlockChange) and c.start == block:
                self.session.remove_breakpoint(b.id)
                self.say(f"breakpoint {b.describe()} removed")
                break
        else:
            try:
                bp = self.session.add_breakpoint(f"block:{block:#x}")
            except BreakpointError as e:
                self.say(str(e), "error")
                return
            self.say(f"breakpoint {bp.describe()} set")
        self._breakpoints_changed()

    def _breakpoints_changed(self) -> None:
        self.model.block_breakpoints = block_breakpoints(self.session)
        self.model.generation += 1
        self.grid.model_changed()
        self.update_header()

    def action_breakpoint_dialog(self) -> None:
        if not self._require_idle("edit breakpoints"):
            return
        from tui.screens.dialogs import BreakpointDialog

        self._dialog(BreakpointDialog(self.session, self._breakpoints_changed))

    def add_breakpoint(self, text: str) -> bool:
        if not self._require_idle("set breakpoints"):
            return False
        try:
            bp = self.session.add_breakpoint(text)
        except BreakpointError as e:
            self.say(str(e), "error")
            return False
        self.say(f"breakpoint {bp.describe()} set")
        self._breakpoints_changed()
        return True

    # --- snapshots -------------------------------------------------------------------------
    def action_save_snapshot(self) -> None:
        from tui.screens.dialogs import InputDialog

        def done(path: str | None) -> None:
            if not path:
                return
            from pathlib import Path

            if Path(path).exists() and path != self.snapshot_path:
                from tui.screens.dialogs import ChoiceDialog

                self._dialog(ChoiceDialog(f"{path} exists: replace it?",
                                          [("replace", f"replace {path}"), ("keep", "keep it, do not save")],
                                          dialog_id="overwrite"),
                             lambda k: self.save_snapshot(path) if k == "replace" else self.say("not saved"))
                return
            self.save_snapshot(path)

        self._dialog(InputDialog("Save snapshot to", placeholder="FILE.ptsnap",
                                         value=f"{(self.session.name or 'session').split(':')[0]}.ptsnap",
                                         dialog_id="save"), done)

    def save_snapshot(self, path: str) -> None:
        """Save in a job: the ops not run yet run first (Esc saves the ops done so far)."""
        if not self._require_idle("save"):
            return

        def fail(e: BaseException) -> None:
            if isinstance(e, snapshot_io.SnapshotIOError):
                self.say(f"save failed: {e}", "error")
            elif isinstance(e, OSError):
                self.say(f"save failed: {path}: {e.strerror or e}", "error")
            else:
                self.say(f"save failed: {type(e).__name__}: {e}", "error")
            self._view_after_job()

        def done(message: str) -> None:
            self.snapshot_path = path
            self.update_header()
            self.say(message, "information" if message == f"saved {path}" else "warning")
            self._view_after_job()

        self.ctl.submit(Job("save", lambda s: snapshot_io.save_session(s, path, self.ctl.report), done, fail))

    # --- export and decode -------------------------------------------------------------
    def action_export(self) -> None:
        from tui.export_io import FORMATS
        from tui.screens.dialogs import InputDialog

        def done(path: str | None) -> None:
            if path:
                self.export(path)

        base = (self.session.name or "session").split(":")[0].replace("/", "_")
        self._dialog(InputDialog(
            f"Export step {self.session.position} to", placeholder="FILE.txt",
            value=f"{base}-{self.model.process}-step{self.session.position}.txt",
            hint="The extension picks the format: " + ", ".join(
                f"{ext} {fmt if fmt != 'svg' else 'screenshot'}" for ext, fmt in FORMATS.items())
                 + f". Page tables are {self.model.process}'s, as ptlab show prints them.",
            validate=_export_error, dialog_id="export"), done)

    def export(self, path: str) -> None:
        """Write the current step's page tables (a job: big tables take a moment) or a screenshot."""
        from tui.export_io import ExportError, export_format, find_process, render_tables, write_file

        if not self._require_idle("export"):
            return
        try:
            fmt = export_format(path)
        except ExportError as e:
            self.say(str(e), "error")
            return
        if fmt == "svg":
            try:
                write_file(path, self.app.export_screenshot(title=f"ptlab {self.session.name}"))
            except ExportError as e:
                self.say(f"export failed: {e}", "error")
                return
            self.say(f"screenshot saved to {path}")
            return
        proc_name = self.model.process

        def fn(s: Session) -> str:
            text = render_tables(s, find_process(s, proc_name), fmt, s.name or "session")
            write_file(path, text)
            return f"{proc_name} at step {s.position} exported to {path} ({fmt})"

        def fail(e: BaseException) -> None:
            msg = str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {e}"
            self.say(f"export failed: {msg}", "error")

        self.ctl.submit(Job("export", fn, lambda m: self.say(m), fail))

    def action_decode(self) -> None:
        from tui.screens.dialogs import InputDialog

        addr = self.inspected_addr()
        value = f"{self.model.raw(addr):#018x}" if addr is not None and self.model.zoom == 0 else ""

        def done(text: str | None) -> None:
            if text:
                self.decode(text)

        self._dialog(InputDialog(
            "Decode a raw descriptor (hex)", placeholder="0x00e8000080000f43", value=value,
            hint=f"Decoded with the session's {self.session.machine.arch.g.name} granule and "
                 f"{self.session.machine.arch.profile.name} layout, as ptlab decode does.",
            validate=_decode_error, dialog_id="decode"), done)

    def decode(self, text: str) -> None:
        from engine.decode import decode
        from tui.commands.decode import describe, parse_value
        from tui.errors import UserError
        from tui.screens.dialogs import TextDialog

        try:
            value = parse_value(text)
        except UserError as e:
            self.say(str(e), "error")
            return
        arch = self.session.machine.arch
        d = decode(value, arch.g, arch.layout, arch.profile)
        self._dialog(TextDialog("Decoded descriptor", Text(describe(value, d, arch.g.name,
                                                                            arch.profile.name)),
                                        dialog_id="decoded"))

    def _view_after_job(self) -> None:
        """A job that ran ops (and put the session back) may have changed what is cached."""
        self.ctl.submit(Job("view", lambda s: gather(s, s.position), self.apply))

    def action_open_snapshot(self) -> None:
        from tui.screens.dialogs import InputDialog

        def done(path: str | None) -> None:
            if path:
                self.open_snapshot(path)

        self._dialog(InputDialog("Open snapshot", placeholder="FILE.ptsnap", dialog_id="open"), done)

    def open_snapshot(self, path: str) -> None:
        if not self._require_idle("open a snapshot"):
            return
        try:
            s = snapshot_io.load_session(path)
        except snapshot_io.SnapshotIOError as e:
            self.say(f"cannot open {path}: {e}", "error")
            return
        except OSError as e:
            self.say(f"cannot open {path}: {e.strerror or e}", "error")
            return
        view = s.saved_view
        bad = []
        for text in view.get("breakpoints", []):
            try:
                s.add_breakpoint(text)
            except BreakpointError:
                bad.append(text)
        self.snapshot_path = path
        self.set_session(s)
        where = ""
        pos_text = view.get("position")
        if pos_text:
            try:
                pos = parse_position(pos_text)
            except ValueError:
                bad.append(f"position {pos_text!r}")
            else:
                if pos != s.position:
                    self.seek(pos)
                    where = f" at step {pos}"
        n_bp = len(s.breakpoints)
        bps = f" with {n_bp} breakpoint{'s' if n_bp != 1 else ''}" if n_bp else ""
        self.say(f"opened {path}{where}{bps}")
        if bad:
            self.say(f"{path}: ignored what this build cannot use: {', '.join(bad)}", "warning")
        for w in s.warnings:
            self.say(w, "warning")

    def set_session(self, session: Session) -> None:
        self.session = session
        self.ctl.set_session(session)
        self.model = GridModel(session.machine, breakpoints=block_breakpoints(session))
        self.grid.set_model(self.model)
        self.oplog.set_session(session)
        self.query_one("#costs", CostPanel).set_session(session)
        self._since.clear()
        self._history.clear()
        self._explained.clear()
        self._exact = None
        self._auto_expanded = None
        self._refresh_all(ViewState(), None)
        self.ctl.submit(Job("view", lambda s: gather(s, s.position), self.apply))

    # --- comparison ----------------------------------------------------------------------------
    compare_start = "tables"  # where a comparison opens: "tables" or "costs" (the dialog's first line)

    def action_compare(self) -> None:
        if not self._require_idle("compare"):
            return
        from engine.arch.profiles import PROFILES
        from engine.hw.cpus import CPUS
        from engine.policy import BUILTIN_POLICIES
        from tui.compare import granules_for
        from tui.screens.dialogs import ChoiceDialog

        st = self.settings()
        at = ("the first page-table divergence" if self.compare_start == "tables"
              else "the first cost divergence")
        other = "cost" if self.compare_start == "tables" else "page-table"
        choices = [("start:", f"▸ opens at {at} (Enter here: the first {other} divergence)")]
        choices += [(f"kernel:{p}", f"kernel  {p:<12} {PROFILES[p].description}")
                    for p in PROFILES if p != st["kernel"]]
        choices += [(f"policy:{p}", f"policy  {p:<12} {cls.description}")
                    for p, cls in BUILTIN_POLICIES.items() if p != st["policy"]]
        choices += [(f"cpu:{p}", f"cpu     {p:<12} {getattr(c, 'description', '')}")
                    for p, c in CPUS.items() if p != st["cpu"]]
        choices += [(f"granule:{g}", f"granule {g:<12} the same ops with {g} pages")
                    for g in granules_for(self.session) if g != st["granule"]]  # (those it is written for)
        choices.append(("other:", "other …  a policy FILE.py:CLASS, a CPU profile FILE.toml, KIND:VALUE"))

        def done(key: str | None) -> None:
            if not key:
                return
            what, _, value = key.partition(":")
            if what == "start":
                self.compare_start = "costs" if self.compare_start == "tables" else "tables"
                self.call_after_refresh(self.action_compare)  # the dialog again, saying the new start
            elif what == "other":
                self.call_after_refresh(self._compare_other)
            else:
                self.compare_with(**{what: value})

        self._dialog(ChoiceDialog(
            f"Compare with (now: {st['kernel']}, {st['policy']}, {st['cpu']}, {st['granule']})", choices,
            hint="Runs the same ops under the other setting; the screen names the first op where the page "
                 "tables differ and the first whose costs differ, and opens at the one chosen above.",
            # (the id follows the start: the dialog reopened by the first line is mounted while the
            # one it replaces is still being removed, and two screens may not share an id)
            dialog_id="compare" if self.compare_start == "tables" else "compare-costs"), done)

    def _compare_other(self) -> None:
        from tui.compare import parse_variant
        from tui.errors import UserError
        from tui.screens.dialogs import InputDialog

        def check(text: str) -> str | None:
            try:
                parse_variant(text, self.settings())
            except UserError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self.compare_with(**parse_variant(text, self.settings()))

        self._dialog(InputDialog(
            "Compare with", placeholder="my_policy.py:MyPolicy, my_cpu.toml, kernel:v6.9, granule:16K",
            validate=check, hint="A fold policy file (FILE.py:CLASS), a CPU profile (FILE.toml), or "
                                 "KIND:VALUE with KIND kernel, policy, cpu or granule.",
            dialog_id="compare-other"), done)

    def compare_with(self, kernel: str | None = None, policy: str | None = None, cpu: str | None = None,
                     granule: str | None = None, start: str | None = None) -> None:
        from tui.compare import run_compare, variant
        from tui.errors import UserError
        from tui.screens.compare import CompareScreen

        asked = {"kernel": kernel, "policy": policy, "cpu": cpu, "granule": granule}
        label = ", ".join(f"{k} {v}" for k, v in asked.items() if v is not None)
        try:
            b = variant(self.session, **asked)
        except UserError as e:
            self.say(str(e), "error")
            return
        start = start or self.compare_start

        keep = self.session.position  # where the user was: back there when the comparison closes

        def done(res: Any) -> None:
            if res.interrupted:
                self.say("comparison interrupted", "warning")
                self._after_compare(keep)
                return
            if any(isinstance(sc, CompareScreen) for sc in self.app.screen_stack):
                self.say("a comparison is already open", "warning")  # (two asked for in a row)
                self._after_compare(keep)
                return
            self.app.push_screen(CompareScreen(res, self.ctl), lambda _: self._after_compare(keep))

        self.ctl.submit(Job(f"compare with {label}",
                            lambda s: run_compare(s, lambda: b, label, self.ctl.report, b=b, start=start),
                            done))

    def _after_compare(self, keep: Position) -> None:
        """The comparison moved the shared session (to the divergence, or wherever its cursor
        went): put it back where the user was before opening it."""
        self._submit(f"back to step {keep}", lambda s: do_seek(s, keep))

    # --- help / quit -------------------------------------------------------------------------
    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self._dialog(HelpScreen(self.keymap))

    def action_quit(self) -> None:
        self.ctl.interrupt()
        self.app.exit()

    # --- messages from widgets --------------------------------------------------------------
    @on(PteGrid.CursorMoved, "#grid")
    def _cursor_moved(self, event: PteGrid.CursorMoved) -> None:
        if not self._inspector_pending and not self._panels_pending:  # after the grid has painted, once
            self._inspector_pending = True
            self.call_after_refresh(self.show_inspector)
        self._schedule_since()

    def inspected_addr(self) -> int | None:
        """The VA the inspector describes: the cursor's page, or its cell's start when zoomed out."""
        g = self.grid
        if g.cursor_addr is None:
            return None
        if self.model.zoom > 0:
            return self.model.cell_addr(g.cursor_row, g.cursor_col)
        return g.cursor_addr & ~(self.model.page_size - 1)

    def show_inspector(self) -> None:
        self._inspector_pending = False
        addr = self.inspected_addr()
        info = self.model.row_info(self.grid.cursor_row)
        key = self._since_key(addr) if addr is not None else None
        ex = None
        mid_op = bool(self.session.e)
        exact = self.exact_machine() if mid_op else None
        if key is not None and self.model.zoom == 0:
            if mid_op:
                # inside an op: the machine as it is at the exact event (its own copy, read
                # only here), once the job computing it has run
                if exact is not None:
                    ex = self._explained.get(key)
                    if ex is None:
                        ex = self._explained[key] = explain(self.model, addr, exact)  # type: ignore[arg-type]
            # the explainer reads the tables through their writable path: only between jobs
            elif not self.ctl.executing:
                ex = self._explained[key] = explain(self.model, addr)  # type: ignore[arg-type]
            else:
                ex = self._explained.get(key)
        self.inspector.show(self.model, addr, since=self._since.get(key) if key else None,
                            history=self._history.get(key) if key else None,
                            mid_op=mid_op,
                            header_row=info if info is not None and info.kind == "header" else None,
                            explanation=ex, machine=exact,
                            region=info.region if info is not None and info.kind == "data" else None)

    def exact_machine(self) -> MachineContract | None:
        """The machine as it is at the (mid-op) position, or None until computed."""
        pos = self.session.position
        if self._exact is not None and self._exact[0] == pos:
            return self._exact[1]
        return None

    def _request_exact(self) -> None:
        """Inside an op: compute the machine at the exact event (tui.exact) in a job."""
        pos = self.session.position
        if not pos.event or (self._exact is not None and self._exact[0] == pos):
            return
        if self._exact_pending == pos:
            return
        self._exact_pending = pos

        def fn(s: Session) -> tuple[Position, Any]:
            return s.position, machine_at_event(s)

        def done(res: tuple[Position, Any]) -> None:
            p, m = res
            self._exact_pending = None
            self.grid.model_changed()  # (the job re-ran part of the op on the shared machine)
            if m is not None:
                self._exact = (p, m)
                if p == self.session.position:
                    self.model.set_exact(m)  # folio orders and ◇ marks of the exact event
                    self.grid.model_changed()
                    self.show_inspector()
            if self._since_after_exact:
                self._since_after_exact = False
                self._request_since()

        def fail(e: BaseException) -> None:
            self._exact_pending = None

        if not self.ctl.submit(Job("state at this event", fn, done, fail, low=True)):
            self._exact_pending = None

    def _since_key(self, addr: int) -> tuple:
        return (self.model.process, self.model.block_start(addr), self.session.k, self.session.e)

    def _schedule_since(self) -> None:
        if self._since_timer is not None:
            self._since_timer.stop()
        self.since_pending = True
        self._since_timer = self.set_timer(SINCE_DELAY, self._request_since)

    _since_deferred = False

    def on_screen_resume(self) -> None:
        if self._since_deferred:
            self._since_deferred = False
            self._request_since()

    def _request_since(self) -> None:
        self.since_pending = False
        if self._since_timer is not None:
            self._since_timer.stop()
            self._since_timer = None
        addr = self.inspected_addr()
        if addr is None or self.model.zoom > 0:
            return
        if self.app.screen is not self:
            # the lookup seeks the shared session; another screen (the comparison)
            # may be drawing it, so ask again when this screen is showing again
            self._since_deferred = True
            return
        key = self._since_key(addr)
        if key in self._since:
            return
        if self._exact_pending is not None:  # (a background job: one at a time)
            self._since_after_exact = True
            return
        proc = self.model.process

        def fn(s: Session) -> tuple[tuple, str | None, BlockHistory | None]:
            res = since_op(s, proc, addr, max_ops=SINCE_MAX_OPS)
            text = res.text if res.complete or res.scanned else None
            # the inspector shows the last few (w asks for them all): stop scanning once it has them
            hist = (block_history(s, proc, addr, limit=HISTORY_SHOWN + 1, max_ops=SINCE_MAX_OPS)
                    if text else None)
            return key, text, hist

        def done(res: tuple[tuple, str | None, BlockHistory | None]) -> None:
            # the lookup moved the shared machine in its thread: rows painted meanwhile may
            # have read it half-way (a folio order of 0), so they are built again
            self.grid.model_changed()
            k, text, hist = res
            if text is None:  # cancelled by a key press: ask again when things settle
                return
            self._since[k] = text
            if hist is not None and (hist.complete or hist.entries):
                self._history[k] = hist
            cur = self.inspected_addr()
            if cur is not None and self._since_key(cur) == k:
                self.show_inspector()

        self.ctl.submit(Job("explain history", fn, done, low=True,
                            fail=lambda e: self.grid.model_changed()))

    @on(OpLog.Expand)
    def _expand(self, event: OpLog.Expand) -> None:
        op = event.op
        if op == self._auto_expanded:
            self._auto_expanded = None  # the user's now: stays open
        if not event.expand:
            self.oplog.set_expanded(op, None)
            return
        if not 0 <= op < self.session.n_ops:
            return
        self.ctl.submit(Job(f"events of op {op + 1}", lambda s: s.events_of(op),
                            lambda evs: self.oplog.set_expanded(op, evs)))

    @on(OpLog.SeekTo)
    def _seek_to(self, event: OpLog.SeekTo) -> None:
        self.seek(event.position)

    @on(AddressSpace.Jump)
    def _jump(self, event: AddressSpace.Jump) -> None:
        self.grid.go_to(event.addr)
        self.grid.scroll_to_cursor(center=True)
        self.grid.focus()


def _export_error(text: str) -> str | None:
    from tui.export_io import ExportError, export_format

    if not text:
        return "a file name, please"
    try:
        export_format(text)
    except ExportError as e:
        return str(e)
    return None


def _decode_error(text: str) -> str | None:
    from tui.commands.decode import parse_value
    from tui.errors import UserError

    try:
        parse_value(text)
    except UserError as e:
        return str(e).removeprefix("decode: ")
    return None
