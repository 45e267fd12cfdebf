# SPDX-License-Identifier: GPL-2.0-only
"""Saving and opening ``.ptsnap`` snapshots from the TUI (snapshots.session_io).

Both functions raise :class:`SnapshotIOError` (a bad path, a damaged file, a
full disk) with a one-line message; the UI shows it and carries on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SnapshotIOError(Exception):
    """Saving or opening failed; the message is one line for the user."""


def save_session(session: Any, path: str | Path) -> None:
    """Write session (ops, settings, per-op records, checkpoints) to path, atomically."""
    from snapshots import SnapshotError
    from snapshots.session_io import save_session as save

    if not getattr(session, "meta", None) or "machine" not in session.meta:
        raise SnapshotIOError("this session does not record how its machine was made; it cannot be saved")
    try:
        save(session, str(path))
    except SnapshotError as e:
        raise SnapshotIOError(str(e)) from None
    except OSError as e:
        raise SnapshotIOError(f"{path}: {e.strerror or e}") from None


def load_session(path: str | Path, **overrides: Any) -> Any:
    """Open a .ptsnap file as a Session positioned at its start. Warnings
    (e.g. a fold policy that must be supplied again) are in session.warnings."""
    from snapshots import SnapshotError
    from snapshots.session_io import open_session

    try:
        loaded = open_session(str(path), **{k: v for k, v in overrides.items() if v is not None})
    except SnapshotError as e:
        raise SnapshotIOError(str(e)) from None
    s = loaded.session
    s.snapshot_file = loaded.snapshot  # keep it open: checkpoints and op records load lazily
    return s
