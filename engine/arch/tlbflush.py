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
engine.arch.profiles.FEATURE_HISTORY and docs/fidelity.md): the limit that
turns a range into flush_tlb_mm() (v6.10), the DSB/notifier order before the
v6 series split the function (baseline), the empty notifier range before
f7edb07ad7c6 (v6.14), where the ARM64_WORKAROUND_REPEAT_TLBI repeat goes
(v7.0), level hints on single-page flushes and the completion after an
over-limit flush (tlbf_t API).
"""

from __future__ import annotations

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


class TlbFlush(ArchBase):
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

    def _tlbi(self, op: str, operand: int, addr: int, pages: int, asid: int, level: int,
              broadcast: bool, user_copy: bool = True) -> None:
        """One __tlbi() (plus its __tlbi_user() copy under KPTI).

        Before v7.0 the ARM64_WORKAROUND_REPEAT_TLBI alternative sits inside
        __TLBI_0/__TLBI_1, so every TLBI -- local or broadcast, kernel or user
        ASID -- is issued as TLBI; DSB ISH; TLBI. From v7.0 (a8f78680ee6b) the
        repeat is one dummy TLBI at completion time (see _sync_ish).
        """
        log = self.log
        repeat = self.cpu.repeat_tlbi and not self.profile.tlbi_repeat_at_sync
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

    def _range_op(self, op: str, asid: int, start: int, pages: int, stride: int, level: int,
                  broadcast: bool) -> None:
        """__flush_tlb_range_op(): per-VA TLBIs, or range TLBIs with FEAT_TLBIRANGE."""
        ps = self.page_shift
        addr = start
        end = start + (pages << ps)
        scale = 3
        has_range = self.cpu.tlb_range
        while addr != end:
            left = (end - addr) >> ps
            if not has_range or left == 1:
                self._tlbi(op, self._vaddr_operand(addr, asid, level), addr, stride >> ps, asid,
                           level, broadcast)
                addr += stride
                continue
            num = tlbi_range_num(left, scale)
            if num >= 0:
                n = tlbi_range_pages(num, scale)
                self._tlbi("r" + op, self._range_operand(addr, asid, scale, num, level), addr, n,
                           asid, level, broadcast)
                addr += n << ps
            scale -= 1

    def _limit_excess(self, start: int, end: int, pages: int, stride: int) -> bool:
        max_dvm = self.g.max_dvm_ops
        if self.profile.tlb_limit == "v6.9":
            # v6.9: (!range && (end - start) >= MAX_DVM_OPS * stride) || pages >= MAX_TLBI_RANGE_PAGES
            return ((not self.cpu.tlb_range and ((end - start) & _U64) >= max_dvm * stride)
                    or pages >= MAX_TLBI_RANGE_PAGES)
        # v6.10 (73301e464a72) allows exactly MAX_TLBI_RANGE_PAGES; the later
        # rewrites of the check (__flush_tlb_range_limit_excess(), its
        # "simplify" and the tlbf_t version) compute the same answer.
        if self.cpu.tlb_range:
            return pages > MAX_TLBI_RANGE_PAGES
        return pages >= (max_dvm * stride) >> self.page_shift

    def _sync_ish(self) -> None:
        """Completion of broadcast maintenance: DSB ISH, and from v7.0
        (__tlbi_sync_s1ish) the REPEAT_TLBI erratum's dummy TLBI VALE1IS of
        operand 0 -- a plain __tlbi(), so no KPTI copy -- and a second DSB ISH."""
        self.log.dsb("ish")
        if self.cpu.repeat_tlbi and self.profile.tlbi_repeat_at_sync:
            self._tlbi("vale1is", 0, 0, 1, 0, 0, True, user_copy=False)
            self.log.dsb("ish")

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

    def _flush_range(self, mm: MMStruct, start: int, end: int, stride: int, last_level: bool,
                     tlb_level: int, sync: bool, broadcast: bool, notify: bool,
                     single_page: bool) -> None:
        p = self.profile
        start = start & ~(stride - 1)
        end = (end + stride - 1) & ~(stride - 1)
        pages = ((end - start) & _U64) >> self.page_shift
        # Before the tlbf_t API the local helpers (local_flush_tlb_page*(),
        # local_flush_tlb_contpte()) and the single-page helpers have no limit
        # check; they never span enough pages for one to matter.
        excess = ((broadcast or p.tlbf_flags_api) and not single_page
                  and self._limit_excess(start, end, pages, stride))
        log = self.log
        log.flush_tlb_range(start, end, stride, last_level, tlb_level, sync, broadcast, excess)
        if excess:
            # flush_tlb_mm() is broadcast and synchronous even when a local or
            # nosync flush was requested. With the old API a synchronous
            # __flush_tlb_range() still completes after the early return of
            # its _nosync half (once split, v6 11/18 d9d8dc2bd3fb).
            self.flush_tlb_mm(mm)
            if sync and p.flush_nosync_split and not p.tlbf_flags_api:
                self._sync_ish()
            return
        log.dsb("ishst" if broadcast else "nshst")
        if broadcast:
            op = "vale1is" if last_level else "vae1is"
        else:
            op = "vale1" if last_level else "vae1"
        self._range_op(op, mm.asid, start, pages, stride, tlb_level, broadcast)
        if sync and broadcast and not p.flush_nosync_split:
            # baseline: DSB ISH before the notifier (pre-d9d8dc2bd3fb order)
            self._sync_ish()
            sync = False
        if notify:
            # Until f7edb07ad7c6 (v6.14) __flush_tlb_range_op() advanced the
            # caller's 'start', so the notifier saw the empty range [end, end);
            # the single-page helpers never went through that macro.
            nstart = start if (p.flush_notifier_fixed or single_page) else end
            log.mmu_notifier(nstart, end)
        if sync:
            if broadcast:
                self._sync_ish()
            else:
                log.dsb("nsh")

    @arch_call("flush_tlb_mm")
    def flush_tlb_mm(self, mm: MMStruct) -> None:
        log = self.log
        log.flush_tlb_mm(mm.asid)
        log.dsb("ishst")
        self._tlbi("aside1is", (mm.asid & 0xFFFF) << 48, 0, 0, mm.asid, 0, True)
        self._sync_ish()
        log.mmu_notifier(0, _U64)

    def flush_tlb_page(self, mm: MMStruct, addr: int, sync: bool = True, broadcast: bool = True,
                       notify: bool = True) -> None:
        """flush_tlb_page[_nosync] / local_flush_tlb_page[_nonotify] / __flush_tlb_page(flags).

        Before the tlbf_t API the single-page helpers carried no level hint.
        """
        start = addr & ~(self.page_size - 1)
        level = 3 if self.profile.tlbf_flags_api else TLBI_TTL_UNKNOWN
        ps = self.page_size
        self._page_flush(mm, start, start + ps, ps, True, level, sync, broadcast, notify)

    def arch_tlbbatch_add_pending(self, mm: MMStruct, start: int, end: int) -> None:
        """Deferred unmap flush (try_to_unmap with TTU_BATCH_FLUSH): the TLBIs go
        out now without waiting; arch_tlbbatch_flush() completes them later.

        Before v6.15 it took one address (a nosync page flush, no level hint);
        from v6.15 a range, flushed leaf-only at level 3 without the DSB.
        """
        if self.profile.tlbbatch_range:
            self.flush_tlb_range(mm, start, end, self.page_size, True, 3, sync=False)
        else:
            a = start & ~(self.page_size - 1)
            while a < end:
                self._page_flush(mm, a, a + self.page_size, self.page_size, True, TLBI_TTL_UNKNOWN,
                                 False, True, True)
                a += self.page_size

    def arch_tlbbatch_flush(self, mm: MMStruct) -> None:
        """Complete every pending batched TLBI: a DSB ISH."""
        self._sync_ish()

    @arch_call("__flush_tlb_range")
    def _page_flush(self, mm: MMStruct, start: int, end: int, stride: int, last_level: bool,
                    tlb_level: int, sync: bool, broadcast: bool, notify: bool) -> None:
        self._flush_range(mm, start, end, stride, last_level, tlb_level, sync, broadcast, notify,
                          True)

    def flush_tlb_user_range(self, mm: MMStruct, start: int, end: int) -> None:
        """flush_tlb_range(vma, start, end): all levels, no level hint (mmu_gather, mprotect)."""
        self.flush_tlb_range(mm, start, end, self.page_size, False, TLBI_TTL_UNKNOWN)
