# SPDX-License-Identifier: GPL-2.0-only
"""Questions about sessions, each answered once here (issue #15 item 5).

The CLI (``ptlab compare``, ``ptlab diff``) and the TUI (comparison screen,
inspector) ask the same questions; they call these functions and only word the
answers, so they cannot disagree:

* where do two runs of the same ops first part (:func:`first_divergence`),
  do two ops' costs differ (:func:`cost_counters_differing`,
  :func:`costs_differ`), which descriptors differ between two sessions'
  states (:func:`iter_differences`, :func:`first_differing_entry`);
* since when has a block looked as it does now (:func:`since_op`).

"Which descriptors did these events write" is engine.writes (the session's
overlay needs it, below this module); the folded-block count is
engine.mapping_summary.folded_blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from engine.session import OpRecord, Position, Session, SessionInterrupted
from engine.writes import changes_block, may_write

# --- two runs side by side -------------------------------------------------------------------------

# counters that are bookkeeping, not cost: the events recorded, the op itself, and
# call:NAME (the call chain a kernel takes, not work it does)
_NOT_COST = frozenset({"events", "ops"})


def cost_counters_differing(a: Mapping[str, int], b: Mapping[str, int]) -> list[str]:
    """The cost counters whose values differ between two ops' counters, sorted
    (a counter one side lacks counts 0)."""
    return sorted(c for c in set(a) | set(b)
                  if c not in _NOT_COST and not c.startswith("call:") and a.get(c, 0) != b.get(c, 0))


def costs_differ(a: OpRecord, b: OpRecord) -> bool:
    """Do two ops cost differently: their cycles, or any cost counter?"""
    return (a.cycles or 0) != (b.cycles or 0) or bool(cost_counters_differing(a.counters, b.counters))


# what parted two runs at FirstDivergence.op, in the order they are looked for at each op
OPS, TABLES, COSTS, ERROR, LENGTH = "ops", "tables", "costs", "error", "length"


@dataclass(frozen=True)
class FirstDivergence:
    """Where two runs first part: ``op`` is the index of the first op after which they
    differ (None: they do not), ``why`` what differs there (OPS: the op itself, TABLES:
    the page tables after it, COSTS: its costs, ERROR: it failed in run ``side`` (0 or 1)
    with ``error``, LENGTH: one run has no op ``op``)."""

    op: int | None
    why: str = ""
    side: int | None = None
    error: str = ""


def first_divergence(a: Session, b: Session, *, costs: bool = False) -> FirstDivergence:
    """The first op at which two sessions' recorded runs part: their ops, the page-table
    digests recorded after each op, or (``costs``) their costs. Past the ops both
    recorded: an op that failed in one of them, else the end of the shorter one."""
    ra, rb = a.records, b.records
    n = min(len(ra), len(rb))
    for k in range(n):
        oa, ob = a.ops[k], b.ops[k]
        if oa is not ob and (oa.verb != ob.verb or oa.args != ob.args):
            return FirstDivergence(k, OPS)
        if ra[k].digest != rb[k].digest:
            return FirstDivergence(k, TABLES)
        if costs and costs_differ(ra[k], rb[k]):
            return FirstDivergence(k, COSTS)
    for side, s in enumerate((a, b)):
        if s.error is not None and s.error[0] <= n:
            return FirstDivergence(s.error[0], ERROR, side, s.error[1])
    if len(ra) != len(rb):
        return FirstDivergence(n, LENGTH)
    return FirstDivergence(None)


def iter_differences(a: Session, b: Session) -> Iterator[tuple[str, int | None, int | None, int | None]]:
    """(process, addr, value in a, value in b) for every differing descriptor,
    processes by name then addresses ascending; a process missing on one side
    yields (name, None, None, None) once."""
    pa = {p.name: p for p in a.machine.process_list()}
    pb = {p.name: p for p in b.machine.process_list()}
    g = a.machine.arch.g
    for name in sorted(set(pa) | set(pb)):
        if name not in pa or name not in pb:
            yield name, None, None, None
            continue
        ta, tb = pa[name].mm.pt, pb[name].mm.pt
        for key in sorted(set(ta.tables) | set(tb.tables)):
            x, y = ta.tables.get(key), tb.tables.get(key)
            if x == y:
                continue
            base = key << g.pmd_shift
            for i in range(g.ptrs_per_pte):
                vx = x[i] if x is not None else 0
                vy = y[i] if y is not None else 0
                if vx != vy:
                    yield name, base + i * g.page_size, vx, vy
        for key in sorted(set(ta.pmd_leaves) | set(tb.pmd_leaves)):
            if ta.pmd_leaves.get(key) != tb.pmd_leaves.get(key):
                yield name, key << g.pmd_shift, ta.pmd_leaves.get(key, 0), tb.pmd_leaves.get(key, 0)


def first_differing_entry(a: Session, b: Session) -> tuple[str | None, int | None, int | None, int | None]:
    """(process, addr, value in a, value in b) of the lowest differing descriptor."""
    return next(iter_differences(a, b), (None, None, None, None))


# --- one block over time ---------------------------------------------------------------------------
@dataclass
class Since:
    op: int | None  # index of the last op that changed the block, None if none found
    scanned: int  # ops looked at
    complete: bool  # False: interrupted or out of budget before an answer
    text: str


def since_op(session: Session, proc: str, addr: int, max_ops: int = 5000) -> Since:
    """The last op at or before the current position that changed a descriptor of addr's
    block in proc, or the PMD entry above it (mid-op: the part of the current op shown).

    Probing ops one by one backwards would re-run up to a checkpoint interval per op
    whose events are not cached (ops x interval). This scans forward instead, one
    checkpoint interval at a time going back (like reverse-continue): every op runs at
    most twice, ops whose counters show no descriptor write are skipped without
    recording, and ``session.interrupt()`` is checked between ops so the UI can cancel
    it the moment the user presses a key. The session is put back where it was.
    """
    g = session.machine.arch.g
    start = addr & g.cont_pte_mask
    end = start + g.cont_pte_size
    keep = session.position
    k = keep.op
    if keep.event and changes_block(session.events_of(k)[: keep.event], proc, start, end, g.pmd_size):
        return Since(k, 0, True, f"changed inside this op ({session.ops[k]})")
    hi = min(k, session.executed) - 1
    scanned = 0
    found: int | None = None
    interrupted = False
    records = session.records
    try:
        while hi >= 0 and scanned < max_ops and found is None:
            c = max(x for x in session.checkpoints if x <= hi)
            c = max(c, hi + 1 - (max_ops - scanned))
            if not any(may_write(records[j].counters) for j in range(c, hi + 1)):
                scanned += hi + 1 - c
                hi = c - 1
                continue
            try:
                session.seek(Position(c))
                for j in range(c, hi + 1):
                    if session.interrupt():
                        interrupted = True
                        break
                    if may_write(records[j].counters) and changes_block(session.events_of(j), proc, start,
                                                                        end, g.pmd_size):
                        found = j
                    session.seek(Position(j + 1))
                    scanned += 1
            except SessionInterrupted:  # inside a long op
                interrupted = True
            if interrupted:
                break
            hi = c - 1
    finally:
        if session.position != keep:
            with session.uninterruptible():
                session.seek(keep)
    if found is not None:
        return Since(found, scanned, True, f"in this state since op {found + 1} ({session.ops[found]})")
    if interrupted:
        return Since(None, scanned, False, "since …")
    if hi < 0:
        return Since(None, scanned, True, "in this state since the start of the session")
    return Since(None, scanned, False, f"unchanged for at least {scanned} ops")
