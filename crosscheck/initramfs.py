# SPDX-License-Identifier: GPL-2.0-only
"""Build the guest's initramfs (a gzip'd newc cpio archive) in pure Python.

Pure Python so no ``cpio`` binary or root privileges are needed (device nodes are written as
archive entries, never created on the host), and so the archive is byte-for-byte reproducible:
every mtime is 0 and entries are sorted. ``parse_newc`` reads the format back; the tests use it
to round-trip what ``build_initramfs`` writes.
"""

from __future__ import annotations

import gzip
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: busybox applets the init prologue and typical guest scripts use; each becomes /bin/NAME -> busybox.
APPLETS: tuple[str, ...] = (
    "sh", "ash", "cat", "cp", "mv", "rm", "ln", "ls", "mkdir", "rmdir", "mount", "umount", "echo",
    "printf", "test", "[", "sleep", "sync", "poweroff", "reboot", "insmod", "rmmod", "lsmod",
    "modprobe", "grep", "sed", "awk", "head", "tail", "wc", "tr", "cut", "sort", "uniq", "find",
    "xargs", "tar", "dd", "uname", "dmesg", "free", "swapon", "swapoff", "mkswap",
    "basename", "dirname", "stat", "date", "env", "true", "false", "seq", "expr", "od", "hexdump",
    "md5sum", "sha256sum", "chmod", "touch", "ps", "kill", "timeout", "nproc", "readlink", "tee",
    "numactl", "taskset", "time", "which", "hostname", "id", "df", "du", "vi",
)


@dataclass(frozen=True)
class Entry:
    """One archive member: a regular file, directory, symlink or character device."""

    name: str  # path without a leading slash
    mode: int  # full st_mode (type bits included)
    data: bytes = b""  # file contents, or the symlink target
    rdev: tuple[int, int] = (0, 0)  # (major, minor) for device nodes


def _header(ino: int, e: Entry) -> bytes:
    name = e.name.encode() + b"\0"
    fields = (
        ino, e.mode, 0, 0, 2 if stat.S_ISDIR(e.mode) else 1, 0, len(e.data),
        0, 0, e.rdev[0], e.rdev[1], len(name), 0,
    )
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + name
    return hdr + b"\0" * (-len(hdr) % 4)


def write_newc(entries: Iterable[Entry]) -> bytes:
    """The uncompressed newc archive of *entries*, in the given order, with the trailer."""
    out = bytearray()
    ino = 1
    for e in [*entries, Entry("TRAILER!!!", 0)]:
        out += _header(ino if e.name != "TRAILER!!!" else 0, e)
        out += e.data + b"\0" * (-len(e.data) % 4)
        ino += 1
    out += b"\0" * (-len(out) % 512)
    return bytes(out)


def parse_newc(blob: bytes) -> list[Entry]:
    """Read a (decompressed) newc archive back into entries, stopping at the trailer."""
    entries: list[Entry] = []
    pos = 0
    while True:
        if blob[pos:pos + 6] != b"070701":
            raise ValueError(f"bad cpio magic at offset {pos}")
        f = [int(blob[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, dmaj, dmin, namesize = f[1], f[6], f[9], f[10], f[11]
        name_start = pos + 110
        name = blob[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += -pos % 4
        data = blob[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return entries
        entries.append(Entry(name, mode, data, (dmaj, dmin)))


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def build_initramfs(
    busybox: bytes,
    init_script: str,
    files: Mapping[str, tuple[bytes, int]] | None = None,
    modules: Mapping[str, bytes] | None = None,
    applets: Iterable[str] = APPLETS,
    compresslevel: int = 6,
) -> bytes:
    """A gzip'd newc initramfs: /bin/busybox + applet links, /init, *files*, /lib/modules/*.

    *files* maps absolute guest paths to (contents, permission bits); *modules* maps a module file
    name to its (uncompressed) contents and is written under /lib/modules/ with a ``load.list``
    in the given order, which the caller makes dependency order. The result is deterministic.
    """
    tree: dict[str, Entry] = {}

    def add(e: Entry) -> None:
        for d in _parents(e.name):
            tree.setdefault(d, Entry(d, stat.S_IFDIR | 0o755))
        tree[e.name] = e

    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "out", "lib/modules", "etc", "root"):
        add(Entry(d, stat.S_IFDIR | 0o755))
    add(Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    add(Entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3)))
    add(Entry("bin/busybox", stat.S_IFREG | 0o755, busybox))
    for a in applets:
        add(Entry(f"bin/{a}", stat.S_IFLNK | 0o777, b"busybox"))
    add(Entry("init", stat.S_IFREG | 0o755, init_script.encode()))
    mods = dict(modules or {})
    for name, blob in mods.items():
        add(Entry(f"lib/modules/{name}", stat.S_IFREG | 0o644, blob))
    add(Entry("lib/modules/load.list", stat.S_IFREG | 0o644, "".join(f"{n}\n" for n in mods).encode()))
    for path, (blob, perm) in (files or {}).items():
        rel = path.lstrip("/")
        if not rel or rel == "init":
            raise ValueError(f"initramfs: cannot place a file at {path!r}")
        add(Entry(rel, stat.S_IFREG | (perm & 0o7777), blob))
    # Directories sort before their contents because a parent's name is a prefix of the child's.
    archive = write_newc(tree[k] for k in sorted(tree))
    return gzip.compress(archive, compresslevel=compresslevel, mtime=0)
