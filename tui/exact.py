# SPDX-License-Identifier: GPL-2.0-only
"""The machine as it is at a position inside an op, not at the op's start.

Inside an op the session keeps the live machine at the op's start and shows
the descriptors written so far as an overlay. Everything else the inspector
reads (the folio of a pfn, its mapcount, the fold explainer's verdict) would
then be the op's start -- at the first fold of a file write fault the grid
shows a folded block while the folio it maps did not exist yet.

:func:`machine_at_event` re-runs op k on the live machine up to its e-th
event, copies that exact state into a separate machine (the UI thread may
read it while later jobs move the session) and puts the live machine back.
It runs in a session job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import OpInterrupted
from engine.writes import descriptor_writes

if TYPE_CHECKING:
    from engine.contract import MachineContract
    from engine.session import Session


class _Stop(BaseException):
    """Raised from the event log when the wanted event has been emitted (a
    BaseException: the model's ``except Exception`` handlers must not eat it)."""


class _StopAfter(list[tuple[Any, ...]]):
    """An event buffer that stops the op once it holds ``n`` events. Events are
    reported after the change they describe, so the machine then is exactly at
    the position ``n`` events into the op. A record-mode log appends every event
    to its ``buf`` (the bulk forms extend it), so putting one of these there is
    enough."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def append(self, ev: tuple[Any, ...]) -> None:
        list.append(self, ev)
        if len(self) >= self.n:
            raise _Stop

    def extend(self, evs: Any) -> None:
        list.extend(self, evs)
        if len(self) >= self.n:
            raise _Stop


def machine_at_event(session: Session) -> MachineContract | None:
    """A new machine in the state ``session.e`` events into op ``session.k``;
    the session's own machine when the position is an op boundary; None when
    the machine cannot be stopped there (no event log, no state copy) or the
    job was interrupted."""
    k, e = session.k, session.e
    m = session.machine
    if not e:
        return m
    log = m.log
    start = m.state()
    log.clear()
    log.set_recording(True)
    saved = log.buf
    stop = _StopAfter(e)
    log.buf = stop
    reached = False
    try:
        m.apply(session.ops[k])
    except _Stop:
        reached = True
    except OpInterrupted:  # a key was pressed: the caller asks again later
        reached = False
    except Exception:  # noqa: BLE001 - an op failing after the position: not reached
        reached = False
    finally:
        log.buf = saved
        log.clear()
        log.set_recording(False)
    try:
        if not reached:
            return None
        exact = session.make_machine()
        exact.restore(m.state())
        # a batch reported after its writes (a bulk form) may have gone past the position:
        # undo the descriptor writes of the events beyond it, newest first
        _undo_writes(exact, list(stop[e:]))
        return exact
    finally:
        with session.uninterruptible():
            m.restore(start)


def _undo_writes(machine: MachineContract, events: list[tuple[Any, ...]]) -> None:
    procs = {p.name: p for p in machine.process_list()}
    for w in reversed(list(descriptor_writes(events))):
        # (a PMD entry is not in the PTE tables locate() reaches: left as it is)
        proc = None if w.pmd else procs.get(w.proc)
        if proc is None:
            continue
        t, i = proc.mm.pt.locate(w.addr)
        t[i] = w.old
