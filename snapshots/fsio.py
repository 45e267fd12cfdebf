# SPDX-License-Identifier: GPL-2.0-only
"""Crash-safe file replacement, with the OS calls behind a small shim.

:class:`AtomicFile` writes ``NAME.partial`` next to the target, and on
:meth:`AtomicFile.commit` flushes it, fsyncs it, renames it over the target
and fsyncs the directory (Borg's ``SaveFile``). Until then the target is
never opened, so a crash (even SIGKILL or power loss) leaves either the old
file or the new one, never a mix. A crashed writer leaves its ``.partial``
behind; its committed records can still be loaded.

Every OS call goes through a :class:`FileSystem`, so tests can inject
failures (ENOSPC after N bytes, EROFS, ...) without root or a full disk.
Failures become :class:`SnapshotWriteError` with one line such as
``x.ptsnap: cannot save: no space left on device (the previous file is unchanged)``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from typing import NoReturn

from snapshots.errors import SnapshotWriteError, display_name

PARTIAL_SUFFIX = ".partial"

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "it is a directory",
    errno.ENOENT: "its directory does not exist",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.EFBIG: "file too large",
    errno.EIO: "I/O error",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many symbolic links",
}


def describe_os_error(e: OSError) -> str:
    """A short lowercase reason for an OSError ("no space left on device")."""
    if e.errno in _REASONS:
        return _REASONS[e.errno]
    if e.errno:
        return os.strerror(e.errno).lower()
    return str(e) or type(e).__name__


class FileSystem:
    """The OS calls the writer makes. Subclass and override to inject failures."""

    def open(self, path: str, flags: int, mode: int) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def truncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def chmod(self, fd: int, mode: int) -> None:
        os.fchmod(fd, mode)

    def lock(self, fd: int) -> None:
        """Take an exclusive lock; BlockingIOError if another writer holds it."""
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(path)

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(path)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        except OSError as e:
            if e.errno != errno.EINVAL:  # some network file systems cannot fsync a directory
                raise
        finally:
            os.close(fd)


OS_FS = FileSystem()


class AtomicFile:
    """An append-only file that replaces ``path`` only when :meth:`commit` succeeds.

    ``offset`` is the number of bytes written so far (buffered or not).
    :meth:`sync` makes everything written so far durable in the ``.partial``
    file; :meth:`commit` puts it in place of the target; :meth:`discard`
    removes it. Any OSError raises :class:`SnapshotWriteError`, after the
    partial file has been removed and with the target untouched.
    """

    def __init__(self, path: str | os.PathLike[str], fs: FileSystem | None = None,
                 buffer_size: int = 1 << 20) -> None:
        self.fs = fs or OS_FS
        self.name = display_name(path)
        self.target = os.path.realpath(os.fspath(path))  # a symlink keeps pointing at the new file
        self.temp = self.target + PARTIAL_SUFFIX
        self.offset = 0
        self._buf = bytearray()
        self._buffer_size = buffer_size
        self.fd: int | None = None  # the open descriptor; None once committed or discarded
        self.done = False
        self._had_target: bool | None = False
        mode = None
        try:
            st = self.fs.stat(self.target)
        except FileNotFoundError:
            pass
        except OSError as e:
            self._had_target = None  # unknown
            self._raise(e, "cannot save", cleanup=False)
        else:
            if stat.S_ISDIR(st.st_mode):
                self._raise(IsADirectoryError(errno.EISDIR, "is a directory"), "cannot save", cleanup=False)
            if not stat.S_ISREG(st.st_mode):
                raise SnapshotWriteError(f"{self.name}: cannot save: it exists and is not a regular file")
            self._had_target = True
            mode = stat.S_IMODE(st.st_mode)
        fd = self._open_locked()
        self.fd = fd
        try:
            self.fs.truncate(fd, 0)
            if mode is not None:
                self.fs.chmod(fd, mode)
        except OSError as e:
            self._raise(e, "cannot save")

    def _open_locked(self) -> int:
        """Open and lock ``NAME.partial``, making sure the file locked is still the one at that name.

        (Another writer that has just finished renames its partial file over
        the target: a file opened under the old name a moment before must not
        be truncated.)
        """
        for _attempt in range(8):
            # NAME.partial is created exclusively; an existing one is reused only if it is a
            # regular file (a crashed save's): a FIFO there would block the open for writing
            # until a reader came, a device would take the data. O_NONBLOCK: not even then.
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
            try:
                old = self.fs.lstat(self.temp)
            except FileNotFoundError:
                flags |= os.O_EXCL
            except OSError as e:
                self._raise(e, "cannot save", cleanup=False)
            else:
                if not stat.S_ISREG(old.st_mode) and not stat.S_ISLNK(old.st_mode):
                    raise SnapshotWriteError(self._special_partial())
            try:
                fd = self.fs.open(self.temp, flags, 0o666)
            except FileExistsError:
                continue  # created by someone else just now: look again
            except OSError as e:
                if e.errno == errno.ENXIO:  # a FIFO without a reader appeared in between
                    raise SnapshotWriteError(self._special_partial()) from None
                if e.errno == errno.ELOOP:
                    raise SnapshotWriteError(f"{self.name}: cannot save: {display_name(self.temp)} is a "
                                             "symbolic link; remove it first") from None
                self._raise(e, "cannot save", cleanup=False)
            try:
                self.fs.lock(fd)
            except BlockingIOError:
                self.fs.close(fd)
                raise SnapshotWriteError(f"{self.name}: cannot save: another ptlab is writing it "
                                         f"({display_name(self.temp)} is locked)") from None
            except OSError:
                pass  # no locking on this file system: go on without
            try:
                a, b = self.fs.fstat(fd), self.fs.lstat(self.temp)
                if not stat.S_ISREG(a.st_mode):
                    self.fs.close(fd)
                    raise SnapshotWriteError(self._special_partial())
                if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                    return fd
            except FileNotFoundError:
                pass
            except OSError as e:
                self.fs.close(fd)
                self._raise(e, "cannot save", cleanup=False)
            self.fs.close(fd)  # renamed away under us: open the new one
        raise SnapshotWriteError(f"{self.name}: cannot save: another ptlab keeps replacing "
                                 f"{display_name(self.temp)}")

    # --- errors -------------------------------------------------------------------------
    def _special_partial(self) -> str:
        return (f"{self.name}: cannot save: {display_name(self.temp)} exists and is not a regular file "
                "(a FIFO or a device); remove it first")

    def _raise(self, e: OSError, what: str, cleanup: bool = True) -> NoReturn:
        if cleanup:
            self.discard()
        after = {True: "the previous file is unchanged", False: "nothing was saved",
                 None: "nothing was changed"}[self._had_target]
        raise SnapshotWriteError(f"{self.name}: {what}: {describe_os_error(e)} ({after})", e.errno) from None

    # --- writing ----------------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        """Append ``data``; returns the offset it starts at."""
        if self.fd is None:
            raise ValueError("write to a closed snapshot file")
        at = self.offset
        self.offset += len(data)
        if len(data) >= self._buffer_size:
            self.flush()
            self._write_out(memoryview(data))
        else:
            self._buf += data
            if len(self._buf) >= self._buffer_size:
                self.flush()
        return at

    def _write_out(self, mv: memoryview) -> None:
        assert self.fd is not None
        try:
            while mv:
                n = self.fs.write(self.fd, mv)
                if n <= 0:
                    raise OSError(errno.EIO, "write returned 0")
                mv = mv[n:]
        except OSError as e:
            self._raise(e, "cannot save")

    def flush(self) -> None:
        if self._buf:
            data, self._buf = self._buf, bytearray()
            self._write_out(memoryview(data))

    def sync(self) -> None:
        """Flush and fsync the partial file."""
        self.flush()
        assert self.fd is not None
        try:
            self.fs.fsync(self.fd)
        except OSError as e:
            self._raise(e, "cannot save")

    def commit(self) -> None:
        """Make the partial file the target, durably.

        The rename happens while the file is still open and locked, so no
        other writer can lock (and truncate) the inode that becomes the
        target. Data is fsynced before the rename; a failure after the rename
        ("saved, but ...") cannot have lost it.
        """
        self.sync()
        fd = self.fd
        assert fd is not None
        try:
            self.fs.replace(self.temp, self.target)
        except OSError as e:
            self._raise(e, "cannot save")
        self.fd = None
        self.done = True
        try:
            self.fs.close(fd)
            self.fs.fsync_dir(os.path.dirname(self.target) or ".")
        except OSError as e:
            raise SnapshotWriteError(f"{self.name}: saved, but finishing it failed: "
                                     f"{describe_os_error(e)}", e.errno) from None

    def discard(self) -> None:
        """Close and remove the partial file (best effort); the target is untouched."""
        self._buf = bytearray()
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                self.fs.close(fd)
        if not self.done:
            with contextlib.suppress(OSError):
                self.fs.unlink(self.temp)
            self.done = True

    @property
    def closed(self) -> bool:
        return self.fd is None
