# SPDX-License-Identifier: GPL-2.0-only
"""The TLB / MMU model: geometry, contiguous entries, invalidation, the
hardware AF/dirty update, TLB conflicts and stale-entry detection."""

from mmhelp import run

from engine.events import EventLog
from engine.granule import G4K
from engine.hw.cpus import CPUS, TlbGeometry
from engine.hw.tlb import CONT, PAGE, TLB
from engine.ops import Op
from engine.pte import PTE_AF, PTE_RDONLY

FOLD_AFTER_CACHING = """
mthp 64K=always
mmap b 64K
touch b write
mprotect b +60K 4K r
touch b +0 60K read
mprotect b +60K 4K rw
touch b +60K 4K read
"""


def test_geometry_comes_from_the_cpu_profile():
    log = EventLog()
    t = TLB(CPUS["neoverse-n1"], 12, 4, 21, log)
    assert (t.nsets, t.ways) == (256, 5)
    # six pages mapping to one set: the least recently used is evicted
    for i in range(6):
        t.fill(1, i * 256 * 4096, PAGE, 0x1000 * i | 0x403)
    assert len(t) == 5
    assert [ev for ev in log.buf if ev[0] == "tlb_evict"] == [("tlb_evict", 0, 1, 4096)]
    assert t.lookup(1, 0) is None and t.lookup(1, 256 * 4096) is not None


def test_a_cont_block_is_one_entry():
    r = run("mthp 64K=always\nmmap b 64K\ntouch b write\ntouch b read\n")
    rd = r.op_counts(2)
    assert (rd["tlb_hits"], rd["tlb_misses"]) == (16, 0)
    wr = r.op_counts(1)
    assert (wr["tlb_misses"], wr["tlb_hits"]) == (2, 15)  # the fault, then the refill
    assert [kind for *_x, kind, _d in r.machine.tlb.items()] == ["cont"]


def test_without_coalescing_every_page_is_an_entry():
    import dataclasses

    cpu = dataclasses.replace(CPUS["neoverse-n1"], tlb=TlbGeometry(1280, 5, 48, cont_coalesce=False))
    from engine.scenario_machine import Machine, MachineConfig

    m = Machine(MachineConfig(cpu=cpu, mthp={"64K": "always"}))
    m.apply(Op("mmap", {"name": "b", "size": 65536}))
    m.apply(Op("touch", {"name": "b", "access": "write"}))
    assert m.last_op["tlb_misses"] == 17
    assert len(m.tlb) == 16


def test_tlbi_removes_what_it_covers():
    r = run("mthp 64K=always\nmmap b 128K\ntouch b read\ntouch b write\nmunmap b +64K 64K\n")
    assert all(va < r.machine.current.regions["b"][0] + 65536 for _a, va, *_ in r.machine.tlb.items())


def test_hardware_sets_af_and_dirty_on_the_walked_entry_only():
    r = run("mthp 64K=always\nmmap b 64K\ntouch b write\nmadvise b free\ntouch b +0 4K write\n",
            "v7.0", "neoverse-n1")
    p = r.machine.current
    base = p.regions["b"][0]
    first, second = p.mm.pt.get(base), p.mm.pt.get(base + 4096)
    assert first & PTE_AF and not first & PTE_RDONLY  # HA + HD on the walked entry
    assert not second & PTE_AF and second & PTE_RDONLY
    assert r.op_counts(3)["hw_update"] == 1 and r.op_counts(3)["page_faults"] == 0


def test_without_hardware_af_the_kernel_sets_it():
    r = run("mthp 64K=always\nmmap b 64K\ntouch b write\nmadvise b cold\ntouch b +0 4K read\n",
            "v7.0", "apple-m2")
    rd = r.op_counts(3)
    assert rd["page_faults"] == 1 and rd["call:ptep_set_access_flags"] == 1
    assert rd["hw_update"] == 0
    p = r.machine.current
    base = p.regions["b"][0]
    assert all(p.mm.pt.get(base + i * 4096) & PTE_AF for i in range(16))  # the whole block


def test_bbml2_fold_leaves_stale_page_entries_a_conflict_but_no_abort():
    r = run(FOLD_AFTER_CACHING, "v7.0", "neoverse-v3")
    fold = r.op_counts(4)
    assert fold["folds"] == 1 and fold["tlbi"] == 1  # only the changed page is flushed
    conflicts = [ev for ev in r.events if ev[0] == "tlb_conflict"]
    assert len(conflicts) == 1 and conflicts[0][3] is False
    assert r.totals["tlb_conflicts"] == 1 and r.totals["invariant_violations"] == 0


def test_without_bbml2_the_fold_flushes_and_nothing_conflicts():
    r = run(FOLD_AFTER_CACHING, "v7.0", "neoverse-n1")
    assert r.op_counts(4)["tlbi"] == 17  # the fold's 16 + the page
    assert r.totals["tlb_conflicts"] == 0
    assert r.machine.tlb.conflicts() == []


def test_pre_v617_kernels_flush_even_on_bbml2_cpus():
    r = run(FOLD_AFTER_CACHING, "v6.9", "neoverse-v3")
    assert r.totals["tlb_conflicts"] == 0


def test_a_missing_flush_is_reported_as_a_stale_tlb_entry():
    r = run("mthp 64K=always\nmmap b 64K\ntouch b write\n")
    m = r.machine
    p = m.current
    base = p.regions["b"][0]
    t, i = p.mm.pt.locate(base)
    for j in range(16):  # write-protect behind the kernel's back, no TLBI
        t[i + j] = (t[i + j] & ~(1 << 51)) | PTE_RDONLY
    m.apply(Op("touch", {"name": "b", "off": 0, "len": 4096, "access": "read"}))
    assert m.last_op["invariant_violations"] == 0  # reading through it is fine
    mark = len(m.log.buf)
    m.apply(Op("touch", {"name": "b", "off": 0, "len": 4096, "access": "write"}))
    stale = [ev for ev in m.log.buf[mark:] if ev[0] == "invariant_violation"]
    assert stale and stale[0][1] == "tlb-stale"


def test_cont_entry_translation_uses_the_block_base():
    log = EventLog()
    t = TLB(CPUS["neoverse-n1"], G4K.page_shift, G4K.cont_pte_log2, G4K.pmd_shift, log)
    t.fill(3, 0x7F0000005000, CONT, 0x80000F43)
    assert t.lookup(3, 0x7F000000F000) == (CONT, 0x80000F43)
    assert t.lookup(4, 0x7F000000F000) is None  # another ASID
    t.invalidate("vale1is", 3, 0x7F0000003000, 1)  # any page of the block drops it
    assert t.lookup(3, 0x7F0000005000) is None
