# SPDX-License-Identifier: GPL-2.0-only
"""One fake process whose thpmaps counters and contpte outcome are worked out
by hand in test_capture_thpmaps.py."""

from __future__ import annotations

from capture_fakes import FakeProc

A = 0x10000000  # anon rw-p, 4M, MADV_HUGEPAGE
B = 0x20000000  # file r--p
C = 0x30000000  # PROT_NONE with present pages
D = 0x40000000  # anon with swapped pages and the zero page


def crafted() -> FakeProc:
    p = FakeProc()
    p.vma(A, 4 << 20, vm_flags=("rd", "wr", "mr", "mw", "me", "ac", "hg"), anon_huge_kb=2048)
    # 1. 64K folio, VA-aligned: thp-pte-aligned-64kB, one --cont 64K block, folds (whole-folio set_ptes)
    p.folio(0x1000, 16)
    p.map(A, 0x1000, 16)
    # 2. 64K folio at a VA 32K into a 64K block: thp-pte-unaligned-64kB, no block
    p.folio(0x1010, 16)
    p.map(A + 0x18000, 0x1010, 16)
    # 3. 128K folio, first 96K mapped: thp-pte-partial 96kB, one block (folds via contpte_try_fold)
    p.folio(0x1020, 32)
    p.map(A + 0x40000, 0x1020, 24)
    # 4. 2M THP, PMD-mapped: thp-pmd-aligned / cont-pmd-aligned, a PMD block entry on 4K
    p.folio(0x40000, 512)
    p.map(A + 0x200000, 0x40000, 512)
    p.pmd_vas.add(A + 0x200000)
    # 5. 64K folio, aligned, but page 5 is shared (not exclusive): eligible, never folds
    p.folio(0x1040, 16)
    p.map(A + 0x80000, 0x1040, 16)
    p.pages[((A + 0x80000) >> 12) + 5] &= ~(1 << 56)
    # 6. order-0 pages, scattered
    for k, pfn in enumerate((0x5000, 0x5007, 0x5003, 0x5010)):
        p.map(A + 0x100000 + k * 4096, pfn)
    # 7. 16K folio (order 2), aligned
    p.folio(0x1060, 4)
    p.map(A + 0xC0000, 0x1060, 4)

    p.vma(B, 0x10000, perms="r--p", path="/usr/lib/libfake.so", inode=1234, vm_flags=("rd", "mr", "mw", "me"))
    p.folio(0x2000, 4, anon=False)
    p.map(B, 0x2000, 4, exclusive=False, file=True)
    p.map(B + 0x4000, 0x3001, file=True, exclusive=False)
    p.map(B + 0x5000, 0x3005, file=True, exclusive=False)

    p.vma(C, 0x10000, perms="---p", vm_flags=("mr", "mw", "me", "ac"))
    p.map(C, 0x6000)
    p.map(C + 0x1000, 0x6001)

    p.vma(D, 0x10000)
    p.swap(D, 1, 0x100, 4)
    p.map_zero(D + 0x8000, 2)
    return p
