# SPDX-License-Identifier: GPL-2.0-only
"""ptlab decode: present, CONT, PROT_NONE and swap entries in the v6.9 and
v7.0 layouts. Expected values are built by hand from the kernel's bit
positions (pgtable-hwdef.h, pgtable-prot.h, pgtable.h __swp_* macros)."""

import json

import pytest

from engine.decode import decode, max_swapfiles, special_swap_types
from engine.granule import granule
from engine.pte import LAYOUT_V69, LAYOUT_V610, LAYOUT_V618
from tui.cli import main

G4 = granule("4K")
PHYS = 0x80010 << 12  # pfn 0x80010 on 4K

# PAGE_READONLY = _PAGE_DEFAULT(0x703) | USER | RDONLY | NG | PXN | UXN = 0x0060000000000fc3
READONLY = 0x0060000080010FC3
READONLY_CONT = READONLY | 1 << 52  # PTE_CONT
# pte_mkwrite(pte_mkdirty(PAGE_READONLY)): + DIRTY(55) + DBM(51), - RDONLY(7)
DIRTY_RW = 0x00E8000080010F43
# PAGE_NONE (v6.10+): VALID clear, PTE_PRESENT_INVALID == NG (bit 11)
PROT_NONE_V70 = 0x0060000080010F82
# PAGE_NONE (v6.9): VALID clear, PTE_PROT_NONE (bit 58)
PROT_NONE_V69 = 0x0460000080010F82


def swp_v69(typ, off, excl=False):
    return (typ << 3) | (off << 8) | (4 if excl else 0)  # type 7:3, offset 57:8, exclusive bit 2


def swp_v610(typ, off, excl=False):
    return (typ << 6) | (off << 12) | (4 if excl else 0)  # type 10:6, offset 61:12


def test_expected_values_match_the_engine_helpers():
    for lay in (LAYOUT_V69, LAYOUT_V618):
        assert lay.pte_mkwrite_novma(READONLY | 1 << 55) == DIRTY_RW
        assert lay.swp_entry_to_pte(5, 0x1234, exclusive=True) == (
            swp_v69(5, 0x1234, True) if lay is LAYOUT_V69 else swp_v610(5, 0x1234, True))
    assert LAYOUT_V618.page_none | PHYS == PROT_NONE_V70
    assert LAYOUT_V69.page_none | PHYS == PROT_NONE_V69


@pytest.mark.parametrize("layout", [LAYOUT_V69, LAYOUT_V618], ids=["v6.9", "v7.0"])
def test_present_readonly(layout):
    d = decode(READONLY, G4, layout)
    assert d.kind == "present"
    assert d.flags == ["PTE_VALID", "PTE_USER", "PTE_RDONLY", "PTE_AF", "PTE_NG", "PTE_PXN", "PTE_UXN"]
    assert d.fields["pfn"] == 0x80010 and d.fields["phys"] == PHYS
    assert not d.fields["cont"] and not d.fields["write"] and not d.fields["dirty"]
    assert d.fields["leaf_size"] == 4096
    assert d.summary == "pfn 0x80010 r-- young"


@pytest.mark.parametrize("layout", [LAYOUT_V69, LAYOUT_V618], ids=["v6.9", "v7.0"])
def test_present_writable_dirty(layout):
    d = decode(DIRTY_RW, G4, layout)
    assert d.fields["write"] and d.fields["dirty"] and d.fields["hw_dirty"]
    assert d.summary == "pfn 0x80010 rw- young dirty"


@pytest.mark.parametrize("layout", [LAYOUT_V69, LAYOUT_V618], ids=["v6.9", "v7.0"])
def test_cont(layout):
    d = decode(READONLY_CONT, G4, layout)
    assert "PTE_CONT" in d.flags and d.fields["cont"]
    assert d.fields["leaf_size"] == 64 << 10
    assert d.summary == "pfn 0x80010 r-- CONT young"
    d16 = decode(READONLY_CONT, granule("16K"), layout)
    assert d16.fields["pfn"] == PHYS >> 14 and d16.fields["leaf_size"] == 2 << 20


def test_cont_on_an_invalid_entry_is_inert():
    d = decode(PROT_NONE_V70 | 1 << 52, G4, LAYOUT_V618)
    assert d.summary == "pfn 0x80010 --- PROT_NONE CONT(inert: not valid) young"


def test_prot_none_v70():
    d = decode(PROT_NONE_V70, G4, LAYOUT_V618)
    assert d.kind == "present-invalid"
    assert d.flags == ["PTE_RDONLY", "PTE_AF", "PTE_NG", "PTE_PXN", "PTE_UXN", "PTE_PRESENT_INVALID"]
    assert d.fields["protnone"] is True
    assert d.summary == "pfn 0x80010 --- PROT_NONE young"


def test_prot_none_v69():
    d = decode(PROT_NONE_V69, G4, LAYOUT_V69)
    assert d.kind == "present-invalid"
    assert d.flags == ["PTE_RDONLY", "PTE_AF", "PTE_NG", "PTE_PXN", "PTE_UXN", "PTE_PROT_NONE"]
    assert d.fields["protnone"] is True
    assert d.summary == "pfn 0x80010 --- PROT_NONE young"


def test_prot_none_encodings_differ_between_layouts():
    # v7.0's PAGE_NONE has no bit 58: v6.9 does not see a present entry at all
    # (VALID clear, PROT_NONE clear) and bits[1:0] = 0b10 are not a swap entry either.
    assert decode(PROT_NONE_V70, G4, LAYOUT_V69).kind == "invalid"
    # v6.9's PAGE_NONE read with the v7.0 layout: still PROT_NONE (NG set), bit 58 is uffd-wp
    d = decode(PROT_NONE_V69, G4, LAYOUT_V618)
    assert d.fields["protnone"] and "PTE_UFFD_WP" in d.flags


