# SPDX-License-Identifier: GPL-2.0-only
"""The page cache side of file faults: readahead and filemap_fault
(mm/filemap.c, mm/readahead.c).

Folio sizes come from readahead, as in the kernel: a missing page triggers
mmap read-around (``do_sync_mmap_readahead``: a window of ra_pages centred on
the fault, read with ``page_cache_ra_order(ra, 0)``, i.e. order-2 folios),
and hitting a folio marked PG_readahead starts asynchronous readahead
(``page_cache_async_ra``) whose window grows and whose folio order grows by
two each round, up to the window size and MAX_PAGECACHE_ORDER. A VM_HUGEPAGE
mapping reads PMD-sized folios. An allocation failure falls back to order-0
pages for the rest of the window (``do_page_cache_ra``). shmem (shared
anonymous memory) allocates order-0 folios on fault and never reads ahead.
"""

from __future__ import annotations

from engine.mm.pagecache import File
from engine.mm.physmem import F_LRU, F_PAGECACHE, F_SWAPBACKED, F_UPTODATE
from engine.mm.rmap import Rmap
from engine.mm.vma import VM_HUGEPAGE, VMA

MMAP_LOTSAMISS = 100


def _ilog2(x: int) -> int:
    return x.bit_length() - 1


class Filemap(Rmap):
    def max_pagecache_order(self) -> int:
        # min(MAX_XAS_ORDER = 2 * XA_CHUNK_SHIFT - 1 = 11, PREFERRED = HPAGE_PMD_ORDER)
        return min(11, self.pmd_order)

    # --- folio insertion ---------------------------------------------------------------
    def filemap_add_folio(self, f: File, index: int, order: int, readahead_mark: bool) -> int:
        """Allocate and insert a folio caching [index, index + 2^order); -1 if
        the allocation fails or part of the range is already cached."""
        n = 1 << order
        if index + n > f.npages or any(f.cache[index:index + n]):
            return -1
        flags = F_PAGECACHE | F_UPTODATE | F_LRU | (F_SWAPBACKED if f.shmem else 0)
        head = self.pm.alloc_folio(order, flags)
        if head < 0:
            return -1
        pm = self.pm
        i = head - pm.base
        pm.mapping[i] = f.fid
        pm.index[i] = index
        pm.ref[i] = n  # the page cache holds one reference per page
        for k in range(index, index + n):
            f.cache[k] = head + 1
        if readahead_mark:
            f.readahead[index] = None
        self.mm_event("pagecache_add", index, order)
        self.cost("mm_folio", index, 1)
        return head

    def filemap_remove_folio(self, f: File, head: int) -> None:
        """__filemap_remove_folio(): drop the cache's references."""
        pm = self.pm
        i = head - pm.base
        index = pm.index[i]
        n = 1 << self.arch.folios.order_of(head)
        for k in range(index, index + n):
            f.cache[k] = 0
        f.readahead.pop(index, None)
        self.mm_event("pagecache_remove", index, n)
        self.folio_put_refs(head, n)

    # --- readahead --------------------------------------------------------------------
    def page_cache_ra_order(self, f: File, new_order: int) -> None:
        start, size, async_size = f.ra
        index = start
        limit = min(f.npages - 1, index + size - 1)
        mark = index + size - async_size
        maxo = self.max_pagecache_order()
        if new_order < maxo:
            new_order += 2
        new_order = min(maxo, new_order, _ilog2(max(size, 1)))
        self.log.call("page_cache_ra_order", (f.name, start, size, new_order))
        failed = False
        if size >= 4 and not f.shmem:
            while index <= limit:
                order = new_order
                if index & ((1 << order) - 1):
                    order = (index & -index).bit_length() - 1  # __ffs(index)
                while order > 0 and index + (1 << order) - 1 > limit:
                    order -= 1
                # -EEXIST (already cached) or -ENOMEM both fall back to order 0
                if self.filemap_add_folio(f, index, order, 0 <= mark - index < (1 << order)) < 0:
                    failed = True
                    break
                index += 1 << order
        else:
            failed = True
        if failed:
            # do_page_cache_ra(): order-0 pages for what is left of the window
            while index <= limit:
                if not f.cache[index] and self.filemap_add_folio(f, index, 0, index == mark) < 0:
                    break
                index += 1
        self.log.ret("page_cache_ra_order", None)

    def _next_ra_size(self, cur: int) -> int:
        mx = self.pc.ra_pages
        if cur < mx // 16:
            return 4 * cur
        if cur <= mx // 2:
            return 2 * cur
        return mx

    def do_sync_mmap_readahead(self, f: File, vma: VMA, index: int) -> None:
        ra_pages = self.pc.ra_pages
        if (vma.flags & VM_HUGEPAGE and self.thp.top != "never"
                and self.pmd_order <= self.max_pagecache_order()):
            n = 1 << self.pmd_order
            f.ra = [index & ~(n - 1), n, n // 2]
            self.page_cache_ra_order(f, self.pmd_order)
            return
        f.mmap_miss += 1
        if f.mmap_miss > MMAP_LOTSAMISS or ra_pages <= 1:
            return
        f.ra = [max(0, index - ra_pages // 2), ra_pages, ra_pages // 4]
        self.page_cache_ra_order(f, 0)

    def do_async_mmap_readahead(self, f: File, head: int) -> None:
        pm = self.pm
        index = pm.index[head - pm.base]
        f.readahead.pop(index, None)
        if f.mmap_miss > 0:
            f.mmap_miss -= 1
        start, size, async_size = f.ra
        order = self.arch.folios.order_of(head)
        expected = -(-(start + size - async_size) // (1 << order)) * (1 << order)
        if index == expected or index == start + size:
            start += size
            size = self._next_ra_size(size)
        else:
            # a marked folio without matching readahead state (interleaved
            # access): read on from the next page not cached yet
            mx = self.pc.ra_pages
            nxt = index + 1
            while nxt < f.npages and nxt - index <= mx and f.cache[nxt]:
                nxt += 1
            if nxt - index > mx:
                return
            size = self._next_ra_size(nxt - index + 1)
            start = nxt
        if start >= f.npages:
            return
        f.ra = [start, size, size]
        self.page_cache_ra_order(f, order)

    # --- lookups used by the fault paths ---------------------------------------------------
    def filemap_get_folio(self, f: File, vma: VMA, index: int) -> int:
        """filemap_fault(): the folio caching index, reading it in if needed."""
        head = f.lookup(index)
        if head >= 0:
            pm = self.pm
            if pm.index[head - pm.base] in f.readahead:
                self.do_async_mmap_readahead(f, head)
            return head
        if f.shmem:
            # shmem_get_folio(): allocate (order-0: shmem mTHP sizes default to never)
            return self.filemap_add_folio(f, index, 0, False)
        self.do_sync_mmap_readahead(f, vma, index)
        head = f.lookup(index)
        if head < 0:
            head = self.filemap_add_folio(f, index, 0, False)
        return head

    def file_read(self, f: File, first: int, last: int) -> int:
        """read(2) of pages [first, last] (filemap_get_pages): a missing page
        starts synchronous readahead (ondemand_readahead), a folio marked
        PG_readahead the next asynchronous window."""
        index = first
        reads = 0
        pm = self.pm
        while index <= last:
            head = f.lookup(index)
            if head < 0:
                req = last - index + 1
                mx = self.pc.ra_pages
                size = 1 << max(0, (req - 1).bit_length())  # get_init_ra_size()
                size = size * 4 if size <= mx // 32 else size * 2 if size <= mx // 4 else mx
                f.ra = [index, size, size - req if size > req else size]
                self.page_cache_ra_order(f, 0)
                reads += 1
                head = f.lookup(index)
                if head < 0:
                    break
            if pm.index[head - pm.base] in f.readahead:
                self.do_async_mmap_readahead(f, head)
                reads += 1
            index = pm.index[head - pm.base] + (1 << self.arch.folios.order_of(head))
        return reads
