# SPDX-License-Identifier: GPL-2.0-only
"""The main screen's inspector pane: what the Inspector widget shows for the cursor, and its caches.

The widget (``tui.widgets.inspector``) only renders; this pane decides what
it is given and keeps what took a job to compute: the explanation of a
block, "since op N" and the block's fold history (a debounced lookup that
seeks the shared session), and the machine at the exact mid-op event
(``tui.exact``). Each is cached per (process, block, position); a new
session forgets them all. Lookups run as low-priority controller jobs, one
at a time, and are dropped by a key press (asked again when things settle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.timer import Timer

from engine.queries import since_op
from engine.session import Position, Session
from tui.controller import Job
from tui.exact import machine_at_event
from tui.history import BlockHistory, block_history
from tui.inspect_model import HISTORY_SHOWN, explain

if TYPE_CHECKING:
    from engine.contract import MachineContract
    from tui.screens.main import MainScreen

SINCE_MAX_OPS = 5000  # ops a history lookup scans back, at most
SINCE_DELAY = 0.3  # the cursor rests this long before its history is looked up

Key = tuple  # (process, block start, ops done, events into the next op)


class InspectorPane:
    """Feeds the main screen's Inspector widget; owns the caches behind it."""

    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen
        self.since: dict[Key, str] = {}
        self.history: dict[Key, BlockHistory] = {}
        self._explained: dict[Key, Any] = {}
        self._since_timer: Timer | None = None
        self._exact: tuple[Position, Any] | None = None  # (mid-op position, machine exactly there)
        self._exact_pending: Position | None = None
        self._since_after_exact = False
        self._since_deferred = False
        self.since_pending = False  # a history lookup is scheduled (tests fire it at once)
        self.show_pending = False  # show() is scheduled after the grid paints

    def forget(self) -> None:
        """A new session: nothing cached is about it."""
        self.since.clear()
        self.history.clear()
        self._explained.clear()
        self._exact = None

    def key(self, addr: int) -> Key:
        sc = self.screen
        return (sc.model.process, sc.model.block_start(addr), sc.session.k, sc.session.e)

    def cursor_moved(self) -> None:
        sc = self.screen
        if not self.show_pending and not sc.panels_pending:  # after the grid has painted, once
            self.show_pending = True
            sc.call_after_refresh(self.show)
        self.schedule_since()

    def show(self) -> None:
        self.show_pending = False
        sc = self.screen
        model = sc.model
        addr = sc.inspected_addr()
        info = model.row_info(sc.grid.cursor_row)
        key = self.key(addr) if addr is not None else None
        ex = None
        mid_op = bool(sc.session.e)
        exact = self.exact_machine() if mid_op else None
        if key is not None and model.zoom == 0:
            if mid_op:
                # inside an op: the machine as it is at the exact event (its own copy, read
                # only here), once the job computing it has run
                if exact is not None:
                    ex = self._explained.get(key)
                    if ex is None:
                        ex = self._explained[key] = explain(model, addr, exact)  # type: ignore[arg-type]
            # the explainer reads the tables through their writable path: only between jobs
            elif not sc.ctl.executing:
                ex = self._explained[key] = explain(model, addr)  # type: ignore[arg-type]
            else:
                ex = self._explained.get(key)
        sc.inspector.show(model, addr, since=self.since.get(key) if key else None,
                          history=self.history.get(key) if key else None,
                          mid_op=mid_op,
                          header_row=info if info is not None and info.kind == "header" else None,
                          explanation=ex, machine=exact,
                          region=info.region if info is not None and info.kind == "data" else None)

    # --- the machine at the exact mid-op event ---------------------------------------------
    def exact_machine(self) -> MachineContract | None:
        """The machine as it is at the (mid-op) position, or None until computed."""
        pos = self.screen.session.position
        if self._exact is not None and self._exact[0] == pos:
            return self._exact[1]
        return None

    def request_exact(self) -> None:
        """Inside an op: compute the machine at the exact event (tui.exact) in a job."""
        sc = self.screen
        pos = sc.session.position
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
            sc.grid.model_changed()  # (the job re-ran part of the op on the shared machine)
            if m is not None:
                self._exact = (p, m)
                if p == sc.session.position:
                    sc.model.set_exact(m)  # folio orders and ◇ marks of the exact event
                    sc.grid.model_changed()
                    self.show()
            if self._since_after_exact:
                self._since_after_exact = False
                self.request_since()

        def fail(e: BaseException) -> None:
            self._exact_pending = None

        if not sc.ctl.submit(Job("state at this event", fn, done, fail, low=True)):
            self._exact_pending = None

    # --- "since op N" and the block's history ------------------------------------------------
    def schedule_since(self) -> None:
        if self._since_timer is not None:
            self._since_timer.stop()
        self.since_pending = True
        self._since_timer = self.screen.set_timer(SINCE_DELAY, self.request_since)

    def resume(self) -> None:
        """The screen shows again: a lookup deferred while another screen was up runs now."""
        if self._since_deferred:
            self._since_deferred = False
            self.request_since()

    def request_since(self) -> None:
        self.since_pending = False
        if self._since_timer is not None:
            self._since_timer.stop()
            self._since_timer = None
        sc = self.screen
        addr = sc.inspected_addr()
        if addr is None or sc.model.zoom > 0:
            return
        if sc.app.screen is not sc:
            # the lookup seeks the shared session; another screen (the comparison)
            # may be drawing it, so ask again when this screen is showing again
            self._since_deferred = True
            return
        key = self.key(addr)
        if key in self.since:
            return
        if self._exact_pending is not None:  # (a background job: one at a time)
            self._since_after_exact = True
            return
        proc = sc.model.process

        def fn(s: Session) -> tuple[Key, str | None, BlockHistory | None]:
            res = since_op(s, proc, addr, max_ops=SINCE_MAX_OPS)
            text = res.text if res.complete or res.scanned else None
            # the inspector shows the last few (w asks for them all): stop scanning once it has them
            hist = (block_history(s, proc, addr, limit=HISTORY_SHOWN + 1, max_ops=SINCE_MAX_OPS)
                    if text else None)
            return key, text, hist

        def done(res: tuple[Key, str | None, BlockHistory | None]) -> None:
            # the lookup moved the shared machine in its thread: rows painted meanwhile may
            # have read it half-way (a folio order of 0), so they are built again
            sc.grid.model_changed()
            k, text, hist = res
            if text is None:  # cancelled by a key press: ask again when things settle
                return
            self.since[k] = text
            if hist is not None and (hist.complete or hist.entries):
                self.history[k] = hist
            cur = sc.inspected_addr()
            if cur is not None and self.key(cur) == k:
                self.show()

        sc.ctl.submit(Job("explain history", fn, done, low=True,
                          fail=lambda e: sc.grid.model_changed()))
