# SPDX-License-Identifier: GPL-2.0-only
"""The stepping session: run ops, record them, step and seek at three grains,
forward and backward, with breakpoints.

Positions
---------
A position is ``(op, event)``: ``op`` ops have completed and, inside op number
``op``, its first ``event`` events have happened. ``(k, 0)`` is the op
boundary before op ``k``; ``(k, n_k)`` is normalised to ``(k + 1, 0)``. In the
middle of an op the live machine stays at the op's start and the page tables
are shown through an *overlay* built from the events so far -- including the
transiently zero entries of a convert.

Execution
---------
Ops run on the live machine in count mode (flat memory); an op's events are
recorded by re-running it from its start state when the user steps into it
(deterministic, so identical to the first run). Checkpoints are taken before
ops at deterministic places (every ``checkpoint_ops`` ops or
``checkpoint_events`` events of work), so seeking anywhere restores the
nearest checkpoint and re-runs at most one interval.

Parts
-----
This module keeps the stepping API (run, step, back, seek, the view at the
position). The checkpoints are an engine.checkpoints.CheckpointStore; running
to the next or previous breakpoint hit is engine.breakpoint_search; a place is
an engine.position.Position; the errors are engine.errors'. Their names are
imported here too, where callers have always found them.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Literal, Protocol, overload

from engine import breakpoint_search
from engine.breakpoint_search import Hit as Hit
from engine.breakpoints import Breakpoint, BreakpointError, Condition, parse_condition
from engine.checkpoints import EVERY_EVENTS, EVERY_OPS, MAX_COUNT, CheckpointStore
from engine.checkpoints import LAZY as LAZY
from engine.contract import MachineContract, MachineFactory, MachineProcess, MachineState
from engine.errors import OpInterrupted
from engine.errors import SessionError as SessionError
from engine.errors import SessionInterrupted as SessionInterrupted
from engine.ops import Op
from engine.position import Position as Position
from engine.writes import written, written_values

GRAINS = ("op", "call", "event")


def tables_digest(procs: Iterable[MachineProcess]) -> bytes:
    """The digest a session records after each op: the page tables of every process."""
    h = blake2b(digest_size=16)
    for p in procs:
        h.update(p.name.encode() + b"\0")
        h.update(p.mm.pt.digest())
    return h.digest()


@dataclass(slots=True)
class OpRecord:
    counters: dict[str, int]  # may be shared between records: never modify it
    cycles: float
    digest: bytes  # page tables of every process after the op
    n_events: int
    error: str | None = None


class OpRecords(Protocol):
    """A session's per-op records: a list, or a view that reads them from a snapshot
    (snapshots.sessions) and appends new ones after them."""

    def __len__(self) -> int: ...

    @overload
    def __getitem__(self, i: int) -> OpRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[OpRecord]: ...

    def append(self, rec: OpRecord) -> None: ...


@dataclass
class SessionStats:
    restores: int = 0
    ops_replayed: int = 0
    op_recordings: int = 0
    seconds_running: float = 0.0


class Session:
    """Owns a machine and a list of ops; see the module docstring."""

    def __init__(self, make_machine: MachineFactory, ops: Sequence[Op], *,
                 cost_fn: Callable[[Mapping[str, int]], float] | None = None,
                 checkpoint_ops: int = EVERY_OPS, checkpoint_events: int = EVERY_EVENTS,
                 max_checkpoints: int = MAX_COUNT, name: str = "", source: str = "",
                 on_checkpoint: Callable[[int, MachineState], None] | None = None,
                 meta: dict[str, Any] | None = None):
        self.make_machine = make_machine
        self.machine: MachineContract = make_machine()
        self.ops: Sequence[Op] = ops if not isinstance(ops, (list, tuple)) else list(ops)
        # What created this session (machine kind, configuration): plain data,
        # used to save it and to build it again from a snapshot.
        self.meta: dict[str, Any] = dict(meta or {})
        self.warnings: list[str] = []
        # Opened from a snapshot: the open file its records and checkpoints load from (kept
        # open as long as the session), and the UI view saved with it (tui.snapshot_files).
        self.snapshot_file: object | None = None
        self.saved_view: dict[str, Any] = {}
        self.name = name
        self.source = source
        self.cost_fn = cost_fn or self.machine.cycles_of
        self.store = CheckpointStore(self.machine.state(), every_ops=checkpoint_ops,
                                     every_events=checkpoint_events, max_count=max_checkpoints,
                                     on_checkpoint=on_checkpoint)
        self.records: OpRecords = []
        self._interned: dict[tuple[tuple[str, int], ...], dict[str, int]] = {}
        self.k = 0  # ops completed on the live machine
        self.e = 0  # events of op k shown
        self._events_cache: OrderedDict[int, list[tuple[Any, ...]]] = OrderedDict()
        self._events_cached = 0
        self.events_cache_limit = 2_000_000
        self.breakpoints: list[Breakpoint] = []
        self._next_bp = 1
        self.error: tuple[int, str] | None = None  # (op index, message) of an op that failed
        self.stats = SessionStats()
        self.interrupt: Callable[[], bool] = lambda: False
        # Long ops poll self.interrupt() from inside the machine (every few ms) and stop
        # part way; the session then restores the op's start state. Not while restoring.
        self._no_abort = 0
        self.machine.set_interrupt_poll(self._abort_requested)

    def _abort_requested(self) -> bool:
        return not self._no_abort and bool(self.interrupt())

    @contextmanager
    def uninterruptible(self) -> Iterator[None]:
        """Ops run inside this block ignore ``interrupt()`` (e.g. putting the
        session back where it was after an interrupted job)."""
        self._no_abort += 1
        try:
            yield
        finally:
            self._no_abort -= 1

    # --- basic facts ----------------------------------------------------------------
    @property
    def n_ops(self) -> int:
        return len(self.ops)

    @property
    def executed(self) -> int:
        """Ops run at least once (the recorded frontier)."""
        return len(self.records)

    @property
    def position(self) -> Position:
        return Position(self.k, self.e)

    @property
    def at_end(self) -> bool:
        return self.k >= self.n_ops

    def op_digest(self) -> bytes:
        return tables_digest(self.machine.process_list())

    # --- running ops -----------------------------------------------------------------
    def _run_op(self, k: int, record: bool) -> tuple[list[tuple[Any, ...]] | None, Counter[str]]:
        """Apply op k to the live machine (which must be at k)."""
        m = self.machine
        log = m.log
        log.clear()
        log.set_recording(record)
        t0 = time.perf_counter()
        try:
            ret = m.apply(self.ops[k])
        finally:
            self.stats.seconds_running += time.perf_counter() - t0
        # a machine that counts (and costs) the op itself returns its counters (the
        # caller copies them if it keeps them: a replayed op's are not needed)
        counters = ret if isinstance(ret, Counter) else log.totals()
        events = list(log.buf) if record else None
        log.clear()
        log.set_recording(False)
        return events, counters

    @overload
    def _advance(self, record: Literal[True], start_state: MachineState = None) -> list[tuple[Any, ...]]: ...

    @overload
    def _advance(self, record: bool = False,
                 start_state: MachineState = None) -> list[tuple[Any, ...]] | None: ...

    def _advance(self, record: bool = False,
                 start_state: MachineState = None) -> list[tuple[Any, ...]] | None:
        """Run op self.k on the live machine, extend the records, move to k + 1.

        An op that fails or is interrupted leaves the session at its start
        (``start_state``, the machine state before the op, when the caller has
        one; otherwise from the checkpoints): SessionError / SessionInterrupted.
        """
        k = self.k
        if k >= self.n_ops:
            raise SessionError("already at the end of the session")
        try:
            events, counters = self._run_op(k, record)
        except OpInterrupted:
            self._restore_op_start(k, start_state)
            raise SessionInterrupted(f"interrupted in op {k + 1} ({self.ops[k]}): back at step {k}") from None
        except Exception as e:  # an op that fails leaves the session at its start
            msg = f"op {k + 1} ({self.ops[k]}): {e}"
            self.error = (k, msg)
            self._restore_op_start(k, start_state)
            raise SessionError(msg) from e
        if k == len(self.records):
            counters = Counter(counters)
            counters["ops"] = 1
            given = counters.pop("cycles", None)  # a machine that costs its ops gives the (float) cycles
            cycles = float(given) if given is not None else self.cost_fn(counters)
            # ops of a loop often count the same: share one dict among them
            d = dict(counters)
            key = tuple(d.items())
            shared = self._interned.get(key)
            if shared is None:
                if len(self._interned) >= 1 << 16:
                    self._interned.clear()
                self._interned[key] = shared = d
            self.records.append(OpRecord(shared, cycles, self.op_digest(),
                                         counters.get("events", 0)))
        elif k > len(self.records):  # pragma: no cover - guarded by seek
            raise SessionError("ops must be recorded in order")
        else:
            self.stats.ops_replayed += 1
        self.k = k + 1
        self.e = 0
        self.store.after_op(self.k, self.records[k].n_events, self.machine.state)
        return events

    # --- the checkpoints (engine.checkpoints; these names are the session's API) -------------
    @property
    def checkpoints(self) -> dict[int, MachineState]:
        """op number -> machine state before it (or LAZY); may be replaced or extended."""
        return self.store.states

    @checkpoints.setter
    def checkpoints(self, states: dict[int, MachineState]) -> None:
        self.store.states = states

    @property
    def checkpoint_loader(self) -> Callable[[int], MachineState] | None:
        """Fetches a checkpoint stored as LAZY (a snapshot's, on disk)."""
        return self.store.loader

    @checkpoint_loader.setter
    def checkpoint_loader(self, loader: Callable[[int], MachineState] | None) -> None:
        self.store.loader = loader

    @property
    def checkpoint_ops(self) -> int:
        return self.store.every_ops

    @checkpoint_ops.setter
    def checkpoint_ops(self, n: int) -> None:
        self.store.every_ops = n

    @property
    def checkpoint_events(self) -> int:
        return self.store.every_events

    @checkpoint_events.setter
    def checkpoint_events(self, n: int) -> None:
        self.store.every_events = n

    def checkpoint(self, c: int) -> MachineState:
        return self.store.get(c)

    def _restore_op_start(self, k: int, start_state: MachineState = None) -> None:
        """The live machine ran part of op k: put it back at the boundary before k."""
        log = self.machine.log  # an interrupted recording may hold millions of events
        log.clear()
        log.set_recording(False)
        with self.uninterruptible():
            if start_state is not None:
                self.machine.restore(start_state)
                self.k = k
            else:
                c = self.store.at_or_before(k)
                self.machine.restore(self.store.get(c))
                self.k = c
                self.e = 0
                while self.k < k:
                    self._advance(record=False)
            self.stats.restores += 1
            self.e = 0

    def _reload(self, k: int) -> None:
        """Put the live machine at the boundary before op k (k <= executed)."""
        if k == self.k and self.e == 0:
            return
        c = self.store.at_or_before(k)
        if not (c <= self.k <= k):
            self.machine.restore(self.store.get(c))
            self.stats.restores += 1
            self.k = c
        self.e = 0
        while self.k < k:
            self._advance(record=False)

    def run(self, until: int | None = None, progress: Callable[[int, int], None] | None = None,
            check_interrupt: bool = True) -> int:
        """Execute (recording) up to op ``until`` (default: all). Returns ops run.

        Stops early, leaving a consistent session, if ``self.interrupt()``
        returns True -- between ops, or inside a long op, which is then undone
        (the session stays at its start). An op that fails raises SessionError
        (``self.error`` says which and why) with the session at that op's
        start. ``check_interrupt=False``: ignore ``interrupt()`` altogether.
        """
        until = self.n_ops if until is None else min(until, self.n_ops)
        if self.k > until:
            self.seek(Position(until))
            return 0
        self._reload(self.k)  # drop any mid-op view
        done = 0
        if not check_interrupt:
            self._no_abort += 1
        try:
            while self.k < until:
                if check_interrupt and self.interrupt():
                    break
                try:
                    self._advance()
                except SessionInterrupted:
                    break
                done += 1
                if progress is not None and (done & 63) == 0:
                    progress(self.k, until)
        finally:
            if not check_interrupt:
                self._no_abort -= 1
        if progress is not None:
            progress(self.k, until)
        return done

    # --- events of one op ------------------------------------------------------------
    def events_of(self, k: int) -> list[tuple[Any, ...]]:
        """Every event of op k (re-run from its start state, then put back)."""
        if not 0 <= k < self.n_ops:
            raise SessionError(f"there is no op {k + 1}")
        cached = self._events_cache.get(k)
        if cached is not None:
            self._events_cache.move_to_end(k)
            return cached
        keep = Position(self.k, self.e)
        try:
            if k > self.executed:
                self.run(until=k)
                if self.k < k:
                    raise SessionInterrupted(f"interrupted at step {self.k}")
            self._reload(k)
            st = self.machine.state()
            events = self._advance(record=True, start_state=st)
        except SessionInterrupted:  # the session is at an op boundary: back to the caller's position
            self._back_to(keep)
            raise
        assert events is not None
        self.machine.restore(st)
        self.k, self.e = k, 0
        self.stats.op_recordings += 1
        self._cache_events(k, events)
        if keep.op == k:
            self.e = min(keep.event, len(events))
        else:
            with self.uninterruptible():
                self._place(keep)
        return events

    def _back_to(self, keep: Position) -> None:
        """After an interrupted look at an op (the machine is at the op boundary
        self.k): the position the caller had, without interruption."""
        with self.uninterruptible():
            if self.k == keep.op:
                self.e = keep.event
            else:
                self._place(keep)

    def _cache_events(self, k: int, events: list[tuple[Any, ...]]) -> None:
        self._events_cache[k] = events
        self._events_cached += len(events)
        while self._events_cached > self.events_cache_limit and len(self._events_cache) > 1:
            _, old = self._events_cache.popitem(last=False)
            self._events_cached -= len(old)

    def n_events(self, k: int) -> int:
        if k < self.executed and self.records[k].n_events:
            return self.records[k].n_events
        return len(self.events_of(k))

    def current_events(self) -> list[tuple[Any, ...]]:
        return self.events_of(self.k) if self.k < self.n_ops else []

    # --- positioning -----------------------------------------------------------------
    def _normalise(self, pos: Position) -> Position:
        k, e = pos.op, pos.event
        if k < 0 or (k == 0 and e < 0):
            return Position(0, 0)
        if k >= self.n_ops:
            return Position(self.n_ops, 0)
        if e > 0 and e >= self.n_events(k):
            return Position(k + 1, 0)
        return Position(k, max(e, 0))

    def _place(self, pos: Position) -> None:
        pos = self._normalise(pos)
        if pos.op > self.executed:
            self.run(until=pos.op)
        self._reload(pos.op)
        self.e = pos.event

    def seek(self, pos: Position | int) -> Position:
        """Go to any position (an int is an op boundary). Returns where it landed."""
        if isinstance(pos, int):
            pos = Position(pos)
        self._place(pos)
        return self.position

    def step(self, grain: str = "op") -> Position:
        if grain not in GRAINS:
            raise SessionError(f"unknown grain {grain!r} (op, call or event)")
        if self.at_end:
            return self.position
        k, e = self.k, self.e
        if grain == "op":
            return self.seek(Position(k + 1))
        events = self.events_of(k)
        if grain == "event":
            return self.seek(Position(k, e + 1))
        nxt = next((j for j in range(e + 1, len(events)) if events[j][0] == "call"), None)
        return self.seek(Position(k, nxt) if nxt is not None else Position(k + 1))

    def back(self, grain: str = "op") -> Position:
        if grain not in GRAINS:
            raise SessionError(f"unknown grain {grain!r} (op, call or event)")
        k, e = self.k, self.e
        if k == 0 and e == 0:
            return self.position
        if grain == "op":
            return self.seek(Position(k if e else k - 1))
        if e == 0:
            k -= 1
            e = len(self.events_of(k))
        events = self.events_of(k)
        if grain == "event":
            return self.seek(Position(k, e - 1))
        prev = next((j for j in range(e - 1, 0, -1) if events[j][0] == "call"), 0)
        return self.seek(Position(k, prev))

    # --- the view at the current position ----------------------------------------------
    def overlay(self) -> dict[tuple[str, int], int]:
        """(process name, VA) -> descriptor value changed by the shown part of op k."""
        if not self.e:
            return {}
        return written_values(self.events_of(self.k)[: self.e])

    def pte(self, process: str, addr: int) -> int:
        """The raw descriptor as it is at the current position (mid-op aware)."""
        ov = self.overlay()
        if (process, addr) in ov:
            return ov[(process, addr)]
        return self.process(process).mm.pt.get(addr)

    def process(self, name: str) -> MachineProcess:
        for p in self.machine.process_list():
            if p.name == name:
                return p
        raise SessionError(f"no process named {name!r} at this step")

    def changed_by_last_step(self) -> set[tuple[str, int]]:
        """Descriptors written by the op (or event) that led to this position."""
        k, e = self.k, self.e
        if e:
            return written(self.events_of(k)[e - 1:e])
        if k == 0:
            return set()
        return written(self.events_of(k - 1))

    def call_stack(self) -> list[tuple[Any, ...]]:
        """The arch/core-mm calls open at the current position, outermost first."""
        if not self.e:
            return []
        stack: list[tuple[Any, ...]] = []
        for ev in self.events_of(self.k)[: self.e]:
            if ev[0] == "call":
                stack.append(ev)
            elif ev[0] == "ret" and stack:
                stack.pop()
        return stack

    def totals(self, upto: int | None = None) -> Counter[str]:
        """Every op's counters added up to op ``upto``, with the (float) "cycles"."""
        upto = self.executed if upto is None else min(upto, self.executed)
        c: Counter[str] = Counter()
        # records share equal counter dicts (a million ops of a loop have a few
        # dozen distinct ones): add each distinct dict once, times its uses
        uses: dict[int, list[Any]] = {}  # id -> [counters, times used]
        cycles = 0.0
        for r in self.records[:upto]:
            u = uses.get(id(r.counters))
            if u is None:
                uses[id(r.counters)] = [r.counters, 1]
            else:
                u[1] += 1
            cycles += r.cycles  # in op order, as before: float sums depend on it
        for counters, times in uses.values():
            for k, v in counters.items():
                c[k] += v * times
        if upto:
            c["cycles"] += cycles  # type: ignore[assignment]  # a float beside the counts (typeshed: int values)
        return c

    # --- breakpoints -----------------------------------------------------------------
    def add_breakpoint(self, text: str | Condition) -> Breakpoint:
        if isinstance(text, str):
            g = self.machine.arch.g
            cond = parse_condition(text, g.page_size, g.cont_pte_size, self.op_verbs())
            label = text
        else:
            cond, label = text, str(text)
        bp = Breakpoint(self._next_bp, cond, label)
        self._next_bp += 1
        self.breakpoints.append(bp)
        return bp

    def op_verbs(self) -> tuple[str, ...]:
        """The op verbs this session's machine knows (for op:VERB)."""
        return tuple(sorted(self.machine.OP_VERBS))

    def remove_breakpoint(self, bp_id: int) -> None:
        before = len(self.breakpoints)
        self.breakpoints = [b for b in self.breakpoints if b.id != bp_id]
        if len(self.breakpoints) == before:
            raise BreakpointError(f"no breakpoint #{bp_id}")

    def continue_(self, limit_ops: int | None = None) -> Hit | None:
        """Run forward to the next breakpoint hit (or the end): engine.breakpoint_search."""
        return breakpoint_search.continue_(self, limit_ops)

    def reverse_continue(self) -> Hit | None:
        """Run backward to the previous breakpoint hit (or the start): engine.breakpoint_search."""
        return breakpoint_search.reverse_continue(self)
