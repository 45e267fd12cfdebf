# SPDX-License-Identifier: GPL-2.0-only
"""Reading a file a user named, safely: only regular files, never a device,
a FIFO or a procfs/sysfs file, and never more than a size bound.

Every text input ptlab reads by path (a CPU profile, a scenario, a keymap, a
policy, a vectors file) goes through :func:`read_user_file`. The file is
opened with ``O_NONBLOCK`` (so a FIFO cannot block the open), checked with
``fstat`` on the descriptor actually opened (so a name swapped between a check
and the open changes nothing), and read with a bound, so ``/dev/zero``,
``/proc/kmsg`` or a FIFO end in one line instead of a hang.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from engine.text import escape_controls


class UnsafeFileError(ValueError):
    """The file cannot be read as a user input; ``str()`` is one line naming it."""


def _pseudo_devices() -> set[int]:
    """Devices of the kernel's pseudo file systems: their 'regular' files
    (``/proc/kmsg``, ``/sys/.../uevent``) report size 0 and may block or never end."""
    devs: set[int] = set()
    for p in ("/proc", "/sys", "/proc/self", "/sys/kernel/debug", "/sys/kernel/tracing"):
        with contextlib.suppress(OSError):
            devs.add(os.stat(p).st_dev)
    return devs


_PSEUDO: set[int] | None = None


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def shown(path: str | os.PathLike[str]) -> str:
    """A path as it is printed: the text itself, never ``PosixPath('...')``,
    control characters escaped."""
    return escape_controls(os.fsdecode(path))


def read_user_file(path: str | os.PathLike[str], limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or UnsafeFileError
    (one line: ``PATH: <what> is a FIFO`` ...)."""
    global _PSEUDO
    name = shown(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise UnsafeFileError(f"{name}: no such {what}") from None
    except ValueError as e:  # a NUL in the name
        raise UnsafeFileError(f"{name}: not a file name ({e})") from None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise UnsafeFileError(f"{name[:80]}...: file name too long") from None
        if e.errno == errno.ENXIO:
            raise UnsafeFileError(f"{name}: not a regular file: not a {what}") from None
        raise UnsafeFileError(f"{name}: cannot read the {what}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise UnsafeFileError(f"{name}: is a directory, not a {what}")
            raise UnsafeFileError(f"{name}: not a regular file (it is {_describe(st.st_mode)}): not a {what}")
        if _PSEUDO is None:
            _PSEUDO = _pseudo_devices()
        if st.st_dev in _PSEUDO:
            raise UnsafeFileError(f"{name}: not a regular file (a kernel pseudo-file in /proc or /sys): "
                                  f"not a {what}")
        if st.st_size > limit:
            raise UnsafeFileError(f"{name}: the {what} is larger than {_human(limit)}")
        os.set_blocking(fd, True)
        chunks = []
        total = 0
        while True:
            b = os.read(fd, min(1 << 20, limit + 1 - total))
            if not b:
                break
            chunks.append(b)
            total += len(b)
            if total > limit:
                raise UnsafeFileError(f"{name}: the {what} is larger than {_human(limit)}")
        return b"".join(chunks)
    except OSError as e:
        raise UnsafeFileError(f"{name}: cannot read the {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def read_user_text(path: str | os.PathLike[str], limit: int, what: str = "file") -> str:
    data = read_user_file(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnsafeFileError(f"{shown(path)}: the {what} is not UTF-8 text (byte {e.start})") from None


def _human(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"
