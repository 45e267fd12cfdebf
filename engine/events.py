# SPDX-License-Identifier: GPL-2.0-only
"""Events and counters.

The engine records every state change and every cost as an *event* of one of
the kinds listed, with their fields, in :data:`FIELDS`. A component reports an
event by calling the method of that kind on the machine's :class:`EventLog`,
fields in FIELDS order::

    log.pte_write(addr, old, new, "store", mm.name)

That recorder interface -- one method per kind, :class:`engine.recorder.Recorder`
-- is generated from FIELDS (``python scripts/gen_recorder.py``), so
it cannot drift from the layouts. Loops over a slice of a page table use the
bulk forms (``pte_reads``, ``pte_writes``, ...), which report exactly the
events of the per-entry calls in one call. The log implements the interface in
one of two modes:

* *record* (:class:`RecordLog`): every event is kept as a plain tuple
  ``(kind, field1, field2, ...)`` in ``buf``. Tuples keep the hot paths cheap;
  :class:`Event` gives the attribute view that the Python API (``sim.events``)
  promises, built on demand.
* *count* (:class:`CountLog`): only counters -- exactly those
  :func:`count_events` would make of the tuples -- and the set of contiguous
  blocks that descriptor writes touched, so memory stays flat however long an
  op runs. The session uses it for bulk execution and re-runs an op in record
  mode when the user steps into it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from engine.recorder import COUNT_SLOTS, Counters, CountKinds, RecordKinds

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

# The type of each field, by name, in the generated recorder's signatures
# (``value`` of a ``ret`` is whatever the function returned).
FIELD_TYPES: dict[str, str] = {
    "addr": "int", "value": "int", "mm": "str", "old": "int", "new": "int", "atomic": "str",
    "start": "int", "end": "int", "stride": "int", "last_level": "bool", "tlb_level": "int",
    "sync": "bool", "broadcast": "bool", "whole_mm": "bool", "asid": "int", "op": "str",
    "operand": "int", "pages": "int", "level": "int", "domain": "str", "name": "str",
    "args": "tuple[Any, ...]", "cont": "bool", "size": "int", "abort": "bool", "write": "bool",
    "reason": "str", "rule": "str", "message": "str", "what": "str", "detail": "Any",
}
KIND_FIELD_TYPES: dict[tuple[str, str], str] = {("ret", "value"): "Any"}

# Kinds that count_events splits by a field (the atomic kind of a write, the
# TLBI op, the DSB domain, the function called, a whole-mm flush, the core-mm
# bookkeeping): CountLog counts them by hand. Every other kind is one counter,
# generated (engine.recorder.CountKinds).
COUNTED_BY_HAND = frozenset({"pte_write", "flush_tlb_range", "tlbi", "dsb", "call", "mm"})

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
            # get_and_clear_full_ptes(1) call contpte_try_unfold() (engine/cycles.py)
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


def plain(a: Any) -> Any:
    """How a core-mm call records an argument or result: ints, strings, bools
    and None as they are, any other object by its ``name`` (a process, a VMA's
    region) or else by its type's name -- so events stay plain data."""
    if a.__class__ in _SIMPLE:
        return a
    name = getattr(a, "name", None)
    return name if isinstance(name, str) else type(a).__name__


_SIMPLE = frozenset((int, str, bool, type(None)))

# CountKinds' counters (n_<kind>) -> the count_events counter they add to (None: only "events")
_PLAIN_COUNTERS: tuple[tuple[str, str | None], ...] = tuple(
    (slot, None if kind == "ret" else "pmd_writes" if kind == "pmd_write" else _RENAMED.get(kind, kind))
    for slot, kind in ((s, s[2:]) for s in COUNT_SLOTS))
# every CountKinds counter in one call (an op folds and clears them twice: ~20 getattr each)
_ALL_SLOTS = attrgetter(*COUNT_SLOTS)
_CALL_KEYS: dict[str, str] = {}  # function name -> its "call:" counter (names are few)


