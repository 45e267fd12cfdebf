# SPDX-License-Identifier: GPL-2.0-only
"""Physical memory: the buddy allocator plus struct page / struct folio
metadata kept in flat arrays indexed by pfn.

Nothing here allocates a Python object per page: every field is one slot of
an ``array`` (4 or 8 bytes per page). Folio-wide fields live at the head
pfn, per-page fields (the PTE mapcount and PageAnonExclusive) at each pfn.
Large folios are registered in the arch layer's FolioRegistry as they are
allocated, split and freed, because the arch fold check asks it which folio
a pfn belongs to (``__contpte_try_fold``).

Field meanings follow include/linux/mm_types.h:

* ``ref``      -- folio refcount (one per PTE/PMD mapping, per page-cache or
  swap-cache page, plus the allocation reference while unmapped);
* ``mapcount`` -- per page: PTE mappings of that page (``page_mapcount``);
* ``lmap``     -- folio: all PTE plus PMD mappings (``folio_mapcount``);
* ``flags``    -- folio flags at the head, PG_anon_exclusive at each page;
* ``index``    -- folio: page-cache index, or the linear page index inside
  the anon_vma (``folio->index``);
* ``mapping``  -- folio: anon_vma id or file id.
"""

from __future__ import annotations

import random
from array import array
from typing import Any

from engine.mm.buddy import Buddy, BuddyState
from engine.state.chunks import as_chunks, freeze, thaw_array
from engine.state.folios import FolioRegistry

# folio flags (head pfn)
F_ANON = 1 << 0
F_SWAPBACKED = 1 << 1  # anon that must be swapped; cleared by MADV_FREE (lazyfree)
F_DIRTY = 1 << 2
F_REFERENCED = 1 << 3
F_ACTIVE = 1 << 4
F_LRU = 1 << 5
F_SWAPCACHE = 1 << 6
F_DEFERRED = 1 << 7  # on the deferred split queue
F_PARTIAL = 1 << 8  # partially mapped (folio_test_partially_mapped)
F_UPTODATE = 1 << 9
F_RESERVED = 1 << 10  # kernel-owned: the zero pages, aged/pinned pages
F_PAGECACHE = 1 << 11
F_MIGRATING = 1 << 12  # locked for migration/split (never set between ops)
# per-page flags
P_ANON_EXCLUSIVE = 1 << 16
# the page holds data: a user write reached it, or it was copied, migrated or
# swapped in from a page that did. Pages are zeroed when allocated, so a page
# without it is zero-filled -- what try_to_map_unused_to_zeropage() tests with
# pages_identical(page, ZERO_PAGE(0)) when a split remaps an anon folio
P_DATA = 1 << 17

FOLIO_FLAG_NAMES = (
    (F_ANON, "anon"), (F_SWAPBACKED, "swapbacked"), (F_DIRTY, "dirty"),
    (F_REFERENCED, "referenced"), (F_ACTIVE, "active"), (F_LRU, "lru"),
    (F_SWAPCACHE, "swapcache"), (F_DEFERRED, "deferred_split"), (F_PARTIAL, "partially_mapped"),
    (F_UPTODATE, "uptodate"), (F_RESERVED, "reserved"), (F_PAGECACHE, "pagecache"),
)

# DRAM starts at 2 GiB, as on QEMU virt and many arm64 boards.
PHYS_BASE = 0x8000_0000


def max_page_order(page_shift: int, pmd_order: int) -> int:
    """MAX_PAGE_ORDER (CONFIG_ARCH_FORCE_MAX_ORDER on arm64): 10 for 4K,
    11 for 16K, 13 for 64K -- never below the PMD order."""
    return max(pmd_order, {12: 10, 14: 11, 16: 13}[page_shift])


