# SPDX-License-Identifier: GPL-2.0-only
"""The recorder interface (engine/recorder.py) and its two implementations.

The interface is generated from engine.events.FIELDS; record mode keeps each
event as its tuple, count mode only what count_events would make of those
tuples (and the blocks written). Both must hold for every kind and every bulk
form, whatever the order and the mode switches.
"""

from __future__ import annotations

import random
from array import array
from itertools import repeat

from engine.events import (
    COUNTED_BY_HAND,
    FIELDS,
    RECORDER_PATH,
    CountLog,
    EventLog,
    RecordLog,
    count_events,
    recorder_source,
)
from engine.recorder import Recorder

# one plausible value per field name (the interface does not check types)
_VALUES = {"atomic": ("store", "xchg", "cmpxchg"), "op": ("vale1is", "rvale1is", "aside1is"),
           "domain": ("ish", "ishst", "nsh"), "name": ("set_ptes", "clear_full_ptes", "ptep_get",
                                                        "__set_ptes", "do_anonymous_page"),
           "what": ("mm_page", "mm_folio", "folio_alloc", "rmap_add_new_anon", "mm_zero_page"),
           "mm": ("p0", "child"), "reason": ("translation", "permission"), "rule": ("cont",),
           "message": ("m",)}


def _value(rng: random.Random, kind: str, field: str):
    if field in _VALUES:
        return rng.choice(_VALUES[field])
    if field == "args":
        return ("p0", 0x1000, 0x40, rng.choice((1, 1, 2, 16)))
    if field == "detail":
        return rng.choice((0, 1, 3, 512, "p0"))
    if field in ("last_level", "sync", "broadcast", "whole_mm", "cont", "abort", "write"):
        return rng.random() < 0.5
    return rng.randrange(0, 1 << 20) << 12


def _random_events(rng: random.Random, n: int) -> list[tuple]:
    out = []
    kinds = list(FIELDS)
    for _ in range(n):
        kind = rng.choice(kinds)
        ev = (kind, *(_value(rng, kind, f) for f in FIELDS[kind]))
        if kind == "mm" and ev[1].startswith("mm_") and not isinstance(ev[3], int):
            ev = ev[:3] + (1,)  # a cost counter's detail is a number of units
        out.append(ev)
    return out


def test_the_generated_recorder_is_up_to_date() -> None:
    assert RECORDER_PATH.read_text() == recorder_source(), \
        "engine/recorder.py is out of date: run python scripts/gen_recorder.py"


def test_every_kind_has_a_method_in_both_modes() -> None:
    for kind in FIELDS:
        for cls in (RecordLog, CountLog):
            assert getattr(cls, kind) is not getattr(Recorder, kind), (cls.__name__, kind)
        # count mode: generated for one-counter kinds, by hand for the others
        assert (kind in COUNTED_BY_HAND) == (kind in CountLog.__dict__), kind


def test_record_mode_keeps_each_event_as_its_tuple() -> None:
    rng = random.Random(1)
    evs = _random_events(rng, 500)
    log = EventLog()
    for ev in evs:
        getattr(log, ev[0])(*ev[1:])
    assert log.buf == evs


def test_count_mode_counts_what_count_events_counts() -> None:
    rng = random.Random(2)
    evs = _random_events(rng, 3000)
    log = EventLog(record=False)
    for i, ev in enumerate(evs):
        log.emit(ev)
        if i == 1000:
            assert log.events_so_far() == 1001
    assert not log.buf
    assert log.events_so_far() == len(evs)
    assert +log.counts == +count_events(evs)
    writes = {ev[1] & ~0xFFFF for ev in evs if ev[0] == "pte_write"}
    assert log.written == writes


def test_mode_switches_keep_the_counters() -> None:
    rng = random.Random(3)
    evs = _random_events(rng, 600)
    log = EventLog(record=False)
    for i, ev in enumerate(evs):
        if i % 150 == 0:
            log.set_recording(i % 300 == 0)
        log.emit(ev)
    assert log.events_so_far() == len(evs)
    assert +log.totals() == +count_events(evs)
    log.clear()
    assert log.events_so_far() == 0 and not log.totals()


def _bulk(log: EventLog) -> None:
    old = array("Q", range(0x1000, 0x1000 + 40 * 0x1000, 0x1000))
    new = array("Q", (v | 1 for v in old))
    log.pte_reads(0x7F0000000000, old, "p0")
    log.pte_writes(0x7F000000E000, old, new, "store", "p0")
    log.pte_writes(0x7F0000020000, old[:3], repeat(0), "xchg", "p0")
    log.pte_read_writes(0x7F0000040000, old, new, "cmpxchg", "child")
    log.none_reads("ptep_get_lockless", 0x7F0000080000, 7, "p0")
    log.tlb_hits(0x7F0000090000, 5, 3, 0x10000)


def _per_entry(log: EventLog) -> None:
    old = list(range(0x1000, 0x1000 + 40 * 0x1000, 0x1000))
    new = [v | 1 for v in old]
    for i, v in enumerate(old):
        log.pte_read(0x7F0000000000 + i * 0x1000, v, "p0")
    for i, (v, w) in enumerate(zip(old, new, strict=True)):
        log.pte_write(0x7F000000E000 + i * 0x1000, v, w, "store", "p0")
    for i, v in enumerate(old[:3]):
        log.pte_write(0x7F0000020000 + i * 0x1000, v, 0, "xchg", "p0")
    for i, (v, w) in enumerate(zip(old, new, strict=True)):
        log.pte_read(0x7F0000040000 + i * 0x1000, v, "child")
        log.pte_write(0x7F0000040000 + i * 0x1000, v, w, "cmpxchg", "child")
    for i in range(7):
        a = 0x7F0000080000 + i * 0x1000
        log.call("ptep_get_lockless", ("p0", a))
        log.pte_read(a, 0, "p0")
        log.ret("ptep_get_lockless", 0)
    for i in range(5):
        log.tlb_hit(0x7F0000090000 + i * 0x1000, 3, 0x10000)


def test_bulk_forms_are_their_per_entry_events() -> None:
    a, b = EventLog(), EventLog()
    _bulk(a)
    _per_entry(b)
    assert a.buf == b.buf
    c, d = EventLog(record=False), EventLog(record=False)
    _bulk(c)
    _per_entry(d)
    assert c.events_so_far() == d.events_so_far() == len(a.buf)
    assert c.counts == d.counts == count_events(a.buf)
    assert c.written == d.written


def test_the_log_follows_its_granule() -> None:
    log = EventLog(record=False)
    log.bind_granule(16384, 128)  # 16K: 2M blocks
    log.pte_writes(0x7F0000000000 + 127 * 16384, [1, 2], repeat(0), "xchg", "p0")
    assert log.written == {0x7F0000000000, 0x7F0000200000}
    log.set_recording(True)
    log.pte_reads(0x4000, [5, 6], "p0")
    assert [ev[1] for ev in log.buf] == [0x4000, 0x8000]
