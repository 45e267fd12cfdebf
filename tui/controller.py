# SPDX-License-Identifier: GPL-2.0-only
"""Runs every session command in a thread worker, one at a time.

The engine is pure Python, so anything that moves the session (a step can
replay up to a checkpoint interval; a continue can run for minutes) runs in
a Textual thread worker and the UI stays responsive. Jobs are serialised:
the Session is not thread-safe, so exactly one job touches it at a time, and
the UI reads only what a job handed back (:class:`MoveResult`) plus
append-only facts (records, ops). Keys pressed while a job runs queue up
(holding ``n`` steps repeatedly); Escape interrupts the running job through
``session.interrupt`` and drops the queue.

The functions below that take a session (``gather``, ``do_step`` ...) are
plain code run inside the worker; tests can call them directly.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.session import Hit, Position, Session, SessionError, SessionInterrupted
from engine.writes import written
from tui.grid_model import ViewState

MAX_QUEUE = 64


@dataclass
class MoveResult:
    before: Position
    after: Position
    view: ViewState
    dirty: set[tuple[str, int]] | None  # descriptors whose op-boundary value may have changed
    hit: Hit | None = None
    message: str | None = None  # shown as a notification
    severity: str = "information"
    interrupted: bool = False
    error: str | None = None
    stack: list[str] = field(default_factory=list)  # open calls at the position, outermost first
    op_events: list[tuple] | None = None  # the events of the current op, when the position is inside it


def writes_between(session: Session, a: Position, b: Position) -> set[tuple[str, int]] | None:
    """Descriptors written between two positions at most one op boundary apart
    (in either direction), or None when they are further apart."""
    lo, hi = (a, b) if a <= b else (b, a)
    if lo == hi:
        return set()
    if lo.op >= session.n_ops:
        return set()
    if hi.op == lo.op:
        return written(session.events_of(lo.op)[lo.event:hi.event])
    if hi.op == lo.op + 1 and hi.event == 0:
        return written(session.events_of(lo.op)[lo.event:])
    return None


def gather(session: Session, before: Position, *, hit: Hit | None = None, message: str | None = None,
           severity: str = "information", interrupted: bool = False) -> MoveResult:
    """Everything the UI needs about the new position (runs in the worker).

    The view may need the events of a long op (recorded on demand); Esc can
    interrupt that too. The move has happened by then, so the result must
    still describe where the session is -- never raise and leave the UI at
    the old position while the session is at the new one. Inside an op, whose
    overlay needs those events, the session goes to the op's start.
    """
    try:
        return _gather(session, before, hit=hit, message=message, severity=severity,
                       interrupted=interrupted)
    except SessionInterrupted:
        with session.uninterruptible():
            if session.e:
                session.seek(Position(session.k))
        msg = f"interrupted at step {session.position}"
        if message and not message.startswith("interrupted"):
            msg = f"{message}; {msg}"
        return MoveResult(before, session.position, ViewState({}, set()), None, hit, msg, "warning", True)


def _gather(session: Session, before: Position, *, hit: Hit | None = None, message: str | None = None,
            severity: str = "information", interrupted: bool = False) -> MoveResult:
    """gather() without the interruption fallback.

    ``changed`` (highlighted cells) is what the user's step changed, forward or
    backward; after a longer jump it is what the op before the position wrote.
    ``dirty`` (summaries to recompute) is what changed in the op-boundary state.
    """
    after = session.position
    between = writes_between(session, before, after)
    changed = between if between and before != after else session.changed_by_last_step()
    if before.op == after.op:
        dirty: set[tuple[str, int]] | None = set()
    elif abs(before.op - after.op) == 1:
        dirty = written(session.events_of(min(before.op, after.op)))
    else:
        dirty = None
    view = ViewState(session.overlay(), changed)
    stack = [ev[1] for ev in session.call_stack()]
    op_events = session.events_of(after.op) if after.event else None  # cached: the overlay needed them
    return MoveResult(before, after, view, dirty, hit, message, severity, interrupted, stack=stack,
                      op_events=op_events)


def _interrupted(session: Session, before: Position) -> MoveResult:
    """The job was interrupted (between ops, or inside a long op, which was undone)."""
    return gather(session, before, message=f"interrupted at step {session.position}", interrupted=True)


def do_step(session: Session, grain: str) -> MoveResult:
    before = session.position
    hit = None
    try:
        if grain == "op" and not session.at_end and session.e == 0:
            # The changed cells and the op log need the op's events: record them while running it.
            if session.k >= session.executed:
                # At the frontier a one-op continue runs the op once, in record mode (and, like
                # a debugger's "next", stops at a breakpoint met inside it).
                hit = session.continue_(limit_ops=1)
            else:
                session.events_of(session.k)  # a replay: record once, then step over it
                session.step(grain)
        else:
            session.step(grain)
    except SessionInterrupted:
        return _interrupted(session, before)
    except SessionError as e:
        return gather(session, before, message=str(e), severity="error")
    if hit is not None:
        return gather(session, before, hit=hit, message=f"breakpoint {hit.breakpoint.describe()} hit at "
                                                        f"step {hit.position}")
    return gather(session, before)


def do_back(session: Session, grain: str) -> MoveResult:
    before = session.position
    try:
        session.back(grain)
    except SessionInterrupted:
        return _interrupted(session, before)
    except SessionError as e:
        return gather(session, before, message=str(e), severity="error")
    return gather(session, before)


def do_seek(session: Session, target: Position, report: Callable[[int, int], None] | None = None
            ) -> MoveResult:
    """Go to target; running to it (interruptibly) first when it lies beyond the frontier."""
    before = session.position
    try:
        if target.op > session.executed:
            session.run(until=target.op, progress=report)
            if session.k < min(target.op, session.n_ops):
                if session.error is not None:
                    return gather(session, before, message=session.error[1], severity="error")
                return _interrupted(session, before)
        session.seek(target)
    except SessionInterrupted:
        return _interrupted(session, before)
    except SessionError as e:
        return gather(session, before, message=str(e), severity="error")
    return gather(session, before)


def do_run_to_end(session: Session, report: Callable[[int, int], None] | None = None) -> MoveResult:
    before = session.position
    try:
        session.run(progress=report)
    except SessionInterrupted:
        return _interrupted(session, before)
    except SessionError as e:
        return gather(session, before, message=str(e), severity="error")
    if not session.at_end:
        if session.error is not None:
            return gather(session, before, message=session.error[1], severity="error")
        return _interrupted(session, before)
    return gather(session, before, message=f"at the end: {session.n_ops} ops")


def do_continue(session: Session, reverse: bool = False) -> MoveResult:
    before = session.position
    try:
        hit = session.reverse_continue() if reverse else session.continue_()
    except SessionInterrupted:
        return _interrupted(session, before)
    except SessionError as e:
        return gather(session, before, message=str(e), severity="error")
    if hit is not None:
        ev = f" ({hit.event[0]})" if hit.event else ""
        msg = f"breakpoint {hit.breakpoint.describe()} hit at step {hit.position}{ev}"
        return gather(session, before, hit=hit, message=msg)
    if session.interrupt():
        return _interrupted(session, before)
    if session.error is not None and not reverse:
        return gather(session, before, message=session.error[1], severity="error")
    where = "start" if reverse else "end"
    note = "" if session.breakpoints else " (no breakpoints set)"
    return gather(session, before, message=f"no breakpoint hit: at the {where}{note}")


@dataclass(frozen=True)
class OpProgress:
    op: int  # index of the op running
    done: int  # its events so far
    total: int | None  # its events when it last ran (None: its first run)
    since: float  # time.monotonic() when it was first seen running

    def text(self, op_text: str = "") -> str:
        what = f"op {self.op + 1}" + (f" ({op_text})" if op_text else "")
        if self.total:
            return f"{what}: {min(self.done, self.total):,} of {self.total:,} events"
        return f"{what}: {self.done:,} events so far"  # (its first run: no total to show yet)


@dataclass
class Job:
    label: str
    fn: Callable[[Session], Any]  # runs in the worker thread
    done: Callable[[Any], None]  # runs on the main thread with fn's result
    fail: Callable[[BaseException], None] | None = None
    low: bool = False  # background (explainer history): dropped when anything else is queued
    started: float = field(default=0.0)


class SessionController:
    """Serialises session jobs onto thread workers of ``app``."""

    def __init__(self, app: Any, session: Session, on_state: Callable[[], None] | None = None):
        self.app = app
        self.session = session
        self.on_state = on_state or (lambda: None)
        self._queue: deque[Job] = deque()
        self.running: Job | None = None
        self._finishing = False
        self._stop = threading.Event()
        self.progress: tuple[int, int] | None = None
        # inside one long op: (op index, events so far, the op's events when it last ran or None,
        # when that op was first seen running); written by the worker, read by the UI's timer
        self.op_progress: OpProgress | None = None
        self._op_seen = 0.0
        self.errors: list[BaseException] = []  # exceptions raised by done callbacks (tests check it)
        session.interrupt = self._poll

    def set_session(self, session: Session) -> None:
        self.interrupt()
        self.session = session
        session.interrupt = self._poll

    OP_PROGRESS_EVERY = 0.05  # seconds between two looks at the op in progress

    def _poll(self) -> bool:
        """The session's interrupt check. The machine calls it every few kernel-function calls
        inside an op (the engine's interrupt poll) and the session between ops, so it is also
        where a long op's own progress is read: the events it has emitted so far, against its
        count when it last ran (a re-run, e.g. after a back-step, knows its total). Runs in the
        worker thread; it only stores a tuple (one atomic assignment) that the screen's
        progress timer reads -- call_from_thread would make the op wait for the UI each time."""
        now = time.monotonic()
        if now - self._op_seen >= self.OP_PROGRESS_EVERY:
            self._op_seen = now
            self._note_op_progress(now)
        return self._stop.is_set()

    def _note_op_progress(self, now: float) -> None:
        s = self.session
        k = s.k
        done = s.machine.log.events_so_far()
        if done == 0:
            return  # between ops
        total = None
        if k < len(s.records):
            total = s.records[k].counters.get("events") or None
        prev = self.op_progress
        since = prev.since if prev is not None and prev.op == k and prev.done <= done else now
        self.op_progress = OpProgress(k, done, total, since)

    @property
    def busy(self) -> bool:
        return self.running is not None and not self.running.low

    @property
    def executing(self) -> bool:
        """A job is running in its worker thread (the session may be changing)."""
        return self.running is not None

    @property
    def idle(self) -> bool:
        return self.running is None and not self._queue

    @property
    def pending(self) -> int:
        return len(self._queue)

    def report(self, done: int, total: int) -> None:
        """Progress from inside a job (any thread)."""
        self.progress = (done, total)

    def submit(self, job: Job) -> bool:
        if job.low and (self._queue or (self.running is not None and not self.running.low)):
            return False
        # background work never delays the user: drop queued background jobs, stop a running one
        self._queue = deque(j for j in self._queue if not j.low)
        if self.running is not None and self.running.low:
            self._stop.set()
        if len(self._queue) >= MAX_QUEUE:
            return False
        self._queue.append(job)
        if self.running is None and not self._finishing:  # (a finishing job starts the next one)
            self._next()
        return True

    def interrupt(self) -> bool:
        """Stop the running job (at its next check) and drop the queue."""
        had = self.running is not None or bool(self._queue)
        self._queue.clear()
        if self.running is not None:
            self._stop.set()
        return had

    def _next(self) -> None:
        if not self._queue:
            self.running = None
            self.progress = None
            self.op_progress = None
            self.on_state()
            return
        job = self._queue.popleft()
        self.running = job
        self.progress = None
        self.op_progress = None
        self._stop.clear()
        job.started = time.monotonic()
        self.on_state()
        self.app.run_worker(lambda: self._work(job), thread=True, group="session", exit_on_error=False,
                            name=job.label, description=job.label)

    def _work(self, job: Job) -> None:
        try:
            result = job.fn(self.session)
        except BaseException as e:  # hand it to the main thread; never kill the app
            self.app.call_from_thread(self._finish, job, None, e)
            return
        self.app.call_from_thread(self._finish, job, result, None)

    def _finish(self, job: Job, result: Any, error: BaseException | None) -> None:
        self.running = None  # nothing executes in a thread while the results are applied
        self._finishing = True
        try:
            if error is not None:
                if job.fail is not None:
                    job.fail(error)
                elif isinstance(error, SessionInterrupted):
                    self.app.notify(f"{job.label}: interrupted", severity="warning", timeout=4)
                else:
                    self.app.notify(f"{job.label} failed: {type(error).__name__}: {error}",
                                    severity="error", timeout=8)
            else:
                job.done(result)
        except Exception as e:  # a bug in a UI update: say so, keep running
            self.errors.append(e)
            self.app.notify(f"{job.label}: internal error {type(e).__name__}: {e}", severity="error",
                            timeout=10)
        finally:
            self._finishing = False
            self._next()