class PhysMem:
    def __init__(self, page_shift: int, pmd_order: int, size: int, registry: FolioRegistry,
                 aged: float = 0.0, rng: random.Random | None = None):
        self.page_shift = page_shift
        self.pmd_order = pmd_order
        max_order = max_page_order(page_shift, pmd_order)
        block = 1 << (max_order + page_shift)
        npages = (max(size, block) + block - 1) // block * block >> page_shift
        self.base = PHYS_BASE >> page_shift
        self.npages = npages
        self.registry = registry
        self.buddy = Buddy(self.base, npages, max_order)
        z = bytes(4 * npages)
        self.ref = array("i", z)
        self.mapcount = array("i", z)
        self.lmap = array("i", z)
        self.flags = array("I", z)
        self.mapping = array("i", z)
        self.index = array("q", bytes(8 * npages))
        self.entire: dict[int, int] = {}  # head -> PMD mappings (folio_entire_mapcount)
        self.deferred: dict[int, None] = {}  # deferred split queue, in queueing order
        self.aged = aged
        self.pinned = 0
        # The shared zero page (ZERO_PAGE / zero_pfn), reserved at boot.
        self.zero_pfn = self.buddy.alloc(0)
        self._reserve(self.zero_pfn, 1)
        self.huge_zero_pfn = -1  # allocated on first use, like get_huge_zero_folio()
        if aged:
            for pfn in self.buddy.age(aged, rng or random.Random(0)):
                self._reserve(pfn, 1)
                self.pinned += 1

    def _reserve(self, pfn: int, nr: int) -> None:
        i = pfn - self.base
        for j in range(i, i + nr):
            self.ref[j] = 1
            self.flags[j] = F_RESERVED

    # --- lookups --------------------------------------------------------------------
    def folio_of(self, pfn: int) -> tuple[int, int]:
        return self.registry.folio_of(pfn)

    def valid_pfn(self, pfn: int) -> bool:
        return self.base <= pfn < self.base + self.npages

    def get_huge_zero_pfn(self) -> int:
        """The huge zero folio (PMD order), allocated on first use; -1 if none."""
        if self.huge_zero_pfn < 0:
            pfn = self.buddy.alloc(self.pmd_order)
            if pfn < 0:
                return -1
            self.registry.insert(pfn, self.pmd_order)
            self._reserve(pfn, 1 << self.pmd_order)
            self.huge_zero_pfn = pfn
        return self.huge_zero_pfn

    # --- allocation -----------------------------------------------------------------
    def alloc_folio(self, order: int, flags: int) -> int:
        """folio_alloc(): head pfn of a new folio with refcount 1, or -1."""
        pfn = self.buddy.alloc(order)
        if pfn < 0:
            return -1
        if order:
            self.registry.insert(pfn, order)
        i = pfn - self.base
        self.ref[i] = 1
        self.flags[i] = flags
        return pfn

    def free_folio(self, head: int) -> None:
        """The last reference is gone: clear the metadata, give the pages back."""
        order = self.registry.order_of(head)
        i = head - self.base
        n = 1 << order
        if order:
            self.registry.remove(head)
            for j in range(i, i + n):
                self.flags[j] = 0
                self.mapcount[j] = 0
        else:
            self.flags[i] = 0
            self.mapcount[i] = 0
        self.ref[i] = 0
        self.lmap[i] = 0
        self.mapping[i] = 0
        self.index[i] = 0
        self.entire.pop(head, None)
        self.deferred.pop(head, None)
        self.buddy.free_block(head, order)

    def split_meta(self, head: int, new_order: int) -> list[int]:
        """__split_folio_to_order(): carve the folio into 2^new_order pieces.

        Folio-wide fields are copied to every new head; the caller (which
        holds the folio unmapped) fixes refcounts and mapcounts afterwards.
        Returns the new heads in pfn order.
        """
        order = self.registry.order_of(head)
        if new_order >= order:
            return [head]
        self.registry.remove(head)
        i = head - self.base
        step = 1 << new_order
        fl = self.flags[i] & ~(P_ANON_EXCLUSIVE | P_DATA | F_DEFERRED | F_PARTIAL)
        idx = self.index[i]
        mapping = self.mapping[i]
        self.deferred.pop(head, None)
        heads = []
        for k in range(0, 1 << order, step):
            h = head + k
            j = i + k
            if new_order:
                self.registry.insert(h, new_order)
            self.flags[j] = fl | (self.flags[j] & (P_ANON_EXCLUSIVE | P_DATA))
            self.index[j] = idx + k
            self.mapping[j] = mapping
            self.lmap[j] = 0
            self.ref[j] = 0
            heads.append(h)
        return heads

    # --- field helpers ----------------------------------------------------------------
    def test(self, head: int, flag: int) -> bool:
        return bool(self.flags[head - self.base] & flag)

    def set_flag(self, head: int, flag: int) -> None:
        self.flags[head - self.base] |= flag

    def clear_flag(self, head: int, flag: int) -> None:
        self.flags[head - self.base] &= ~flag

    def stats(self) -> dict[str, int]:
        free = self.buddy.free_pages()
        return {"pages": self.npages, "free": free, "used": self.npages - free,
                "pinned": self.pinned, "largest_free_order": self.buddy.largest_free_order(),
                "large_folios": len(self.registry), "deferred_split": len(self.deferred)}

    # --- state ------------------------------------------------------------------------
    _ARRAYS = ("ref", "mapcount", "lmap", "flags", "mapping", "index")
    _TYPECODES = ("i", "i", "i", "I", "i", "q")
    _SCALARS = ("page_shift", "pmd_order", "base", "npages", "aged", "pinned", "zero_pfn",
                "huge_zero_pfn")

    def freeze(self, prev: PhysMemState | None = None) -> PhysMemState:
        """An immutable checkpoint; chunks equal to prev's are shared with it."""
        pa = prev.arrays if prev is not None else {}
        return PhysMemState(
            {k: getattr(self, k) for k in self._SCALARS},
            {name: freeze(getattr(self, name), pa.get(name)) for name in self._ARRAYS},
            self.buddy.freeze(prev.buddy if prev is not None else None),
            dict(self.entire), dict(self.deferred))

    def clone(self, registry: FolioRegistry) -> PhysMem:
        other = PhysMem.__new__(PhysMem)
        other.__dict__.update(self.__dict__)
        other.registry = registry
        other.buddy = self.buddy.clone()
        for name in self._ARRAYS:
            setattr(other, name, array(getattr(self, name).typecode, getattr(self, name)))
        other.entire = dict(self.entire)
        other.deferred = dict(self.deferred)
        return other

    def to_plain(self) -> dict[str, Any]:
        d = {name: getattr(self, name).tobytes() for name in self._ARRAYS}
        d.update(page_shift=self.page_shift, pmd_order=self.pmd_order, base=self.base,
                 npages=self.npages, aged=repr(self.aged), pinned=self.pinned,
                 zero_pfn=self.zero_pfn, huge_zero_pfn=self.huge_zero_pfn,
                 entire=[[h, c] for h, c in sorted(self.entire.items())],
                 deferred=list(self.deferred), buddy=self.buddy.to_plain())
        return d

    @classmethod
    def from_plain(cls, d: dict[str, Any], registry: FolioRegistry) -> PhysMem:
        pm = cls.__new__(cls)
        pm.page_shift = int(d["page_shift"])
        pm.pmd_order = int(d["pmd_order"])
        pm.base = int(d["base"])
        pm.npages = int(d["npages"])
        pm.aged = float(d["aged"])
        pm.pinned = int(d["pinned"])
        pm.zero_pfn = int(d["zero_pfn"])
        pm.huge_zero_pfn = int(d["huge_zero_pfn"])
        pm.registry = registry
        pm.buddy = Buddy.from_plain(d["buddy"])
        for name, code in zip(cls._ARRAYS, ("i", "i", "i", "I", "i", "q"), strict=True):
            a = array(code)
            a.frombytes(d[name])
            if len(a) != pm.npages:
                raise ValueError(f"physmem array {name} has {len(a)} entries, expected {pm.npages}")
            setattr(pm, name, a)
        pm.entire = {int(h): int(c) for h, c in d["entire"]}
        pm.deferred = {int(h): None for h in d["deferred"]}
        return pm


