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

Since v6.16 ("mm/readahead: Store folio order in struct file_ra_state", the
``ra_order_state`` profile row) the order lives in file_ra_state: read-around
and synchronous readahead read order-0 folios, each asynchronous round adds
two and trims the window to that order's alignment, an executable mapping
reads exec_folio_order() (64K on arm64) folios, and a read(2) follows
filemap_get_pages(). Those profiles run the ``*_v616`` functions below, which
follow Debian's linux-source-7.3 line by line; the others the older code.

filemap_fault_retries: a fault that reads the page in, or that starts the next
asynchronous window, drops the mmap lock for the I/O
(maybe_unlock_mmap_for_io()) and returns VM_FAULT_RETRY; the fault is then
taken again with FAULT_FLAG_TRIED, when a read fault's fault-around maps the
folios now cached around it (all but PG_readahead ones). Every profile does
this (filemap_fault() has since v2.6).
"""

from __future__ import annotations

from engine.mm.base import MmContext
from engine.mm.pagecache import File
from engine.mm.physmem import F_LRU, F_PAGECACHE, F_SWAPBACKED, F_UPTODATE
from engine.mm.rmap import folio_put_refs
from engine.mm.vma import VM_EXEC, VM_HUGEPAGE, VMA

MMAP_LOTSAMISS = 100
#: what the ``read`` verb's read(2) calls ask for at a time (the crosscheck's
#: guest reads with a 64 KiB buffer, crosscheck/runtime.c do_read())
READ_CHUNK = 64 << 10
SZ_2M = 2 << 20
#: what filemap_get_folio() returns for VM_FAULT_RETRY (filemap_fault_retries): after
#: reading the page in (a major fault), or after starting asynchronous readahead
RETRY_MAJOR = -2
RETRY_MINOR = -3
SZ_64K = 64 << 10


def _ilog2(x: int) -> int:
    return x.bit_length() - 1


def max_pagecache_order(ctx: MmContext) -> int:
    # min(MAX_XAS_ORDER = 2 * XA_CHUNK_SHIFT - 1 = 11, PREFERRED = HPAGE_PMD_ORDER)
    return min(11, ctx.pmd_order)


# --- folio insertion ---------------------------------------------------------------
def filemap_add_folio(ctx: MmContext, f: File, index: int, order: int, readahead_mark: bool) -> int:
    """Allocate and insert a folio caching [index, index + 2^order); -1 if
    the allocation fails or part of the range is already cached."""
    n = 1 << order
    if index + n > f.npages or any(f.cache[index:index + n]):
        return -1
    flags = F_PAGECACHE | F_UPTODATE | F_LRU | (F_SWAPBACKED if f.shmem else 0)
    head = ctx.pm.alloc_folio(order, flags)
    if head < 0:
        return -1
    pm = ctx.pm
    i = head - pm.base
    pm.mapping[i] = f.fid
    pm.index[i] = index
    pm.ref[i] = n  # the page cache holds one reference per page
    for k in range(index, index + n):
        f.cache[k] = head + 1
    if readahead_mark:
        f.readahead[index] = None
    ctx.mm_event("pagecache_add", index, order)
    ctx.cost("mm_folio", index, 1)
    return head


def filemap_remove_folio(ctx: MmContext, f: File, head: int) -> None:
    """__filemap_remove_folio(): drop the cache's references."""
    pm = ctx.pm
    i = head - pm.base
    index = pm.index[i]
    n = 1 << ctx.arch.folios.order_of(head)
    for k in range(index, index + n):
        f.cache[k] = 0
    f.readahead.pop(index, None)
    ctx.mm_event("pagecache_remove", index, n)
    folio_put_refs(ctx, head, n)


