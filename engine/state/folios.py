# SPDX-License-Identifier: GPL-2.0-only
"""Folio registry: which naturally aligned pfn range each large folio covers.

Only large folios are stored; any pfn that no registered folio covers is its
own order-0 folio (as ``Simulator.add_folio`` promises). Lookup walks the
orders that are actually registered, so it costs a handful of dict probes.
"""

from __future__ import annotations

from collections.abc import Iterator


class FolioRegistry:
    __slots__ = ("_by_head", "_orders")

    def __init__(self) -> None:
        self._by_head: dict[int, int] = {}  # head pfn -> order
        self._orders: dict[int, int] = {}  # order -> number of folios of that order

    def add(self, pfn: int, nr_pages: int) -> None:
        if nr_pages <= 0 or nr_pages & (nr_pages - 1):
            raise ValueError(f"folio size {nr_pages} is not a power of two")
        if pfn < 0 or pfn % nr_pages:
            raise ValueError(f"folio at pfn {pfn:#x} of {nr_pages} pages is not naturally aligned")
        order = nr_pages.bit_length() - 1
        head, nr = self.folio_of(pfn)
        if nr > 1:
            raise ValueError(f"folio at pfn {pfn:#x} overlaps the folio at pfn {head:#x}")
        for o in self._orders:  # smaller folios lying inside the new range
            if o < order:
                for h in range(pfn, pfn + nr_pages, 1 << o):
                    if self._by_head.get(h) == o:
                        raise ValueError(f"folio at pfn {pfn:#x} overlaps the folio at pfn {h:#x}")
        if order == 0:
            return
        self._by_head[pfn] = order
        self._orders[order] = self._orders.get(order, 0) + 1

    def insert(self, pfn: int, order: int) -> None:
        """Register a large folio the caller knows is free of overlaps (the
        page allocator hands out disjoint blocks), skipping add()'s checks."""
        self._by_head[pfn] = order
        self._orders[order] = self._orders.get(order, 0) + 1

    def order_of(self, head: int) -> int:
        """Order of the large folio headed at ``head``; 0 for anything else."""
        return self._by_head.get(head, 0)

    def remove(self, pfn: int) -> None:
        order = self._by_head.pop(pfn)
        self._orders[order] -= 1
        if not self._orders[order]:
            del self._orders[order]

    def folio_of(self, pfn: int) -> tuple[int, int]:
        """(head pfn, nr_pages) of the folio containing pfn."""
        by_head = self._by_head
        for order in self._orders:
            head = pfn & ~((1 << order) - 1)
            if by_head.get(head) == order:
                return head, 1 << order
        return pfn, 1

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for head, order in sorted(self._by_head.items()):
            yield head, 1 << order

    def __len__(self) -> int:
        return len(self._by_head)

    def to_plain(self) -> list[list[int]]:
        return [[h, o] for h, o in sorted(self._by_head.items())]

    @classmethod
    def from_plain(cls, rows: list[list[int]]) -> FolioRegistry:
        reg = cls()
        for h, o in rows:
            reg.insert(int(h), int(o))
        return reg

    def assign(self, other: FolioRegistry) -> None:
        """Become a copy of other, in place (the arch layer keeps a reference)."""
        self._by_head = dict(other._by_head)
        self._orders = dict(other._orders)

    def clone(self) -> FolioRegistry:
        other = FolioRegistry()
        other._by_head = dict(self._by_head)
        other._orders = dict(self._orders)
        return other
