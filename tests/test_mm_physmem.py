# SPDX-License-Identifier: GPL-2.0-only
"""Physical memory: the buddy allocator, aging, folio metadata and its sync
with the arch layer's FolioRegistry; the swap device; mTHP policy."""

import random

import pytest

from engine.mm.buddy import Buddy
from engine.mm.physmem import F_ANON, PHYS_BASE, PhysMem, max_page_order
from engine.mm.swap import SwapDevice
from engine.mm.thp import ThpPolicy
from engine.mm.vma import VM_HUGEPAGE, VM_NOHUGEPAGE, VMA
from engine.state.folios import FolioRegistry


def test_buddy_splits_and_merges_back():
    b = Buddy(0x80000, 1 << 12, 10)
    assert b.free_pages() == 4096 and b.nr_free[10] == 4
    p = b.alloc(0)
    assert p == 0x80000
    # expand(): one free block of every order below 10 is left behind
    assert b.nr_free[:10] == [1] * 10 and b.nr_free[10] == 3
    q = b.alloc(4)
    assert q == 0x80010 and q % 16 == 0
    b.free_block(p, 0)
    b.free_block(q, 4)
    assert b.nr_free == [0] * 10 + [4]


def test_buddy_exhaustion_and_take():
    b = Buddy(0, 1 << 10, 10)
    assert b.take(5)
    assert not b.take(5)
    assert b.alloc(10) == -1  # the only max-order block is split now
    assert b.alloc(9) == 512
    assert not b.is_free(5) and b.is_free(4)


def test_aging_fragments_high_orders_reproducibly():
    fresh = Buddy(0, 1 << 16, 10)
    aged = Buddy(0, 1 << 16, 10)
    pinned = aged.age(0.02, random.Random(3))
    assert len(pinned) == round(0.02 * (1 << 16))
    assert aged.largest_free_order() < fresh.largest_free_order() == 10
    again = Buddy(0, 1 << 16, 10)
    assert again.age(0.02, random.Random(3)) == pinned


@pytest.mark.parametrize("page_shift,pmd_order,expected", [(12, 9, 10), (14, 11, 11), (16, 13, 13)])
def test_max_page_order(page_shift, pmd_order, expected):
    assert max_page_order(page_shift, pmd_order) == expected


def test_large_folios_stay_in_sync_with_the_registry():
    reg = FolioRegistry()
    pm = PhysMem(12, 9, 64 << 20, reg)
    assert pm.base == PHYS_BASE >> 12
    h = pm.alloc_folio(4, F_ANON)
    assert reg.folio_of(h + 7) == (h, 16)
    assert pm.ref[h - pm.base] == 1
    heads = pm.split_meta(h, 2)
    assert heads == [h, h + 4, h + 8, h + 12]
    assert reg.folio_of(h + 7) == (h + 4, 4)
    for x in heads:
        pm.ref[x - pm.base] = 1
        pm.free_folio(x)
    assert reg.folio_of(h + 7) == (h + 7, 1) and len(reg) == 0


def test_zero_page_is_reserved_and_huge_zero_is_lazy():
    pm = PhysMem(12, 9, 64 << 20, FolioRegistry())
    assert pm.zero_pfn == pm.base and pm.ref[0] == 1
    assert pm.huge_zero_pfn == -1
    hz = pm.get_huge_zero_pfn()
    assert hz % 512 == 0 and pm.get_huge_zero_pfn() == hz
    assert pm.registry.folio_of(hz + 3) == (hz, 512)


def test_physmem_plain_round_trip():
    reg = FolioRegistry()
    pm = PhysMem(12, 9, 32 << 20, reg, aged=0.01, rng=random.Random(1))
    pm.alloc_folio(4, F_ANON)
    reg2 = FolioRegistry.from_plain(reg.to_plain())
    pm2 = PhysMem.from_plain(pm.to_plain(), reg2)
    assert pm2.to_plain() == pm.to_plain()


def test_swap_slots_are_contiguous_aligned_and_slot0_is_reserved():
    sd = SwapDevice(256)
    assert sd.alloc(0) == 1  # slot 0 holds the header
    s4 = sd.alloc(4)
    assert s4 % 16 == 0 and s4 == 16
    sd.dup(s4, 16)
    sd.put(s4, 16)
    assert sd.used[s4] == 0 and sd.alloc(4) == 16


def test_thp_policy_masks_follow_sysfs():
    t = ThpPolicy(12, 9)
    assert t.sizes()[0] == "16K" and t.sizes()[-1] == "2M"
    v = VMA("a", 0, 4 << 20, 3, 0, 0)
    assert t.allowable_orders(v, (1 << 10) - 1) == 0  # top-level madvise, PMD inherits
    v.flags |= VM_HUGEPAGE
    assert t.allowable_orders(v, (1 << 10) - 1) == 1 << 9
    t.set("64K", "always")
    v.flags &= ~VM_HUGEPAGE
    assert t.allowable_orders(v, (1 << 9) - 1) == 1 << 4
    v.flags |= VM_NOHUGEPAGE
    assert t.allowable_orders(v, (1 << 10) - 1) == 0
    with pytest.raises(ValueError, match="no mTHP size"):
        t.set("48K", "always")
    with pytest.raises(ValueError, match="must be one of"):
        t.set("64K", "sometimes")


def test_suitable_orders_need_an_aligned_range_inside_the_vma():
    t = ThpPolicy(12, 9)
    v = VMA("a", 0x10000, 0x30000, 3, 0, 0x10)
    orders = (1 << 4) | (1 << 5)
    assert t.suitable_orders(v, 0x12000, orders) == 1 << 4  # 128K would start below the VMA
    # include/linux/huge_mm.h thp_vma_suitable_order(): "Don't have to check pgoff for
    # anonymous vma" -- an anon VMA mremap()ed to an address its pgoff is not congruent
    # with still gets 64K; a file VMA with that offset does not
    moved = VMA("a", 0x11000, 0x31000, 3, 0, 0x10)
    assert t.suitable_orders(moved, 0x20000, orders) == 1 << 4
    moved_file = VMA("a", 0x11000, 0x31000, 3, 0, 0x10, file=1)
    assert t.suitable_orders(moved_file, 0x20000, orders) == 0