class EventLog(Counters):
    """Where events go: the recorder interface (engine.recorder.Recorder, one
    method per kind of FIELDS, plus the bulk forms below) over a buffer of
    event tuples (record mode) or counters (count mode).

    ``EventLog(record=...)`` makes a :class:`RecordLog` or a :class:`CountLog`,
    and :meth:`set_recording` switches between them by swapping the object's
    class (both have exactly these slots). Components hold the log for the
    machine's lifetime and call its methods: whatever the mode, they neither
    test it nor re-read anything when it changes. Never keep a bound method of
    the log (``emit = log.pte_read``): it would outlive a switch.

    ``written`` is None in record mode; in count mode it is the set of
    contiguous blocks (their first VA) that ``pte_write`` events touched since
    the caller last cleared it (the per-op invariant check reads it instead of
    the events). ``buf`` is only ever cleared in place.
    """

    # (the counters of CountKinds are slots of engine.recorder.Counters, a base of both modes)
    __slots__ = ("buf", "recording", "written", "_counts", "page_size", "cont_size", "cont_mask",
                 "atomics", "calls", "nr_one", "tlbi_ops", "dsb_domains", "n_pte_write",
                 "n_flush_tlb_range", "n_whole_mm", "mm_events", "mm_costs")

    buf: list[tuple[Any, ...]]
    recording: bool
    written: set[int] | None
    _counts: Counter[str]
    page_size: int
    cont_size: int
    cont_mask: int
    # count mode: the counters of the kinds CountLog counts by hand
    atomics: dict[str, int]  # pte_write, atomic != "store": atomic -> writes
    calls: dict[str, int]  # call: name -> calls
    nr_one: dict[str, int]  # call of an NR_ONE function with nr == 1: name -> calls
    tlbi_ops: dict[str, int]  # tlbi: op -> instructions
    dsb_domains: dict[str, int]  # dsb: domain -> barriers
    n_pte_write: int
    n_flush_tlb_range: int
    n_whole_mm: int  # flush_tlb_range with whole_mm
    mm_events: dict[str, int]  # mm: what -> events
    mm_costs: dict[str, Any]  # mm: what -> sum of details, for the cost counters (what = mm_*)

    def __new__(cls, record: bool = True) -> EventLog:
        return object.__new__(RecordLog if record else CountLog)

    def __init__(self, record: bool = True) -> None:
        self.buf = []
        self._counts = Counter()
        self.recording = record
        self.written = None if record else set()
        self.bind_granule(4096, 16)
        for slot in COUNT_SLOTS:
            setattr(self, slot, 0)
        self._zero()

    def bind_granule(self, page_size: int, cont_ptes: int) -> None:
        """The page size the bulk forms step by and the contiguous block size
        ``written`` is kept in (the arch layer and the MMU bind their granule)."""
        self.page_size = page_size
        self.cont_size = page_size * cont_ptes
        self.cont_mask = ~(self.cont_size - 1)

    # --- bulk forms: exactly the events of the per-entry calls, in one call --------------
    def pte_reads(self, addr: int, values: Sequence[int], mm: str) -> None:
        """One pte_read per value, of the entries from addr on."""
        raise NotImplementedError

    def pte_writes(self, addr: int, old: Sequence[int], new: Iterable[int], atomic: str,
                   mm: str) -> None:
        """One pte_write per old value, of the entries from addr on; ``new``
        gives the values written (``repeat(0)`` for a clear)."""
        raise NotImplementedError

    def pte_read_writes(self, addr: int, old: Sequence[int], new: Sequence[int], atomic: str,
                        mm: str) -> None:
        """Per entry from addr on: a pte_read of old[i], then its pte_write to new[i]
        (a read-modify-write loop that succeeds at once)."""
        raise NotImplementedError

    def none_reads(self, name: str, addr: int, n: int, mm: str) -> None:
        """n calls of the reader ``name`` (ptep_get, ptep_get_lockless) on none
        entries from addr on: call, a pte_read of 0, ret 0 each."""
        raise NotImplementedError

    def tlb_hits(self, addr: int, n: int, asid: int, size: int) -> None:
        """n tlb_hit events, for the pages from addr on."""
        raise NotImplementedError

    def mm_cost(self, what: str, addr: int, n: int) -> None:
        """The ``mm`` event of a cost counter (``what`` = ``mm_*``, adding n
        units): exactly ``mm(what, addr, n)``, without testing the name."""
        raise NotImplementedError

    def kcall(self, name: str, args: tuple[Any, ...]) -> None:
        """The call event of a core-mm function: like call(), with the
        arguments recorded as plain data (see :func:`plain`)."""
        raise NotImplementedError

    def kret(self, name: str, value: Any) -> None:
        """The ret event of a core-mm function: like ret(), the value as plain data."""
        raise NotImplementedError

    def emit(self, ev: tuple[Any, ...]) -> None:
        """Report an event held as a tuple ``(kind, *fields)`` (e.g. an
        invariant violation's ``event()``)."""
        getattr(self, ev[0])(*ev[1:])

    # --- modes and counters ---------------------------------------------------------
    def _zero(self) -> None:
        for slot, v in zip(COUNT_SLOTS, _ALL_SLOTS(self), strict=True):
            if v:
                setattr(self, slot, 0)
        self.n_pte_write = self.n_flush_tlb_range = self.n_whole_mm = 0
        self.atomics = {}
        self.calls = {}
        self.nr_one = {}
        self.tlbi_ops = {}
        self.dsb_domains = {}
        self.mm_events = {}
        self.mm_costs = {}

    def _fold(self) -> None:
        """Move count mode's live counters into ``_counts``, named as count_events names them."""
        c = self._counts
        # c[k] = get(k, 0) + v rather than c[k] += v: the counts start empty every op, and a
        # Counter's __missing__ is a Python call per new key (the call names: dozens)
        get = c.get
        events = 0
        for (slot, key), v in zip(_PLAIN_COUNTERS, _ALL_SLOTS(self), strict=True):
            if v:
                events += v
                if key is not None:
                    c[key] = get(key, 0) + v
                setattr(self, slot, 0)
        if self.n_pte_write:
            events += self.n_pte_write
            c["pte_writes"] = get("pte_writes", 0) + self.n_pte_write
            self.n_pte_write = 0
            for atomic, v in self.atomics.items():
                k = "pte_" + atomic
                c[k] = get(k, 0) + v
            self.atomics.clear()
        if self.n_flush_tlb_range:
            events += self.n_flush_tlb_range
            c["flush_tlb_range"] = get("flush_tlb_range", 0) + self.n_flush_tlb_range
            if self.n_whole_mm:
                c["flush_tlb_range_whole_mm"] = get("flush_tlb_range_whole_mm", 0) + self.n_whole_mm
            self.n_flush_tlb_range = self.n_whole_mm = 0
        for kind, by in (("tlbi", self.tlbi_ops), ("dsb", self.dsb_domains)):
            if by:
                n = sum(by.values())
                events += n
                c[kind] = get(kind, 0) + n
                for what, v in by.items():
                    k = kind + "_" + what
                    c[k] = get(k, 0) + v
                by.clear()
        if self.calls:
            keys = _CALL_KEYS
            for name, v in self.calls.items():
                events += v
                key = keys.get(name)
                if key is None:
                    key = keys[name] = "call:" + name
                c[key] = get(key, 0) + v
            self.calls.clear()
            for name, v in self.nr_one.items():
                k = NR_ONE_KEYS[name]
                c[k] = get(k, 0) + v
            self.nr_one.clear()
        if self.mm_events:
            costs = self.mm_costs
            for what, v in self.mm_events.items():
                events += v
                if what in costs:
                    if costs[what]:
                        c[what] = get(what, 0) + costs[what]
                else:
                    k = "mm:" + what
                    c[k] = get(k, 0) + v
            self.mm_events.clear()
            costs.clear()
        if events:
            c["events"] = get("events", 0) + events

    def _live_events(self) -> int:
        """Events counted since the last _fold (read-only)."""
        plain: int = sum(getattr(self, slot) for slot in COUNT_SLOTS)
        return (plain + self.n_pte_write + self.n_flush_tlb_range + sum(self.tlbi_ops.values())
                + sum(self.dsb_domains.values()) + sum(self.calls.values()) + sum(self.mm_events.values()))

    @property
    def counts(self) -> Counter[str]:
        """Counters aggregated in count mode (the live counters folded in first)."""
        self._fold()
        return self._counts

    def set_recording(self, record: bool) -> None:
        if record == self.recording:
            return
        self._fold()
        self.recording = record
        self.written = None if record else set()
        self.__class__ = RecordLog if record else CountLog  # same slots: the methods change

    def __len__(self) -> int:
        return len(self.buf)

    def clear(self) -> None:
        del self.buf[:]
        self._counts.clear()
        self._zero()
        if self.written is not None:
            self.written.clear()

    def mark(self) -> int:
        return len(self.buf)

    def events_so_far(self) -> int:
        """Events emitted since the last clear(), in either mode, aggregating nothing
        (read-only: the TUI polls it from inside a long op to show its progress; it is
        the same count as ``totals()["events"]``)."""
        return len(self.buf) + self._counts.get("events", 0) + self._live_events()

    def since(self, mark: int) -> list[tuple[Any, ...]]:
        return self.buf[mark:]

    def views(self, start: int = 0) -> list[Event]:
        return [Event(t) for t in self.buf[start:]]

    def totals(self) -> Counter[str]:
        """Counters of everything emitted since the last clear()."""
        c = Counter(self.counts)
        count_events(self.buf, c)
        return c


