# SPDX-License-Identifier: GPL-2.0-only
"""Saving and opening ``.ptsnap`` snapshots from the TUI (snapshots.sessions).

Both functions raise :class:`SnapshotIOError` (a bad path, a damaged file, a
full disk) with a one-line message; the UI shows it and carries on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.session import Session


class SnapshotIOError(Exception):
    """Saving or opening failed; the message is one line for the user."""


def save_session(session: Session, path: str | Path,
                 report: Callable[[int, int], None] | None = None) -> str:
    """Write session (ops, settings, per-op records, checkpoints) to path,
    atomically: a failed save leaves any previous file as it was.

    Ops not run yet are run first; if that is interrupted (``session.interrupt``)
    or an op fails, the ops done so far are saved -- nothing done is lost. The
    session keeps its position. Returns a one-line message for the user."""
    from engine.session import SessionError
    from snapshots import SnapshotError
    from snapshots.sessions import save_session as save

    if "machine" not in session.meta:
        raise SnapshotIOError("this session does not record how its machine was made; it cannot be saved")
    keep = session.position
    remember_view(session)
    note = ""
    if session.executed < len(session.ops):
        try:
            session.run(progress=report)
        except SessionError as e:  # an op that fails: save what ran before it
            note = f" ({e})"
        if session.executed < len(session.ops) and not note:
            note = " (interrupted)"
    try:
        with session.uninterruptible():
            save(session, str(path), run_remaining=False)
    except SnapshotError as e:
        raise SnapshotIOError(str(e)) from None
    except OSError as e:
        raise SnapshotIOError(f"{path}: {e.strerror or e}") from None
    finally:
        with session.uninterruptible():
            session.seek(keep)
    n, total = session.executed, len(session.ops)
    return f"saved {path}" if n == total else f"saved {n} of {total} ops to {path}{note}"


def load_session(path: str | Path, **overrides: Any) -> Session:
    """Open a .ptsnap file as a Session positioned at its start. Warnings
    (e.g. a fold policy that must be supplied again) are in session.warnings."""
    from snapshots import SnapshotError
    from snapshots.sessions import open_session

    try:
        # every record checked first, whatever the file's size: the TUI's widgets read records
        # at any time and cannot end in one line (issue 13, item 6)
        loaded = open_session(str(path), check_all=True,
                              **{k: v for k, v in overrides.items() if v is not None})
    except SnapshotError as e:
        raise SnapshotIOError(str(e)) from None
    s = loaded.session
    s.snapshot_file = loaded.snapshot  # keep it open: checkpoints and op records load lazily
    ui = loaded.header.extra.get("ui")
    s.saved_view = saved_view(ui)
    return s


def saved_view(ui: Any) -> dict[str, Any]:
    """The TUI state saved with a snapshot, checked (a hostile file gets nothing odd through):
    {"position": "K.E" or absent, "breakpoints": [condition text, ...]}."""
    out: dict[str, Any] = {"breakpoints": []}
    if not isinstance(ui, dict):
        return out
    pos = ui.get("position")
    if isinstance(pos, str) and len(pos) <= 40:
        out["position"] = pos
    bps = ui.get("breakpoints")
    if isinstance(bps, list):
        out["breakpoints"] = [b for b in bps[:256] if isinstance(b, str) and len(b) <= 1000]
    return out


def remember_view(session: Session) -> None:
    """Put the position and breakpoints into session.meta["ui"], saved with the snapshot."""
    session.meta["ui"] = {"position": str(session.position),
                          "breakpoints": [b.text for b in session.breakpoints]}
