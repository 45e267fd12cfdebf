# SPDX-License-Identifier: GPL-2.0-only
"""One swap device: slot allocation, swap counts and the swap cache.

``count[slot]`` is swap_map[]: the number of swap PTEs (plus the swap cache)
referencing the slot. Since v6.10 ("mm: swap: allow storage of all mTHP
orders") a large anon folio gets 2^order contiguous, naturally aligned
slots from the cluster allocator; before that only PMD-sized folios could
be swapped whole and smaller large folios were split first.
"""

from __future__ import annotations

from array import array
from typing import Any

from engine.state.chunks import as_chunks, freeze, thaw_array, thaw_bytearray

SWP_TYPE = 0  # the one swap device is swap type 0
# swap types of migration entries: MAX_SWAPFILES + SWP_HWPOISON_NUM + {0, 1, 2}
# with 5-bit swap types and device-private, migration, hwpoison and marker
# entries configured (MAX_SWAPFILES = 32 - 3 - 3 - 1 - 1 = 24).
SWP_MIGRATION_READ = 25
SWP_MIGRATION_READ_EXCLUSIVE = 26
SWP_MIGRATION_WRITE = 27
SWAP_MAP_BAD = 0x3F  # swap_map value of a slot never handed out
# ``used[slot]``: SLOT_USED while allocated, plus SLOT_DATA once it holds a page
# that was not zero-filled (physmem.P_DATA), so a swap-in gets the contents back
SLOT_USED = 1
SLOT_DATA = 2


class SwapDevice:
    def __init__(self, nslots: int):
        nslots = max(nslots, 2)
        self.nslots = nslots
        self.count = array("H", bytes(2 * nslots))
        self.used = bytearray(nslots)
        self.cache: dict[int, int] = {}  # first slot of a swap-cache folio -> head pfn
        self.slot_of: dict[int, int] = {}  # head pfn -> first slot (folio->swap)
        self.nr_used = 0
        # Slot 0 holds the swap header and is never allocated (it would also
        # make type 0 / offset 0 an all-zero, i.e. none, PTE).
        self.count[0] = SWAP_MAP_BAD
        self.used[0] = 1
        self.nr_used = 1

    def alloc(self, order: int) -> int:
        """First free, naturally aligned run of 2^order slots, or -1."""
        n = 1 << order
        if self.nr_used + n > self.nslots:
            return -1
        used = self.used
        if n == 1:
            i = used.find(0)
            if i < 0:
                return -1
            used[i] = 1
            self.nr_used += 1
            return i
        zeros = bytes(n)
        pos = 0
        while True:
            i = used.find(zeros, pos)
            if i < 0:
                return -1
            if i % n:
                pos = (i + n - 1) // n * n
                continue
            used[i:i + n] = b"\x01" * n
            self.nr_used += n
            return i

    def dup(self, slot: int, n: int = 1) -> None:
        for s in range(slot, slot + n):
            self.count[s] += 1

    def put(self, slot: int, n: int = 1) -> None:
        """swap_free_nr(): drop references; a slot is free once nothing refers to it."""
        for s in range(slot, slot + n):
            c = self.count[s] - 1
            self.count[s] = c
            if c == 0 and self.used[s]:
                self.used[s] = 0
                self.nr_used -= 1

    def stats(self) -> dict[str, int]:
        # slot 0 (the header) is neither usable nor in use
        return {"slots": self.nslots - 1, "used": self.nr_used - 1, "swapcache": len(self.cache)}

    def clone(self) -> SwapDevice:
        other = SwapDevice.__new__(SwapDevice)
        other.nslots = self.nslots
        other.count = array("H", self.count)
        other.used = bytearray(self.used)
        other.cache = dict(self.cache)
        other.slot_of = dict(self.slot_of)
        other.nr_used = self.nr_used
        return other

    def freeze(self, prev: SwapState | None = None) -> SwapState:
        """An immutable checkpoint; chunks equal to prev's are shared with it."""
        return SwapState(self.nslots, freeze(self.count, prev.count if prev else None),
                         freeze(self.used, prev.used if prev else None), dict(self.cache),
                         dict(self.slot_of), self.nr_used)

    def to_plain(self) -> dict[str, Any]:
        return {"nslots": self.nslots, "count": self.count.tobytes(), "used": bytes(self.used),
                "cache": [[s, h] for s, h in sorted(self.cache.items())], "nr_used": self.nr_used}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> SwapDevice:
        sd = cls.__new__(cls)
        sd.nslots = int(d["nslots"])
        sd.count = thaw_array("H", as_chunks(d["count"]))
        sd.used = thaw_bytearray(as_chunks(d["used"]))
        if len(sd.count) != sd.nslots or len(sd.used) != sd.nslots:
            raise ValueError("swap map does not match the device size")
        sd.cache = {int(s): int(h) for s, h in d["cache"]}
        sd.slot_of = {h: s for s, h in sd.cache.items()}
        sd.nr_used = int(d["nr_used"])
        return sd


class SwapState:
    """A checkpoint of SwapDevice: the swap map as shared chunks."""

    __slots__ = ("nslots", "count", "used", "cache", "slot_of", "nr_used")

    def __init__(self, nslots: int, count: tuple[bytes, ...], used: tuple[bytes, ...],
                 cache: dict[int, int], slot_of: dict[int, int], nr_used: int):
        self.nslots = nslots
        self.count = count
        self.used = used
        self.cache = cache
        self.slot_of = slot_of
        self.nr_used = nr_used

    def thaw(self) -> SwapDevice:
        sd = SwapDevice.__new__(SwapDevice)
        sd.nslots = self.nslots
        sd.count = thaw_array("H", self.count)
        sd.used = thaw_bytearray(self.used)
        sd.cache = dict(self.cache)
        sd.slot_of = dict(self.slot_of)
        sd.nr_used = self.nr_used
        return sd

    def to_plain(self, joined: bool = False) -> dict[str, Any]:
        return {"nslots": self.nslots,
                "count": b"".join(self.count) if joined else list(self.count),
                "used": b"".join(self.used) if joined else list(self.used),
                "cache": [[s, h] for s, h in sorted(self.cache.items())], "nr_used": self.nr_used}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> SwapState:
        return SwapDevice.from_plain(d).freeze()
