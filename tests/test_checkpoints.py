# SPDX-License-Identifier: GPL-2.0-only
"""Checkpoints share what did not change and restore exactly.

Machine.state() shares page tables copy-on-write with the live machine and
freezes physical-memory and swap maps into chunks shared with the previous
checkpoint; restoring any checkpoint, however old, must give back exactly
that state: the same digest, and the same events when the same ops run again.
"""

from __future__ import annotations

from array import array

import msgpack

from engine.scenario import parse
from engine.scenario_machine import Machine, MachineConfig
from engine.state.chunks import CHUNK, freeze, thaw_array

OPS = list(parse("""
mmap a 8M
touch a write
mmap b 2M
touch b +0 1M write
fork child
switch child
touch a +1M 2M write
munmap b
switch p0
madvise a +4M 1M dontneed
mprotect a +0 1M r
reclaim
touch a +4M 512K write
""").ops)


def _machine(record: bool = True) -> Machine:
    return Machine(MachineConfig(memory=64 << 20, swap=16 << 20, mthp={"64K": "always"}, record=record))


def _events(m: Machine, ops) -> list[tuple]:
    out = []
    for op in ops:
        mark = len(m.log.buf)
        m.apply(op)
        out.append(list(m.log.buf[mark:]))
    return out


def test_every_checkpoint_restores_exactly() -> None:
    m = _machine()
    states, digests, events = [], [], []
    for op in OPS:
        states.append(m.state())
        digests.append(m.digest())
        events.append(_events(m, [op])[0])
    final = m.digest()
    for k in (len(OPS) - 1, 0, 5, 2, len(OPS) - 3):  # any order, old ones too
        m.restore(states[k])
        assert m.digest() == digests[k]
        assert _events(m, OPS[k:]) == events[k:]
        assert m.digest() == final


def test_a_checkpoint_does_not_see_later_writes() -> None:
    m = _machine()
    for op in OPS[:4]:
        m.apply(op)
    st = m.state()
    before = {p.name: {k: t.tobytes() for k, t in p.mm.pt.tables.items()} for p in st["procs"]}
    pm_before = st["pm"].to_plain(joined=True)
    for op in OPS[4:]:
        m.apply(op)
    assert {p.name: {k: t.tobytes() for k, t in p.mm.pt.tables.items()} for p in st["procs"]} == before
    assert st["pm"].to_plain(joined=True) == pm_before


def test_consecutive_checkpoints_share_unchanged_chunks() -> None:
    m = _machine(record=False)
    for op in OPS[:2]:
        m.apply(op)
    a = m.state()
    m.apply(OPS[2])  # touches 1M more: few chunks change
    b = m.state()
    for name, chunks in b["pm"].arrays.items():
        shared = sum(x is y for x, y in zip(a["pm"].arrays[name], chunks, strict=True))
        assert shared >= len(chunks) - 2, name
    assert all(x is y for x, y in zip(a["swap"].count, b["swap"].count, strict=True))


def test_plain_checkpoints_round_trip_in_both_forms() -> None:
    m = _machine()
    for op in OPS[:7]:
        m.apply(op)
    st = m.state()
    digest = m.digest()
    for joined in (False, True):  # chunk lists (new files) and one bytes value (older files)
        plain = msgpack.unpackb(msgpack.packb(m.state_to_plain(st, joined=joined)), strict_map_key=False)
        m2 = _machine()
        m2.restore(m2.state_from_plain(plain))
        assert m2.digest() == digest
    m3 = _machine()
    m3.restore(m3.state_from_plain(m.state_to_plain(st)))
    m.restore(st)
    assert _events(m3, OPS[7:]) == _events(m, OPS[7:])


