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
from typing import TYPE_CHECKING, Any

from engine.breakpoints import Breakpoint, BreakpointError, parse_condition
from engine.events import FIELDS
from engine.session import Hit, Position, Session

if TYPE_CHECKING:
    from tui.grid_model import GridModel

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


JUMP_KINDS = {"fold": "event:fold", "unfold": "event:unfold", "convert": "event:convert",
              "fold|unfold": FOLD_JUMP}


def jump_event(session: Session, kind: str, reverse: bool = False) -> Hit | None:
    """The next (previous) event of ``kind`` (a key of JUMP_KINDS), any block."""
    return _continue(session, JUMP_KINDS[kind], reverse)


# --- jumps in the view (no session move) ---------------------------------------------------------
def parse_pfn_query(text: str) -> tuple[str, int]:
    """("pfn" | "folio", pfn) from "0x80010", "pfn 0x80010", "folio 80000" (hex; decimal with 0d)."""
    t = text.strip().lower()
    what = "pfn"
    for w in ("folio", "pfn"):
        if t.startswith(w):
            what, t = w, t[len(w):].strip(" :=")
            break
    try:
        n = int(t[2:], 10) if t.startswith("0d") else int(t, 16)
    except ValueError:
        raise ValueError(f"not a pfn: {text.strip()!r} (hex, e.g. 80010, pfn 0x80010 or folio 0x80000)") \
            from None
    if n < 0:
        raise ValueError("a pfn is not negative")
    return what, n


def find_pfn(model: GridModel, pfn: int, folio: bool = False, after: int | None = None,
             max_entries: int = 1 << 22) -> tuple[str, int, int] | None:
    """(process, VA, pfn found) of the next entry mapping ``pfn`` (``folio``: any page of
    pfn's folio) at the position shown: the current process from ``after`` on, then the
    other processes, then the current one again from its start (so that repeating walks
    every mapping: the parent's and the child's after fork). Reads the machine: call it
    when no job runs. A PMD leaf counts as mapping each of its pages."""
    machine = model.machine
    lo, hi = pfn, pfn + 1
    if folio:
        head, nr = machine.arch.folios.folio_of(pfn)
        lo, hi = head, head + nr
    procs = [p for p in machine.process_list() if p.alive]
    cur = next((p for p in procs if p.name == model.process), None)
    order = ([cur] if cur else []) + [p for p in procs if p is not cur] + ([cur] if cur else [])
    shift, mask, ps = model.page_shift, model.addr_mask, model.page_size
    present = model.layout.pte_present
    seen = 0
    for n_proc, p in enumerate(order):
        pt = p.mm.pt
        start = (after + ps) if (n_proc == 0 and after is not None) else 0
        stop = (after + ps) if (n_proc == len(order) - 1 and p is cur and after is not None) else None
        leaves = pt.pmd_leaves
        for key in sorted(set(pt.tables) | set(leaves)):
            base = key << model.pmd_shift
            if base + model.g.pmd_size <= start or (stop is not None and base >= stop):
                continue
            t = pt.tables.get(key)
            if t is None:  # a PMD leaf: its pages are pfn .. pfn + ptrs - 1
                v = leaves[key]
                first = (v & mask) >> shift
                for j in range(model.ptrs):
                    va = base + j * ps
                    if lo <= first + j < hi and va >= start and (stop is None or va < stop):
                        return p.name, va, first + j
                continue
            for i, v in enumerate(t):
                seen += 1
                if v and present(v) and lo <= (v & mask) >> shift < hi:
                    va = base + i * ps
                    if va >= start and (stop is None or va < stop):
                        return p.name, va, (v & mask) >> shift
            if seen > max_entries:
                return None
    return None


def next_foldable(model: GridModel, after: int | None, reverse: bool = False) -> int | None:
    """The first VA of the next (previous) block after the cursor that passes every fold
    check but is not folded (the grid's ◇), in the process shown; wraps around once."""
    size = model.cont_ptes * model.page_size
    starts: list[int] = []
    for r in model.regions:
        b = r.start - r.start % size
        while b < r.end:
            if b >= r.start:
                starts.append(b)
            b += size
    if not starts:
        return None
    if after is not None:
        here = model.block_start(after)
    else:
        here = starts[0] - 1 if not reverse else starts[-1] + 1
    if reverse:
        order = [b for b in reversed(starts) if b < here] + [b for b in reversed(starts) if b >= here]
    else:
        order = [b for b in starts if b > here] + [b for b in starts if b <= here]
    for b in order:
        if model.foldable(b):
            return b
    return None


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
