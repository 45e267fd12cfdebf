# SPDX-License-Identifier: GPL-2.0-only
"""A fake /proc for capture tests: a process described in a few lines, served
through engine.capture.procfs.ProcReader's interface, with knobs to hide PFNs,
deny files, make the process exit part-way or change its mappings."""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass, field

from engine.capture.model import (
    KPF_ANON,
    KPF_COMPOUND_HEAD,
    KPF_COMPOUND_TAIL,
    KPF_THP,
    KPF_ZERO_PAGE,
    PM_FILE,
    PM_MMAP_EXCLUSIVE,
    PM_PRESENT,
    PM_SWAP,
)
from engine.capture.procfs import (
    PAGE_IS_FILE,
    PAGE_IS_HUGE,
    PAGE_IS_PFNZERO,
    PAGE_IS_PRESENT,
    PAGE_IS_SWAPPED,
    ProcReader,
)

PS = 4096


@dataclass
class FakeVMA:
    start: int
    end: int
    perms: str = "rw-p"
    path: str = ""
    inode: int = 0
    offset: int = 0
    vm_flags: tuple[str, ...] = ("rd", "wr", "mr", "mw", "me", "ac")
    anon_huge_kb: int = 0
    file_pmd_kb: int = 0


@dataclass
class FakeProc:
    pid: int = 4242
    comm: str = "fake"
    started: float = 1000.0
    vmas: list[FakeVMA] = field(default_factory=list)
    pages: dict[int, int] = field(default_factory=dict)  # vfn -> pagemap entry
    kflags: dict[int, int] = field(default_factory=dict)  # pfn -> kpageflags
    kcount: dict[int, int] = field(default_factory=dict)
    pmd_vas: set[int] = field(default_factory=set)  # PMD-mapped VAs (for the fake PAGEMAP_SCAN)
    zero_pfn: int = 0x7F000
    thp: dict[str, str] = field(default_factory=lambda: {
        "thp_enabled": "madvise", "hpage_pmd_size": str(2 << 20), "mthp_64kB": "always",
        "mthp_2048kB": "inherit"})

    # --- building the process ---------------------------------------------------------------
    def vma(self, start: int, size: int, **kw) -> FakeVMA:
        v = FakeVMA(start, start + size, **kw)
        self.vmas.append(v)
        self.vmas.sort(key=lambda x: x.start)
        return v

    def folio(self, head: int, nr: int, anon: bool = True, thp: bool = True) -> None:
        """Register kpageflags for a folio of nr pages at pfn head."""
        base = (KPF_ANON if anon else 0) | (KPF_THP if thp and nr > 1 else 0)
        for k in range(nr):
            f = base
            if nr > 1:
                f |= KPF_COMPOUND_HEAD if k == 0 else KPF_COMPOUND_TAIL
            self.kflags[head + k] = f
            self.kcount[head + k] = 1

    def map(self, va: int, pfn: int, nr: int = 1, exclusive: bool = True, file: bool = False) -> None:
        for k in range(nr):
            v = PM_PRESENT | (pfn + k)
            if exclusive:
                v |= PM_MMAP_EXCLUSIVE
            if file:
                v |= PM_FILE
            self.pages[(va >> 12) + k] = v
            if pfn + k not in self.kflags:
                self.kflags[pfn + k] = 0 if file else KPF_ANON
                self.kcount[pfn + k] = 1

    def map_zero(self, va: int, nr: int = 1) -> None:
        for k in range(nr):
            self.pages[(va >> 12) + k] = PM_PRESENT | self.zero_pfn
        self.kflags[self.zero_pfn] = KPF_ZERO_PAGE

    def swap(self, va: int, typ: int, offset: int, nr: int = 1) -> None:
        for k in range(nr):
            self.pages[(va >> 12) + k] = PM_SWAP | typ | ((offset + k) << 5)

    # --- /proc text ----------------------------------------------------------------------------
    def _rss_kb(self, v: FakeVMA) -> tuple[int, int, int]:
        rss = anon = swap = 0
        for vfn in range(v.start >> 12, v.end >> 12):
            e = self.pages.get(vfn, 0)
            if e & PM_PRESENT:
                rss += 4
                if not e & PM_FILE:
                    anon += 4
            elif e & PM_SWAP:
                swap += 4
        return rss, anon, swap

    def maps_text(self) -> str:
        return "".join(self._header(v) + "\n" for v in self.vmas)

    def _header(self, v: FakeVMA) -> str:
        dev = "fe:00" if v.inode else "00:00"
        return f"{v.start:x}-{v.end:x} {v.perms} {v.offset:08x} {dev} {v.inode} {v.path}".rstrip()

    def smaps_text(self) -> str:
        out = []
        for v in self.vmas:
            rss, anon, swap = self._rss_kb(v)
            out.append(self._header(v))
            for key, val in (("Size", (v.end - v.start) >> 10), ("KernelPageSize", 4), ("MMUPageSize", 4),
                             ("Rss", rss), ("Pss", rss), ("Anonymous", anon),
                             ("AnonHugePages", v.anon_huge_kb), ("ShmemPmdMapped", 0),
                             ("FilePmdMapped", v.file_pmd_kb), ("Swap", swap)):
                out.append(f"{key + ':':<16}{val:>8} kB")
            out.append("THPeligible:    1")
            out.append("VmFlags: " + " ".join(v.vm_flags) + " ")
        return "\n".join(out) + "\n"


