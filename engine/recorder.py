# SPDX-License-Identifier: GPL-2.0-only
# Generated from engine.events.FIELDS by `python scripts/gen_recorder.py`: do not
# edit (tests/test_event_sink.py fails when it is out of date).
"""The recorder interface: one method per event kind, its fields in FIELDS order.

RecordKinds keeps each event as the tuple ``(kind, *fields)``; CountKinds counts
the kinds that are one counter each (``n_<kind>``, slots of Counters, a base of both
modes so that they share one layout). engine.events.EventLog holds the rest of the
state and adds the bulk forms, engine.events.CountLog the kinds counted by hand.
"""

from __future__ import annotations

from typing import Any


class Recorder:
    """Where a component reports events (engine.events.EventLog implements it)."""

    __slots__ = ()

    def pte_read(self, addr: int, value: int, mm: str) -> None:
        raise NotImplementedError

    def pte_write(self, addr: int, old: int, new: int, atomic: str, mm: str) -> None:
        raise NotImplementedError

    def pmd_write(self, addr: int, old: int, new: int, atomic: str, mm: str) -> None:
        raise NotImplementedError

    def flush_tlb_range(self, start: int, end: int, stride: int, last_level: bool, tlb_level: int, sync: bool,
                        broadcast: bool, whole_mm: bool) -> None:
        raise NotImplementedError

    def flush_tlb_mm(self, asid: int) -> None:
        raise NotImplementedError

    def tlbi(self, op: str, operand: int, addr: int, pages: int, asid: int, level: int,
             broadcast: bool) -> None:
        raise NotImplementedError

    def dsb(self, domain: str) -> None:
        raise NotImplementedError

    def isb(self) -> None:
        raise NotImplementedError

    def mmu_notifier(self, start: int, end: int) -> None:
        raise NotImplementedError

    def call(self, name: str, args: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def ret(self, name: str, value: Any) -> None:
        raise NotImplementedError

    def convert(self, addr: int, cont: bool) -> None:
        raise NotImplementedError

    def fold(self, addr: int) -> None:
        raise NotImplementedError

    def unfold(self, addr: int) -> None:
        raise NotImplementedError

    def tlb_hit(self, addr: int, asid: int, size: int) -> None:
        raise NotImplementedError

    def tlb_miss(self, addr: int, asid: int) -> None:
        raise NotImplementedError

    def tlb_fill(self, addr: int, asid: int, size: int, cont: bool) -> None:
        raise NotImplementedError

    def tlb_evict(self, addr: int, asid: int, size: int) -> None:
        raise NotImplementedError

    def tlb_conflict(self, addr: int, asid: int, abort: bool) -> None:
        raise NotImplementedError

    def page_fault(self, addr: int, write: bool, reason: str) -> None:
        raise NotImplementedError

    def hw_update(self, addr: int, old: int, new: int, mm: str) -> None:
        raise NotImplementedError

    def invariant_violation(self, rule: str, addr: int, message: str) -> None:
        raise NotImplementedError

    def warn(self, message: str) -> None:
        raise NotImplementedError

    def mm(self, what: str, addr: int, detail: Any) -> None:
        raise NotImplementedError


class RecordKinds(Recorder):
    """Record mode: each event a tuple appended to ``buf``."""

    __slots__ = ()
    buf: list[tuple[Any, ...]]

    def pte_read(self, addr: int, value: int, mm: str) -> None:
        self.buf.append(("pte_read", addr, value, mm))

    def pte_write(self, addr: int, old: int, new: int, atomic: str, mm: str) -> None:
        self.buf.append(("pte_write", addr, old, new, atomic, mm))

    def pmd_write(self, addr: int, old: int, new: int, atomic: str, mm: str) -> None:
        self.buf.append(("pmd_write", addr, old, new, atomic, mm))

    def flush_tlb_range(self, start: int, end: int, stride: int, last_level: bool, tlb_level: int, sync: bool,
                        broadcast: bool, whole_mm: bool) -> None:
        self.buf.append(("flush_tlb_range", start, end, stride, last_level, tlb_level, sync, broadcast,
                         whole_mm))

    def flush_tlb_mm(self, asid: int) -> None:
        self.buf.append(("flush_tlb_mm", asid))

    def tlbi(self, op: str, operand: int, addr: int, pages: int, asid: int, level: int,
             broadcast: bool) -> None:
        self.buf.append(("tlbi", op, operand, addr, pages, asid, level, broadcast))

    def dsb(self, domain: str) -> None:
        self.buf.append(("dsb", domain))

    def isb(self) -> None:
        self.buf.append(("isb",))

    def mmu_notifier(self, start: int, end: int) -> None:
        self.buf.append(("mmu_notifier", start, end))

    def call(self, name: str, args: tuple[Any, ...]) -> None:
        self.buf.append(("call", name, args))

    def ret(self, name: str, value: Any) -> None:
        self.buf.append(("ret", name, value))

    def convert(self, addr: int, cont: bool) -> None:
        self.buf.append(("convert", addr, cont))

    def fold(self, addr: int) -> None:
        self.buf.append(("fold", addr))

    def unfold(self, addr: int) -> None:
        self.buf.append(("unfold", addr))

    def tlb_hit(self, addr: int, asid: int, size: int) -> None:
        self.buf.append(("tlb_hit", addr, asid, size))

    def tlb_miss(self, addr: int, asid: int) -> None:
        self.buf.append(("tlb_miss", addr, asid))

    def tlb_fill(self, addr: int, asid: int, size: int, cont: bool) -> None:
        self.buf.append(("tlb_fill", addr, asid, size, cont))

    def tlb_evict(self, addr: int, asid: int, size: int) -> None:
        self.buf.append(("tlb_evict", addr, asid, size))

    def tlb_conflict(self, addr: int, asid: int, abort: bool) -> None:
        self.buf.append(("tlb_conflict", addr, asid, abort))

    def page_fault(self, addr: int, write: bool, reason: str) -> None:
        self.buf.append(("page_fault", addr, write, reason))

    def hw_update(self, addr: int, old: int, new: int, mm: str) -> None:
        self.buf.append(("hw_update", addr, old, new, mm))

    def invariant_violation(self, rule: str, addr: int, message: str) -> None:
        self.buf.append(("invariant_violation", rule, addr, message))

    def warn(self, message: str) -> None:
        self.buf.append(("warn", message))

    def mm(self, what: str, addr: int, detail: Any) -> None:
        self.buf.append(("mm", what, addr, detail))


class Counters(Recorder):
    """The counters of CountKinds. Both modes derive from this class, so a
    log can switch between them by changing its class (engine.events.EventLog).
    """

    __slots__ = ("n_pte_read", "n_pmd_write", "n_flush_tlb_mm", "n_isb", "n_mmu_notifier", "n_ret",
                 "n_convert", "n_fold", "n_unfold", "n_tlb_hit", "n_tlb_miss", "n_tlb_fill", "n_tlb_evict",
                 "n_tlb_conflict", "n_page_fault", "n_hw_update", "n_invariant_violation", "n_warn")
    n_pte_read: int
    n_pmd_write: int
    n_flush_tlb_mm: int
    n_isb: int
    n_mmu_notifier: int
    n_ret: int
    n_convert: int
    n_fold: int
    n_unfold: int
    n_tlb_hit: int
    n_tlb_miss: int
    n_tlb_fill: int
    n_tlb_evict: int
    n_tlb_conflict: int
    n_page_fault: int
    n_hw_update: int
    n_invariant_violation: int
    n_warn: int


class CountKinds(Counters):
    """Count mode, for the kinds that are one counter each."""

    __slots__ = ()

    def pte_read(self, addr: int, value: int, mm: str) -> None:
        self.n_pte_read += 1

    def pmd_write(self, addr: int, old: int, new: int, atomic: str, mm: str) -> None:
        self.n_pmd_write += 1

    def flush_tlb_mm(self, asid: int) -> None:
        self.n_flush_tlb_mm += 1

    def isb(self) -> None:
        self.n_isb += 1

    def mmu_notifier(self, start: int, end: int) -> None:
        self.n_mmu_notifier += 1

    def ret(self, name: str, value: Any) -> None:
        self.n_ret += 1

    def convert(self, addr: int, cont: bool) -> None:
        self.n_convert += 1

    def fold(self, addr: int) -> None:
        self.n_fold += 1

    def unfold(self, addr: int) -> None:
        self.n_unfold += 1

    def tlb_hit(self, addr: int, asid: int, size: int) -> None:
        self.n_tlb_hit += 1

    def tlb_miss(self, addr: int, asid: int) -> None:
        self.n_tlb_miss += 1

    def tlb_fill(self, addr: int, asid: int, size: int, cont: bool) -> None:
        self.n_tlb_fill += 1

    def tlb_evict(self, addr: int, asid: int, size: int) -> None:
        self.n_tlb_evict += 1

    def tlb_conflict(self, addr: int, asid: int, abort: bool) -> None:
        self.n_tlb_conflict += 1

    def page_fault(self, addr: int, write: bool, reason: str) -> None:
        self.n_page_fault += 1

    def hw_update(self, addr: int, old: int, new: int, mm: str) -> None:
        self.n_hw_update += 1

    def invariant_violation(self, rule: str, addr: int, message: str) -> None:
        self.n_invariant_violation += 1

    def warn(self, message: str) -> None:
        self.n_warn += 1


COUNT_SLOTS: tuple[str, ...] = Counters.__slots__
