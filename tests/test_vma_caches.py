# SPDX-License-Identifier: GPL-2.0-only
"""The VMA list's caches (engine/mm/process.py) answer exactly what a scan
of the list answers, whatever ops ran; and 65,530 mappings (the kernel's
default vm.max_map_count) no longer take quadratic time (issue: every
input is hostile, item 11)."""

from __future__ import annotations

import random

from engine.granule import granule
from engine.mm.process import MMAP_BASE, MMAP_MIN_ADDR
from engine.ops import Op
from engine.scenario import parse
from engine.scenario_machine import Machine


def scan_unmapped_area(vmas, length: int, g, thp_align: bool) -> int:
    """The top-down search as a plain scan from MMAP_BASE (the reference)."""
    align = g.pmd_size if thp_align and length % g.pmd_size == 0 else g.page_size
    high = MMAP_BASE
    for v in reversed(vmas):
        if v.start >= high:
            continue
        cand = (high - length) & ~(align - 1)
        if cand >= v.end:
            return cand
        high = v.start
    cand = (high - length) & ~(align - 1)
    return -1 if cand < MMAP_MIN_ADDR else cand


def check_caches(m: Machine) -> None:
    g = m.g
    for p in m.kernel.procs:
        vmas = p.vmas
        assert p._starts() == [v.start for v in vmas]
        assert p.mapped_bytes() == sum(v.end - v.start for v in vmas)
        assert all(a.end <= b.start for a, b in zip(vmas, vmas[1:], strict=False))
        for length in (g.page_size, 16 * g.page_size, g.pmd_size, 3 * g.pmd_size):
            for thp in (False, True):
                want = scan_unmapped_area(vmas, length, g, thp)
                assert p.get_unmapped_area(length, g, thp) == want
                p._pending_area = None  # nothing was inserted
        for v in vmas[:: max(1, len(vmas) // 8)]:
            assert p.find_vma(v.start) is v and p.vmas_in(v.start, v.end) == [v]
            assert p.vmas_in(v.start - 1, v.end + 1) == [w for w in vmas if w.start < v.end + 1
                                                         and w.end > v.start - 1]


def test_vma_caches_match_a_scan_after_random_ops():
    rng = random.Random(20261206)
    g = granule("4K")
    m = Machine(parse("memory 256M\nmthp 64K=always\n", "v.pts").config(record=False, check="end"))
    names: list[str] = []
    for step in range(400):
        r = rng.random()
        try:
            if r < 0.4 or not names:
                name = f"m{step}"
                size = rng.choice([1, 2, 16, 17, 512, 1024]) * g.page_size
                args = {"name": name, "size": size}
                if rng.random() < 0.2:
                    args["at"] = rng.randrange(0x10000000, 0x20000000, g.page_size)
                m.apply(Op("mmap", args, step))
                names.append(name)
            elif r < 0.6:
                name = names.pop(rng.randrange(len(names)))
                m.apply(Op("munmap", {"name": name}, step))
            elif r < 0.8:
                name = rng.choice(names)
                m.apply(Op("mprotect", {"name": name, "off": 0, "len": g.page_size,
                                        "prot": rng.choice(["r", "rw"])}, step))
            else:
                name = rng.choice(names)
                m.apply(Op("touch", {"name": name, "access": "write"}, step))
        except Exception as e:  # a refused op (no room, overlap) changes nothing
            assert "ScenarioError" in type(e).__name__, e
        check_caches(m)


def test_65530_mappings_take_linear_time():
    """The old list scans made this minutes; count the VMAs touched instead of
    timing it: the search resumes at its hint, so each mmap looks at O(1) VMAs."""
    # alternating protections: neighbours that may not merge (mm/vma.c
    # is_mergeable_vma()), so there really are 65,530 VMAs
    src = "memory 512M\nrepeat 32765 i\nmmap a{i} 4K r\nmmap b{i} 4K\nend\n"
    scn = parse(src, "many.pts")
    m = Machine(scn.config(record=False, check="end"))
    for op in scn.ops:
        m.apply(op)
    p = m.kernel.procs[0]
    assert len(p.vmas) == 65530 and p.mapped_bytes() == 65530 * 4096
    assert p._area_hint is not None and p._area_hint[0] == p.vmas[0].start
    assert p.get_unmapped_area(4096, m.g, False) == scan_unmapped_area(p.vmas, 4096, m.g, False)
