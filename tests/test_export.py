# SPDX-License-Identifier: GPL-2.0-only
"""Page-table exports (engine/export.py) on a hand-built table with known answers."""

import csv
import io
import json
from dataclasses import dataclass

import pytest

from engine import Simulator
from engine.export import cont_block_starts, format_size, iter_entries, ptdump, to_csv, to_json
from engine.pte import (
    PAGE_READONLY,
    PAGE_READONLY_EXEC,
    PAGE_SHARED,
    PTE_TABLE_BIT,
    pfn_pte,
    pte_mkspecial,
)


@dataclass
class V:
    start: int
    end: int
    perms: str
    name: str


VA = 0x7F0000000000


def table(kernel="v7.0"):
    sim = Simulator("4K", kernel)
    lay = sim.layout
    sim.add_folio(0x80000, 16)
    sim.ptep.set_ptes(VA, pfn_pte(0x80000, PAGE_SHARED), 16)  # painted CONT by contpte_set_ptes
    for k in range(4):  # order-0 pages, consecutive PFNs: one line, no CON
        sim.ptep.set_ptes(VA + 0x10000 + k * 0x1000, pfn_pte(0x80010 + k, PAGE_SHARED), 1)
    sim.ptep.set_ptes(VA + 0x20000, pfn_pte(0x90000, PAGE_READONLY_EXEC), 1)
    sim.ptep.set_ptes(VA + 0x21000, pfn_pte(0x90005, PAGE_READONLY_EXEC), 1)  # PFN jump: new line
    for k in range(2):
        sim.ptep.set_ptes(VA + 0x30000 + k * 0x1000, pfn_pte(0xA0000 + k, lay.page_none), 1)
    for k in range(3):
        sim.ptep.set_ptes(VA + 0x40000 + k * 0x1000, lay.swp_entry_to_pte(2, 0x500 + k, exclusive=k == 2), 1)
    sim.ptep.set_ptes(VA + 0x50000, pte_mkspecial(pfn_pte(0xB0000, PAGE_READONLY)), 1)
    sim.mm.pt.set_pmd(VA + 0x200000, pfn_pte(0xC0000, PAGE_READONLY) & ~PTE_TABLE_BIT)
    return sim


VMAS = [V(VA, VA + 0x30000, "rw-s", "/dev/shm/x"), V(VA + 0x30000, VA + 0x40000, "---p", "[anon]"),
        V(VA + 0x40000, VA + 0x60000, "rw-p", "[anon]"), V(VA + 0x100000, VA + 0x110000, "r--p", "[anon]"),
        V(VA + 0x400000, VA + 0x401000, "rw-p", "[stack]")]

# Columns: VALID(" "/F) USR ro/RW NX/x SHD AF NG CON BLK UXN GP memtype | DBM DIRTY SPECIAL
EXPECTED_PTDUMP = """\
---[ 0x00007f0000000000-0x00007f0000030000 rw-s /dev/shm/x ]---
0x00007f0000000000-0x00007f0000010000          64K PTE   USR ro NX SHD AF NG CON     UXN    MEM/NORMAL DBM  pfn 0x80000-0x8000f
0x00007f0000010000-0x00007f0000014000          16K PTE   USR ro NX SHD AF NG         UXN    MEM/NORMAL DBM  pfn 0x80010-0x80013
0x00007f0000020000-0x00007f0000021000           4K PTE   USR ro NX SHD AF NG                MEM/NORMAL  pfn 0x90000
0x00007f0000021000-0x00007f0000022000           4K PTE   USR ro NX SHD AF NG                MEM/NORMAL  pfn 0x90005
---[ 0x00007f0000030000-0x00007f0000040000 ---p [anon] ]---
0x00007f0000030000-0x00007f0000032000           8K PTE F     ro NX SHD AF NG         UXN    MEM/NORMAL                   PROT_NONE  pfn 0xa0000-0xa0001
---[ 0x00007f0000040000-0x00007f0000060000 rw-p [anon] ]---
0x00007f0000040000-0x00007f0000042000           8K PTE F swap type 2 offset 0x500-0x501
0x00007f0000042000-0x00007f0000043000           4K PTE F swap type 2 offset 0x502 exclusive
0x00007f0000050000-0x00007f0000051000           4K PTE   USR ro NX SHD AF NG         UXN    MEM/NORMAL           SPECIAL  pfn 0xb0000
---[ 0x00007f0000100000-0x00007f0000110000 r--p [anon] ]---
---[ outside any VMA ]---
0x00007f0000200000-0x00007f0000400000           2M PMD   USR ro NX SHD AF NG     BLK UXN    MEM/NORMAL  pfn 0xc0000-0xc01ff
---[ 0x00007f0000400000-0x00007f0000401000 rw-p [stack] ]---
"""  # noqa: E501


def test_ptdump_with_vmas():
    sim = table()
    assert ptdump(sim.mm.pt, sim.layout, VMAS) == EXPECTED_PTDUMP


def test_ptdump_without_vmas_and_with_a_range():
    sim = table()
    plain = [ln for ln in EXPECTED_PTDUMP.splitlines() if not ln.startswith("---[")]
    assert ptdump(sim.mm.pt, sim.layout) == "\n".join(plain) + "\n"
    part = ptdump(sim.mm.pt, sim.layout, start=VA + 0x30000, end=VA + 0x42000)
    assert part.splitlines() == [plain[4], plain[5]]
    assert ptdump(sim.mm.pt, sim.layout, start=VA + 0x1000000) == ""


