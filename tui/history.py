# SPDX-License-Identifier: GPL-2.0-only
"""Since when has a block been in its current state? (the inspector's "since op N")

``Session.block_history`` probes ops one by one backwards; each probe of an
op whose events are not cached re-runs up to a checkpoint interval, so a long
look back costs ops x interval. This scans forward instead, one checkpoint
interval at a time going back (like reverse-continue): every op is run at
most twice, ops without descriptor writes are skipped without recording,
and ``session.interrupt()`` is checked between ops so the UI can cancel it
the moment the user presses a key.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.session import Position, Session, SessionInterrupted


@dataclass
class Since:
    op: int | None  # index of the last op that changed the block, None if none found
    scanned: int  # ops looked at
    complete: bool  # False: interrupted or out of budget before an answer
    text: str


def _writes_block(events: list[tuple], proc: str, start: int, end: int) -> bool:
    for ev in events:
        k = ev[0]
        if k == "pte_write":
            if start <= ev[1] < end and ev[5] == proc and ev[2] != ev[3]:
                return True
        elif k == "hw_update" and start <= ev[1] < end and ev[4] == proc and ev[2] != ev[3]:
            return True
    return False


def _may_write(session: Session, j: int) -> bool:
    c = session.records[j].counters
    return bool(c.get("pte_writes", 0) or c.get("hw_update", 0) or c.get("pmd_write", 0))


def since_op(session: Session, proc: str, addr: int, max_ops: int = 5000) -> Since:
    """The last op at or before the current position that changed a descriptor
    of addr's block in proc (mid-op: the part of the current op shown)."""
    g = session.machine.arch.g
    start = addr & g.cont_pte_mask
    end = start + g.cont_pte_size
    keep = session.position
    k = keep.op
    if keep.event and _writes_block(session.events_of(k)[: keep.event], proc, start, end):
        return Since(k, 0, True, f"changed inside this op ({session.ops[k]})")
    hi = min(k, session.executed) - 1
    scanned = 0
    found: int | None = None
    interrupted = False
    try:
        while hi >= 0 and scanned < max_ops and found is None:
            c = max(x for x in session.checkpoints if x <= hi)
            c = max(c, hi + 1 - (max_ops - scanned))
            if not any(_may_write(session, j) for j in range(c, hi + 1)):
                scanned += hi + 1 - c
                hi = c - 1
                continue
            try:
                session.seek(Position(c))
                for j in range(c, hi + 1):
                    if session.interrupt():
                        interrupted = True
                        break
                    if _may_write(session, j) and _writes_block(session.events_of(j), proc, start, end):
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
