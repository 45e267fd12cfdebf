# SPDX-License-Identifier: GPL-2.0-only
"""Descriptors and granules: values worked out from pgtable-hwdef.h,
pgtable-prot.h and the pgtable.h helpers."""

import pytest

from engine import pte as P
from engine.granule import G4K, G16K, G64K, granule


@pytest.mark.parametrize("g, shift, ptrs, cont, cont_size, pmd", [
    (G4K, 12, 512, 16, 64 << 10, 2 << 20),
    (G16K, 14, 2048, 128, 2 << 20, 32 << 20),
    (G64K, 16, 8192, 32, 2 << 20, 512 << 20),
])
def test_granule_constants_match_pgtable_hwdef(g, shift, ptrs, cont, cont_size, pmd):
    assert g.page_shift == shift
    assert g.ptrs_per_pte == ptrs
    assert g.cont_ptes == cont
    assert g.cont_pte_size == cont_size
    assert g.pmd_size == pmd
    assert g.max_dvm_ops == ptrs


def test_granule_parsing():
    assert granule("16k") is G16K and granule(65536) is G64K and granule("4096") is G4K
    with pytest.raises(ValueError, match="unknown granule"):
        granule("8K")


def test_user_protections_pgtable_prot():
    assert P.PAGE_READONLY == 0x0060000000000FC3
    assert P.PAGE_READONLY_EXEC == 0x0020000000000FC3
    assert P.PAGE_SHARED == 0x0068000000000FC3
    assert P.PAGE_SHARED_EXEC == 0x0028000000000FC3
    assert P.PAGE_EXECONLY == 0x0020000000000F83
    assert P.PAGE_NONE == 0x0060000000000F82
    assert P.PAGE_NONE_V69 == 0x0460000000000F82


def test_anon_write_fault_entry_worked_example():
    """contpte-arch-spec §1.8: PAGE_READONLY + pte_mkdirty + pte_mkwrite, pfn 0x80010."""
    v = P.pte_mkwrite(P.pte_mkdirty(P.pfn_pte(0x80010, P.PAGE_READONLY)))
    assert v == 0x00E8000080010F43
    assert P.pte_mkcont(v) == 0x00F8000080010F43


def test_pte_mkwrite_v69_always_dirties_v618_keeps_clean():
    clean = P.pfn_pte(0x1234, P.PAGE_READONLY)
    assert P.LAYOUT_V69.pte_mkwrite_novma(clean) & P.PTE_RDONLY == 0  # hw-dirty
    assert P.LAYOUT_V610.pte_mkwrite_novma(clean) & P.PTE_RDONLY == 0
    v = P.LAYOUT_V618.pte_mkwrite_novma(clean)
    assert v & P.PTE_RDONLY and v & P.PTE_WRITE and not P.pte_dirty(v)  # writable-clean
    assert P.LAYOUT_V618.pte_mkwrite_novma(P.pte_mkdirty(clean)) & P.PTE_RDONLY == 0


def test_dbm_states():
    v = P.pfn_pte(1, P.PAGE_SHARED)  # clean + RW: RDONLY=1 WRITE=1
    assert P.pte_write(v) and not P.pte_dirty(v)
    hw = v & ~P.PTE_RDONLY
    assert P.pte_hw_dirty(hw) and P.pte_dirty(hw)
    wp = P.pte_wrprotect(hw)  # hardware dirty moves into PTE_DIRTY
    assert wp & P.PTE_DIRTY and wp & P.PTE_RDONLY and not wp & P.PTE_WRITE
    assert P.pte_mkclean(hw) == v
    assert P.pte_mkdirty(v) == hw | P.PTE_DIRTY


def test_pfn_encoding_per_granule():
    for g in (G4K, G16K, G64K):
        v = P.pfn_pte(0x1234, P.PAGE_READONLY, g)
        assert v == (0x1234 << g.page_shift) | P.PAGE_READONLY
        assert P.pte_pfn(v, g) == 0x1234
        assert P.pte_pgprot(v, g) == P.PAGE_READONLY
        assert P.pte_advance_pfn(v, 3, g) == P.pfn_pte(0x1237, P.PAGE_READONLY, g)


def test_protnone_layouts():
    assert P.LAYOUT_V69.pte_protnone(P.PAGE_NONE_V69)
    assert P.LAYOUT_V69.pte_present(P.PAGE_NONE_V69 | (5 << 12))
    assert not P.LAYOUT_V69.pte_present(P.PAGE_NONE)  # NG alone is nothing in v6.9
    assert P.LAYOUT_V618.pte_protnone(P.PAGE_NONE)
    assert P.LAYOUT_V618.pte_mkinvalid(P.pfn_pte(7, P.PAGE_READONLY)) == P.pfn_pte(7, P.PAGE_READONLY) & ~1


