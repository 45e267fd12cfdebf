# SPDX-License-Identifier: GPL-2.0-only
"""Transparent huge page policy, as the sysfs knobs express it.

``/sys/kernel/mm/transparent_hugepage/enabled`` is the top-level setting
(always / madvise / never); each size has
``hugepages-<size>kB/enabled`` (always / inherit / madvise / never). The
kernel's defaults: the PMD size inherits, every other size is never, and
the top level here defaults to madvise (the common distribution choice).

thp_vma_allowable_orders() and thp_vma_suitable_orders() are the two
filters the anonymous fault path applies (mm/huge_memory.c,
include/linux/huge_mm.h).
"""

from __future__ import annotations

from typing import Any

from engine.mm.vma import VM_HUGEPAGE, VM_NOHUGEPAGE, VMA

SETTINGS = ("always", "inherit", "madvise", "never")
TOP_SETTINGS = ("always", "madvise", "never")


def size_name(nbytes: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if nbytes >= 1 << shift and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return str(nbytes)


class ThpPolicy:
    def __init__(self, page_shift: int, pmd_order: int):
        self.page_shift = page_shift
        self.pmd_order = pmd_order
        self.top = "madvise"
        # anonymous mTHP exists for orders 2 .. PMD order (THP_ORDERS_ALL_ANON)
        self.per_order: dict[int, str] = {o: "never" for o in range(2, pmd_order + 1)}
        self.per_order[pmd_order] = "inherit"
        self._mask_val: tuple[int, int] | None = None  # cache, reset by every setter

    def sizes(self) -> list[str]:
        return [size_name(1 << (o + self.page_shift)) for o in sorted(self.per_order)]

    def order_of_size(self, text: str) -> int:
        for o in self.per_order:
            if size_name(1 << (o + self.page_shift)).lower() == text.strip().lower():
                return o
        raise ValueError(f"no mTHP size {text!r} with this granule (sizes: {', '.join(self.sizes())})")

    def set(self, size: str, value: str) -> None:
        if value not in SETTINGS:
            raise ValueError(f"mTHP setting must be one of {', '.join(SETTINGS)}, not {value!r}")
        self.per_order[self.order_of_size(size)] = value
        self._mask_val = None

    def set_top(self, value: str) -> None:
        if value not in TOP_SETTINGS:
            raise ValueError(f"THP setting must be one of {', '.join(TOP_SETTINGS)}, not {value!r}")
        self.top = value
        self._mask_val = None

    def _enabled(self, setting: str, hugepage: bool) -> bool:
        if setting == "inherit":
            setting = self.top
        return setting == "always" or (setting == "madvise" and hugepage)

    def _masks(self) -> tuple[int, int]:
        """(orders enabled for every VMA, orders enabled for VM_HUGEPAGE ones)."""
        if self._mask_val is None:
            plain = hp = 0
            for o, s in self.per_order.items():
                if self._enabled(s, False):
                    plain |= 1 << o
                if self._enabled(s, True):
                    hp |= 1 << o
            self._mask_val = (plain, hp)
        return self._mask_val

    def allowable_orders(self, vma: VMA, mask: int) -> int:
        """thp_vma_allowable_orders(vma, vm_flags, TVA_PAGEFAULT, mask) for
        anonymous private memory (file and shmem folios are sized by the
        page cache instead)."""
        masks = self._mask_val
        plain, hp = masks if masks is not None else self._masks()
        if not (plain | hp) & mask:
            return 0  # no order enabled at all (order-0 memory): the VMA does not matter
        if vma.flags & VM_NOHUGEPAGE or vma.file or vma.shmem or vma.shared:
            return 0
        return (hp if vma.flags & VM_HUGEPAGE else plain) & mask

    def suitable_orders(self, vma: VMA, addr: int, orders: int) -> int:
        """thp_vma_suitable_orders(): keep orders whose naturally aligned range
        around addr lies inside the VMA (and whose file/anon offset is aligned)."""
        ps = self.page_shift
        out = 0
        o = orders
        while o:
            order = o.bit_length() - 1
            o &= ~(1 << order)
            size = 1 << (order + ps)
            haddr = addr & ~(size - 1)
            # "Don't have to check pgoff for anonymous vma": a private anon VMA
            # moved by mremap() keeps its old vm_pgoff (random-1-288 on 6.12)
            if (vma.file or vma.shmem) and ((vma.start >> ps) - vma.pgoff) % (1 << order):
                continue
            if haddr >= vma.start and haddr + size <= vma.end:
                out |= 1 << order
        return out

    def summary(self) -> dict[str, str]:
        d = {"top": self.top}
        for o in sorted(self.per_order):
            d[size_name(1 << (o + self.page_shift))] = self.per_order[o]
        return d

    def clone(self) -> ThpPolicy:
        other = ThpPolicy(self.page_shift, self.pmd_order)
        other.top = self.top
        other.per_order = dict(self.per_order)
        return other

    def to_plain(self) -> dict[str, Any]:
        return {"top": self.top, "per_order": [[o, s] for o, s in sorted(self.per_order.items())]}

    def load_plain(self, d: dict[str, Any]) -> None:
        self.top = str(d["top"])
        self.per_order = {int(o): str(s) for o, s in d["per_order"]}
        self._mask_val = None
