# SPDX-License-Identifier: GPL-2.0-only
"""What a capture of a live process holds: plain data, no engine state.

A :class:`Capture` is the VMA list of one process plus, for every page that
was present or swapped when it was read, the raw ``/proc/PID/pagemap`` entry,
the page's ``/proc/kpageflags`` and ``/proc/kpagecount`` words, and the large
folios those pages belong to. Per-page data lives in parallel ``array('Q')``
columns (40 bytes per captured page, no Python object per page); pages of one
VMA are a contiguous slice of those columns (``vma.first`` .. ``vma.first +
vma.count``), ascending by address.

Bit definitions follow Documentation/admin-guide/mm/pagemap.rst and
include/uapi/linux/kernel-page-flags.h.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# --- /proc/PID/pagemap ------------------------------------------------------------------
PM_PFN_MASK = (1 << 55) - 1  # bits 0-54: PFN (0 without CAP_SYS_ADMIN)
PM_SWAP_TYPE_BITS = 5  # when swapped: bits 0-4 swap type, 5-54 swap offset
PM_SOFT_DIRTY = 1 << 55
PM_MMAP_EXCLUSIVE = 1 << 56
PM_UFFD_WP = 1 << 57
PM_GUARD_REGION = 1 << 58
PM_FILE = 1 << 61  # file page or shared anon
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63
# the bits that say where a page is; anything else may change without the mapping changing
PM_IDENTITY_MASK = PM_PRESENT | PM_SWAP | PM_FILE | PM_PFN_MASK

# --- /proc/kpageflags (include/uapi/linux/kernel-page-flags.h) -------------------------------
KPF_LOCKED = 1 << 0
KPF_REFERENCED = 1 << 2
KPF_UPTODATE = 1 << 3
KPF_DIRTY = 1 << 4
KPF_LRU = 1 << 5
KPF_ACTIVE = 1 << 6
KPF_SLAB = 1 << 7
KPF_WRITEBACK = 1 << 8
KPF_RECLAIM = 1 << 9
KPF_BUDDY = 1 << 10
KPF_MMAP = 1 << 11
KPF_ANON = 1 << 12
KPF_SWAPCACHE = 1 << 13
KPF_SWAPBACKED = 1 << 14
KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
KPF_HUGE = 1 << 17
KPF_UNEVICTABLE = 1 << 18
KPF_HWPOISON = 1 << 19
KPF_NOPAGE = 1 << 20
KPF_KSM = 1 << 21
KPF_THP = 1 << 22
KPF_OFFLINE = 1 << 23
KPF_ZERO_PAGE = 1 << 24
KPF_IDLE = 1 << 25
KPF_PGTABLE = 1 << 26

KPF_NAMES = {
    0: "locked", 2: "referenced", 3: "uptodate", 4: "dirty", 5: "lru", 6: "active", 7: "slab",
    8: "writeback", 9: "reclaim", 10: "buddy", 11: "mmap", 12: "anon", 13: "swapcache",
    14: "swapbacked", 15: "compound_head", 16: "compound_tail", 17: "huge", 18: "unevictable",
    19: "hwpoison", 20: "nopage", 21: "ksm", 22: "thp", 23: "offline", 24: "zero_page",
    25: "idle", 26: "pgtable",
}

# VMAs whose pages are not ordinary memory the contpte code could ever see
SPECIAL_NAMES = ("[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]", "[uprobes]", "[vectors]", "[sigpage]")


class CaptureError(Exception):
    """A capture could not be made; the message says why in one line."""


class ProcessGone(CaptureError):
    """The process does not exist, or exited (or was replaced) during the capture."""


@dataclass
class CapturedVMA:
    """One line of /proc/PID/smaps (or /proc/PID/maps)."""

    start: int
    end: int
    perms: str  # "rw-p" as in maps
    offset: int = 0
    dev: str = "00:00"
    inode: int = 0
    path: str = ""
    vm_flags: tuple[str, ...] = ()  # smaps VmFlags mnemonics ("rd", "wr", "hg", "pf", ...)
    smaps: dict[str, int] = field(default_factory=dict)  # kB counters; empty if only maps was read
    first: int = 0  # index of this VMA's first captured page in the Capture columns
    count: int = 0  # number of captured pages (present or swapped)

    @property
    def read(self) -> bool:
        return self.perms[0] == "r"

    @property
    def write(self) -> bool:
        return self.perms[1] == "w"

    @property
    def exec(self) -> bool:
        return self.perms[2] == "x"

    @property
    def shared(self) -> bool:
        return self.perms[3] == "s"

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def hugetlb(self) -> bool:
        return "ht" in self.vm_flags

    @property
    def pfnmap(self) -> bool:
        return "pf" in self.vm_flags or "io" in self.vm_flags

    @property
    def kind(self) -> str:
        """anon, shmem, file or special (what the kernel would call the mapping)."""
        p = self.path
        if p in SPECIAL_NAMES or self.pfnmap:
            return "special"
        if p.startswith("[anon_shmem:") or p.startswith("/SYSV") or p.startswith("/dev/zero") \
                or p.startswith("/memfd:") or (self.shared and self.inode == 0 and not p):
            return "shmem"
        if self.inode == 0 and (not p or p.startswith("[")):
            return "anon"  # includes [heap], [stack], [anon:name]
        return "file"

    @property
    def name(self) -> str:
        return self.path or "[anon]"

    def stat(self, key: str) -> int:
        return self.smaps.get(key, 0)

    def identity(self) -> tuple[int, int, str, int, int]:
        """What must not change while the capture runs."""
        return (self.start, self.end, self.perms, self.offset, self.inode)

    def maps_line(self) -> str:
        return (f"{self.start:x}-{self.end:x} {self.perms} {self.offset:08x} {self.dev} "
                f"{self.inode} {self.path}").rstrip()

    def to_plain(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "perms": self.perms, "offset": self.offset,
                "dev": self.dev, "inode": self.inode, "path": self.path,
                "vm_flags": list(self.vm_flags), "smaps": dict(self.smaps),
                "first": self.first, "count": self.count}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> CapturedVMA:
        return cls(int(d["start"]), int(d["end"]), str(d["perms"]), int(d["offset"]), str(d["dev"]),
                   int(d["inode"]), str(d["path"]), tuple(str(x) for x in d["vm_flags"]),
                   {str(k): int(v) for k, v in d["smaps"].items()}, int(d["first"]), int(d["count"]))


def _u64() -> array[int]:
    return array("Q")


@dataclass
class Capture:
    """A consistent picture of one process's memory.

    ``pfns`` is the PFN each present page is treated as having: the real one
    from pagemap, or a synthetic one when ``synthetic`` (PFNs hidden). In
    synthetic mode ``kpageflags`` holds synthesised ANON / COMPOUND_HEAD /
    COMPOUND_TAIL / THP / ZERO_PAGE bits so every consumer reads one format.
    """

    pid: int
    comm: str
    page_size: int
    pmd_size: int
    vmas: list[CapturedVMA] = field(default_factory=list)
    vfns: array[int] = field(default_factory=_u64)  # virtual page number of each captured page
    pagemap: array[int] = field(default_factory=_u64)  # raw pagemap entry
    pfns: array[int] = field(default_factory=_u64)  # pfn used for the page (0: not present)
    kpageflags: array[int] = field(default_factory=_u64)  # 0 where unknown
    kpagecount: array[int] = field(default_factory=_u64)  # 0 where unknown
    folios: dict[int, int] = field(default_factory=dict)  # head pfn -> nr pages (large only)
    pmd_mapped: list[tuple[int, int]] = field(default_factory=list)  # [start, end) VAs
    pmd_source: str = "none"  # "pagemap_scan", "smaps" or "none"
    pfns_visible: bool = False
    flags_visible: bool = False
    synthetic: bool = False
    synthesis: str = ""  # how synthetic folios were made, one line
    warnings: list[str] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)  # kernel release, THP settings, ...

    # --- geometry ----------------------------------------------------------------------
    @property
    def page_shift(self) -> int:
        return self.page_size.bit_length() - 1

    @property
    def pmd_order(self) -> int:
        return (self.pmd_size // self.page_size).bit_length() - 1

    def __len__(self) -> int:
        return len(self.vfns)

    def pages(self, vma: CapturedVMA) -> range:
        return range(vma.first, vma.first + vma.count)

    def vma_of(self, addr: int) -> CapturedVMA | None:
        for v in self.vmas:
            if v.start <= addr < v.end:
                return v
        return None

    # --- per page ----------------------------------------------------------------------
    def present(self, i: int) -> bool:
        return bool(self.pagemap[i] & PM_PRESENT)

    def swapped(self, i: int) -> bool:
        return bool(self.pagemap[i] & PM_SWAP)

    def exclusive(self, i: int) -> bool:
        return bool(self.pagemap[i] & PM_MMAP_EXCLUSIVE)

    def file_backed(self, i: int) -> bool:
        """pagemap's PM_FILE: a page-cache page or shared anonymous (shmem) memory."""
        return bool(self.pagemap[i] & PM_FILE)

    def swap_entry(self, i: int) -> tuple[int, int]:
        """(type, offset) of a swapped page (both 0 when PFNs are hidden)."""
        v = self.pagemap[i] & PM_PFN_MASK
        return v & ((1 << PM_SWAP_TYPE_BITS) - 1), v >> PM_SWAP_TYPE_BITS

    def folio_of(self, pfn: int) -> tuple[int, int]:
        """(head pfn, nr pages) of the folio holding pfn; (pfn, 1) for order 0."""
        folios = self.folios
        if not folios:
            return pfn, 1
        for order in self._orders():
            head = pfn & ~((1 << order) - 1)
            if folios.get(head) == 1 << order:
                return head, 1 << order
        return pfn, 1

    def _orders(self) -> list[int]:
        key = (id(self.folios), len(self.folios))
        cache = self.__dict__.get("_order_cache")
        if cache is None or cache[0] != key:
            cache = (key, sorted({n.bit_length() - 1 for n in self.folios.values()}))
            self.__dict__["_order_cache"] = cache
        return cache[1]

    def iter_pages(self, vma: CapturedVMA) -> Iterator[tuple[int, int, int]]:
        """(index, virtual address, pagemap entry) for each captured page of vma."""
        shift = self.page_shift
        for i in self.pages(vma):
            yield i, self.vfns[i] << shift, self.pagemap[i]

    # --- summary -----------------------------------------------------------------------
    def summary(self) -> dict[str, int]:
        present = sum(1 for v in self.pagemap if v & PM_PRESENT)
        swapped = sum(1 for v in self.pagemap if v & PM_SWAP)
        return {"vmas": len(self.vmas), "pages_present": present, "pages_swapped": swapped,
                "large_folios": len(self.folios),
                "pmd_mapped": sum((e - s) // self.pmd_size for s, e in self.pmd_mapped)}

    # --- plain data (msgpack / JSON friendly) --------------------------------------------
    def to_plain(self) -> dict[str, Any]:
        return {
            "format": "ptlab-capture/1", "pid": self.pid, "comm": self.comm,
            "page_size": self.page_size, "pmd_size": self.pmd_size,
            "vmas": [v.to_plain() for v in self.vmas],
            "vfns": self.vfns.tobytes(), "pagemap": self.pagemap.tobytes(),
            "pfns": self.pfns.tobytes(), "kpageflags": self.kpageflags.tobytes(),
            "kpagecount": self.kpagecount.tobytes(),
            "folios": sorted(self.folios.items()), "pmd_mapped": [list(r) for r in self.pmd_mapped],
            "pmd_source": self.pmd_source, "pfns_visible": self.pfns_visible,
            "flags_visible": self.flags_visible, "synthetic": self.synthetic,
            "synthesis": self.synthesis, "warnings": list(self.warnings), "info": dict(self.info),
        }

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> Capture:
        if d.get("format") != "ptlab-capture/1":
            raise ValueError(f"not a ptlab capture (format={d.get('format')!r})")

        def col(name: str) -> array[int]:
            a = array("Q")
            a.frombytes(bytes(d[name]))
            return a

        c = cls(int(d["pid"]), str(d["comm"]), int(d["page_size"]), int(d["pmd_size"]),
                [CapturedVMA.from_plain(v) for v in d["vmas"]], col("vfns"), col("pagemap"),
                col("pfns"), col("kpageflags"), col("kpagecount"),
                {int(h): int(n) for h, n in d["folios"]},
                [(int(s), int(e)) for s, e in d["pmd_mapped"]], str(d["pmd_source"]),
                bool(d["pfns_visible"]), bool(d["flags_visible"]), bool(d["synthetic"]),
                str(d["synthesis"]), [str(w) for w in d["warnings"]],
                {str(k): str(v) for k, v in d["info"].items()})
        n = len(c.vfns)
        if not all(len(a) == n for a in (c.pagemap, c.pfns, c.kpageflags, c.kpagecount)):
            raise ValueError("capture columns differ in length")
        return c

    def check(self) -> None:
        """Raise ValueError if the capture is not self-consistent."""
        n = len(self.vfns)
        if not all(len(a) == n for a in (self.pagemap, self.pfns, self.kpageflags, self.kpagecount)):
            raise ValueError("capture columns differ in length")
        shift = self.page_shift
        prev_end = 0
        for v in self.vmas:
            if v.start >= v.end or v.start < prev_end:
                raise ValueError(f"VMA {v.start:#x}-{v.end:#x} is empty or overlaps the previous one")
            prev_end = v.end
            last = -1
            for i in self.pages(v):
                va = self.vfns[i] << shift
                if not v.start <= va < v.end or self.vfns[i] <= last:
                    raise ValueError(f"page {va:#x} is out of order or outside {v.maps_line()}")
                last = self.vfns[i]
        for head, nr in self.folios.items():
            if nr < 2 or nr & (nr - 1) or head % nr:
                raise ValueError(f"folio at pfn {head:#x} of {nr} pages is not naturally aligned")
