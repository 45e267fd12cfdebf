# SPDX-License-Identifier: GPL-2.0-only
"""The Machine contract of docs/architecture.md: apply, counters, state /
restore, plain form, digest, determinism, bad input before mutation."""

import json

import msgpack
import pytest

from engine.errors import ScenarioError
from engine.events import COUNTER_NAMES
from engine.ops import Op
from engine.scenario import parse
from engine.scenario_machine import Machine, MachineConfig

PROGRAM = """
mthp 64K=always
mmap heap 1M
mmap f 256K file shared
touch heap +0 256K write
fork child
switch child
touch heap +64K 4K write
switch p0
read f
touch f write
mprotect heap +128K 64K r
reclaim
touch heap +0 64K read
migrate heap +192K 64K
"""


def _machine(**kw) -> tuple[Machine, list[Op]]:
    s = parse(PROGRAM)
    return Machine(s.config(**kw)), list(s.ops)


def test_counters_use_the_design_names():
    m, ops = _machine()
    for op in ops:
        m.apply(op)
    c = m.counters()
    assert list(c) == list(COUNTER_NAMES)
    assert c["ops"] == len(ops)
    assert c["cycles"] > 0 and c["pte_writes"] > 0 and c["page_faults"] > 0
    json.dumps(c)


def test_apply_returns_the_op_counters_and_totals_add_up():
    m, ops = _machine()
    per = [m.apply(op) for op in ops]
    for key in ("pte_writes", "converts", "tlbi", "page_faults"):
        assert sum(c[key] for c in per) == m.counters()[key]
    assert sum(c["cycles"] for c in per) == pytest.approx(m.totals["cycles"])


def test_events_are_deterministic():
    a, ops = _machine()
    b, _ = _machine()
    for op in ops:
        a.apply(op)
        b.apply(op)
    assert a.log.buf == b.log.buf
    assert a.digest() == b.digest()


def test_restore_replays_bit_for_bit():
    m, ops = _machine()
    for op in ops[:5]:
        m.apply(op)
    st = m.state()
    d0 = m.digest()
    mark = len(m.log.buf)
    for op in ops[5:]:
        m.apply(op)
    after = m.log.buf[mark:]
    d1 = m.digest()
    assert d1 != d0
    m.restore(st)
    assert m.digest() == d0
    mark = len(m.log.buf)
    for op in ops[5:]:
        m.apply(op)
    assert m.log.buf[mark:] == after
    assert m.digest() == d1
    # a state can be restored more than once
    m.restore(st)
    assert m.digest() == d0


def test_plain_state_round_trips_through_msgpack():
    m, ops = _machine()
    for op in ops[:8]:
        m.apply(op)
    plain = m.state_to_plain(m.state())
    blob = msgpack.packb(plain, use_bin_type=True)
    back = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    other, _ = _machine()
    other.restore(other.state_from_plain(back))
    assert other.digest() == m.digest()
    mark = len(m.log.buf)
    for op in ops[8:]:
        m.apply(op)
    omark = len(other.log.buf)
    for op in ops[8:]:
        other.apply(op)
    assert other.log.buf[omark:] == m.log.buf[mark:]


def test_digest_differs_for_different_states():
    a, ops = _machine()
    b, _ = _machine()
    for op in ops[:4]:
        a.apply(op)
    for op in ops[:3]:
        b.apply(op)
    assert a.digest() != b.digest()


def test_seed_changes_aged_memory_layout():
    a = Machine(MachineConfig(memory=64 << 20, aged=0.05, seed=1))
    b = Machine(MachineConfig(memory=64 << 20, aged=0.05, seed=2))
    c = Machine(MachineConfig(memory=64 << 20, aged=0.05, seed=1))
    assert a.digest() != b.digest()
    assert a.digest() == c.digest()


