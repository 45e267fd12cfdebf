# SPDX-License-Identifier: GPL-2.0-only
"""Events and counters.

The engine records every state change and every cost as an *event*: a plain
tuple ``(kind, field1, field2, ...)`` appended to an :class:`EventLog`. Tuples
keep the hot paths cheap; :class:`Event` gives the attribute view that the
Python API (``sim.events``) promises, built on demand.

Field layouts are listed once, in :data:`FIELDS`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
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
    # core mm bookkeeping that has no descriptor write of its own
    "mm": ("what", "addr", "detail"),
}

# Counter names promised by DESIGN.md, in display order.
COUNTER_NAMES = (
    "ops", "pte_reads", "pte_writes", "converts", "folds", "unfolds", "flush_tlb_range",
    "tlbi", "dsb", "page_faults", "tlb_hits", "tlb_misses", "tlb_conflicts",
    "invariant_violations", "cycles", "cont_blocks",
)


# Kinds counted per value of one field (the field's index in the tuple).
_SUBFIELD = {"pte_write": 4, "pmd_write": 4, "tlbi": 1, "dsb": 1, "call": 1, "flush_tlb_range": 8,
             "mm": 1}
# Kinds whose public counter has another name.
_RENAME = {"pte_read": "pte_reads", "convert": "converts", "fold": "folds", "unfold": "unfolds",
           "tlb_hit": "tlb_hits", "tlb_miss": "tlb_misses", "tlb_conflict": "tlb_conflicts",
           "page_fault": "page_faults", "invariant_violation": "invariant_violations"}


class Event:
    """Attribute view of one event tuple (``ev.kind``, ``ev.addr``, ...)."""

    __slots__ = ("raw",)

    def __init__(self, raw: tuple):
        self.raw = raw

    @property
    def kind(self) -> str:
        return self.raw[0]

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


class EventLog:
    """Where events go.

    In *record* mode (the default) ``emit`` is the bound ``append`` of a list,
    so every event is kept. In *count* mode ``emit`` only aggregates counters
    (memory stays flat however long an op runs); the session uses it for bulk
    execution and re-runs an op in record mode when the user steps into it.

    Components keep a reference to ``emit``; call :meth:`subscribe` with a
    callback that re-reads it, because switching modes replaces it. The buffer
    is only ever cleared in place.
    """

    __slots__ = ("buf", "emit", "raw", "recording", "_subscribers")

    def __init__(self, record: bool = True) -> None:
        self.buf: list[tuple] = []
        self.raw: dict = {}  # count mode: raw_count() keys
        self.recording = record
        self._subscribers: list = []
        self.emit = self.buf.append if record else self._count_one

    def _count_one(self, ev: tuple, _sub: dict = _SUBFIELD) -> None:
        k = ev[0]
        i = _sub.get(k)
        key = k if i is None else (k, ev[i])
        raw = self.raw
        raw[key] = raw.get(key, 0) + 1

    def set_recording(self, record: bool) -> None:
        if record == self.recording:
            return
        self.recording = record
        self.emit = self.buf.append if record else self._count_one
        for cb in self._subscribers:
            cb()

    def subscribe(self, callback) -> None:
        self._subscribers.append(callback)

    def __len__(self) -> int:
        return len(self.buf)

    def clear(self) -> None:
        del self.buf[:]
        self.raw.clear()

    def mark(self) -> int:
        return len(self.buf)

    def since(self, mark: int) -> list[tuple]:
        return self.buf[mark:]

    def views(self, start: int = 0) -> list[Event]:
        return [Event(t) for t in self.buf[start:]]

    def totals(self) -> Counter:
        """Counters of everything emitted since the last clear()."""
        return expand_counts(raw_count(self.buf, dict(self.raw)))


def raw_count(events: Iterable[tuple], raw: dict | None = None) -> dict:
    """Cheap first pass: counts keyed by kind, or (kind, field) for sub-keyed kinds."""
    raw = {} if raw is None else raw
    sub = _SUBFIELD
    get = raw.get
    for ev in events:
        k = ev[0]
        i = sub.get(k)
        key = k if i is None else (k, ev[i])
        raw[key] = get(key, 0) + 1
    return raw


def expand_counts(raw: dict, into: Counter | None = None) -> Counter:
    """Turn raw counts into the public counter names (DESIGN.md's plus details:
    ``tlbi_<op>``, ``dsb_<domain>``, ``pte_xchg``/``pte_cmpxchg``, ``call:<fn>``,
    ``mm_<what>``, ``events``)."""
    c: Counter = into if into is not None else Counter()
    total = 0
    for key, n in raw.items():
        total += n
        if key.__class__ is tuple:
            k, v = key
            if k == "pte_write":
                c["pte_writes"] += n
                if v != "store":
                    c["pte_" + v] += n
            elif k == "pmd_write":
                c["pmd_writes"] += n
            elif k == "tlbi":
                c["tlbi"] += n
                c["tlbi_" + v] += n
            elif k == "dsb":
                c["dsb"] += n
                c["dsb_" + v] += n
            elif k == "call":
                c["call:" + v] += n
            elif k == "flush_tlb_range":
                c["flush_tlb_range"] += n
                if v:
                    c["flush_tlb_range_whole_mm"] += n
            elif k == "mm":
                c["mm_" + str(v)] += n
            else:  # pragma: no cover - every sub-keyed kind is handled above
                c[k] += n
        elif key == "ret":
            continue
        else:
            c[_RENAME.get(key, key)] += n
    c["events"] += total
    return c


def count_events(events: Iterable[tuple], into: Counter | None = None) -> Counter:
    """Aggregate event tuples into counters (see expand_counts for the names)."""
    return expand_counts(raw_count(events), into)


def iter_views(events: Iterable[tuple]) -> Iterator[Event]:
    for ev in events:
        yield Event(ev)