def test_freeze_shares_by_content_never_by_hash() -> None:
    a = array("i", range(3 * CHUNK))
    first = freeze(a)
    a[CHUNK // 4 + 1] += 1  # second chunk changes
    second = freeze(a, first)
    assert second[0] is first[0] and second[1] is not first[1] and second[2] is first[2]
    assert thaw_array("i", second) == a
    b = array("i", a)
    b.append(0)  # a different size shares nothing
    assert thaw_array("i", freeze(b, second)) == b


# --- where a session keeps them (engine.checkpoints.CheckpointStore) ---------------------------

def test_the_store_takes_checkpoints_every_interval_and_thins_them_to_its_bound():
    from engine.checkpoints import CheckpointStore

    store = CheckpointStore("s0", every_ops=2, every_events=1000, max_count=4)
    for k in range(1, 13):
        store.after_op(k, 1, lambda k=k: f"s{k}")
    # 2, 4, 6, 8 taken; the fifth made it thin to 0, 4, 8 and space them 4 apart: then 12
    assert store.keys() == [0, 4, 8, 12] and store.every_ops == 4
    assert [store.at_or_before(k) for k in (0, 3, 4, 11, 99)] == [0, 0, 4, 8, 12]
    assert store.get(8) == "s8"
    by_events = CheckpointStore("s0", every_ops=100, every_events=10)
    by_events.after_op(1, 6, lambda: "s1")
    by_events.after_op(2, 5, lambda: "s2")  # 11 events of work since op 0
    assert by_events.keys() == [0, 2]


def test_a_lazy_checkpoint_is_loaded_once_through_the_loader():
    import pytest

    from engine.checkpoints import LAZY, CheckpointStore
    from engine.errors import SessionError

    store = CheckpointStore("s0")
    store.states[5] = LAZY
    with pytest.raises(SessionError, match="checkpoint 5 is not loaded"):
        store.get(5)
    loads = []
    store.loader = lambda c: loads.append(c) or f"loaded {c}"
    assert store.get(5) == store.get(5) == "loaded 5" and loads == [5]


def test_a_snapshot_keeps_every_other_checkpoint_by_ops_or_by_events():
    from engine.checkpoints import CheckpointStore, spaced

    store = CheckpointStore("s0", every_ops=2, every_events=1000)
    for k in range(1, 11):
        store.after_op(k, 1, lambda k=k: f"s{k}")
    assert store.keys() == [0, 2, 4, 6, 8, 10]
    assert store.saved(lambda j: 1) == [0, 4, 8]  # twice the store's intervals
    # ops heavy in events are kept one by one: 60 events an op, 50 events an interval
    events = {0: 60, 1: 60, 2: 1, 3: 1, 4: 1, 5: 1, 6: 30, 7: 30}
    assert spaced(list(range(9)), events.__getitem__, every_ops=4, every_events=50) == [0, 1, 2, 6, 8]


def test_a_checkpoint_shares_an_undrawn_rng_and_keeps_the_tlb_flat() -> None:
    m = _machine(record=False)
    for op in OPS[:3]:
        m.apply(op)
    a = m.state()
    m.apply(OPS[3])  # a touch draws nothing from the generator
    b = m.state()
    assert b["rng"] is a["rng"]
    m.rng.random()
    c = m.state()
    assert c["rng"] is not b["rng"] and c["rng"] == m.rng.getstate()
    # the flat TLB state gives back the same entries, LRU sets and snapshot form
    tlb = m.mmu.tlb
    entries, sets = tuple(dict(e) for e in tlb.entries), [list(s) for s in tlb.sets]
    assert sum(map(len, entries)) > 100
    plain = tlb.state_to_plain(c["tlb"])
    assert plain == {"entries": [[[k, d] for k, d in sorted(e.items())] for e in entries],
                     "sets": [[[cls, key] for cls, key in s] for s in sets]}
    flat_entries, lens, pairs = tlb.state_from_plain(plain)  # entries sorted, as files have them
    assert (lens, pairs) == c["tlb"][1:]
    assert [dict(zip(f[::2], f[1::2], strict=True)) for f in flat_entries] == list(entries)
    m.apply(OPS[4])
    tlb.restore_state(c["tlb"])
    assert tlb.entries == entries and tlb.sets == sets