# --- readahead --------------------------------------------------------------------
def page_cache_ra_order(ctx: MmContext, f: File, new_order: int) -> None:
    start, size, async_size = f.ra[:3]
    index = start
    limit = min(f.npages - 1, index + size - 1)
    mark = index + size - async_size
    maxo = max_pagecache_order(ctx)
    if new_order < maxo:
        new_order += 2
    new_order = min(maxo, new_order, _ilog2(max(size, 1)))
    ctx.log.call("page_cache_ra_order", (f.name, start, size, new_order))
    failed = False
    if size >= 4 and not f.shmem:
        while index <= limit:
            order = new_order
            if index & ((1 << order) - 1):
                order = (index & -index).bit_length() - 1  # __ffs(index)
            while order > 0 and index + (1 << order) - 1 > limit:
                order -= 1
            # -EEXIST (already cached) or -ENOMEM both fall back to order 0
            if filemap_add_folio(ctx, f, index, order, 0 <= mark - index < (1 << order)) < 0:
                failed = True
                break
            index += 1 << order
    else:
        failed = True
    if failed:
        # do_page_cache_ra(): order-0 pages for what is left of the window
        while index <= limit:
            if not f.cache[index] and filemap_add_folio(ctx, f, index, 0, index == mark) < 0:
                break
            index += 1
    ctx.log.ret("page_cache_ra_order", None)


def _next_ra_size(ctx: MmContext, cur: int) -> int:
    mx = ctx.pc.ra_pages
    if cur < mx // 16:
        return 4 * cur
    if cur <= mx // 2:
        return 2 * cur
    return mx


