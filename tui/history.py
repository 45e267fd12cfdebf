# SPDX-License-Identifier: GPL-2.0-only
"""Every fold and unfold of a block, and why (the inspector's block history).

Scans like engine.queries.since_op (which answers "in this state since op N"):
forward one checkpoint interval at a time going back, ops without converts
skipped without recording, cancellable through ``session.interrupt()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.session import Position, Session, SessionInterrupted
from tui.eventfmt import op_text


# --- block history: every fold and unfold of a block, and why ----------------------------------------
@dataclass
class BlockEvent:
    """One fold or unfold (each is one contpte_convert) of the block."""

    kind: str  # "fold" | "unfold"
    op: int  # op index
    event: int  # index of the fold/unfold event in the op's events
    op_text: str
    chain: list[str]  # the calls open at the event, innermost first
    decision: str  # who asked for it (the fold policy's trigger, or the path that unfolded it)
    verb: str = ""  # the op's verb (the chain's outermost step)

    @property
    def position(self) -> Position:
        """Just after the event (the block painted)."""
        return Position(self.op, self.event + 1)

    def chain_text(self, limit: int = 4) -> str:
        """The path that asked for it, from the first call outside contpte.c up to the op:
        ``get_and_clear_full_ptes ← modify_prot_start_ptes ← change_pte_range ← … ← mprotect``."""
        names = [n for n in self.chain if not n.startswith(("contpte", "__contpte"))]
        shown = names[:limit] + (["…"] if len(names) > limit else [])
        return " ← ".join(shown + ([self.verb] if self.verb and self.verb != "ptep" else []))


@dataclass
class BlockHistory:
    entries: list[BlockEvent]  # newest first
    scanned: int
    complete: bool  # every op back to the start was looked at (False: older entries may exist)


def _policy_name(session: Session) -> str:
    return session.machine.policy.name


def _block_events(session: Session, k: int, events: list[tuple], proc: str, start: int, end: int,
                  upto: int | None = None) -> list[BlockEvent]:
    out: list[BlockEvent] = []
    stack: list[tuple] = []
    ps = session.machine.arch.g.page_size
    policy = _policy_name(session)
    for j, ev in enumerate(events if upto is None else events[:upto]):
        kind = ev[0]
        if kind == "call":
            stack.append(ev)
            continue
        if kind == "ret":
            if stack:
                stack.pop()
            continue
        if (kind != "fold" and kind != "unfold") or not start <= ev[1] < end:
            continue
        inner = stack[-1] if stack else None
        mm = inner[2][0] if inner is not None and inner[2] else None
        if mm is not None and mm != proc:
            continue
        names = [c[1] for c in reversed(stack)]
        if kind == "fold":
            if "policy_scan" in names:
                decision = f"policy {policy}'s periodic scan tried it"
            else:
                tf = next((c for c in reversed(stack) if c[1] == "__contpte_try_fold"), None)
                if tf is not None and len(tf[2]) > 1 and isinstance(tf[2][1], int):
                    idx = (tf[2][1] - start) // ps
                    decision = f"policy {policy} tried after set_ptes(nr == 1) wrote entry {idx}"
                else:
                    decision = f"policy {policy}"
        else:
            api = next((n for n in names if not n.startswith(("contpte", "__contpte"))), None)
            decision = f"{api} needed the entries apart" if api else "unfolded"
        op = session.ops[k]
        out.append(BlockEvent(kind, k, j, op_text(op), names, decision, op.verb))
    return out


def _may_convert(session: Session, j: int) -> bool:
    c = session.records[j].counters
    return bool(c.get("converts", 0) or c.get("folds", 0) or c.get("unfolds", 0))


def block_history(session: Session, proc: str, addr: int, limit: int = 50, max_ops: int = 5000
                  ) -> BlockHistory:
    """The folds and unfolds of addr's block in proc up to the current position (mid-op:
    the part of the current op shown), newest first: at most ``limit``, looking back at
    most ``max_ops`` ops. Cancellable through ``session.interrupt()`` like since_op."""
    g = session.machine.arch.g
    start = addr & g.cont_pte_mask
    end = start + g.cont_pte_size
    keep = session.position
    k = keep.op
    entries: list[BlockEvent] = []
    if keep.event:
        entries.extend(reversed(_block_events(session, k, session.events_of(k), proc, start, end,
                                              keep.event)))
    hi = min(k, session.executed) - 1
    scanned = 0
    interrupted = False
    try:
        while hi >= 0 and scanned < max_ops and len(entries) < limit:
            c = max(x for x in session.checkpoints if x <= hi)
            c = max(c, hi + 1 - (max_ops - scanned))
            if not any(_may_convert(session, j) for j in range(c, hi + 1)):
                scanned += hi + 1 - c
                hi = c - 1
                continue
            chunk: list[BlockEvent] = []
            try:
                session.seek(Position(c))
                for j in range(c, hi + 1):
                    if session.interrupt():
                        interrupted = True
                        break
                    if _may_convert(session, j):
                        chunk.extend(_block_events(session, j, session.events_of(j), proc, start, end))
                    session.seek(Position(j + 1))
                    scanned += 1
            except SessionInterrupted:
                interrupted = True
            if interrupted:
                break
            entries.extend(reversed(chunk))
            hi = c - 1
    finally:
        if session.position != keep:
            with session.uninterruptible():
                session.seek(keep)
    return BlockHistory(entries[:limit], scanned, not interrupted and hi < 0 and len(entries) <= limit)
