# SPDX-License-Identifier: GPL-2.0-only
"""A buddy allocator over a fixed pfn range (mm/page_alloc.c in miniature).

Free blocks of every order live in one bitmap per order (a ``bytearray``
with one byte per naturally aligned block of that order), so finding a free
block is a C-speed ``find`` and no Python object exists per free page.
Allocation takes the lowest free block of the smallest sufficient order and
splits it down (``expand()``); freeing merges with the buddy while the buddy
is free (``__free_one_page()``). The kernel's free lists are LIFO rather than
address ordered; address order keeps runs reproducible and is documented as
a simplification in docs/scenarios.md.

Fragmentation: ``age(fraction, rng)`` pins a seeded random ``fraction`` of
pages (as long-lived unmovable kernel allocations would), which leaves
high-order blocks scarce the way a long-running system's memory is.
"""

from __future__ import annotations

import random
from typing import Any

from engine.state.chunks import as_chunks, freeze, thaw_bytearray


class Buddy:
    __slots__ = ("base", "npages", "max_order", "free", "nr_free", "low")

    # ``low[o]``: no block of order o below this index is free. alloc() starts
    # its find() there: the lowest free block is found without rescanning the
    # allocated prefix (at 1 GiB of order-0 faults the scan from 0 cost ~1 us a
    # page). Every place that sets a free bit lowers it; a copy starts it at 0.
    # It is a search hint, not state: never saved, hashed or compared.

    def __init__(self, base: int, npages: int, max_order: int):
        if npages <= 0 or npages % (1 << max_order):
            raise ValueError(f"memory of {npages} pages is not a multiple of the max-order block")
        self.base = base
        self.npages = npages
        self.max_order = max_order
        self.free = [bytearray(npages >> o) for o in range(max_order + 1)]
        self.nr_free = [0] * (max_order + 1)
        self.low = [0] * (max_order + 1)
        top = self.free[max_order]
        for i in range(len(top)):
            top[i] = 1
        self.nr_free[max_order] = len(top)

    # --- queries --------------------------------------------------------------------
    def free_pages(self) -> int:
        return sum(n << o for o, n in enumerate(self.nr_free))

    def largest_free_order(self) -> int:
        for o in range(self.max_order, -1, -1):
            if self.nr_free[o]:
                return o
        return -1

    def is_free(self, pfn: int) -> bool:
        i = pfn - self.base
        return any(self.free[o][i >> o] for o in range(self.max_order + 1))

    # --- allocation -------------------------------------------------------------------
    def alloc(self, order: int) -> int:
        """Head pfn of a free block of 2^order pages, or -1 (no split possible)."""
        free = self.free
        nr_free = self.nr_free
        low = self.low
        for o in range(order, self.max_order + 1):
            if nr_free[o]:
                idx = free[o].find(1, low[o])
                free[o][idx] = 0
                low[o] = idx + 1
                nr_free[o] -= 1
                # expand(): hand the upper halves back at each lower order
                while o > order:
                    o -= 1
                    idx <<= 1
                    free[o][idx + 1] = 1
                    if idx + 1 < low[o]:
                        low[o] = idx + 1
                    nr_free[o] += 1
                return self.base + (idx << order)
        return -1

    def free_block(self, pfn: int, order: int) -> None:
        """__free_one_page(): return a block and merge it with free buddies."""
        free = self.free
        idx = (pfn - self.base) >> order
        while order < self.max_order:
            bm = free[order]
            buddy = idx ^ 1
            if not bm[buddy]:
                break
            bm[buddy] = 0
            self.nr_free[order] -= 1
            idx >>= 1
            order += 1
        free[order][idx] = 1
        self.nr_free[order] += 1
        if idx < self.low[order]:
            self.low[order] = idx

    def take(self, pfn: int) -> bool:
        """Allocate exactly the page at pfn if it is free (splitting its block)."""
        i = pfn - self.base
        free = self.free
        for o in range(self.max_order + 1):
            idx = i >> o
            if free[o][idx]:
                free[o][idx] = 0
                self.nr_free[o] -= 1
                # give back every half that does not contain pfn
                while o > 0:
                    o -= 1
                    idx <<= 1
                    given = idx if (i >> o) & 1 else idx + 1
                    free[o][given] = 1
                    if given < self.low[o]:
                        self.low[o] = given
                    if (i >> o) & 1:
                        idx += 1
                    self.nr_free[o] += 1
                return True
        return False

    def age(self, fraction: float, rng: random.Random) -> list[int]:
        """Pin a random fraction of pages; returns the pinned pfns (sorted)."""
        k = int(round(fraction * self.npages))
        picks = sorted(rng.sample(range(self.npages), k)) if k else []
        out = []
        for i in picks:
            if self.take(self.base + i):
                out.append(self.base + i)
        return out

    # --- state ------------------------------------------------------------------------
    def clone(self) -> Buddy:
        other = Buddy.__new__(Buddy)
        other.base = self.base
        other.npages = self.npages
        other.max_order = self.max_order
        other.free = [bytearray(b) for b in self.free]
        other.nr_free = list(self.nr_free)
        other.low = list(self.low)
        return other

    def freeze(self, prev: BuddyState | None = None) -> BuddyState:
        pf = prev.free if prev is not None and len(prev.free) == len(self.free) else None
        return BuddyState(self.base, self.npages, self.max_order,
                          tuple(freeze(b, pf[o] if pf else None) for o, b in enumerate(self.free)),
                          tuple(self.nr_free))

    def to_plain(self) -> dict[str, Any]:
        return {"base": self.base, "npages": self.npages, "max_order": self.max_order,
                "free": [bytes(b) for b in self.free], "nr_free": list(self.nr_free)}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> Buddy:
        other = cls.__new__(cls)
        other.base = int(d["base"])
        other.npages = int(d["npages"])
        other.max_order = int(d["max_order"])
        other.free = [thaw_bytearray(as_chunks(b)) for b in d["free"]]
        other.nr_free = [int(x) for x in d["nr_free"]]
        other.low = [0] * (other.max_order + 1)
        if len(other.free) != other.max_order + 1 or any(
                len(b) != other.npages >> o for o, b in enumerate(other.free)):
            raise ValueError("buddy bitmaps do not match the memory size")
        return other


class BuddyState:
    """A checkpoint of Buddy: the free bitmaps as shared chunks."""

    __slots__ = ("base", "npages", "max_order", "free", "nr_free")

    def __init__(self, base: int, npages: int, max_order: int, free: tuple[tuple[bytes, ...], ...],
                 nr_free: tuple[int, ...]):
        self.base = base
        self.npages = npages
        self.max_order = max_order
        self.free = free
        self.nr_free = nr_free

    def thaw(self) -> Buddy:
        b = Buddy.__new__(Buddy)
        b.base = self.base
        b.npages = self.npages
        b.max_order = self.max_order
        b.free = [thaw_bytearray(ch) for ch in self.free]
        b.nr_free = list(self.nr_free)
        b.low = [0] * (self.max_order + 1)
        return b

    def to_plain(self, joined: bool = False) -> dict[str, Any]:
        return {"base": self.base, "npages": self.npages, "max_order": self.max_order,
                "free": [b"".join(ch) if joined else list(ch) for ch in self.free],
                "nr_free": list(self.nr_free)}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> BuddyState:
        b = Buddy.from_plain(d)  # validates the sizes
        return b.freeze()
