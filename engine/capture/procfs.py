# SPDX-License-Identifier: GPL-2.0-only
"""Everything a capture reads from /proc and /sys, behind one small interface.

:class:`ProcReader` is the real thing; tests substitute a subclass to make a
process vanish half-way or a file unreadable. Errors come out as Python's
usual ``OSError`` subclasses (``ProcessLookupError``, ``PermissionError``,
``FileNotFoundError``); :mod:`engine.capture.live` turns them into messages.

The parsers here are pure functions of text.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import struct
from dataclasses import dataclass

import psutil

from engine.capture.model import CapturedVMA, CaptureError

# --- PAGEMAP_SCAN (include/uapi/linux/fs.h, Linux 6.7+) ---------------------------------------
PAGE_IS_WPALLOWED = 1 << 0
PAGE_IS_WRITTEN = 1 << 1
PAGE_IS_FILE = 1 << 2
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_SWAPPED = 1 << 4
PAGE_IS_PFNZERO = 1 << 5
PAGE_IS_HUGE = 1 << 6  # PMD-mapped THP or hugetlb
PAGE_IS_SOFT_DIRTY = 1 << 7
_PM_SCAN_ARG = struct.Struct("12Q")  # struct pm_scan_arg: 12 x __u64
# _IOWR('f', 16, struct pm_scan_arg): dir=3 << 30 | size << 16 | 'f' << 8 | 16
PAGEMAP_SCAN = (3 << 30) | (_PM_SCAN_ARG.size << 16) | (ord("f") << 8) | 16
assert PAGEMAP_SCAN == 0xC0606610

ScanRegion = tuple[int, int, int]  # (start, end, categories)


class BinFile:
    """A /proc binary file read with pread (pagemap, kpageflags, kpagecount)."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._scan_ok: bool | None = None

    def pread(self, size: int, offset: int) -> bytes:
        """Up to size bytes at offset; fewer (maybe none) at the end of the data."""
        out = bytearray()
        while len(out) < size:
            chunk = os.pread(self.fd, size - len(out), offset + len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def pagemap_scan(self, start: int, end: int, anyof: int, return_mask: int,
                     max_regions: int = 4096) -> list[ScanRegion] | None:
        """PAGEMAP_SCAN over [start, end): regions of pages matching any of ``anyof``,
        with their categories masked by ``return_mask``; None where the kernel
        has no PAGEMAP_SCAN (before 6.7) or refuses it."""
        if self._scan_ok is False:
            return None
        vec = (ctypes.c_uint64 * (3 * max_regions))()
        out: list[ScanRegion] = []
        addr = start
        while addr < end:
            arg = bytearray(_PM_SCAN_ARG.pack(_PM_SCAN_ARG.size, 0, addr, end, 0, ctypes.addressof(vec),
                                              max_regions, 0, 0, 0, anyof, return_mask))
            try:
                import fcntl  # POSIX only: the one call that needs it imports it

                n = fcntl.ioctl(self.fd, PAGEMAP_SCAN, arg, True)
            except OSError as e:
                if e.errno in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                    self._scan_ok = False
                    return None
                raise
            self._scan_ok = True
            for k in range(n):
                out.append((vec[3 * k], vec[3 * k + 1], vec[3 * k + 2]))
            walk_end = _PM_SCAN_ARG.unpack(bytes(arg))[4]
            if walk_end <= addr:  # no progress: stop rather than spin
                break
            addr = walk_end
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ProcReader:
    """Reads a live system. Override any method to fake one."""

    def identity(self, pid: int) -> tuple[str, float]:
        """(comm, start time) of the process; raises ProcessLookupError if there is none,
        PermissionError if it may not be inspected."""
        try:
            p = psutil.Process(pid)
            return p.name(), p.create_time()
        except psutil.NoSuchProcess:
            raise ProcessLookupError(errno.ESRCH, f"no process with PID {pid}") from None
        except psutil.AccessDenied:
            raise PermissionError(errno.EACCES, f"not allowed to inspect PID {pid}") from None

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()

    def open_binary(self, path: str) -> BinFile:
        return BinFile(path)

    def page_size(self) -> int:
        return os.sysconf("SC_PAGE_SIZE")

    def uname(self) -> tuple[str, str]:
        u = os.uname()
        return u.release, u.machine

    THP_DIR = "/sys/kernel/mm/transparent_hugepage"

    def thp_settings(self) -> dict[str, str]:
        """THP sysfs settings as plain strings: ``thp_enabled`` (the selected word of
        transparent_hugepage/enabled), ``hpage_pmd_size`` and ``mthp_<N>kB`` per
        size. Missing files are left out (no THP: an empty dict)."""
        base = self.THP_DIR
        out: dict[str, str] = {}
        try:
            out["thp_enabled"] = _selected(self.read_text(f"{base}/enabled"))
        except OSError:
            return out
        with contextlib.suppress(OSError):
            out["hpage_pmd_size"] = self.read_text(f"{base}/hpage_pmd_size").strip()
        try:
            names = sorted(os.listdir(base))
        except OSError:
            names = []
        for name in names:
            m = re.fullmatch(r"hugepages-(\d+)kB", name)
            if not m:
                continue
            try:
                out[f"mthp_{m.group(1)}kB"] = _selected(self.read_text(f"{base}/{name}/enabled"))
            except OSError:
                continue
        return out


def _selected(text: str) -> str:
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else text.strip()


# --- parsers -------------------------------------------------------------------------------------
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+([0-9a-f]+)\s+(\S+)\s+(\d+)\s?(.*)$")


def parse_maps(text: str, with_stats: bool = True, name: str = "maps") -> list[CapturedVMA]:
    """Parse /proc/PID/smaps (or /proc/PID/maps, which is the header lines only).
    CaptureError (naming ``name`` and the line) for VMAs that are empty, out of
    order or overlapping: the kernel never writes them, so the text is damaged."""
    vmas: list[CapturedVMA] = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            start, end, perms, off, dev, inode, path = m.groups()
            v = CapturedVMA(int(start, 16), int(end, 16), perms, int(off, 16), dev, int(inode), path.strip())
            if v.start >= v.end or (vmas and v.start < vmas[-1].end):
                raise CaptureError(f"{name}: line {n}: VMA {v.start:#x}-{v.end:#x} is empty, out of order "
                                   "or overlaps the one before (damaged text)")
            vmas.append(v)
            continue
        if not with_stats or not vmas or ":" not in line:
            continue
        key, _, rest = line.partition(":")
        if key == "VmFlags":
            vmas[-1].vm_flags = tuple(rest.split())
            continue
        parts = rest.split()
        if parts and parts[0].isdigit():
            vmas[-1].smaps[key] = int(parts[0])
    return vmas


@dataclass
class MthpPolicy:
    """Which anon folio sizes the kernel may allocate in a VMA (sysfs + VmFlags)."""

    top: str  # always / madvise / never
    per_size: dict[int, str]  # bytes -> always / madvise / inherit / never

    @classmethod
    def from_info(cls, info: dict[str, str]) -> MthpPolicy:
        per: dict[int, str] = {}
        for k, v in info.items():
            m = re.fullmatch(r"mthp_(\d+)kB", k)
            if m:
                per[int(m.group(1)) << 10] = v
        if not per and "hpage_pmd_size" in info:
            per[int(info["hpage_pmd_size"])] = "inherit"
        return cls(info.get("thp_enabled", "never"), per)

    def sizes_for(self, vma: CapturedVMA) -> list[int]:
        """Enabled anon folio sizes for this VMA, largest first."""
        if "nh" in vma.vm_flags:
            return []
        hg = "hg" in vma.vm_flags
        out = []
        for size, mode in self.per_size.items():
            if mode == "inherit":
                mode = self.top
            if mode == "always" or (mode == "madvise" and hg):
                out.append(size)
        return sorted(out, reverse=True)