class _FakeBin:
    def __init__(self, reader: FakeReader, kind: str):
        self.reader = reader
        self.kind = kind

    def pread(self, size: int, offset: int) -> bytes:
        r = self.reader
        r.preads += 1
        if r.die_after is not None and self.kind == "pagemap" and r.preads > r.die_after:
            r.alive = False
        if self.kind == "pagemap" and not r.alive:
            raise ProcessLookupError(errno.ESRCH, "No such process")
        n = size // 8
        first = offset // 8
        src = {"pagemap": r.proc.pages, "kpageflags": r.proc.kflags, "kpagecount": r.proc.kcount}[self.kind]
        vals = []
        for i in range(first, first + n):
            v = src.get(i, 0)
            if self.kind == "pagemap":
                if r.hide_pfns and v & PM_PRESENT:
                    v &= ~((1 << 55) - 1)
                v = r.pagemap_hook(i, v)
            vals.append(v)
        return struct.pack(f"{n}Q", *vals)

    def pagemap_scan(self, start, end, anyof, return_mask, max_regions=4096):
        r = self.reader
        if not r.scan or self.kind != "pagemap":
            return None
        out = []
        for vfn in range(start >> 12, end >> 12):
            e = r.proc.pages.get(vfn, 0)
            cat = 0
            if e & PM_PRESENT:
                cat |= PAGE_IS_PRESENT
                if (e & ((1 << 55) - 1)) == r.proc.zero_pfn:
                    cat |= PAGE_IS_PFNZERO
                if e & PM_FILE:
                    cat |= PAGE_IS_FILE
                if ((vfn << 12) & ~((2 << 20) - 1)) in r.proc.pmd_vas:
                    cat |= PAGE_IS_HUGE
            if e & PM_SWAP:
                cat |= PAGE_IS_SWAPPED
            if not cat & anyof:
                continue
            cat &= return_mask
            a = vfn << 12
            if out and out[-1][1] == a and out[-1][2] == cat:
                out[-1] = (out[-1][0], a + 4096, cat)
            else:
                out.append((a, a + 4096, cat))
        return out

    def close(self) -> None:
        pass


class FakeReader(ProcReader):
    def __init__(self, proc: FakeProc, *, hide_pfns: bool = False, deny: tuple[str, ...] = (),
                 die_after: int | None = None, scan: bool = False, maps_changes: int = 0):
        self.proc = proc
        self.hide_pfns = hide_pfns
        self.deny = deny
        self.die_after = die_after
        self.scan = scan
        self.maps_changes = maps_changes  # how many verification reads see a changed VMA list
        self.alive = True
        self.preads = 0
        self.maps_reads = 0

    def pagemap_hook(self, vfn: int, value: int) -> int:
        return value

    def identity(self, pid: int):
        if pid != self.proc.pid or not self.alive:
            raise ProcessLookupError(errno.ESRCH, "No such process")
        return self.proc.comm, self.proc.started

    def _check(self, path: str) -> None:
        if any(path.endswith(d) for d in self.deny):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        if path.startswith("/proc/") and path.split("/")[2].isdigit():
            if int(path.split("/")[2]) != self.proc.pid or not self.alive:
                raise ProcessLookupError(errno.ESRCH, "No such process")

    def read_text(self, path: str) -> str:
        self._check(path)
        if path.endswith("/smaps"):
            return self.proc.smaps_text()
        if path.endswith("/maps"):
            self.maps_reads += 1
            text = self.proc.maps_text()
            if self.maps_changes:
                self.maps_changes -= 1
                text += "7fff00000000-7fff00001000 rw-p 00000000 00:00 0 \n"
                text = text.replace(" rw-p ", " r--p ", 1)
            return text
        raise FileNotFoundError(errno.ENOENT, "No such file", path)

    def open_binary(self, path: str):
        self._check(path)
        kind = path.rsplit("/", 1)[1]
        if kind not in ("pagemap", "kpageflags", "kpagecount"):
            raise FileNotFoundError(errno.ENOENT, "No such file", path)
        return _FakeBin(self, kind)

    def page_size(self) -> int:
        return PS

    def uname(self):
        return "6.99.0-fake", "aarch64"

    def thp_settings(self):
        return dict(self.proc.thp)
