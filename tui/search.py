# SPDX-License-Identifier: GPL-2.0-only
"""``/`` search and the fold/unfold jumps, as session moves (run in a job).

A query is, in this order: an event kind (``fold``, ``tlb_conflict`` ...:
the next event of that kind), an address (hex: the next event touching its
page), a breakpoint condition (``call:contpte_convert&proc:child``), or text
(the next op whose text contains it, case-insensitive, wrapping around).
Event searches reuse the breakpoint machinery with one temporary breakpoint,
so ops that cannot match are skipped by their counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.breakpoints import Breakpoint, BreakpointError, parse_condition
from engine.events import FIELDS
from engine.session import Hit, Position, Session

MAX_TEXT_SCAN = 1_000_000  # ops whose text a search reads before giving up


@contextmanager
def only_breakpoint(session: Session, text: str) -> Iterator[Breakpoint]:
    """The session's breakpoints replaced by one condition for the duration."""
    g = session.machine.arch.g
    cond = parse_condition(text, g.page_size, g.cont_pte_size, session.op_verbs())
    bp = Breakpoint(0, cond, text)
    saved = session.breakpoints
    session.breakpoints = [bp]
    try:
        yield bp
    finally:
        session.breakpoints = saved


def event_query(session: Session, query: str) -> str | None:
    """The breakpoint condition a query stands for, or None for a text search."""
    q = query.strip()
    if q in FIELDS:
        return f"event:{q}"
    h = q.lower().removeprefix("0x").replace("_", "")
    if len(h) >= 4 and all(c in "0123456789abcdef" for c in h):
        ps = session.machine.arch.g.page_size
        a = int(h, 16) & ~(ps - 1)
        return f"addr:{a:#x}-{a + ps:#x}"
    if ":" in q:
        return q
    return None


def find(session: Session, query: str, reverse: bool = False) -> tuple[Hit | Position | None, str]:
    """Move to the next (previous) match. Returns (hit or op position or None, what was searched)."""
    cond = event_query(session, query)
    if cond is not None:
        return _continue(session, cond, reverse), cond
    needle = query.strip().lower()
    if not needle:
        raise BreakpointError("type something to search for")
    n = session.n_ops
    k = session.position.op
    order = (range(k - 1, -1, -1) if reverse else range(k + 1, n))
    for i, j in enumerate(order[:MAX_TEXT_SCAN]):
        if i & 4095 == 4095 and session.interrupt():
            break
        if needle in str(session.ops[j]).lower():
            session.seek(Position(j))
            return Position(j), f"op text {query.strip()!r}"
    return None, f"op text {query.strip()!r}"


FOLD_JUMP = "event:fold|event:unfold"


def jump_fold(session: Session, reverse: bool = False) -> Hit | None:
    """The next (previous) fold or unfold: the block just repainted."""
    return _continue(session, FOLD_JUMP, reverse)


def _continue(session: Session, cond: str, reverse: bool) -> Hit | None:
    """Continue to the condition; no match leaves the session where it was (not at the end)."""
    start = session.position
    with only_breakpoint(session, cond):
        hit = session.reverse_continue() if reverse else session.continue_()
    if hit is None and session.position != start:
        with session.uninterruptible():
            session.seek(start)
    return hit


def describe_hit(hit: Any) -> str:
    if isinstance(hit, Hit):
        ev = f" ({hit.event[0]} {hit.event[1]:#x})" if hit.event and len(hit.event) > 1 and isinstance(
            hit.event[1], int) else (f" ({hit.event[0]})" if hit.event else "")
        return f"step {hit.position}{ev}"
    if isinstance(hit, Position):
        return f"step {hit}"
    return "no match"
