# SPDX-License-Identifier: GPL-2.0-only
"""TLB maintenance: arch/arm64/include/asm/tlbflush.h.

One method, :meth:`TlbFlush.flush_tlb_range`, models every form the contpte
code uses -- the v6.9 ``__flush_tlb_range[_nosync](vma, start, end, stride,
last_level, tlb_level)``, the v6.19 local helpers and the newest
``__flush_tlb_range(vma, start, end, stride, level, tlbf_t flags)`` -- since
they issue the same instructions for the same (leaf-only, sync, broadcast)
choice. Each call is one ``flush_tlb_range`` event followed by the DSBs and
TLBIs it becomes.

What differs between releases is selected by the kernel profile (see
engine.arch.profiles.FEATURE_HISTORY and docs/fidelity.md). Where a whole
function changed there is one Python function per version, tagged with its
row (engine.arch.variants) and installed under the kernel's name, less its
leading underscores, when the profile's Arch is composed (engine.arch.layer):

* tlbi (``__tlbi()`` with its ``__tlbi_user()`` copy): v6.9 repeats every
  TLBI for ARM64_WORKAROUND_REPEAT_TLBI; v7.0 (a8f78680ee6b,
  tlbi_repeat_at_sync) issues each once;
* tlbi_sync_s1ish: v6.9 is a plain DSB ISH; v7.0's ``__tlbi_sync_s1ish()``
  adds the erratum's one dummy TLBI (same row);
* flush_tlb_range_limit_excess: v6.9 turns a range of MAX_TLBI_RANGE_PAGES
  into flush_tlb_mm(); v6.10 (73301e464a72, tlb_limit) does not;
* flush_tlb_page: level hint 3 only with the tlbf_t API (tlbf_flags_api);
* arch_tlbbatch_add_pending: one address before v6.15, a range from v6.15
  (2f4ab3ac10e1, tlbbatch_range);
* local_flush_tlb_contpte: v6.19 (cb1fa2e99955, local_access_flush);
* flush_tlb_range_op (``__flush_tlb_range_op()``): until f7edb07ad7c6
  (v6.14, flush_notifier_fixed) a macro that advanced the caller's start, so
  the notifier after it saw [end, end);
* flush_tlb_range_fallback, the limit check with its flush_tlb_mm()
  fallback: before d9d8dc2bd3fb (baseline, flush_nosync_split) it returns
  early; after it __flush_tlb_range() still adds its DSB ISH; the tlbf_t
  ``__do_flush_tlb_range()`` (tlbf_flags_api) checks local flushes too and
  adds none;
* flush_tlb_range_complete, the notifier and the completing DSB: DSB ISH
  first before d9d8dc2bd3fb (flush_nosync_split), the notifier first after.

:meth:`TlbFlush._flush_range`, the body of __flush_tlb_range that calls
them, is the same in every release and reads no row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.arch.base import ArchBase, arch_call
from engine.arch.variants import variant
from engine.state.mmstruct import MMStruct

MAX_TLBI_RANGE_PAGES = 32 << 16  # __TLBI_RANGE_PAGES(31, 3)
TLBI_TTL_UNKNOWN = 0  # "no level hint" (INT_MAX in newer kernels; same effect)
USER_ASID_FLAG = 1  # KPTI: the user ASID is the kernel ASID with bit 0 set (bit 48 of the operand)
_U64 = (1 << 64) - 1


def tlbi_range_pages(num: int, scale: int) -> int:
    return (num + 1) << (5 * scale + 1)


def tlbi_range_num(pages: int, scale: int) -> int:
    return (min(pages, tlbi_range_pages(31, scale)) >> (5 * scale + 1)) - 1


class _Tlbi(Protocol):
    def __call__(self, op: str, operand: int, addr: int, pages: int, asid: int, level: int,
                 broadcast: bool, user_copy: bool = True) -> None: ...


class _FlushTlbPage(Protocol):
    def __call__(self, mm: MMStruct, addr: int, sync: bool = True, broadcast: bool = True,
                 notify: bool = True) -> None: ...


class TlbFlush(ArchBase):
    # The kernel names engine.arch.layer fills in with the profile's version
    # (declared here so callers type-check).
    tlbi: _Tlbi
    tlbi_sync_s1ish: Callable[[], None]
    flush_tlb_range_limit_excess: Callable[[int, int, int, int], bool]
    flush_tlb_page: _FlushTlbPage
    arch_tlbbatch_add_pending: Callable[[MMStruct, int, int], None]
    flush_tlb_range_op: Callable[[str, int, int, int, int, int, bool], int]
    flush_tlb_range_fallback: Callable[[MMStruct, int, int, int, int, bool, int, bool, bool, bool],
                                       bool]
    flush_tlb_range_complete: Callable[[int, int, bool, bool, bool], None]

    # --- operand encodings (__TLBI_VADDR, __TLBI_VADDR_RANGE, __tlbi_level) ---------
    def _vaddr_operand(self, va: int, asid: int, level: int) -> int:
        arg = ((va >> 12) & ((1 << 44) - 1)) | ((asid & 0xFFFF) << 48)
        if self.cpu.ttl and 1 <= level <= 3:
            ttl = (level & 3) | (self.g.tg << 2)
            arg |= ttl << 44
        return arg

    def _range_operand(self, va: int, asid: int, scale: int, num: int, level: int) -> int:
        arg = (va >> self.page_shift) & ((1 << 37) - 1)  # BADDR (no LPA2)
        arg |= (level if 1 <= level <= 3 else 0) << 37  # TTL
        arg |= (num & 0x1F) << 39
        arg |= (scale & 3) << 44
        arg |= self.g.tg << 46
        arg |= (asid & 0xFFFF) << 48
        return arg

    # --- __tlbi() and __tlbi_user() -----------------------------------------------------
    @variant("tlbi")
    def tlbi_v6_9(self, op: str, operand: int, addr: int, pages: int, asid: int, level: int,
                  broadcast: bool, user_copy: bool = True) -> None:
        """__tlbi(op, operand) and, under KPTI, its __tlbi_user() copy for the
        user ASID (user_copy=False: a plain __tlbi()), as tlbflush.h has them
        before v7.0: the ARM64_WORKAROUND_REPEAT_TLBI alternative sits inside
        __TLBI_0/__TLBI_1, so on an affected CPU every TLBI -- local or
        broadcast, kernel or user ASID -- is issued as TLBI; DSB ISH; TLBI.
        (Whether the CPU has the erratum is the CPU profile's question.)"""
        log = self.log
        repeat = self.cpu.repeat_tlbi
        log.tlbi(op, operand, addr, pages, asid, level, broadcast)
        if repeat:
            log.dsb("ish")
            log.tlbi(op, operand, addr, pages, asid, level, broadcast)
        if user_copy and self.cpu.kpti:
            uasid = asid | USER_ASID_FLAG
            uoperand = operand | (USER_ASID_FLAG << 48)
            log.tlbi(op, uoperand, addr, pages, uasid, level, broadcast)
            if repeat:
                log.dsb("ish")
                log.tlbi(op, uoperand, addr, pages, uasid, level, broadcast)
        if self.tlbi_listener is not None:
            self.tlbi_listener(op, asid, addr, pages)

    @variant("tlbi", since="tlbi_repeat_at_sync")
    def tlbi_v7_0(self, op: str, operand: int, addr: int, pages: int, asid: int, level: int,
                  broadcast: bool, user_copy: bool = True) -> None:
        """__tlbi() and its __tlbi_user() copy from v7.0 (a8f78680ee6b,
        FEATURE_HISTORY tlbi_repeat_at_sync): one TLBI each, erratum or not;
        the REPEAT_TLBI workaround moved to the completion
        (tlbi_sync_s1ish_v7_0)."""
        log = self.log
        log.tlbi(op, operand, addr, pages, asid, level, broadcast)
        if user_copy and self.cpu.kpti:
            log.tlbi(op, operand | (USER_ASID_FLAG << 48), addr, pages, asid | USER_ASID_FLAG,
                     level, broadcast)
        if self.tlbi_listener is not None:
            self.tlbi_listener(op, asid, addr, pages)

    # --- __flush_tlb_range_op() -------------------------------------------------------
    def _walk_tlbi_range(self, op: str, asid: int, start: int, pages: int, stride: int,
                         level: int, broadcast: bool) -> None:
        """The TLBIs of __flush_tlb_range_op(), the same in every release: per-VA TLBIs,
        or range TLBIs with FEAT_TLBIRANGE, from the largest scale down."""
        ps = self.page_shift
        end = start + (pages << ps)
        scale = 3
        has_range = self.cpu.tlb_range
        while start != end:
            left = (end - start) >> ps
            if not has_range or left == 1:
                self.tlbi(op, self._vaddr_operand(start, asid, level), start, stride >> ps, asid,
                          level, broadcast)
                start += stride
                continue
            num = tlbi_range_num(left, scale)
            if num >= 0:
                n = tlbi_range_pages(num, scale)
                self.tlbi("r" + op, self._range_operand(start, asid, scale, num, level), start, n,
                          asid, level, broadcast)
                start += n << ps
            scale -= 1

    @variant("flush_tlb_range_op", until="flush_notifier_fixed")
    def flush_tlb_range_op_v6_9(self, op: str, asid: int, start: int, pages: int, stride: int,
                                level: int, broadcast: bool) -> int:
        """__flush_tlb_range_op() of tlbflush.h before f7edb07ad7c6 ("fix mmu
        notifiers for range-based invalidates", v6.14-rc7, FEATURE_HISTORY
        flush_notifier_fixed): per-VA TLBIs, or range TLBIs
        with FEAT_TLBIRANGE, from the largest scale down. It was a macro that
        walked the caller's own ``start`` (and ``pages``), so when it is done
        the caller's start has reached the end of the range, and the
        mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end) after it
        was told about the empty [end, end). Returns that start."""
        self._walk_tlbi_range(op, asid, start, pages, stride, level, broadcast)
        return start + (pages << self.page_shift)

    @variant("flush_tlb_range_op", since="flush_notifier_fixed")
    def flush_tlb_range_op_v6_14(self, op: str, asid: int, start: int, pages: int, stride: int,
                                 level: int, broadcast: bool) -> int:
        """__flush_tlb_range_op() from f7edb07ad7c6 (v6.14-rc7, FEATURE_HISTORY
        flush_notifier_fixed; later an __always_inline function): the same
        TLBIs, walked with a copy of start, so the caller's start is left
        alone and the notifier after it covers [start, end). Returns start."""
        self._walk_tlbi_range(op, asid, start, pages, stride, level, broadcast)
        return start

    # --- the limit check and the completion ----------------------------------------------
    @variant("flush_tlb_range_limit_excess", until="tlb_limit")
    def flush_tlb_range_limit_excess_v6_9(self, start: int, end: int, pages: int,
                                          stride: int) -> bool:
        """v6.9's test, inline in __flush_tlb_range_nosync() (tlbflush.h; it
        became __flush_tlb_range_limit_excess() later):
        (!system_supports_tlb_range() && (end - start) >= MAX_DVM_OPS * stride)
        || pages >= MAX_TLBI_RANGE_PAGES."""
        return ((not self.cpu.tlb_range and ((end - start) & _U64) >= self.g.max_dvm_ops * stride)
                or pages >= MAX_TLBI_RANGE_PAGES)

    @variant("flush_tlb_range_limit_excess", since="tlb_limit")
    def flush_tlb_range_limit_excess_v6_10(self, start: int, end: int, pages: int,
                                           stride: int) -> bool:
        """From v6.10 (73301e464a72, FEATURE_HISTORY tlb_limit) a range op may
        cover exactly MAX_TLBI_RANGE_PAGES ('>', not '>='). Written as the
        newest __flush_tlb_range_limit_excess() (after Will Deacon's
        "simplify"); the forms in between compute the same answer."""
        if self.cpu.tlb_range:
            return pages > MAX_TLBI_RANGE_PAGES
        return pages >= (self.g.max_dvm_ops * stride) >> self.page_shift

    @variant("tlbi_sync_s1ish")
    def tlbi_sync_s1ish_v6_9(self) -> None:
        """Completion of broadcast maintenance before v7.0: the plain dsb(ish)
        each flush of tlbflush.h ends with (__tlbi_sync_s1ish() came with
        a8f78680ee6b)."""
        self.log.dsb("ish")

    @variant("tlbi_sync_s1ish", since="tlbi_repeat_at_sync")
    def tlbi_sync_s1ish_v7_0(self) -> None:
        """__tlbi_sync_s1ish() (v7.0, a8f78680ee6b, FEATURE_HISTORY
        tlbi_repeat_at_sync): DSB ISH, then on a CPU with the REPEAT_TLBI
        erratum one dummy TLBI VALE1IS of operand 0 -- a plain __tlbi(), so no
        KPTI copy -- and a second DSB ISH."""
        log = self.log
        log.dsb("ish")
        if self.cpu.repeat_tlbi:
            self.tlbi("vale1is", 0, 0, 1, 0, 0, True, user_copy=False)
            log.dsb("ish")

    # --- the flush entry points -------------------------------------------------------
    @arch_call("__flush_tlb_range")
    def flush_tlb_range(self, mm: MMStruct, start: int, end: int, stride: int, last_level: bool,
                        tlb_level: int, sync: bool = True, broadcast: bool = True,
                        notify: bool = True) -> None:
        self._flush_range(mm, start, end, stride, last_level, tlb_level, sync, broadcast,
                          notify, False)

    @variant("local_flush_tlb_contpte", since="local_access_flush")
    def local_flush_tlb_contpte(self, mm: MMStruct, addr: int) -> None:
        """local_flush_tlb_contpte() (v6.19, cb1fa2e99955): this CPU's TLB
        entries for addr's block, synchronously (DSB NSHST; TLBI VALE1 per page
        or a range op; DSB NSH)."""
        start = addr & self.cont_mask
        self.flush_tlb_range(mm, start, start + self.cont_size, self.page_size, True, 3,
                             sync=True, broadcast=False)

    # ptlab-only: no kernel before cb1fa2e99955 has local_flush_tlb_contpte(), and
    # none after it flushes the block broadcast. A profile with
    # raw_access_flags_check but not local_access_flush (what ``ptlab crosscheck
    # --features`` runs when it flips local_access_flush alone on v7.0) still runs
    # v7.0's contpte_ptep_set_access_flags(), so its call here keeps the
    # pre-v6.19 broadcast flush of the block: each row flips on its own.
    @variant("local_flush_tlb_contpte", until="local_access_flush")
    def broadcast_flush_tlb_contpte(self, mm: MMStruct, addr: int) -> None:
        start = addr & self.cont_mask
        self.flush_tlb_range(mm, start, start + self.cont_size, self.page_size, True, 3)

    # --- __flush_tlb_range() in pieces ---------------------------------------------------
    # flush_tlb_range() and _page_flush() round the range, then run the pieces
    # below in the order every release has them: the limit check (with its
    # flush_tlb_mm() fallback), DSB ST, __flush_tlb_range_op(), then the
    # notifier and the completing DSB. A release changed one piece at a time,
    # so each piece has its versions and the glue reads no row.
    def _flush_range(self, mm: MMStruct, start: int, end: int, stride: int, last_level: bool,
                     tlb_level: int, sync: bool, broadcast: bool, notify: bool,
                     single_page: bool) -> None:
        start = start & ~(stride - 1)
        end = (end + stride - 1) & ~(stride - 1)
        pages = ((end - start) & _U64) >> self.page_shift
        # The single-page helpers (__flush_tlb_page_nosync() and the local
        # ones) have no limit check; they never span enough pages for one to
        # matter.
        if self.flush_tlb_range_fallback(mm, start, end, pages, stride, last_level, tlb_level,
                                         sync, broadcast, not single_page):
            return
        self.log.dsb("ishst" if broadcast else "nshst")
        if broadcast:
            op = "vale1is" if last_level else "vae1is"
        else:
            op = "vale1" if last_level else "vae1"
        after = self.flush_tlb_range_op(op, mm.asid, start, pages, stride, tlb_level, broadcast)
        # the single-page helpers issue their TLBI directly, not through
        # __flush_tlb_range_op(), so their notifier range is never emptied
        self.flush_tlb_range_complete(start if single_page else after, end, sync, broadcast,
                                      notify)

    def _flush_range_or_mm(self, mm: MMStruct, start: int, end: int, stride: int, last_level: bool,
                           tlb_level: int, sync: bool, broadcast: bool, excess: bool) -> bool:
        """What every version of the head does once it knows whether the range is over
        the limit: the flush_tlb_range event, then, over it, flush_tlb_mm(). Returns excess."""
        self.log.flush_tlb_range(start, end, stride, last_level, tlb_level, sync, broadcast,
                                 excess)
        if excess:
            self.flush_tlb_mm(mm)
        return excess

    @variant("flush_tlb_range_fallback", until="flush_nosync_split")
    def flush_tlb_range_fallback_baseline(self, mm: MMStruct, start: int, end: int, pages: int,
                                          stride: int, last_level: bool, tlb_level: int,
                                          sync: bool, broadcast: bool, limit: bool) -> bool:
        """The head of __flush_tlb_range() before d9d8dc2bd3fb (v6 11/18,
        FEATURE_HISTORY flush_nosync_split): records the flush, and when the
        range is over the limit (flush_tlb_range_limit_excess) flushes the
        whole mm with flush_tlb_mm() -- broadcast and synchronous whatever was
        asked -- and returns True: the function returns there, with no
        further DSB. ``limit`` is False for the helpers with no limit check;
        a local flush (broadcast False: the v6.19 local helpers) never has
        one before the tlbf_t API."""
        excess = limit and broadcast and self.flush_tlb_range_limit_excess(start, end, pages,
                                                                            stride)
        return self._flush_range_or_mm(mm, start, end, stride, last_level, tlb_level, sync,
                                       broadcast, excess)

    @variant("flush_tlb_range_fallback", since="flush_nosync_split")
    def flush_tlb_range_fallback_v6_9(self, mm: MMStruct, start: int, end: int, pages: int,
                                      stride: int, last_level: bool, tlb_level: int, sync: bool,
                                      broadcast: bool, limit: bool) -> bool:
        """From d9d8dc2bd3fb (v6 11/18, FEATURE_HISTORY flush_nosync_split)
        the limit check and its early return sit in
        __flush_tlb_range_nosync(), and __flush_tlb_range() is that plus
        dsb(ish): a synchronous flush over the limit gets one more completion
        after flush_tlb_mm() has returned. Otherwise as
        flush_tlb_range_fallback_baseline (no limit check on local flushes)."""
        excess = limit and broadcast and self.flush_tlb_range_limit_excess(start, end, pages,
                                                                            stride)
        if self._flush_range_or_mm(mm, start, end, stride, last_level, tlb_level, sync, broadcast,
                                   excess) and sync:
            self.tlbi_sync_s1ish()  # __flush_tlb_range()'s dsb(ish)
        return excess

    @variant("flush_tlb_range_fallback", since="tlbf_flags_api")
    def flush_tlb_range_fallback_v7_3(self, mm: MMStruct, start: int, end: int, pages: int,
                                      stride: int, last_level: bool, tlb_level: int, sync: bool,
                                      broadcast: bool, limit: bool) -> bool:
        """__do_flush_tlb_range() of the tlbf_t API ("arm64: Refactor TLB
        invalidation API", FEATURE_HISTORY tlbf_flags_api; v7.3 profile,
        release unsure): one function for every flag, so a local
        (TLBF_NOBROADCAST) range flush has the limit check too, and over the
        limit it returns after flush_tlb_mm(), which completes itself, with
        no DSB for TLBF_NOSYNC to skip."""
        excess = limit and self.flush_tlb_range_limit_excess(start, end, pages, stride)
        return self._flush_range_or_mm(mm, start, end, stride, last_level, tlb_level, sync,
                                       broadcast, excess)

    @variant("flush_tlb_range_complete", until="flush_nosync_split")
    def flush_tlb_range_complete_baseline(self, start: int, end: int, sync: bool,
                                          broadcast: bool, notify: bool) -> None:
        """The tail of __flush_tlb_range() before d9d8dc2bd3fb (v6 11/18,
        FEATURE_HISTORY flush_nosync_split): dsb(ish), then
        mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end). start is
        what the caller's start is after __flush_tlb_range_op(). A local flush
        (no such kernel has one) notifies, then DSB NSH."""
        if sync and broadcast:
            self.tlbi_sync_s1ish()
            sync = False
        if notify:
            self.log.mmu_notifier(start, end)
        if sync:
            self.log.dsb("nsh")

    @variant("flush_tlb_range_complete", since="flush_nosync_split")
    def flush_tlb_range_complete_v6_9(self, start: int, end: int, sync: bool, broadcast: bool,
                                      notify: bool) -> None:
        """From d9d8dc2bd3fb (v6 11/18, FEATURE_HISTORY flush_nosync_split):
        __flush_tlb_range_nosync() ends with the notifier, and
        __flush_tlb_range() adds the dsb(ish) after it; the v6.19 local
        helpers and the tlbf_t __do_flush_tlb_range() keep that order (DSB
        NSH for a local flush, __tlbi_sync_s1ish() from v7.0)."""
        if notify:
            self.log.mmu_notifier(start, end)
        if sync:
            if broadcast:
                self.tlbi_sync_s1ish()
            else:
                self.log.dsb("nsh")

    @arch_call("flush_tlb_mm")
    def flush_tlb_mm(self, mm: MMStruct) -> None:
        log = self.log
        log.flush_tlb_mm(mm.asid)
        log.dsb("ishst")
        self.tlbi("aside1is", (mm.asid & 0xFFFF) << 48, 0, 0, mm.asid, 0, True)
        self.tlbi_sync_s1ish()
        log.mmu_notifier(0, _U64)

    @variant("flush_tlb_page")
    def flush_tlb_page_v6_9(self, mm: MMStruct, addr: int, sync: bool = True,
                            broadcast: bool = True, notify: bool = True) -> None:
        """flush_tlb_page[_nosync]() and local_flush_tlb_page[_nonotify]() of
        tlbflush.h before the tlbf_t API: __TLBI_VADDR() of the page, with
        no level hint."""
        start = addr & ~(self.page_size - 1)
        ps = self.page_size
        self._page_flush(mm, start, start + ps, ps, True, TLBI_TTL_UNKNOWN, sync, broadcast,
                         notify)

    @variant("flush_tlb_page", since="tlbf_flags_api")
    def flush_tlb_page_v7_3(self, mm: MMStruct, addr: int, sync: bool = True,
                            broadcast: bool = True, notify: bool = True) -> None:
        """__flush_tlb_page(vma, uaddr, flags) of the tlbf_t API ("arm64:
        Refactor TLB invalidation API", FEATURE_HISTORY tlbf_flags_api; in
        the v7.3 profile, release unsure): the page's flush carries level
        hint 3. sync, broadcast and notify stand for its flags."""
        start = addr & ~(self.page_size - 1)
        ps = self.page_size
        self._page_flush(mm, start, start + ps, ps, True, 3, sync, broadcast, notify)

    @variant("arch_tlbbatch_add_pending")
    def arch_tlbbatch_add_pending_v6_9(self, mm: MMStruct, start: int, end: int) -> None:
        """Deferred unmap flush (try_to_unmap with TTU_BATCH_FLUSH): the TLBIs
        go out now without waiting; arch_tlbbatch_flush() completes them later.

        Before v6.15 arch_tlbbatch_add_pending() took one address:
        __flush_tlb_page_nosync() of each page (no level hint).
        """
        ps = self.page_size
        a = start & ~(ps - 1)
        while a < end:
            self._page_flush(mm, a, a + ps, ps, True, TLBI_TTL_UNKNOWN, False, True, True)
            a += ps

    @variant("arch_tlbbatch_add_pending", since="tlbbatch_range")
    def arch_tlbbatch_add_pending_v6_15(self, mm: MMStruct, start: int, end: int) -> None:
        """From v6.15 (2f4ab3ac10e1, FEATURE_HISTORY tlbbatch_range) it takes a
        range: __flush_tlb_range_nosync(mm, start, end, PAGE_SIZE, true, 3),
        leaf-only at level 3, without the DSB."""
        self.flush_tlb_range(mm, start, end, self.page_size, True, 3, sync=False)

    def arch_tlbbatch_flush(self, mm: MMStruct) -> None:
        """Complete every pending batched TLBI: a DSB ISH."""
        self.tlbi_sync_s1ish()

    @arch_call("__flush_tlb_range")
    def _page_flush(self, mm: MMStruct, start: int, end: int, stride: int, last_level: bool,
                    tlb_level: int, sync: bool, broadcast: bool, notify: bool) -> None:
        self._flush_range(mm, start, end, stride, last_level, tlb_level, sync, broadcast, notify,
                          True)

    def flush_tlb_user_range(self, mm: MMStruct, start: int, end: int) -> None:
        """flush_tlb_range(vma, start, end): all levels, no level hint (mmu_gather, mprotect)."""
        self.flush_tlb_range(mm, start, end, self.page_size, False, TLBI_TTL_UNKNOWN)
