# SPDX-License-Identifier: GPL-2.0-only
"""Virtual memory areas (struct vm_area_struct) and their page protections.

A VMA here carries what the modelled paths read: its range, VM_* flags,
``vm_page_prot`` as a raw descriptor template, ``vm_pgoff``, the file it maps,
and its anon_vma chain (for the anon reverse map). ``region`` is the name the
scenario gave the mapping; VMAs split by mprotect/munmap keep it.
"""

from __future__ import annotations

from typing import Any

from engine.pte import (
    PAGE_READONLY,
    PAGE_READONLY_EXEC,
    PAGE_SHARED,
    PAGE_SHARED_EXEC,
    Layout,
)

VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000

PROTS = ("none", "r", "rw", "rx", "rwx")


def prot_flags(prot: str) -> int:
    f = 0
    if "r" in prot:
        f |= VM_READ
    if "w" in prot:
        f |= VM_WRITE
    if "x" in prot:
        f |= VM_EXEC
    return f


def vm_get_page_prot(vm_flags: int, layout: Layout) -> int:
    """protection_map[] of arch/arm64/mm/mmap.c for the user protections.

    Private writable mappings start read-only: there is no PAGE_COPY on
    arm64, CoW is resolved by the write fault.
    """
    rw = vm_flags & (VM_READ | VM_WRITE)
    exe = bool(vm_flags & VM_EXEC)
    if not rw and not exe:
        return layout.page_none
    if vm_flags & VM_WRITE and vm_flags & VM_SHARED:
        return PAGE_SHARED_EXEC if exe else PAGE_SHARED
    return PAGE_READONLY_EXEC if exe else PAGE_READONLY


class VMA:
    __slots__ = ("region", "start", "end", "flags", "page_prot", "pgoff", "file", "anon_vma",
                 "avc", "shmem")

    def __init__(self, region: str, start: int, end: int, flags: int, page_prot: int, pgoff: int,
                 file: int = 0, shmem: bool = False):
        self.region = region
        self.start = start
        self.end = end
        self.flags = flags
        self.page_prot = page_prot
        self.pgoff = pgoff
        self.file = file  # file id, 0 for anonymous memory
        self.shmem = shmem  # MAP_SHARED|MAP_ANONYMOUS: backed by an unnamed shmem file
        self.anon_vma = 0  # own anon_vma id (0 until anon_vma_prepare)
        self.avc: tuple[int, ...] = ()  # every anon_vma this VMA is chained to

    # --- kernel predicates ----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.region

    @property
    def anon(self) -> bool:
        """vma_is_anonymous() in the scenario's sense: not file backed."""
        return self.file == 0 or self.shmem

    @property
    def shared(self) -> bool:
        return bool(self.flags & VM_SHARED)

    @property
    def is_cow(self) -> bool:
        """is_cow_mapping(): private and may be written."""
        return not self.flags & VM_SHARED and bool(self.flags & VM_WRITE)

    @property
    def prot(self) -> str:
        p = ""
        if self.flags & VM_READ:
            p += "r"
        if self.flags & VM_WRITE:
            p += "w"
        if self.flags & VM_EXEC:
            p += "x"
        return p or "none"

    @property
    def perms(self) -> str:
        """Permissions as /proc/PID/maps prints them (rwxp / rwxs)."""
        return ("r" if self.flags & VM_READ else "-") + ("w" if self.flags & VM_WRITE else "-") + (
            "x" if self.flags & VM_EXEC else "-") + ("s" if self.flags & VM_SHARED else "p")

    @property
    def accessible(self) -> bool:
        return bool(self.flags & (VM_READ | VM_WRITE | VM_EXEC))

    def linear_index(self, addr: int, page_shift: int) -> int:
        """linear_page_index(): the page index addr maps inside the file or anon_vma."""
        return ((addr - self.start) >> page_shift) + self.pgoff

    def addr_of_index(self, index: int, page_shift: int) -> int:
        return self.start + ((index - self.pgoff) << page_shift)

    def kind(self) -> str:
        if self.shmem:
            return "shmem"
        return "file" if self.file else "anon"

    def copy(self) -> VMA:
        v = VMA(self.region, self.start, self.end, self.flags, self.page_prot, self.pgoff,
                self.file, self.shmem)
        v.anon_vma = self.anon_vma
        v.avc = self.avc
        return v

    def to_plain(self) -> list[Any]:
        return [self.region, self.start, self.end, self.flags, self.page_prot, self.pgoff,
                self.file, self.shmem, self.anon_vma, list(self.avc)]

    @classmethod
    def from_plain(cls, row: list[Any]) -> VMA:
        v = cls(str(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]),
                int(row[6]), bool(row[7]))
        v.anon_vma = int(row[8])
        v.avc = tuple(int(x) for x in row[9])
        return v

    def __repr__(self) -> str:
        return (f"<VMA {self.region} {self.start:#x}-{self.end:#x} {self.prot} "
                f"{'shared' if self.shared else 'private'} {self.kind()}>")
