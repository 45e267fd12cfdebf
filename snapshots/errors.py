# SPDX-License-Identifier: GPL-2.0-only
"""Errors raised for snapshot files.

Every :class:`SnapshotError` carries a one-line message that names the file
and the problem, e.g. ``x.ptsnap: not a ptlab snapshot (bad magic)`` or
``x.ptsnap: record 17 (ops) at offset 0x3f20 fails its CRC``. A command-line
front end prints ``str(e)`` and exits with ``e.exit_code`` (2: bad input);
nothing here needs a traceback to be understood.

Mistakes in *values* handed to the writer by calling code (a dict with an int
key, a checkpoint taken in the future, ...) are programming errors and raise
``ValueError`` / ``TypeError`` instead.
"""

from __future__ import annotations

import os


def display_name(path: str | os.PathLike[str] | os.PathLike[bytes] | bytes) -> str:
    """The file name as the user wrote it, safe to put on one line."""
    s = os.fsdecode(path)
    return s.encode("unicode_escape", "backslashreplace").decode("ascii") if not s.isprintable() else s


class SnapshotError(Exception):
    """A snapshot file could not be read or written. ``str(e)`` is one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split("\n")))

    @property
    def message(self) -> str:
        return str(self)


class SnapshotIOError(SnapshotError):
    """The file cannot be read at all: missing, a directory, permission denied, I/O error."""


class SnapshotFormatError(SnapshotError):
    """Not a ptlab snapshot, or its preamble/header is unusable (nothing can be loaded)."""


class SnapshotVersionError(SnapshotFormatError):
    """The file was made by a newer ptlab (a format version this one does not know)."""


class SnapshotCorruptError(SnapshotError):
    """A record fails its CRC, is malformed or exceeds a limit."""


class SnapshotWriteError(SnapshotError):
    """Saving failed (no space, permission, read-only, target is a directory, ...).

    The file that was at the target path before (if any) is left untouched.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class RecordError(ValueError):
    """A payload is malformed; the reader adds the file name and record position
    (a :class:`SnapshotCorruptError`). Raised by the framing, the codec and the
    payload schemas."""