def test_v69_protnone_is_the_bit_test():
    # v6.9: pte_protnone() == (pte & (VALID | PROT_NONE)) == PROT_NONE, whatever USER says
    d = decode(PROT_NONE_V69 | 1 << 6, G4, LAYOUT_V69)
    assert d.fields["protnone"] is True
    # v6.10+: present-invalid with PTE_USER set is not PROT_NONE (pmd_mkinvalid's encoding)
    assert decode(PROT_NONE_V70 | 1 << 6, G4, LAYOUT_V618).fields["protnone"] is False


@pytest.mark.parametrize("layout,raw", [(LAYOUT_V69, swp_v69(5, 0x1234, True)),
                                        (LAYOUT_V618, swp_v610(5, 0x1234, True))], ids=["v6.9", "v7.0"])
def test_swap(layout, raw):
    d = decode(raw, G4, layout)
    assert d.kind == "swap"
    assert d.fields["swp_type"] == 5 and d.fields["swp_offset"] == 0x1234 and d.fields["exclusive"]
    assert d.fields["entry"] == "swap"
    assert d.flags == ["PTE_SWP_EXCLUSIVE"]
    assert d.summary == "swap type 5 offset 0x1234 exclusive"


def test_swap_values():
    assert swp_v69(5, 0x1234, True) == 0x12342C
    assert swp_v610(5, 0x1234, True) == 0x1234144


def test_swap_uffd_wp_only_in_v610_layouts():
    raw = swp_v610(1, 2) | 1 << 3
    d = decode(raw, G4, LAYOUT_V618)
    assert d.fields["uffd_wp"] and "PTE_SWP_UFFD_WP" in d.flags
    assert "uffd_wp" not in decode(swp_v69(1, 2), G4, LAYOUT_V69).fields


def test_max_swapfiles_by_kernel():
    # v6.9/v6.10: SWP_DEVICE_NUM 4 (device exclusive read + write): 32 - 4 - 3 - 1 - 1 = 23
    # v6.15+: one SWP_DEVICE_EXCLUSIVE type: 32 - 3 - 3 - 1 - 1 = 24
    assert [max_swapfiles(k) for k in ("v6.9", "v6.10", "v6.17", "v6.19", "v7.0")] == [23, 23, 24, 24, 24]
    assert special_swap_types(23) == {
        23: "hwpoison", 24: "migration (read)", 25: "migration (read, exclusive)",
        26: "migration (write)", 27: "device private (write)", 28: "device private (read)",
        29: "device exclusive (write)", 30: "device exclusive (read)", 31: "pte marker"}
    assert special_swap_types(24) == {
        24: "hwpoison", 25: "migration (read)", 26: "migration (read, exclusive)",
        27: "migration (write)", 28: "device private (write)", 29: "device private (read)",
        30: "device exclusive", 31: "pte marker"}


def test_migration_entries_use_each_kernels_numbering():
    d = decode(swp_v69(26, 0x80010), G4, LAYOUT_V69, "v6.9")
    assert d.kind == "migration" and d.fields["entry"] == "migration (write)"
    d = decode(swp_v610(27, 0x80010), G4, LAYOUT_V618, "v7.0")
    assert d.kind == "migration" and d.fields["entry"] == "migration (write)"
    # type 24 is a migration entry up to v6.14, hwpoison afterwards
    assert decode(swp_v610(24, 1), G4, LAYOUT_V610, "v6.10").fields["entry"] == "migration (read)"
    assert decode(swp_v610(24, 1), G4, LAYOUT_V618, "v7.0").fields["entry"] == "hwpoison"
    assert decode(swp_v610(31, 1), G4, LAYOUT_V618, "v7.0").fields["entry"] == "pte marker"


def run_json(capsys, *argv):
    assert main(["decode", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_present_cont(capsys):
    out = run_json(capsys, f"{READONLY_CONT:#x}")
    assert out["kind"] == "present" and out["kernel"] == "v7.0" and out["layout"] == "v6.18"
    assert out["fields"]["cont"] is True and out["raw"] == "0x0070000080010fc3"


def test_cli_prot_none_both_layouts(capsys):
    assert run_json(capsys, f"{PROT_NONE_V69:#x}", "--kernel", "v6.9")["fields"]["protnone"] is True
    assert run_json(capsys, f"{PROT_NONE_V70:#x}")["fields"]["protnone"] is True
    assert run_json(capsys, f"{PROT_NONE_V70:#x}", "--kernel", "v6.9")["kind"] == "invalid"


def test_cli_swap_both_layouts(capsys):
    out = run_json(capsys, f"{swp_v69(26, 0x80010):x}", "--kernel", "v6.9")
    assert out["kind"] == "migration" and out["fields"]["max_swapfiles"] == 23
    out = run_json(capsys, f"{swp_v610(26, 0x80010):x}")
    assert out["fields"]["entry"] == "migration (read, exclusive)"


def test_cli_text(capsys):
    assert main(["decode", f"{READONLY_CONT:#x}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "0x0070000080010fc3  (4K granule, v7.0 layout v6.18)"
    assert lines[1] == "  present: pfn 0x80010 r-- CONT young"
    assert lines[2] == "  flags: PTE_VALID PTE_USER PTE_RDONLY PTE_AF PTE_NG PTE_CONT PTE_PXN PTE_UXN"
    assert "            pfn: 0x80010" in lines


def test_cli_bad_value(capsys):
    assert main(["decode", "0xzz"]) == 2
    assert capsys.readouterr().err == "ptlab: decode: '0xzz' is not a hexadecimal value\n"
