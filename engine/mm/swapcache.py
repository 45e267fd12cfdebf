# SPDX-License-Identifier: GPL-2.0-only
"""The swap cache (mm/swap_state.c, mm/swapfile.c): folios that have swap
slots assigned while still in memory.

A folio in the swap cache holds one reference per page from the cache, and
each of its slots one swap-count reference from the cache (SWAP_HAS_CACHE);
swap PTEs hold the others. It leaves the cache once no swap PTE refers to
its slots (folio_free_swap) or when reclaim frees it after writeback.
"""

from __future__ import annotations

from engine.mm.base import MmContext
from engine.mm.physmem import F_DIRTY, F_SWAPCACHE, P_DATA
from engine.mm.rmap import folio_put_refs
from engine.mm.swap import SLOT_DATA, SLOT_USED


def swap_cache_lookup(ctx: MmContext, slot: int) -> int:
    """swap_cache_get_folio(): the cached folio owning slot, or -1."""
    cache = ctx.swap.cache
    order_of = ctx.arch.folios.order_of
    for order in range(ctx.pmd_order + 1):
        head = cache.get(slot & ~((1 << order) - 1), -1)
        if head >= 0 and order_of(head) == order:
            return head
    return -1


def add_to_swap_cache(ctx: MmContext, head: int, slot: int, nr: int) -> None:
    pm = ctx.pm
    ctx.swap.cache[slot] = head
    ctx.swap.slot_of[head] = slot
    pm.flags[head - pm.base] |= F_SWAPCACHE
    pm.ref[head - pm.base] += nr
    ctx.swap.dup(slot, nr)  # SWAP_HAS_CACHE
    ctx.mm_event("swapcache_add", slot, nr)


def swap_unreferenced(ctx: MmContext, head: int) -> bool:
    """Only the swap cache itself still refers to the folio's slots."""
    slot = ctx.swap.slot_of.get(head, -1)
    if slot < 0:
        return False
    n = 1 << ctx.arch.folios.order_of(head)
    c = ctx.swap.count
    return all(c[s] == 1 for s in range(slot, slot + n))


def folio_free_swap(ctx: MmContext, head: int) -> bool:
    """folio_free_swap(): leave the swap cache if no swap entry refers to
    the folio. The memory copy becomes the only one, so it is dirty."""
    if not swap_unreferenced(ctx, head):
        return False
    ctx.pm.flags[head - ctx.pm.base] |= F_DIRTY
    delete_from_swap_cache(ctx, head)
    return True


def swap_read_data(ctx: MmContext, head: int, slot: int, nr: int) -> None:
    """swap_read_folio(): the pages get what their slots hold (SLOT_DATA)."""
    used = ctx.swap.used
    fl = ctx.pm.flags
    i = head - ctx.pm.base
    for k in range(nr):
        if used[slot + k] & SLOT_DATA:
            fl[i + k] |= P_DATA


def delete_from_swap_cache(ctx: MmContext, head: int) -> None:
    pm = ctx.pm
    slot = ctx.swap.slot_of.pop(head)
    n = 1 << ctx.arch.folios.order_of(head)
    # the slots keep what the pages held when the folio leaves memory (its
    # writeback happened before; a slot being freed just below drops it)
    used = ctx.swap.used
    i = head - pm.base
    for k in range(n):
        if used[slot + k]:
            used[slot + k] = SLOT_USED | (SLOT_DATA if pm.flags[i + k] & P_DATA else 0)
    del ctx.swap.cache[slot]
    pm.flags[head - pm.base] &= ~F_SWAPCACHE
    ctx.swap.put(slot, n)
    ctx.mm_event("swapcache_del", slot, n)
    folio_put_refs(ctx, head, n)
