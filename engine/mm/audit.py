# SPDX-License-Identifier: GPL-2.0-only
"""A full consistency audit of the core-mm bookkeeping against the page
tables (what CONFIG_DEBUG_VM and page_table_check would catch).

* every page's mapcount equals the PTEs mapping it, every folio's mapcount
  the PTE and PMD mappings of it;
* every folio's refcount equals its mappings plus the page-cache and
  swap-cache references;
* every mapping is reachable through the reverse map (anon_vma chain or the
  file's VMAs at the right index) -- reclaim and migration depend on it;
* every swap slot's count equals the swap entries plus the swap cache.

It walks everything, so it is for tests and debugging, not for every op of
a long run. Returns a list of problems (empty when consistent).
"""

from __future__ import annotations

from collections import Counter

from engine.mm.base import MmContext
from engine.mm.physmem import F_PAGECACHE, F_RESERVED, F_SWAPCACHE
from engine.mm.swap import SWP_TYPE
from engine.mm.swapcache import swap_cache_lookup
from engine.pte import PTE_SPECIAL


def audit(k: MmContext) -> list[str]:
    pm = k.pm
    lay = k.layout
    folios = k.arch.folios
    page_maps: Counter[int] = Counter()
    folio_maps: Counter[int] = Counter()
    swap_refs: Counter[int] = Counter()
    problems: list[str] = []
    reachable: dict[int, set[tuple[int, int, int]]] = {}  # head -> (pid, addr, pfn) of every rmap site

    def rmap_sites(head: int) -> set[tuple[int, int, int]]:
        if head not in reachable:
            n = 1 << folios.order_of(head)
            sites = set()
            for p, _v, a, first, cnt in k.folio_addresses(head, n):
                for j in range(cnt):
                    sites.add((p.pid, a + j * k.ps, head + first + j))
            reachable[head] = sites
        return reachable[head]

    for p in k.procs:
        if not p.alive:
            if p.mm.pt.tables or p.mm.pt.pmd_leaves:
                problems.append(f"exited process {p.name} still has page tables")
            continue
        for key, pmd in p.mm.pt.pmd_leaves.items():
            va = key << k.g.pmd_shift
            if not lay.pte_present(pmd):
                problems.append(f"{p.name}: PMD migration entry left at {va:#x}")
                continue
            head = k.pte_pfn(pmd)
            if head == pm.huge_zero_pfn:
                continue
            folio_maps[head] += 1
            if (p.pid, va, head) not in rmap_sites(head):
                problems.append(f"{p.name}: PMD mapping of {head:#x} at {va:#x} unreachable by rmap")
        for va, pte in p.mm.pt.iter_present():
            if p.find_vma(va) is None:
                problems.append(f"{p.name}: entry {pte:#x} at {va:#x} outside any VMA")
            if not lay.pte_present(pte):
                if lay.swp_type(pte) == SWP_TYPE:
                    swap_refs[lay.swp_offset(pte)] += 1
                else:
                    problems.append(f"{p.name}: non-swap entry {pte:#x} left at {va:#x}")
                continue
            if pte & PTE_SPECIAL:
                continue
            pfn = k.pte_pfn(pte)
            head, _n = folios.folio_of(pfn)
            page_maps[pfn] += 1
            folio_maps[head] += 1
            if (p.pid, va, pfn) not in rmap_sites(head):
                problems.append(f"{p.name}: mapping of pfn {pfn:#x} at {va:#x} unreachable by rmap")
    for i in range(pm.npages):
        if pm.mapcount[i] != page_maps.get(pm.base + i, 0):
            problems.append(f"pfn {pm.base + i:#x}: mapcount {pm.mapcount[i]}, "
                            f"mapped {page_maps.get(pm.base + i, 0)} times")
    for i in range(pm.npages):
        r = pm.ref[i]
        if not r:
            continue
        head = pm.base + i
        fl = pm.flags[i]
        if fl & F_RESERVED:
            continue
        n = 1 << folios.order_of(head)
        caches = (n if fl & F_PAGECACHE else 0) + (n if fl & F_SWAPCACHE else 0)
        maps = folio_maps.get(head, 0)
        if pm.lmap[i] != maps:
            problems.append(f"folio {head:#x}: folio mapcount {pm.lmap[i]}, mapped {maps} times")
        if r != maps + caches:
            problems.append(f"folio {head:#x}: refcount {r}, expected {maps} mappings + {caches} "
                            f"cache references")
    sw = k.swap
    for slot in range(1, sw.nslots):
        expect = swap_refs.get(slot, 0)
        head = swap_cache_lookup(k, slot) if sw.cache else -1
        if head >= 0:
            expect += 1
        if sw.count[slot] != expect:
            problems.append(f"swap slot {slot}: count {sw.count[slot]}, expected {expect}")
        if bool(sw.used[slot]) != bool(sw.count[slot]):
            problems.append(f"swap slot {slot}: used {sw.used[slot]} with count {sw.count[slot]}")
    return problems
