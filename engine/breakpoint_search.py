# SPDX-License-Identifier: GPL-2.0-only
"""Running a session to the next or previous breakpoint hit.

Forward (``continue_``): each op runs once, in record mode when a breakpoint
might match inside it (the events are kept in the session's cache), in count
mode otherwise. Backward (``reverse_continue``): one checkpoint interval at a
time, run forward once recording the ops that might match, then scan them
backwards. Both stop, leaving a consistent session, when ``interrupt()`` says
so.

These functions drive the session through its stepping primitives
(``_advance``, ``_reload``, ``_place``, ``_normalise``, ``_cache_events``):
they are the session's own search, kept apart so that the stepping API reads
in one sitting. The session imports this module, so it names Session for
annotations only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.breakpoints import Breakpoint, op_context
from engine.errors import SessionInterrupted
from engine.position import Position

if TYPE_CHECKING:
    from engine.session import Session


@dataclass
class Hit:
    breakpoint: Breakpoint
    position: Position
    op: int
    event_index: int | None  # index in the op's events, None for an op-start hit
    event: tuple[Any, ...] | None


def _needs_events(s: Session, k: int) -> bool:
    rec = s.records[k] if k < s.executed else None
    ctx = op_context(k, s.ops[k].verb, rec)
    return any(b.enabled and b.condition.event_level and b.condition.may_match(ctx)
               for b in s.breakpoints)


def _points(s: Session, k: int, events: list[tuple[Any, ...]] | None = None
            ) -> Iterator[tuple[Position, Breakpoint, int | None, tuple[Any, ...] | None]]:
    """Every (position, breakpoint, event index, event) hit inside op k, in
    order. Op k must be recorded; ``events`` are its events if known."""
    rec = s.records[k]
    ctx = op_context(k, s.ops[k].verb, rec)
    active = [b for b in s.breakpoints if b.enabled]
    for b in active:
        if not b.condition.event_level and b.condition.match(ctx, None):
            yield Position(k, 0), b, None, None
    ev_level = [b for b in active if b.condition.event_level and b.condition.may_match(ctx)]
    if not ev_level:
        return
    if events is None:
        events = s.events_of(k)
    for j, ev in enumerate(events):
        for b in ev_level:
            if b.condition.match(ctx, ev):
                yield Position(k, j + 1 if b.condition.stop_after(ev) else j), b, j, ev


def _hit(s: Session, bp: Breakpoint, pos: Position, k: int, j: int | None, ev: tuple[Any, ...] | None) -> Hit:
    bp.hits += 1
    s.seek(pos)
    return Hit(bp, s.position, k, j, ev)


def continue_(s: Session, limit_ops: int | None = None) -> Hit | None:
    """Run forward to the next breakpoint hit (or the end). Returns the hit.

    Each op is run once: in record mode when a breakpoint might match inside
    it (the events are kept in the cache), in count mode otherwise.
    """
    start = s.position
    stop = s.n_ops if limit_ops is None else min(s.n_ops, start.op + limit_ops)
    if start.event:  # finish the current op first
        for pos, bp, j, ev in _points(s, start.op):
            if s._normalise(pos) > start:
                return _hit(s, bp, s._normalise(pos), start.op, j, ev)
        s._place(Position(start.op + 1))
    while s.k < stop:
        if s.interrupt():
            return None
        k = s.k
        events = None
        try:
            if _needs_events(s, k) or k >= s.executed:
                # the state before the op puts a hit inside it (or at its start) back there
                # without a replay; with no breakpoint there is no hit, and an op that fails or
                # is interrupted goes back through the checkpoints. (A state costs a copy of
                # the per-page arrays: several times a small op on a machine of GiBs.)
                st = s.machine.state() if any(b.enabled for b in s.breakpoints) else None
                events = s._advance(record=True, start_state=st)
                s._cache_events(k, events)
            else:
                s._advance(record=False)
                st = None
        except SessionInterrupted:
            return None
        for pos, bp, j, ev in _points(s, k, events):
            npos = s._normalise(pos)
            if npos > start:
                if st is not None and npos.op == k:
                    s.machine.restore(st)  # back to the op's start, no replay
                    s.k, s.e = k, 0
                return _hit(s, bp, npos, k, j, ev)
    return None


def reverse_continue(s: Session) -> Hit | None:
    """Run backward to the previous breakpoint hit (or the start).

    Works one checkpoint interval at a time: restore the checkpoint, run the
    interval forward once (recording the ops that might match), then scan
    those ops backwards.
    """
    start = s.position
    hi = min(start.op, s.n_ops - 1)
    if start.event == 0:
        hi = start.op - 1
    while hi >= 0:
        if s.interrupt():
            return None
        c = s.store.at_or_before(hi)
        recorded: dict[int, list[tuple[Any, ...]]] = {}
        try:
            s._reload(c)
            while s.k <= hi:
                k = s.k
                if _needs_events(s, k):
                    events = s._advance(record=True)
                    recorded[k] = events
                    s._cache_events(k, events)
                else:
                    s._advance(record=False)
        except SessionInterrupted:
            return None
        for k in range(hi, c - 1, -1):
            hits = [h for h in _points(s, k, recorded.get(k)) if s._normalise(h[0]) < start]
            if hits:
                pos, bp, j, ev = hits[-1]
                return _hit(s, bp, s._normalise(pos), k, j, ev)
        hi = c - 1
    s.seek(Position(0))
    return None