class RecordLog(RecordKinds, EventLog):
    """Record mode: each event is a tuple appended to ``buf``."""

    __slots__ = ()

    def pte_reads(self, addr: int, values: Sequence[int], mm: str) -> None:
        ps = self.page_size
        self.buf.extend(zip(repeat("pte_read"), range(addr, addr + len(values) * ps, ps), values,
                            repeat(mm)))

    def pte_writes(self, addr: int, old: Sequence[int], new: Iterable[int], atomic: str,
                   mm: str) -> None:
        ps = self.page_size
        self.buf.extend(zip(repeat("pte_write"), range(addr, addr + len(old) * ps, ps), old, new,
                            repeat(atomic), repeat(mm)))

    def pte_read_writes(self, addr: int, old: Sequence[int], new: Sequence[int], atomic: str,
                        mm: str) -> None:
        ps = self.page_size
        addrs = range(addr, addr + len(old) * ps, ps)
        name = repeat(mm)
        self.buf.extend(chain.from_iterable(zip(
            zip(repeat("pte_read"), addrs, old, name),
            zip(repeat("pte_write"), addrs, old, new, repeat(atomic), name), strict=True)))

    def none_reads(self, name: str, addr: int, n: int, mm: str) -> None:
        ps = self.page_size
        self.buf.extend(chain.from_iterable(
            (("call", name, (mm, a)), ("pte_read", a, 0, mm), ("ret", name, 0))
            for a in range(addr, addr + n * ps, ps)))

    def tlb_hits(self, addr: int, n: int, asid: int, size: int) -> None:
        ps = self.page_size
        self.buf.extend(zip(repeat("tlb_hit"), range(addr, addr + n * ps, ps), repeat(asid),
                            repeat(size)))

    def mm_cost(self, what: str, addr: int, n: int) -> None:
        self.buf.append(("mm", what, addr, n))

    def kcall(self, name: str, args: tuple[Any, ...]) -> None:
        self.buf.append(("call", name, tuple([a if a.__class__ in _SIMPLE else plain(a) for a in args])))

    def kret(self, name: str, value: Any) -> None:
        self.buf.append(("ret", name, value if value.__class__ in _SIMPLE else plain(value)))


