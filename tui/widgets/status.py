# SPDX-License-Identifier: GPL-2.0-only
"""The main screen's status lines: the header and the progress line of a running job.

:func:`header_text` says where the session is (step, process, settings,
breakpoints, a failed op, the running job); :class:`StatusLine` shows such a
line, repainting only when its text changes; :class:`ProgressLine` shows a
job's progress once it has run a moment, and ticks the header meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Label, ProgressBar, Static

if TYPE_CHECKING:
    from engine.session import Session
    from tui.controller import Job, SessionController
    from tui.grid_model import GridModel

PROGRESS_DELAY = 0.25  # a job shows its progress bar after running this long
HEADER_DELAY = 0.1  # the progress timer's interval: the header names a running job from then on


def header_text(s: Session, model: GridModel, running: Job | None, snapshot_path: str | None) -> str:
    """The header: most wanted first (a narrow terminal cuts the end)."""
    from tui.variants import settings_of

    st = settings_of(s)
    name = s.name or "session"
    if snapshot_path:
        name = f"{snapshot_path.rsplit('/', 1)[-1]} ({name})"
    parts = [name, f"step {s.position} / {s.n_ops}",
             f"proc {model.process}" + ("" if model.alive() else " (exited)"),
             f"kernel {st['kernel']}", f"policy {st['policy']}", st["granule"], f"cpu {st['cpu']}",
             f"zoom ×{model.ptes_per_cell}"]
    if s.breakpoints:
        parts.append(f"● {len(s.breakpoints)} bp")
    if s.error is not None and s.error[0] >= s.executed:
        parts.append(f"✗ op {s.error[0] + 1} failed")
    if running is not None and not running.low:
        parts.append(f"running: {running.label}")
    return " │ ".join(parts)


class StatusLine(Static):
    """One line of text, cut with an ellipsis; an unchanged line is not repainted (a
    dirty header widens the next frame to the full width)."""

    def __init__(self, content: str = "", **kw: Any) -> None:
        super().__init__(content, **kw)
        self.shown: str | None = None  # the text last shown (None: the constructor's content)

    def show(self, text: str) -> None:
        if self.shown != text:
            self.shown = text
            self.update(Text(text, no_wrap=True, overflow="ellipsis"), layout=False)


class ProgressLine(Horizontal):
    """The running job's label, step and bar, shown once it has run PROGRESS_DELAY
    (the screen styles ``-busy``). Its timer starts with the job and also calls
    ``on_tick`` (the header: it names a running job from the first tick, so a quick
    step repaints once, with its result, instead of first saying "running: step")."""

    def __init__(self, ctl: SessionController, on_tick: Callable[[], None], **kw: Any) -> None:
        super().__init__(**kw)
        self.ctl = ctl
        self.on_tick = on_tick
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="progress-label")
        yield ProgressBar(total=100, show_eta=False, id="progress-bar")

    def job_changed(self) -> None:
        """A job started or ended."""
        job = self.ctl.running
        if job is None or job.low:
            self.remove_class("-busy")
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            return
        if self._timer is None:
            self._timer = self.set_interval(HEADER_DELAY, self._tick)

    def _tick(self) -> None:
        job = self.ctl.running
        if job is None or job.low:
            return
        self.on_tick()  # names the running job (unchanged text is not repainted)
        if time.monotonic() - job.started < PROGRESS_DELAY:
            return
        self.add_class("-busy")
        s = self.ctl.session
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