class PhysMemState:
    """A checkpoint of PhysMem: scalars, the per-page arrays as shared chunks
    (engine.state.chunks), the buddy bitmaps likewise, and the two dicts."""

    __slots__ = ("scalars", "arrays", "buddy", "entire", "deferred")

    def __init__(self, scalars: dict[str, Any], arrays: dict[str, tuple[bytes, ...]], buddy: BuddyState,
                 entire: dict[int, int], deferred: dict[int, None]):
        self.scalars = scalars
        self.arrays = arrays
        self.buddy = buddy
        self.entire = entire
        self.deferred = deferred

    def thaw(self, registry: FolioRegistry) -> PhysMem:
        pm = PhysMem.__new__(PhysMem)
        for k, v in self.scalars.items():
            setattr(pm, k, v)
        pm.registry = registry
        pm.buddy = self.buddy.thaw()
        for name, code in zip(PhysMem._ARRAYS, PhysMem._TYPECODES, strict=True):
            a = thaw_array(code, self.arrays[name])
            if len(a) != pm.npages:
                raise ValueError(f"physmem array {name} has {len(a)} entries, expected {pm.npages}")
            setattr(pm, name, a)
        pm.entire = dict(self.entire)
        pm.deferred = dict(self.deferred)
        return pm

    def to_plain(self, joined: bool = False) -> dict[str, Any]:
        """msgpack-able: each array as a list of chunks (``joined``: one bytes
        value each, the form PhysMem.to_plain() gives)."""
        d: dict[str, Any] = {name: (b"".join(ch) if joined else list(ch)) for name, ch in self.arrays.items()}
        sc = self.scalars
        d.update(page_shift=sc["page_shift"], pmd_order=sc["pmd_order"], base=sc["base"],
                 npages=sc["npages"], aged=repr(sc["aged"]), pinned=sc["pinned"],
                 zero_pfn=sc["zero_pfn"], huge_zero_pfn=sc["huge_zero_pfn"],
                 entire=[[h, c] for h, c in sorted(self.entire.items())],
                 deferred=list(self.deferred), buddy=self.buddy.to_plain(joined))
        return d

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> PhysMemState:
        """From either plain form (arrays as one bytes value, or as chunks)."""
        scalars = {"page_shift": int(d["page_shift"]), "pmd_order": int(d["pmd_order"]),
                   "base": int(d["base"]), "npages": int(d["npages"]), "aged": float(d["aged"]),
                   "pinned": int(d["pinned"]), "zero_pfn": int(d["zero_pfn"]),
                   "huge_zero_pfn": int(d["huge_zero_pfn"])}
        arrays = {name: as_chunks(d[name]) for name in PhysMem._ARRAYS}
        for name, code in zip(PhysMem._ARRAYS, PhysMem._TYPECODES, strict=True):
            if sum(map(len, arrays[name])) != scalars["npages"] * array(code).itemsize:
                raise ValueError(f"physmem array {name} does not match the memory size")
        return cls(scalars, arrays, BuddyState.from_plain(d["buddy"]),
                   {int(h): int(c) for h, c in d["entire"]}, {int(h): None for h in d["deferred"]})
