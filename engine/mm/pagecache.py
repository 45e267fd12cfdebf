# SPDX-License-Identifier: GPL-2.0-only
"""Files and their page caches (struct address_space), as data.

A file's cache is an ``array('q')`` indexed by page index holding
``head pfn + 1`` of the folio caching that page (0: not cached), so a
lookup is one array read and a large folio needs no per-page object.
``readahead`` holds the indices of folios marked PG_readahead, and ``ra``
is struct file_ra_state (start, size, async_size, order) plus mmap_miss: one
per file, as if every mapping of it shared one open file. The
allocation and readahead logic is in engine/mm/filemap.py.
"""

from __future__ import annotations

from array import array
from typing import Any


class File:
    __slots__ = ("fid", "name", "npages", "cache", "shmem", "readahead", "ra", "mmap_miss")

    def __init__(self, fid: int, name: str, npages: int, shmem: bool = False):
        self.fid = fid
        self.name = name
        self.npages = npages  # i_size in pages
        self.cache = array("q", bytes(8 * npages))
        self.shmem = shmem
        self.readahead: dict[int, None] = {}  # indices of PG_readahead folios
        self.ra = [0, 0, 0, 0]  # file_ra_state: start, size, async_size, order (v6.16+)
        self.mmap_miss = 0

    def resize(self, npages: int) -> None:
        """ftruncate() up: only ever grows here."""
        if npages > self.npages:
            self.cache.extend(array("q", bytes(8 * (npages - self.npages))))
            self.npages = npages

    def lookup(self, index: int) -> int:
        """filemap_get_folio(): head pfn caching index, or -1."""
        if index >= self.npages:
            return -1
        return self.cache[index] - 1

    def cached_pages(self) -> int:
        return self.npages - self.cache.count(0)

    def clone(self) -> File:
        f = File.__new__(File)
        f.fid = self.fid
        f.name = self.name
        f.npages = self.npages
        f.cache = array("q", self.cache)
        f.shmem = self.shmem
        f.readahead = dict(self.readahead)
        f.ra = list(self.ra)
        f.mmap_miss = self.mmap_miss
        return f

    def to_plain(self) -> dict[str, Any]:
        return {"fid": self.fid, "name": self.name, "npages": self.npages,
                "cache": self.cache.tobytes(), "shmem": self.shmem,
                "readahead": list(self.readahead), "ra": list(self.ra), "mmap_miss": self.mmap_miss}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> File:
        f = cls(int(d["fid"]), str(d["name"]), 0, bool(d["shmem"]))
        f.npages = int(d["npages"])
        f.cache = array("q")
        f.cache.frombytes(d["cache"])
        if len(f.cache) != f.npages:
            raise ValueError(f"page cache of {f.name} does not match its size")
        f.readahead = {int(i): None for i in d["readahead"]}
        f.ra = [int(x) for x in d["ra"]][:4]
        if len(f.ra) < 3:
            raise ValueError(f"readahead state of {f.name} is not start, size, async_size[, order]")
        f.ra += [0] * (4 - len(f.ra))  # saved before the order was kept
        f.mmap_miss = int(d["mmap_miss"])
        return f


class PageCache:
    def __init__(self, page_shift: int, ra_pages: int):
        self.page_shift = page_shift
        self.ra_pages = ra_pages  # read_ahead_kb / PAGE_SIZE (VM_READAHEAD_PAGES: 128K)
        self.files: dict[int, File] = {}
        self.next_fid = 1

    def create(self, name: str, npages: int, shmem: bool = False) -> File:
        f = File(self.next_fid, name, npages, shmem)
        self.files[f.fid] = f
        self.next_fid += 1
        return f

    def by_name(self, name: str) -> File | None:
        for f in self.files.values():
            if f.name == name and not f.shmem:
                return f
        return None

    def clone(self) -> PageCache:
        pc = PageCache(self.page_shift, self.ra_pages)
        pc.files = {k: f.clone() for k, f in self.files.items()}
        pc.next_fid = self.next_fid
        return pc

    def to_plain(self) -> dict[str, Any]:
        return {"page_shift": self.page_shift, "ra_pages": self.ra_pages, "next_fid": self.next_fid,
                "files": [f.to_plain() for _, f in sorted(self.files.items())]}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> PageCache:
        pc = cls(int(d["page_shift"]), int(d["ra_pages"]))
        pc.next_fid = int(d["next_fid"])
        for fd in d["files"]:
            f = File.from_plain(fd)
            pc.files[f.fid] = f
        return pc
