# SPDX-License-Identifier: GPL-2.0-only
"""Sparse page tables: one compact ``array('Q')`` per PTE table.

A PTE table covers one PMD-sized region (PTRS_PER_PTE entries). Upper levels
are modelled as a dict keyed by the PMD index, which is enough to walk and to
hold PMD leaf (block) entries for PMD-mapped THP. No Python object exists per
PTE: 4 million PTEs cost 32 MiB.

Checkpoints are copy-on-write at table granularity: :meth:`snapshot` shares
every table with the snapshot and bumps an epoch; the first write access to a
table afterwards (through :meth:`locate` / :meth:`table`) copies it. The same
epochs make :meth:`digest` incremental: only tables copied since the last
freeze are re-hashed, and table hashes are combined with XOR so the whole
digest costs O(tables changed).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from hashlib import blake2b
from typing import Any

from engine.granule import Granule

_H = 16  # digest bytes


def _table_hash(key: int, t: array[int]) -> int:
    h = blake2b(key.to_bytes(8, "little"), digest_size=_H)
    h.update(t.tobytes())
    return int.from_bytes(h.digest(), "little")


class PageTableSnapshot:
    __slots__ = ("tables", "pmd_leaves", "hashes", "xor")

    def __init__(self, tables: dict[int, array[int]], pmd_leaves: dict[int, int], hashes: dict[int, int],
                 xor: int):
        self.tables = tables
        self.pmd_leaves = pmd_leaves
        self.hashes = hashes
        self.xor = xor


class PageTable:
    __slots__ = ("g", "tables", "pmd_leaves", "_shift", "_page_shift", "_idx_mask", "_empty",
                 "_epoch", "_owned", "_hashes", "_xor")

    def __init__(self, g: Granule):
        self.g = g
        self.tables: dict[int, array[int]] = {}
        self.pmd_leaves: dict[int, int] = {}
        self._shift = g.pmd_shift
        self._page_shift = g.page_shift
        self._idx_mask = g.ptrs_per_pte - 1
        self._empty = bytes(8 * g.ptrs_per_pte)
        self._epoch = 0
        self._owned: dict[int, int] = {}  # key -> epoch in which this table was copied/created
        self._hashes: dict[int, int] = {}  # key -> hash, valid for tables not written since
        self._xor = 0  # XOR of the valid hashes

    # --- copy on write -----------------------------------------------------------------
    def _writable(self, key: int, t: array[int]) -> array[int]:
        if self._owned.get(key) != self._epoch:
            t = array("Q", t)
            self.tables[key] = t
            self._owned[key] = self._epoch
        h = self._hashes.pop(key, None)
        if h is not None:
            self._xor ^= h
        return t

    def freeze(self) -> None:
        """Every table becomes shared: the next write copies it first."""
        self._epoch += 1

    # --- locating entries -----------------------------------------------------------
    def table(self, addr: int, create: bool = True) -> array[int] | None:
        """The PTE table covering addr, writable (copied if shared with a snapshot)."""
        key = addr >> self._shift
        t = self.tables.get(key)
        if t is None:
            if not create:
                return None
            if key in self.pmd_leaves:
                raise ValueError(f"{addr:#x} is mapped by a PMD leaf; split it first")
            t = array("Q", self._empty)
            self.tables[key] = t
            self._owned[key] = self._epoch
            return t
        if self._owned.get(key) != self._epoch:
            t = self._writable(key, t)
        return t

    def index(self, addr: int) -> int:
        return (addr >> self._page_shift) & self._idx_mask

    def locate(self, addr: int) -> tuple[array[int], int]:
        """(writable table, index) for addr; creates the table if needed."""
        key = addr >> self._shift
        t = self.tables.get(key)
        # A hash is only ever cached for a frozen table, so the epoch test is enough.
        if t is None or self._owned.get(key) != self._epoch:
            t = self.table(addr)
        return t, (addr >> self._page_shift) & self._idx_mask  # type: ignore[return-value]  # table() creates

    def get(self, addr: int) -> int:
        t = self.tables.get(addr >> self._shift)
        if t is None:
            return 0
        return t[(addr >> self._page_shift) & self._idx_mask]

    def set(self, addr: int, value: int) -> None:
        t, i = self.locate(addr)
        t[i] = value

    # --- PMD leaves -------------------------------------------------------------------
    def get_pmd(self, addr: int) -> int:
        return self.pmd_leaves.get(addr >> self._shift, 0)

    def set_pmd(self, addr: int, value: int) -> None:
        key = addr >> self._shift
        if value:
            if key in self.tables and any(self.tables[key]):
                raise ValueError(f"{addr:#x}: PTE table still populated")
            self._drop(key)
            self.pmd_leaves[key] = value
        else:
            self.pmd_leaves.pop(key, None)

    def _drop(self, key: int) -> None:
        self.tables.pop(key, None)
        self._owned.pop(key, None)
        h = self._hashes.pop(key, None)
        if h is not None:
            self._xor ^= h

    def drop_table(self, key: int) -> None:
        """Remove the PTE table with this PMD index (freed, replaced by a PMD
        leaf, or withdrawn); a snapshot that shares it keeps its copy."""
        self._drop(key)

    def move_table(self, old_key: int, new_key: int) -> None:
        """Move a whole PTE table to another PMD index (move_normal_pmd)."""
        t = self.tables[old_key]
        self._drop(old_key)
        self._drop(new_key)
        self.tables[new_key] = t  # not owned: the next write copies it, snapshots stay intact

    def free_table(self, addr: int) -> None:
        """Drop an empty PTE table (like free_pte_range / reclaim_pt)."""
        key = addr >> self._shift
        t = self.tables.get(key)
        if t is not None and not any(t):
            self._drop(key)

    # --- iteration ------------------------------------------------------------------
    def iter_present(self, start: int = 0, end: int = 1 << 64) -> Iterator[tuple[int, int]]:
        """(va, raw) for every non-zero PTE in [start, end), ascending: present
        entries and swap/migration entries alike (use the layout to tell them apart)."""
        ps = self._page_shift
        for key in sorted(self.tables):
            base = key << self._shift
            if base + self.g.pmd_size <= start or base >= end:
                continue
            t = self.tables[key]
            for i, v in enumerate(t):
                if v:
                    va = base + (i << ps)
                    if start <= va < end:
                        yield va, v

    def nr_tables(self) -> int:
        return len(self.tables)

    # --- checkpoints --------------------------------------------------------------------
    def snapshot(self) -> PageTableSnapshot:
        """O(number of tables): shares every table with the snapshot."""
        self.freeze()
        return PageTableSnapshot(dict(self.tables), dict(self.pmd_leaves), dict(self._hashes), self._xor)

    def restore(self, snap: PageTableSnapshot) -> None:
        self.freeze()
        self.tables = dict(snap.tables)
        self.pmd_leaves = dict(snap.pmd_leaves)
        self._owned = {}
        self._hashes = dict(snap.hashes)
        self._xor = snap.xor

    def cow_copy(self) -> PageTable:
        """An independent copy in O(number of tables): both share every table
        and copy one before writing it (as after a snapshot)."""
        self.freeze()
        other = PageTable(self.g)
        other.tables = dict(self.tables)
        other.pmd_leaves = dict(self.pmd_leaves)
        other._hashes = dict(self._hashes)
        other._xor = self._xor
        return other

    def clone(self) -> PageTable:
        """An independent deep copy."""
        other = PageTable(self.g)
        other.tables = {k: array("Q", t) for k, t in self.tables.items()}
        other.pmd_leaves = dict(self.pmd_leaves)
        return other

    def digest(self) -> bytes:
        """Hash of every table and PMD leaf; incremental over unchanged tables."""
        for key, t in self.tables.items():
            if key not in self._hashes:
                h = _table_hash(key, t)
                self._hashes[key] = h
                self._xor ^= h
        # a table hash is only valid until the table is written again: force a
        # copy-on-write (which drops the hash) on the next write access
        self.freeze()
        d = blake2b(self._xor.to_bytes(_H, "little"), digest_size=_H)
        for key in sorted(self.pmd_leaves):
            d.update(key.to_bytes(8, "little") + self.pmd_leaves[key].to_bytes(8, "little"))
        return d.digest()

    def digest_items(self) -> Iterator[tuple[int, bytes]]:
        for key in sorted(self.tables):
            t = self.tables[key]
            if any(t):
                yield key, t.tobytes()

    def to_plain(self) -> dict[str, Any]:
        """msgpack-able form: non-empty tables as packed little-endian bytes."""
        return {"tables": [[k, t.tobytes()] for k, t in sorted(self.tables.items()) if any(t)],
                "pmd": [[k, v] for k, v in sorted(self.pmd_leaves.items())]}

    @classmethod
    def from_plain(cls, g: Granule, plain: dict[str, Any]) -> PageTable:
        pt = cls(g)
        size = 8 * g.ptrs_per_pte
        for k, b in plain.get("tables", []):
            if not isinstance(k, int) or not isinstance(b, bytes) or len(b) != size:
                raise ValueError("malformed page table in snapshot")
            t = array("Q")
            t.frombytes(b)
            pt.tables[k] = t
        for k, v in plain.get("pmd", []):
            if not isinstance(k, int) or not isinstance(v, int):
                raise ValueError("malformed PMD entry in snapshot")
            pt.pmd_leaves[k] = v
        return pt