def do_sync_mmap_readahead(ctx: MmContext, f: File, vma: VMA, index: int) -> None:
    if ctx.profile.ra_order_state:
        do_sync_mmap_readahead_v616(ctx, f, vma, index)
        return
    ra_pages = ctx.pc.ra_pages
    if (vma.flags & VM_HUGEPAGE and ctx.thp.top != "never"
            and ctx.pmd_order <= max_pagecache_order(ctx)):
        n = 1 << ctx.pmd_order
        f.ra[:3] = [index & ~(n - 1), n, n // 2]
        page_cache_ra_order(ctx, f, ctx.pmd_order)
        return
    f.mmap_miss += 1
    if f.mmap_miss > MMAP_LOTSAMISS or ra_pages <= 1:
        return
    f.ra[:3] = [max(0, index - ra_pages // 2), ra_pages, ra_pages // 4]
    page_cache_ra_order(ctx, f, 0)


def do_async_mmap_readahead(ctx: MmContext, f: File, head: int) -> None:
    pm = ctx.pm
    index = pm.index[head - pm.base]
    f.readahead.pop(index, None)
    if f.mmap_miss > 0:
        f.mmap_miss -= 1
    start, size, async_size = f.ra[:3]
    order = ctx.arch.folios.order_of(head)
    expected = -(-(start + size - async_size) // (1 << order)) * (1 << order)
    if index == expected or index == start + size:
        start += size
        size = _next_ra_size(ctx, size)
    else:
        # a marked folio without matching readahead state (interleaved
        # access): read on from the next page not cached yet
        mx = ctx.pc.ra_pages
        nxt = index + 1
        while nxt < f.npages and nxt - index <= mx and f.cache[nxt]:
            nxt += 1
        if nxt - index > mx:
            return
        size = _next_ra_size(ctx, nxt - index + 1)
        start = nxt
    if start >= f.npages:
        return
    f.ra[:3] = [start, size, size]
    page_cache_ra_order(ctx, f, order)


# --- lookups used by the fault paths ---------------------------------------------------
def filemap_get_folio(ctx: MmContext, f: File, vma: VMA, index: int) -> int:
    """filemap_fault(): the folio caching index, reading it in if needed;
    RETRY_MAJOR or RETRY_MINOR when the fault must be retried (see filemap_fault_retries)."""
    if f.shmem:
        # shmem_fault() -> shmem_get_folio(): allocate (order-0: shmem mTHP
        # sizes default to never); it never drops the lock to read
        head = f.lookup(index)
        return head if head >= 0 else filemap_add_folio(ctx, f, index, 0, False)
    head = f.lookup(index)
    if head >= 0:
        if ctx.profile.ra_order_state:
            return _filemap_fault_hit_v616(ctx, f, vma, head, index)
        pm = ctx.pm
        if pm.index[head - pm.base] in f.readahead and not ctx.fault_tried:
            do_async_mmap_readahead(ctx, f, head)
            return RETRY_MINOR
        return head
    do_sync_mmap_readahead(ctx, f, vma, index)  # chooses its profile's version
    head = f.lookup(index)
    if head < 0:
        head = filemap_add_folio(ctx, f, index, 0, False)
    return head if head < 0 or ctx.fault_tried else RETRY_MAJOR


def file_read(ctx: MmContext, f: File, first: int, last: int) -> int:
    """read(2) of pages [first, last] (filemap_get_pages): a missing page
    starts synchronous readahead (ondemand_readahead), a folio marked
    PG_readahead the next asynchronous window."""
    if ctx.profile.ra_order_state:
        return file_read_v616(ctx, f, first, last)
    index = first
    reads = 0
    pm = ctx.pm
    while index <= last:
        head = f.lookup(index)
        if head < 0:
            req = last - index + 1
            mx = ctx.pc.ra_pages
            size = 1 << max(0, (req - 1).bit_length())  # get_init_ra_size()
            size = size * 4 if size <= mx // 32 else size * 2 if size <= mx // 4 else mx
            f.ra[:3] = [index, size, size - req if size > req else size]
            page_cache_ra_order(ctx, f, 0)
            reads += 1
            head = f.lookup(index)
            if head < 0:
                break
        if pm.index[head - pm.base] in f.readahead:
            do_async_mmap_readahead(ctx, f, head)
            reads += 1
        index = pm.index[head - pm.base] + (1 << ctx.arch.folios.order_of(head))
    return reads


# --- since v6.16: the order in file_ra_state (mm/readahead.c, mm/filemap.c of 7.3) ---------
def page_cache_ra_order_v616(ctx: MmContext, f: File, ra: list[int]) -> None:
    """page_cache_ra_order(): read ra = [start, size, async_size, order]
    in folios of ra's order, aligned down where the index needs it, no
    marker when the window reaches EOF; what it cannot add falls back to
    order-0 pages (do_page_cache_ra())."""
    start, size, async_size, order = ra[:4]
    index = start
    limit = f.npages - 1
    if limit > index + size - 1:
        limit = index + size - 1
        mark = index + size - async_size
    else:
        mark = -1  # ULONG_MAX: "we've reached the end, so don't set a readahead marker"
    new_order = min(max_pagecache_order(ctx), order, _ilog2(max(size, 1)))
    ra[3] = new_order
    ctx.log.call("page_cache_ra_order", (f.name, start, size, new_order))
    err = f.shmem  # !mapping_large_folio_support(): ra->order = 0, fallback
    if err:
        ra[3] = 0
    while not err and index <= limit:
        o = new_order
        if index & ((1 << o) - 1):
            o = (index & -index).bit_length() - 1  # __ffs(index)
        while o > 0 and index + (1 << o) - 1 > limit:
            o -= 1
        # ra_alloc_folio(): the marker goes on the folio holding round_down(mark, order)
        marked = mark >= 0 and index == mark & ~((1 << o) - 1)
        if filemap_add_folio(ctx, f, index, o, marked) < 0:
            err = True
            break
        index += 1 << o
    if err and size > index - start:
        do_page_cache_ra(ctx, f, index, size - (index - start), async_size)
    ctx.log.ret("page_cache_ra_order", None)


def do_page_cache_ra(ctx: MmContext, f: File, index: int, nr_to_read: int, lookahead: int) -> None:
    """do_page_cache_ra() + page_cache_ra_unbounded(): order-0 pages,
    skipping what is cached, stopping at EOF and at an allocation failure."""
    if f.npages == 0 or index > f.npages - 1:
        return
    end_index = f.npages - 1
    if nr_to_read > end_index - index:
        nr_to_read = end_index - index + 1
        lookahead = 0
    mark = nr_to_read - lookahead if lookahead <= nr_to_read else -1
    for i in range(nr_to_read):
        if f.cache[index + i]:
            continue
        if filemap_add_folio(ctx, f, index + i, 0, i == mark) < 0:
            break  # -ENOMEM (nothing else is cached here: checked above)


def _ra_fresh(ctx: MmContext) -> list[int]:
    """file_ra_state_init() of a newly opened file: start, size, async_size,
    order, prev_pos (-1)."""
    return [0, 0, 0, 0, -1]


def _get_init_ra_size(ctx: MmContext, size: int, mx: int) -> int:
    newsize = 1 << max(0, (size - 1).bit_length())  # roundup_pow_of_two()
    if newsize <= mx // 32:
        return newsize * 4
    if newsize <= mx // 4:
        return newsize * 2
    return mx


def page_cache_sync_ra_v616(ctx: MmContext, f: File, ra: list[int], index: int, req_count: int) -> None:
    """page_cache_sync_ra(): a start of file, a sequential miss or an
    oversized read opens a window of order 0; a cached run behind the miss
    sizes it; a lone small read reads just what is asked."""
    mx = ctx.pc.ra_pages  # ractl_max_pages(): bdi->io_pages is not modelled (reads fit ra_pages)
    if mx == 0:
        do_page_cache_ra(ctx, f, index, 1, 0)  # force_page_cache_ra(ractl, 1)
        return
    prev_index = ra[4] >> ctx.pshift if ra[4] >= 0 else -2  # prev_pos -1: never "sequential"
    if not index or req_count > mx or 0 <= index - prev_index <= 1:
        size = _get_init_ra_size(ctx, req_count, mx)
        ra[:3] = [index, size, size - req_count if size > req_count else size >> 1]
    else:
        miss = index - 1  # page_cache_prev_miss(index - 1, max_pages)
        while miss >= 0 and index - 1 - miss < mx and f.cache[miss]:
            miss -= 1
        contig_count = index - miss - 1
        if contig_count <= req_count:
            do_page_cache_ra(ctx, f, index, req_count, 0)
            return
        if miss < 0:  # cached from the beginning: ULONG_MAX
            contig_count *= 2
        ra[:3] = [index, min(contig_count + req_count, mx), 1]
    ra[3] = 0
    page_cache_ra_order_v616(ctx, f, ra)


def page_cache_async_ra_v616(ctx: MmContext, f: File, ra: list[int], head: int, index: int,
                             req_count: int) -> None:
    """page_cache_async_ra(): hitting a PG_readahead folio at ``index``
    pushes the window on (order + 2, its end aligned to that order)."""
    mx = ctx.pc.ra_pages
    if mx == 0:
        return
    pm = ctx.pm
    f.readahead.pop(pm.index[head - pm.base], None)  # folio_clear_readahead()
    nr = 1 << ctx.arch.folios.order_of(head)
    start, size, async_size = ra[0], ra[1], ra[2]
    expected = (start + size - async_size) & ~(nr - 1)
    if index == expected:
        start += size
        size = max(size, _next_ra_size(ctx, size))
    else:
        nxt = index + 1  # page_cache_next_miss(index + 1, max_pages)
        while nxt < index + 1 + mx and nxt < f.npages and f.cache[nxt]:
            nxt += 1
        if nxt - index > mx:
            return
        start = nxt
        size = _next_ra_size(ctx, nxt - index + req_count)  # "old async_size" + req_count
    order = ra[3] + 2
    align = 1 << min(order, (mx & -mx).bit_length() - 1)  # ffs(max_pages) - 1
    end = start + size
    aligned_end = end & ~(align - 1)
    if aligned_end > start:
        size -= end - aligned_end
    ra[:4] = [start, size, size, order]
    page_cache_ra_order_v616(ctx, f, ra)


def do_sync_mmap_readahead_v616(ctx: MmContext, f: File, vma: VMA, index: int) -> None:
    ra = f.ra
    ra_pages = ctx.pc.ra_pages
    thp_order = -1
    if vma.flags & VM_HUGEPAGE and not f.shmem:
        # capped at 2M: "avoids memory pressure from very large forced readahead"
        thp_order = min(max_pagecache_order(ctx), _ilog2(SZ_2M >> ctx.pshift))
    if thp_order < 0 and not ra_pages:
        return
    if not vma.flags & VM_EXEC:
        f.mmap_miss = min(f.mmap_miss + 1, MMAP_LOTSAMISS * 10)
        if f.mmap_miss > MMAP_LOTSAMISS:
            return
    if thp_order >= 0:
        n = 1 << thp_order
        ra[:4] = [index & ~(n - 1), 2 * n, n, thp_order]  # two folios, unless VM_RAND_READ
    elif vma.flags & VM_EXEC:
        order = max(0, _ilog2(SZ_64K >> ctx.pshift))  # arm64 exec_folio_order()
        first = vma.pgoff
        end = vma.pgoff + ((vma.end - vma.start) >> ctx.pshift)
        start = max(index & ~((1 << order) - 1), first)
        ra_end = min(-(-(start + ra_pages) >> order) << order, end)
        ra[:4] = [start, ra_end - start, 0, order]
    else:
        ra[:4] = [max(0, index - ra_pages // 2), ra_pages, ra_pages // 4, 0]  # read-around
    page_cache_ra_order_v616(ctx, f, ra)


def _filemap_fault_hit_v616(ctx: MmContext, f: File, vma: VMA, head: int, index: int) -> int:
    """filemap_fault() finding the folio: do_async_mmap_readahead() counts
    one miss fewer and, if the folio is marked, starts the next window (and
    the fault is retried); a retried fault does neither."""
    if ctx.fault_tried:
        return head
    if not vma.flags & VM_EXEC and f.mmap_miss:
        f.mmap_miss -= 1
    pm = ctx.pm
    if pm.index[head - pm.base] in f.readahead and ctx.pc.ra_pages:
        page_cache_async_ra_v616(ctx, f, f.ra, head, index, ctx.pc.ra_pages)
        return RETRY_MINOR
    return head


def file_read_v616(ctx: MmContext, f: File, first: int, last: int) -> int:
    """open(), read(2) of pages [first, last] in READ_CHUNK calls, close():
    each call is filemap_read(), whose filemap_get_pages() takes the cached
    folios up to the first marked one, reads ahead synchronously when
    there are none and asynchronously from a marked last one. A new open
    file has its own file_ra_state (file_ra_state_init())."""
    ra = _ra_fresh(ctx)
    ps = ctx.pshift
    pm = ctx.pm
    reads = 0
    pos, end = first << ps, (last + 1) << ps
    while pos < end:
        count = min(READ_CHUNK, end - pos)
        call_end = pos + count
        while pos < call_end:  # filemap_read()
            index = pos >> ps
            last_index = -(-call_end >> ps)
            batch = _read_batch(ctx, f, index, last_index - 1)
            if not batch:
                page_cache_sync_ra_v616(ctx, f, ra, index, last_index - index)
                reads += 1
                batch = _read_batch(ctx, f, index, last_index - 1)
            if not batch:  # filemap_create_folio()
                head = filemap_add_folio(ctx, f, index, 0, False)
                if head < 0:
                    return reads
                batch = [head]
            tail = batch[-1]
            tail_index = pm.index[tail - pm.base]
            if tail_index in f.readahead:  # filemap_readahead()
                page_cache_async_ra_v616(ctx, f, ra, tail, tail_index, last_index - tail_index)
                reads += 1
            tail_end = (tail_index + (1 << ctx.arch.folios.order_of(tail))) << ps
            pos = min(call_end, tail_end)
        ra[4] = pos  # ra->prev_pos = last_pos
    return reads


def _read_batch(ctx: MmContext, f: File, index: int, max_index: int) -> list[int]:
    """filemap_get_read_batch(): consecutive cached folios from index up to
    max_index, ending after the first one marked PG_readahead."""
    batch: list[int] = []
    pm = ctx.pm
    while index <= max_index:
        head = f.lookup(index)
        if head < 0:
            break
        batch.append(head)
        fi = pm.index[head - pm.base]
        if fi in f.readahead:
            break
        index = fi + (1 << ctx.arch.folios.order_of(head))
    return batch
