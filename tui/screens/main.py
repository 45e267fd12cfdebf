# SPDX-License-Identifier: GPL-2.0-only
"""The main screen: header, address space, PTE grid, op log, inspector, costs.

Attributes down, messages up: the screen owns the session controller and
the grid model, hands them to the widgets, and reacts to their messages
(cursor moved, op expanded, region chosen). Every session command goes
through the controller (a thread worker); ``apply`` spreads its result.

This module lays the panes out, spreads a new position over them and moves
the session and the view; the keys that ask for something in a dialog are
:mod:`tui.screens.dialog_flows` (mixed in), what the inspector shows and
caches is :mod:`tui.screens.inspector_pane`, and the header and progress
line are :mod:`tui.widgets.status`.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.breakpoints import AddrRange, BlockChange, BreakpointError, Watch
from engine.session import Position, Session
from tui import actions
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
from tui.grid_model import GridModel, ViewState
from tui.screens.dialog_flows import DialogFlows
from tui.screens.inspector_pane import InspectorPane
from tui.widgets.addrspace import AddressSpace
from tui.widgets.costpanel import CostPanel
from tui.widgets.inspector import Inspector
from tui.widgets.legend_bar import LegendBar
from tui.widgets.oplog import OpLog
from tui.widgets.pte_grid import PteGrid
from tui.widgets.status import ProgressLine, StatusLine, header_text


def block_breakpoints(session: Session) -> set[int]:
    out = set()
    for b in session.breakpoints:
        c = b.condition
        if isinstance(c, (AddrRange, Watch, BlockChange)) and c.label in ("block", "watch-block"):
            out.add(c.start)
    return out


class MainScreen(DialogFlows, Screen):
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
        self.inspector_pane = InspectorPane(self)
        self.panels_pending = False  # _refresh_panels is scheduled after the grid paints
        self._panels_deferred = False
        self._auto_expanded: int | None = None
        self.last_result: MoveResult | None = None
        self.messages: list[str] = []  # every notification text (tests)
        self._story_shown: str | None = None

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusLine(id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Static("Address space", classes="pane-title", id="addrspace-title")
                yield AddressSpace(id="addrspace")
            with Vertical(id="center"):
                yield StatusLine("PTE grid", classes="pane-title", id="grid-title")
                yield Static("", id="story")
                yield PteGrid(self.model, id="grid")
                yield OpLog(self.session, id="oplog")
            with Vertical(id="right"):
                yield Static("Inspector", classes="pane-title", id="inspector-title")
                yield Inspector(id="inspector")
                yield CostPanel(id="costs")
        yield ProgressLine(self.ctl, on_tick=self.update_header, id="progress")
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
        if not self.panels_pending:
            self.panels_pending = True
            self.call_after_refresh(self._refresh_panels)

    def _refresh_panels(self) -> None:
        self.panels_pending = False
        if self.ctl.running is not None:
            # a job is moving the shared session (a save runs ahead to the end and
            # back, a history lookup seeks): where it is now is not the step to show.
            # The panels follow when the session is idle again (_on_busy_change).
            self._panels_deferred = True
            return
        self._panels_deferred = False
        self._auto_expand()
        self.inspector_pane.request_exact()
        self.oplog.update_position(self.session.position)
        self.query_one("#costs", CostPanel).update_view()
        self._update_addrspace()
        self._update_story()
        self.inspector_pane.show()

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
        if self._story_shown == text:
            return
        self._story_shown = text
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
        from tui.variants import settings_of

        return settings_of(self.session)

    def header_text(self) -> str:
        return header_text(self.session, self.model, self.ctl.running, self.snapshot_path)

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
        """The header and the grid's title (each repainted only if its text changed)."""
        self.query_one("#header", StatusLine).show(self.header_text())
        grid_title = self.query_one("#grid-title", StatusLine)
        width = grid_title.size.width or 60
        stack = self.call_stack_text(limit=max(20, width - 22 - len(self.model.process)))
        if stack:
            title = f"PTE grid — {self.model.process} — in {stack}"
        else:
            n = len(self.model.regions)
            title = f"PTE grid — {self.model.process} — {n} range{'s' if n != 1 else ''}"
            if self.model.zoom:
                title += f" — {self.model.zoom_label()}"
        grid_title.show(title)

    def say(self, message: str, severity: str = "information") -> None:
        from engine.text import escape_controls

        message = escape_controls(message)  # names from files: no terminal escapes, and no markup below
        self.messages.append(message)
        self.app.notify(message, severity=severity, timeout=6 if severity != "error" else 10,  # type: ignore[arg-type]
                        markup=False)

    # --- busy state and progress -------------------------------------------------------
    def _on_busy_change(self) -> None:
        """A job started or ended. The header names a running job from the progress line's
        first tick (tui.widgets.status.HEADER_DELAY): a quick step then repaints once, with its
        result, instead of first taking a frame (and the next 1/60 s frame slot) to say
        "running: step"."""
        if not self.is_mounted:
            return
        job = self.ctl.running
        if job is None and self._panels_deferred and not self.panels_pending:
            self.panels_pending = True
            self.call_after_refresh(self._refresh_panels)
        if job is None or job.low or "running: " in (self.query_one("#header", StatusLine).shown or ""):
            self.update_header()
        self.query_one("#progress", ProgressLine).job_changed()

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

    def action_interrupt(self) -> None:
        if self.ctl.interrupt():
            self.say("interrupting …", "warning")

    # --- actions: the view ------------------------------------------------------------------
    def inspected_addr(self) -> int | None:
        """The VA the inspector describes: the cursor's page, or its cell's start when zoomed out."""
        g = self.grid
        if g.cursor_addr is None:
            return None
        if self.model.zoom > 0:
            return self.model.cell_addr(g.cursor_row, g.cursor_col)
        return g.cursor_addr & ~(self.model.page_size - 1)

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

    # --- helpers of the actions and the dialog flows ---------------------------------------
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

    # --- breakpoints ---------------------------------------------------------------------
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

    # --- another session (an opened snapshot) ----------------------------------------------
    def set_session(self, session: Session) -> None:
        self.session = session
        self.ctl.set_session(session)
        self.model = GridModel(session.machine, breakpoints=block_breakpoints(session))
        self.grid.set_model(self.model)
        self.oplog.set_session(session)
        self.query_one("#costs", CostPanel).set_session(session)
        self.inspector_pane.forget()
        self._auto_expanded = None
        self._refresh_all(ViewState(), None)
        self.ctl.submit(Job("view", lambda s: gather(s, s.position), self.apply))

    # --- quit ----------------------------------------------------------------------------------
    def action_quit(self) -> None:
        self.ctl.interrupt()
        self.app.exit()

    # --- messages from widgets --------------------------------------------------------------
    @on(PteGrid.CursorMoved, "#grid")
    def _cursor_moved(self, event: PteGrid.CursorMoved) -> None:
        self.inspector_pane.cursor_moved()

    def on_screen_resume(self) -> None:
        self.inspector_pane.resume()

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