class CountLog(CountKinds, EventLog):
    """Count mode: counters only (see EventLog._fold for the names they end up
    under), and ``written``. The kinds with details are counted here; the others
    one counter each (CountKinds)."""

    __slots__ = ()

    def pte_write(self, addr: int, old: int, new: int, atomic: str, mm: str) -> None:
        self.n_pte_write += 1
        if atomic != "store":
            a = self.atomics
            a[atomic] = a.get(atomic, 0) + 1
        self.written.add(addr & self.cont_mask)  # type: ignore[union-attr]

    def flush_tlb_range(self, start: int, end: int, stride: int, last_level: bool, tlb_level: int,
                        sync: bool, broadcast: bool, whole_mm: bool) -> None:
        self.n_flush_tlb_range += 1
        if whole_mm:
            self.n_whole_mm += 1

    def tlbi(self, op: str, operand: int, addr: int, pages: int, asid: int, level: int,
             broadcast: bool) -> None:
        d = self.tlbi_ops
        d[op] = d.get(op, 0) + 1

    def dsb(self, domain: str) -> None:
        d = self.dsb_domains
        d[domain] = d.get(domain, 0) + 1

    def call(self, name: str, args: tuple[Any, ...]) -> None:
        calls = self.calls
        try:
            calls[name] += 1
        except KeyError:
            calls[name] = 1
        if name in NR_ONE and args[NR_ONE[name]] == 1:
            d = self.nr_one
            d[name] = d.get(name, 0) + 1

    def kcall(self, name: str, args: tuple[Any, ...]) -> None:
        # call() without its NR_ONE test (no core-mm function is a batch API),
        # and the arguments are not kept: nothing to make plain
        calls = self.calls
        try:
            calls[name] += 1
        except KeyError:
            calls[name] = 1

    def kret(self, name: str, value: Any) -> None:
        self.n_ret += 1

    def mm(self, what: str, addr: int, detail: Any) -> None:
        d = self.mm_events
        try:
            d[what] += 1
        except KeyError:
            d[what] = 1
        if what.startswith("mm_"):  # a cost counter: adds detail units
            c = self.mm_costs
            c[what] = c.get(what, 0) + detail

    def mm_cost(self, what: str, addr: int, n: int) -> None:
        d = self.mm_events
        try:
            d[what] += 1
        except KeyError:
            d[what] = 1
        c = self.mm_costs
        c[what] = c.get(what, 0) + n

    def pte_reads(self, addr: int, values: Sequence[int], mm: str) -> None:
        self.n_pte_read += len(values)

    def pte_writes(self, addr: int, old: Sequence[int], new: Iterable[int], atomic: str,
                   mm: str) -> None:
        n = len(old)
        self.n_pte_write += n
        if atomic != "store":
            a = self.atomics
            a[atomic] = a.get(atomic, 0) + n
        self.written.update(range(addr & self.cont_mask, addr + n * self.page_size,  # type: ignore[union-attr]
                                  self.cont_size))

    def pte_read_writes(self, addr: int, old: Sequence[int], new: Sequence[int], atomic: str,
                        mm: str) -> None:
        self.n_pte_read += len(old)
        self.pte_writes(addr, old, new, atomic, mm)

    def none_reads(self, name: str, addr: int, n: int, mm: str) -> None:
        calls = self.calls
        calls[name] = calls.get(name, 0) + n
        self.n_pte_read += n
        self.n_ret += n

    def tlb_hits(self, addr: int, n: int, asid: int, size: int) -> None:
        self.n_tlb_hit += n