def test_ptdump_v69_prot_none_and_swap():
    sim = table("v6.9")
    lines = ptdump(sim.mm.pt, sim.layout).splitlines()
    # v6.9 marks PROT_NONE with software bit 58 (no column of its own) and keeps the
    # swap type in bits 7:3: the listing reads the same as v7.0's
    assert lines[4].endswith("PROT_NONE  pfn 0xa0000-0xa0001")
    assert lines[5] == ("0x00007f0000040000-0x00007f0000042000           8K PTE F swap type 2 "
                        "offset 0x500-0x501")


def test_format_size_is_ptdumps():
    assert format_size(4096) == "        4K"
    assert format_size(64 << 10) == "       64K"
    assert format_size(2 << 20) == "        2M"
    assert format_size(3 << 30) == "        3G"
    assert format_size(1536 << 10) == "     1536K"


def test_iter_entries_and_cont_blocks():
    sim = table()
    ents = list(iter_entries(sim.mm.pt))
    assert len(ents) == 29 and ents[-1] == (VA + 0x200000, sim.mm.pt.get_pmd(VA + 0x200000), "PMD")
    assert [e[0] for e in ents] == sorted(e[0] for e in ents)
    assert cont_block_starts(sim.mm.pt, sim.g) == [VA]


def test_json_entries_and_blocks():
    sim = table()
    d = to_json(sim.mm.pt, sim.layout, VMAS)
    json.dumps(d)
    assert d["format"] == "ptlab-pagetable/1" and d["granule"] == "4K" and d["layout"] == "v6.18"
    assert d["summary"] == {"entries": 29, "pmd_leaves": 1, "blocks": 6, "cont_blocks": 1}
    assert d["entries"][0] == {
        "va": "0x7f0000000000", "level": "PTE", "raw": "0x0078000080000fc3", "kind": "present",
        "flags": ["PTE_VALID", "PTE_USER", "PTE_RDONLY", "PTE_AF", "PTE_NG", "PTE_WRITE(DBM)", "PTE_CONT",
                  "PTE_PXN", "PTE_UXN"],
        "pfn": 0x80000, "cont": True, "vma": "/dev/shm/x"}
    kinds = [e["kind"] for e in d["entries"]]
    assert kinds.count("protnone") == 2 and kinds.count("swap") == 3
    swap = [e for e in d["entries"] if e["kind"] == "swap"][2]
    assert swap["swp_type"] == 2 and swap["swp_offset"] == 0x502 and "PTE_SWP_EXCLUSIVE" in swap["flags"]
    assert d["entries"][-1]["vma"] is None and d["entries"][-1]["level"] == "PMD"
    assert [(b["va"], b["entries"], b["valid"], b["cont"], b["folded"]) for b in d["blocks"]] == [
        ("0x7f0000000000", 16, 16, 16, True), ("0x7f0000010000", 4, 4, 0, False),
        ("0x7f0000020000", 2, 2, 0, False), ("0x7f0000030000", 2, 0, 0, False),
        ("0x7f0000040000", 3, 0, 0, False), ("0x7f0000050000", 1, 1, 0, False)]


def test_csv_one_row_per_present_entry():
    sim = table()
    text = to_csv(sim.mm.pt, sim.layout, VMAS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 16 + 4 + 2 + 2 + 1 + 1  # swap entries are not present
    ln = text.splitlines()
    assert ln[0] == ("va,level,raw,pfn,valid,protnone,cont,user,rdonly,write,dirty,young,special,uxn,"
                     "pxn,ng,attrindx,vma")
    assert ln[1] == "0x7f0000000000,PTE,0x0078000080000fc3,0x80000,1,0,1,1,1,1,0,1,0,1,1,1,0,/dev/shm/x"
    assert ln[21] == "0x7f0000020000,PTE,0x0020000090000fc3,0x90000,1,0,0,1,1,0,0,1,0,0,1,1,0,/dev/shm/x"
    assert ln[23] == "0x7f0000030000,PTE,0x00600000a0000f82,0xa0000,0,1,0,0,1,0,0,1,0,1,1,1,0,[anon]"
    assert ln[-1] == "0x7f0000200000,PMD,0x00600000c0000fc1,0xc0000,1,0,0,1,1,0,0,1,0,1,1,1,0,"


@pytest.mark.parametrize("fn", [ptdump, to_csv, lambda *a: json.dumps(to_json(*a))])
def test_exports_are_deterministic(fn):
    a, b = table(), table()
    assert fn(a.mm.pt, a.layout, VMAS) == fn(b.mm.pt, b.layout, list(reversed(VMAS)))


def test_dirty_writable_entries_show_rw_dbm_dirty():
    sim = Simulator("4K", "v7.0")
    pte = sim.pte.pte_mkwrite(sim.pte.pte_mkdirty(pfn_pte(0x1000, PAGE_READONLY)))
    sim.ptep.set_ptes(VA, pte, 1)
    assert ptdump(sim.mm.pt, sim.layout) == (
        "0x00007f0000000000-0x00007f0000001000           4K PTE   USR RW NX SHD AF NG         UXN    "
        "MEM/NORMAL DBM DIRTY  pfn 0x1000\n")