@pytest.mark.parametrize("op,message", [
    (Op("touch", {"name": "nope", "access": "read"}), "no mapping named 'nope'"),
    (Op("touch", {"name": "heap", "off": 1 << 20, "len": 4096, "access": "read"}), "outside mapping"),
    (Op("mprotect", {"name": "heap", "off": 100, "len": 4096, "prot": "r"}), "multiples of the 4K page"),
    (Op("bogus", {}), "unknown verb"),
    (Op("switch", {"proc": "ghost"}), "no running process named 'ghost'"),
    (Op("mmap", {"name": "heap", "size": 4096}), "already exists"),
    (Op("mremap", {"name": "heap", "addr": 0x1001}), "page-aligned"),
    (Op("collapse", {"name": "f", "off": 0}), "PMD range"),
])
def test_bad_input_is_rejected_before_any_change(op, message):
    m, ops = _machine()
    for o in ops[:4]:
        m.apply(o)
    d = m.digest()
    n = len(m.log.buf)
    with pytest.raises(ScenarioError, match=message):
        m.apply(op)
    assert m.digest() == d and len(m.log.buf) == n


def test_address_outside_any_vma_after_munmap():
    m, ops = _machine()
    m.apply(ops[0])
    m.apply(Op("munmap", {"name": "heap", "off": 64 << 10, "len": 64 << 10}))
    with pytest.raises(ScenarioError, match=r"outside any VMA"):
        m.apply(Op("touch", {"name": "heap", "off": 0, "len": 256 << 10, "access": "read"}))


def test_write_to_read_only_mapping_is_a_scenario_error():
    m = Machine(MachineConfig())
    m.apply(Op("mmap", {"name": "ro", "size": 65536, "prot": "r"}))
    with pytest.raises(ScenarioError, match="SIGSEGV"):
        m.apply(Op("touch", {"name": "ro", "access": "write"}))


def test_process_list_current_and_folio_info():
    m, ops = _machine()
    for op in ops[:7]:
        m.apply(op)
    procs = m.process_list()
    assert [p.name for p in procs] == ["p0", "child"]
    assert m.current.name == "p0"
    heap = next(v for v in procs[0].vmas if v.name == "heap")
    assert (heap.prot, heap.anon, heap.shared) == ("rw", True, False)
    pfn = m.arch.pte_pfn(procs[0].mm.pt.get(heap.start))
    info = m.folio_info(pfn)
    assert info["order"] == 4 and info["anon"]
    # shared with the child: two mappings per page, not exclusive any more
    assert info["mapcount"] == 32 and info["refcount"] == 32 and not info["anon_exclusive"]
    assert info["page_mapcount"] == 2


def test_tlb_is_inspectable():
    m, ops = _machine()
    for op in ops[:3]:
        m.apply(op)
    items = m.tlb.items()
    assert items and all(asid == 1 for asid, *_ in items)
    assert any(kind == "cont" and size == 64 << 10 for _a, _v, size, kind, _d in items)
    m.apply(ops[3])  # fork: dup_mmap ends with flush_tlb_mm(parent)
    assert m.tlb.items() == []


def test_count_mode_gives_the_same_totals():
    rec, ops = _machine()
    cnt, _ = _machine(record=False)
    for op in ops:
        rec.apply(op)
        cnt.apply(op)
    assert rec.counters() == cnt.counters()
    assert not cnt.log.buf


def test_fold_policy_is_honoured():
    text = "mthp 64K=always\nmmap b 64K\ntouch b write\nmprotect b +16K 4K r\nmprotect b +16K 4K rw\n"
    mainline = Machine(parse(text).config())
    anyentry = Machine(parse(text).config(policy="any-entry"))
    never = Machine(parse(text).config(policy="never", kernel="v6.9"))
    for m in (mainline, anyentry, never):
        for op in parse(text).ops:
            m.apply(op)
    assert mainline.counters()["cont_blocks"] == 0  # a middle page never refolds
    assert anyentry.counters()["cont_blocks"] == 1  # any entry may fold
    assert never.counters()["folds"] == 0


def test_scan_policy_folds_periodically():
    text = ("mthp 64K=always\nmmap b 64K\ntouch b write\nmprotect b +16K 4K r\n"
            "mprotect b +16K 4K rw\ntouch b read\ntouch b read\ntouch b read\ntouch b read\n")
    m = Machine(parse(text).config(policy="scan"))
    folds = []
    for op in parse(text).ops:
        folds.append(m.apply(op)["folds"])
    assert m.policy.scan_interval == 8
    assert folds[7] == 1 and sum(folds) == 1  # the 8th op's scan refolds the block
    assert m.counters()["cont_blocks"] == 1