# --- the generated recorder (engine/recorder.py) ----------------------------------------
RECORDER_PATH = Path(__file__).with_name("recorder.py")


def _wrap(head: str, items: list[str], tail: str, indent: int) -> list[str]:
    """``head`` + the comma-separated items + ``tail``, over as many lines as
    it takes to keep them within ruff's 110 columns."""
    lines: list[str] = []
    cur = head
    for i, item in enumerate(items):
        last = i == len(items) - 1
        piece = item + ("" if last else ", ")
        if len(cur) + len(piece.rstrip()) + (len(tail) if last else 0) > 110 and cur.strip():
            lines.append(cur.rstrip())
            cur = " " * indent
        cur += piece
    return [*lines, cur + tail]


def _def(kind: str) -> list[str]:
    params = ["self", *(f"{f}: {KIND_FIELD_TYPES.get((kind, f), FIELD_TYPES[f])}" for f in FIELDS[kind])]
    head = f"    def {kind}("
    return _wrap(head, params, ") -> None:", len(head))


def recorder_source() -> str:
    """The text of engine/recorder.py, from FIELDS."""
    out = [
        "# SPDX-License-Identifier: GPL-2.0-only",
        "# Generated from engine.events.FIELDS by `python scripts/gen_recorder.py`: do not",
        "# edit (tests/test_event_sink.py fails when it is out of date).",
        '"""The recorder interface: one method per event kind, its fields in FIELDS order.',
        "",
        "RecordKinds keeps each event as the tuple ``(kind, *fields)``; CountKinds counts",
        "the kinds that are one counter each (``n_<kind>``, slots of Counters, a base of both",
        "modes so that they share one layout). engine.events.EventLog holds the rest of the",
        "state and adds the bulk forms, engine.events.CountLog the kinds counted by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "",
        "class Recorder:",
        '    """Where a component reports events (engine.events.EventLog implements it)."""',
        "",
        "    __slots__ = ()",
    ]
    for kind in FIELDS:
        out += ["", *_def(kind), "        raise NotImplementedError"]
    out += ["", "", "class RecordKinds(Recorder):",
            '    """Record mode: each event a tuple appended to ``buf``."""', "",
            "    __slots__ = ()", "    buf: list[tuple[Any, ...]]"]
    for kind, fields in FIELDS.items():
        items = [f'"{kind}"', *fields]
        out += ["", *_def(kind),
                *_wrap("        self.buf.append((", items, ",))" if not fields else "))", 25)]
    counted = [k for k in FIELDS if k not in COUNTED_BY_HAND]
    out += ["", "", "class Counters(Recorder):",
            '    """The counters of CountKinds. Both modes derive from this class, so a',
            "    log can switch between them by changing its class (engine.events.EventLog).",
            '    """', "",
            *_wrap("    __slots__ = (", [f'"n_{k}"' for k in counted], ")", 17)]
    out += [f"    n_{kind}: int" for kind in counted]
    out += ["", "", "class CountKinds(Counters):",
            '    """Count mode, for the kinds that are one counter each."""', "", "    __slots__ = ()"]
    for kind in counted:
        out += ["", *_def(kind), f"        self.n_{kind} += 1"]
    out += ["", "", "COUNT_SLOTS: tuple[str, ...] = Counters.__slots__", ""]
    return "\n".join(out)
