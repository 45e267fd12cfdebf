# SPDX-License-Identifier: GPL-2.0-only
"""Copy-on-write snapshots and the incremental digest of PageTable."""

from engine.granule import G4K, G16K
from engine.state.pagetable import PageTable

BASE = 0x7F00_0000_0000


def test_snapshot_restore_is_copy_on_write():
    pt = PageTable(G4K)
    pt.set(BASE, 0x111)
    pt.set(BASE + (2 << 20), 0x222)  # another table
    snap = pt.snapshot()
    t_before = pt.tables[BASE >> 21]
    pt.set(BASE + 4096, 0x333)  # first write after the snapshot copies the table
    assert pt.tables[BASE >> 21] is not t_before
    assert pt.tables[(BASE + (2 << 20)) >> 21] is snap.tables[(BASE + (2 << 20)) >> 21]  # untouched: shared
    pt.restore(snap)
    assert pt.get(BASE + 4096) == 0 and pt.get(BASE) == 0x111
    pt.set(BASE, 0x999)  # writing after restore must not corrupt the snapshot
    pt.restore(snap)
    assert pt.get(BASE) == 0x111


def test_digest_equal_iff_contents_equal_and_incremental():
    a, b = PageTable(G16K), PageTable(G16K)
    for pt in (a, b):
        pt.set(BASE, 5)
        pt.set(BASE + (32 << 20), 7)
    assert a.digest() == b.digest()
    d0 = a.digest()
    a.set(BASE, 6)
    assert a.digest() != d0
    a.set(BASE, 5)
    assert a.digest() == d0  # back to the same contents
    snap = a.snapshot()
    a.set(BASE + 16384, 1)
    d1 = a.digest()
    a.restore(snap)
    assert a.digest() == d0 and d1 != d0
    a.set_pmd(BASE + (64 << 20), 0x40000000 | 0x701)
    assert a.digest() != d0


def test_plain_round_trip():
    pt = PageTable(G4K)
    pt.set(BASE + 12 * 4096, 0xABC)
    pt.set_pmd(BASE + (4 << 20), 0x1234001)
    back = PageTable.from_plain(G4K, pt.to_plain())
    assert back.get(BASE + 12 * 4096) == 0xABC and back.get_pmd(BASE + (4 << 20)) == 0x1234001
    assert back.digest() == pt.digest()
