# SPDX-License-Identifier: GPL-2.0-only
"""Saving and opening ``.ptsnap`` snapshots from the TUI.

The TUI calls only these two functions. Until the ``snapshots`` package is
connected they raise :class:`NotAvailable`, which the UI shows as a
notification. To connect it, replace the two bodies, e.g.::

    def save_session(session, path):
        from snapshots import save
        try:
            save(session, path)
        except (OSError, snapshots.SnapshotError) as e:
            raise SnapshotIOError(f"{path}: {e}") from None

    def load_session(path):
        from snapshots import load
        ...
        return session

Both may raise :class:`SnapshotIOError` (a bad path, a damaged file) with a
one-line message; the UI shows it and carries on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SnapshotIOError(Exception):
    """Saving or opening failed; the message is one line for the user."""


class NotAvailable(SnapshotIOError):
    """Snapshots are not connected in this build."""


_MESSAGE = ("snapshots are not available yet: the .ptsnap format is not connected to this build "
            "(tui/snapshot_io.py)")


def save_session(session: Any, path: str | Path) -> None:
    """Write session (ops, settings, per-op records, checkpoints) to path."""
    raise NotAvailable(_MESSAGE)


def load_session(path: str | Path) -> Any:
    """Open a .ptsnap file as a Session positioned at its start."""
    raise NotAvailable(_MESSAGE)