def test_pte_modify_keeps_cont_and_moves_hw_dirty():
    v = P.pte_mkcont(P.pte_mkwrite(P.pte_mkdirty(P.pfn_pte(9, P.PAGE_READONLY))))
    ro = P.pte_modify(v, P.PAGE_READONLY)
    assert ro & P.PTE_CONT and ro & P.PTE_DIRTY and not ro & P.PTE_WRITE and ro & P.PTE_RDONLY
    none = P.LAYOUT_V618.pte_modify(v, P.PAGE_NONE)
    assert not none & P.PTE_VALID and none & P.PTE_NG and P.LAYOUT_V618.pte_protnone(none)


def test_swap_entries_both_layouts():
    new = P.LAYOUT_V610.swp_entry_to_pte(3, 0x1234, exclusive=True, uffd_wp=True)
    assert new == (3 << 6) | (0x1234 << 12) | 4 | 8
    old = P.LAYOUT_V69.swp_entry_to_pte(3, 0x1234, exclusive=True)
    assert old == (3 << 3) | (0x1234 << 8) | 4
    for lay, v in ((P.LAYOUT_V610, new), (P.LAYOUT_V69, old)):
        assert lay.swp_type(v) == 3 and lay.swp_offset(v) == 0x1234 and lay.swp_exclusive(v)
        assert not lay.pte_present(v)
    with pytest.raises(ValueError):
        P.LAYOUT_V69.swp_entry_to_pte(1, 1, uffd_wp=True)


def test_pte_modify_po_idx_only_from_v6_12():
    """"arm64: mask out POIndex when modifying a PTE" (POE, [GIT PULL] arm64
    updates for 6.12) added PTE_PO_IDX_MASK to pte_modify()'s mask: v6.10's
    pte_modify keeps the old key bits, v6.17's takes newprot's."""
    v = P.pfn_pte(9, P.PAGE_READONLY) | (5 << 60)
    assert P.LAYOUT_V610.pte_modify(v, P.PAGE_SHARED) & P.PTE_PO_IDX_MASK == 5 << 60
    assert P.LAYOUTS["v6.17"].pte_modify(v, P.PAGE_SHARED) & P.PTE_PO_IDX_MASK == 0
    assert P.LAYOUT_V618.pte_modify(v, P.PAGE_SHARED | (2 << 60)) & P.PTE_PO_IDX_MASK == 2 << 60


def test_pte_devmap_bit_until_v6_16():
    """PTE_DEVMAP (bit 57) exists in the v6.9 and v6.10 layouts and is gone
    in v6.17 ("mm: remove devmap related functions and page table bits",
    MM updates for 6.17-rc1)."""
    assert P.LAYOUT_V69.has_devmap and P.LAYOUT_V610.has_devmap
    assert not P.LAYOUTS["v6.17"].has_devmap and not P.LAYOUT_V618.has_devmap


def test_kernel_profiles_use_the_layout_of_their_release():
    from engine.arch.profiles import PROFILES

    assert {n: p.layout for n, p in PROFILES.items() if n.startswith("v")} == {
        "v6.9": "v6.9", "v6.10": "v6.10", "v6.12": "v6.12", "v6.17": "v6.17", "v6.19": "v6.18",
        "v7.0": "v6.18", "v7.3": "v6.18"}


def test_walker_access_flag_fault_before_permission_fault():
    """Without hardware AF the stage-1 walk raises an Access flag fault before
    any Permission fault is considered (QEMU target/arm/ptw.c
    get_phys_addr_lpae(): the AF test precedes get_S1prot() and the permission
    test). A faulting access updates nothing in ptlab."""
    from engine.hw.walker import ACCESS_FLAG, PERMISSION, walk_descriptor

    old_ro = P.pfn_pte(3, P.PAGE_READONLY) & ~P.PTE_AF
    assert walk_descriptor(old_ro, True, False, True) == (old_ro, ACCESS_FLAG)
    assert walk_descriptor(old_ro, True, True, True) == (old_ro, PERMISSION)
    execonly = P.pfn_pte(3, P.PAGE_EXECONLY) & ~P.PTE_AF  # no PTE_USER: no EL0 reads
    assert walk_descriptor(execonly, False, False, False) == (execonly, ACCESS_FLAG)
    assert walk_descriptor(execonly | P.PTE_AF, False, False, False)[1] == PERMISSION
