# SPDX-License-Identifier: GPL-2.0-only
"""Events and counters.

The engine records every state change and every cost as an *event*: a plain
tuple ``(kind, field1, field2, ...)`` appended to an :class:`EventLog`. Tuples
keep the hot paths cheap; :class:`Event` gives the attribute view that the
Python API (``sim.events``) promises, built on demand.

Field layouts are listed once, in :data:`FIELDS`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

# kind -> field names (after the kind itself)
FIELDS: dict[str, tuple[str, ...]] = {
    # descriptor accesses by software; atomic is "store", "xchg" or "cmpxchg",
    # and "hw" for a hardware access-flag / dirty-state update by the walker.
    "pte_read": ("addr", "value", "mm"),
    "pte_write": ("addr", "old", "new", "atomic", "mm"),
    "pmd_write": ("addr", "old", "new", "atomic", "mm"),
    # TLB maintenance: one event per flush the arch code asks for, then the
    # instructions it becomes. ``whole_mm`` marks a range that the limit check
    # turned into flush_tlb_mm().
    "flush_tlb_range": ("start", "end", "stride", "last_level", "tlb_level", "sync",
                        "broadcast", "whole_mm"),
    "flush_tlb_mm": ("asid",),
    "tlbi": ("op", "operand", "addr", "pages", "asid", "level", "broadcast"),
    "dsb": ("domain",),
    "isb": (),
    "mmu_notifier": ("start", "end"),
    # arch function boundaries (for stepping by arch call)
    "call": ("name", "args"),
    "ret": ("name", "value"),
    # contpte repaint
    "convert": ("addr", "cont"),
    "fold": ("addr",),
    "unfold": ("addr",),
    # hardware model
    "tlb_hit": ("addr", "asid", "size"),
    "tlb_miss": ("addr", "asid"),
    "tlb_fill": ("addr", "asid", "size", "cont"),
    "tlb_evict": ("addr", "asid", "size"),
    "tlb_conflict": ("addr", "asid", "abort"),
    "page_fault": ("addr", "write", "reason"),
    "hw_update": ("addr", "old", "new", "mm"),
    # checks
    "invariant_violation": ("rule", "addr", "message"),
    "warn": ("message",),
    # core mm bookkeeping that has no descriptor write of its own; ``what`` of
    # mm_page / mm_folio / mm_zero_page / mm_copy_page is a cost counter that
    # adds ``detail`` units of core-mm work the arch layer does not see
    "mm": ("what", "addr", "detail"),
}

# Counter names promised by DESIGN.md, in display order.
COUNTER_NAMES = (
    "ops", "pte_reads", "pte_writes", "converts", "folds", "unfolds", "flush_tlb_range",
    "tlbi", "dsb", "page_faults", "tlb_hits", "tlb_misses", "tlb_conflicts",
    "invariant_violations", "cycles", "cont_blocks",
)


class Event:
    """Attribute view of one event tuple (``ev.kind``, ``ev.addr``, ...)."""

    __slots__ = ("raw",)

    def __init__(self, raw: tuple[Any, ...]):
        self.raw = raw

    @property
    def kind(self) -> str:
        kind: str = self.raw[0]
        return kind

    def __getattr__(self, name: str) -> Any:
        fields = FIELDS.get(self.raw[0], ())
        try:
            return self.raw[1 + fields.index(name)]
        except ValueError:
            raise AttributeError(f"{self.raw[0]} event has no field {name!r}") from None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.raw[0]}
        d.update(zip(FIELDS.get(self.raw[0], ()), self.raw[1:], strict=False))
        return d

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        parts = []
        for k, v in self.as_dict().items():
            if k == "kind":
                continue
            if isinstance(v, int) and not isinstance(v, bool) and k in (
                    "addr", "old", "new", "value", "start", "end", "operand"):
                parts.append(f"{k}={v:#x}")
            else:
                parts.append(f"{k}={v!r}")
        return f"<{self.raw[0]} {' '.join(parts)}>"


# Keys always present in EventLog.direct (others are added with dict.get).
DIRECT_KEYS = ("events", "pte_reads", "pte_writes", "pte_xchg", "pte_cmpxchg", "set_ptes_1",
               "clear_full_ptes_1", "get_and_clear_full_ptes_1",
               "tlb_hits", "tlb_misses", "tlb_fill", "tlb_evict", "page_faults", "hw_update",
               "mm_page", "mm_folio", "mm_zero_page")


class EventLog:
    """Where events go.

    In *record* mode (the default) ``emit`` is the bound ``append`` of a list,
    so every event is kept. In *count* mode only counters are kept, so memory
    stays flat however long an op runs; the session uses it for bulk
    execution and re-runs an op in record mode when the user steps into it.

    Count mode has two paths that give the same counters:

    * ``emit`` is the bound ``append`` of a pending batch that is aggregated
      by :func:`count_events` a batch at a time (when ``counts`` is read, or
      when :meth:`maybe_fold` finds it full -- the core-mm call bracket calls
      it, so the batch stays bounded);
    * hot paths skip the tuple altogether and add to ``direct``, a plain dict
      of counter increments (None in record mode): ``direct["pte_reads"] += 1``
      for one ``pte_read`` event, plus ``direct["events"]``. The keys of
      DIRECT_KEYS are always present; add others with ``dict.get``. Sites
      that count ``pte_write`` events directly also add the contiguous blocks
      they wrote to ``written`` (the invariant check after the op reads it).
      Every ``pte_write`` is counted directly in count mode. They must add
      exactly what count_events would count for the events they stand for
      (tests/test_count_mode.py and bench/fingerprint.py check it).

    ``emit_many`` takes an iterable of event tuples (``list.extend``).

    Components keep references to ``emit``, ``emit_many`` and ``direct``; call
    :meth:`subscribe` with a callback that re-reads them, because switching
    modes replaces them. The buffer is only ever cleared in place.
    """

    __slots__ = ("buf", "emit", "emit_many", "_counts", "_pending", "recording", "_subscribers",
                 "direct", "written")

    PENDING_MAX = 1 << 14  # events aggregated at once in count mode

    def __init__(self, record: bool = True) -> None:
        self.buf: list[tuple[Any, ...]] = []
        self._counts: Counter[str] = Counter()
        self._pending: list[tuple[Any, ...]] = []
        self.recording = record
        self._subscribers: list[Callable[[], None]] = []
        self.direct: dict[str, int] | None = None if record else dict.fromkeys(DIRECT_KEYS, 0)
        # count mode: the contiguous blocks (their first VA) that pte_write events
        # counted directly touched, which the per-op invariant check needs
        self.written: set[int] | None = None if record else set()
        self.emit = self.buf.append if record else self._pending.append
        self.emit_many = self.buf.extend if record else self._pending.extend

    def maybe_fold(self) -> None:
        """Aggregate the pending batch if it is full (count mode)."""
        if len(self._pending) >= self.PENDING_MAX:
            self._fold_pending()

    def _fold_pending(self) -> None:
        if self._pending:
            count_events(self._pending, self._counts)
            del self._pending[:]
        d = self.direct
        if d is not None:
            c = self._counts
            for k, v in d.items():
                if v:
                    c[k] += v
                    d[k] = 0

    @property
    def counts(self) -> Counter[str]:
        """Counters aggregated in count mode (pending events folded in first)."""
        self._fold_pending()
        return self._counts

    def set_recording(self, record: bool) -> None:
        if record == self.recording:
            return
        self._fold_pending()
        self.recording = record
        self.direct = None if record else dict.fromkeys(DIRECT_KEYS, 0)
        self.written = None if record else set()
        self.emit = self.buf.append if record else self._pending.append
        self.emit_many = self.buf.extend if record else self._pending.extend
        for cb in self._subscribers:
            cb()

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._subscribers.append(callback)

    def __len__(self) -> int:
        return len(self.buf)

    def clear(self) -> None:
        del self.buf[:]
        del self._pending[:]
        self._counts.clear()
        if self.direct is not None:
            self.direct.clear()
            self.direct.update(dict.fromkeys(DIRECT_KEYS, 0))
        if self.written is not None:  # (not None exactly when direct is not: count mode)
            self.written.clear()

    def mark(self) -> int:
        return len(self.buf)

    def events_so_far(self) -> int:
        """Events emitted since the last clear(), in either mode, aggregating nothing
        (read-only: the TUI polls it from inside a long op to show its progress; it is
        the same count as ``totals()["events"]``)."""
        d = self.direct
        return (len(self.buf) + len(self._pending) + self._counts.get("events", 0)
                + (d.get("events", 0) if d is not None else 0))

    def since(self, mark: int) -> list[tuple[Any, ...]]:
        return self.buf[mark:]

    def views(self, start: int = 0) -> list[Event]:
        return [Event(t) for t in self.buf[start:]]

    def totals(self) -> Counter[str]:
        """Counters of everything emitted since the last clear()."""
        c = Counter(self.counts)
        count_events(self.buf, c)
        return c


# call name -> position of nr in the recorded arguments (mm name first); a call
# with nr == 1 also counts "<name>_1"
NR_ONE = {"set_ptes": 3, "clear_full_ptes": 2, "get_and_clear_full_ptes": 2}
NR_ONE_KEYS = {name: name + "_1" for name in NR_ONE}

# kinds counted under another name (DESIGN.md counter names)
_RENAMED = {
    "pte_read": "pte_reads", "convert": "converts", "fold": "folds", "unfold": "unfolds",
    "tlb_hit": "tlb_hits", "tlb_miss": "tlb_misses", "tlb_conflict": "tlb_conflicts",
    "page_fault": "page_faults", "invariant_violation": "invariant_violations",
}


def count_events(events: Iterable[tuple[Any, ...]], into: Counter[str] | None = None) -> Counter[str]:
    """Aggregate event tuples into counters (the DESIGN.md names plus details).

    Events are grouped by kind first, so the per-kind details (atomic kind of
    each write, TLBI op, DSB domain, function called) are counted by C-level
    Counter updates rather than a Python branch per event.
    """
    c: Counter[str] = into if into is not None else Counter()
    by_kind: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for ev in events:
        by_kind[ev[0]].append(ev)
    total = sum(len(evs) for evs in by_kind.values())
    if total:
        c["events"] += total
    second = itemgetter(1)
    for k, evs in by_kind.items():
        n = len(evs)
        if k == "pte_write":
            c["pte_writes"] += n
            for atomic, cnt in Counter(map(itemgetter(4), evs)).items():
                if atomic != "store":
                    c["pte_" + atomic] += cnt
        elif k == "pmd_write":
            c["pmd_writes"] += n
        elif k == "tlbi" or k == "dsb":
            c[k] += n
            for what, cnt in Counter(map(second, evs)).items():
                c[k + "_" + what] += cnt
        elif k == "call":
            names = Counter(map(second, evs))
            for name, cnt in names.items():
                c["call:" + name] += cnt
            # single-entry calls of the batch APIs: set_ptes(nr == 1) runs the
            # contpte_try_fold() fast-path test; set_ptes(1), clear_full_ptes(1) and
            # get_and_clear_full_ptes(1) call contpte_try_unfold() (engine/costs.py)
            for name, pos in NR_ONE.items():
                if name in names:
                    ones = sum(1 for ev in evs if ev[1] == name and ev[2][pos] == 1)
                    if ones:
                        c[NR_ONE_KEYS[name]] += ones
        elif k == "ret":
            pass
        elif k == "flush_tlb_range":
            c[k] += n
            whole = sum(1 for ev in evs if ev[8])
            if whole:
                c["flush_tlb_range_whole_mm"] += whole
        elif k == "mm":
            for ev in evs:
                what = ev[1]
                if what.startswith("mm_"):
                    c[what] += ev[3]  # a cost counter: mm_page, mm_folio, mm_zero_page, mm_copy_page
                else:
                    c["mm:" + what] += 1
        else:
            c[_RENAMED.get(k, k)] += n
    return c


def iter_views(events: Iterable[tuple[Any, ...]]) -> Iterator[Event]:
    for ev in events:
        yield Event(ev)
