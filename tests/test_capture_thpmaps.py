# SPDX-License-Identifier: GPL-2.0-only
"""thpmaps counters and the engine's folded blocks on a crafted process whose
answers are worked out by hand (see crafted_process.py for the layout)."""

from collections import Counter

import pytest
from capture_fakes import FakeReader
from crafted_process import A, crafted

from engine.capture.build import build
from engine.capture.live import capture_process
from engine.capture.thpmaps import compare, cont_blocks, format_thpmaps, size_to_order


@pytest.fixture(params=[False, True], ids=["smaps-pmd", "pagemap-scan"])
def cap(request):
    return capture_process(4242, reader=FakeReader(crafted(), scan=request.param))


# thpmaps ends a VMA line without an object name with the space before it
EXPECTED_THPMAPS = "\n".join([
    "       PID             START              END PROT   OFFSET   DEV    INODE OBJECT",
    "0000004242: 0000000010000000-0000000010400000 rw-p 00000000 00:00 00000000 ",
    "anon-thp-pmd-aligned-2048kB:        2048 kB (86%)",
    "anon-thp-pte-aligned-16kB:            16 kB ( 1%)",
    "anon-thp-pte-aligned-64kB:           128 kB ( 5%)",
    "anon-thp-pte-unaligned-64kB:          64 kB ( 3%)",
    "anon-thp-pte-partial:                 96 kB ( 4%)",
    "anon-cont-pmd-aligned-64kB:         2048 kB (86%)",
    "anon-cont-pte-aligned-64kB:          192 kB ( 8%)",
    "0000004242: 0000000020000000-0000000020010000 r--p 00000000 fe:00 00001234 /usr/lib/libfake.so",
    "file-thp-pte-aligned-16kB:            16 kB (67%)",
    "0000004242: 0000000030000000-0000000030010000 ---p 00000000 00:00 00000000 ",
    "0000004242: 0000000040000000-0000000040010000 rw-p 00000000 00:00 00000000 ",
]) + "\n"


def test_folios_and_pmd_mappings_come_from_kpageflags(cap):
    assert cap.warnings == []
    assert cap.folios == {0x1000: 16, 0x1010: 16, 0x1020: 32, 0x1040: 16, 0x1060: 4, 0x2000: 4,
                          0x40000: 512}
    assert cap.pmd_mapped == [(A + 0x200000, A + 0x400000)]
    assert cap.summary() == {"vmas": 4, "pages_present": 602, "pages_swapped": 4, "large_folios": 7,
                             "pmd_mapped": 1}


def test_thpmaps_counters_match_hand_worked_answers(cap):
    # Rss of the anon VMA: 16+16+24+512+16+4+4 pages = 2368 kB, all anonymous.
    # 64K aligned: folios 1 and 5; unaligned: folio 2; partial: 24 pages of folio 3;
    # the PMD THP's 512 pages are subtracted from pte-aligned-2048kB (AnonHugePages);
    # cont 64K blocks: folios 1, 3 (first 64K), 5, plus 32 in the PMD THP minus 512 pages.
    assert format_thpmaps(cap, (64 << 10,)) == EXPECTED_THPMAPS


def test_rollup_and_inc_empty(cap):
    text = format_thpmaps(cap, (64 << 10,), rollup_only=True)
    assert text.splitlines()[0] == "anon-thp-pmd-aligned-2048kB:        2048 kB (86%)"
    assert "file-thp-pte-aligned-16kB:            16 kB (67%)" in text
    full = format_thpmaps(cap, (), inc_empty=True)
    assert "anon-thp-pte-aligned-32kB:             0 kB ( 0%)" in full
    # thpmaps prints orders 2..PMD_ORDER only (order-1 folios are counted, never shown)
    assert "-8kB:" not in full


def test_cont_blocks_are_thpmaps_cont_semantics(cap):
    vma = cap.vmas[0]
    blocks = [(vfn << 12, anon) for vfn, anon in cont_blocks(cap, vma, size_to_order(cap, 64 << 10))]
    pmd = [(A + 0x200000 + k * 0x10000, True) for k in range(32)]
    assert blocks == [(A, True), (A + 0x40000, True), (A + 0x80000, True)] + pmd


def test_size_to_order_checks_like_thpmaps(cap):
    assert size_to_order(cap, 64 << 10) == 4
    with pytest.raises(ValueError, match="at least 2 pages"):
        size_to_order(cap, 4096)
    with pytest.raises(ValueError, match="power-of-2"):
        size_to_order(cap, 3 * 4096)
    with pytest.raises(ValueError, match="PMD order"):
        size_to_order(cap, 4 << 20)


def test_engine_folds_two_of_three_eligible_blocks_on_4k(cap):
    r = compare(build(cap, "4K"))
    vc = r.vmas[0]
    assert sorted(vc.eligible) == [A, A + 0x40000, A + 0x80000]
    assert vc.pmd_blocks == 32 and vc.pmd_leaves == 1
    assert sorted(vc.folded) == [A, A + 0x40000]
    assert vc.reasons == Counter({"entries differ: writable vs read-only": 1})
    assert (r.eligible, r.folded_eligible, r.folded) == (3, 2, 2)
    assert r.conclusion() == (
        "2 of 3 contpte-eligible 64K blocks folded on the 4K granule (v7.3); reasons for the others: "
        "1 x entries differ: writable vs read-only; 1 PMD-mapped THP is a PMD block entry")
    assert r.counters["folds"] == 1  # folio 3 by contpte_try_fold; folio 1 was painted CONT directly
    assert r.counters["cont_blocks"] == 2


@pytest.mark.parametrize("granule", ["16K", "64K"])
def test_pmd_thp_is_one_contiguous_block_on_bigger_granules(cap, granule):
    r = compare(build(cap, granule))
    assert r.block_size == 2 << 20 and r.pmd_included
    assert (r.eligible, r.folded_eligible, r.pmd_leaves) == (1, 1, 0)
    assert r.vmas[0].folded == [A + 0x200000]


def test_report_as_dict_is_json_ready(cap):
    import json

    d = compare(build(cap, "4K")).as_dict()
    json.dumps(d)
    assert d["eligible"] == 3 and d["cont_blocks"] == 2
    assert [v["name"] for v in d["vmas"]] == ["[anon]", "/usr/lib/libfake.so", "[anon]"]


@pytest.mark.parametrize("kernel,folded,why", [
    ("baseline", 0, "kernel profile baseline has no contpte"),
    # no automatic fold: only the whole-folio set_ptes paints CONT; the partial folio stays unfolded
    ("seed-basic", 1, "kernel profile seed-basic never folds from set_ptes(nr == 1) and no whole-block "
                      "set_ptes() covered it"),
    ("v6.9", 2, None),
])
def test_kernel_profiles_change_the_outcome(cap, kernel, folded, why):
    r = compare(build(cap, "4K", kernel))
    assert (r.eligible, r.folded_eligible) == (3, folded)
    if why:
        assert why in r.reasons()
